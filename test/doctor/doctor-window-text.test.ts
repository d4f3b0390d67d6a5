/**
 * The doctor's messages name the windows it applied, as given: they were rounded to whole minutes or hours, so
 * `longRun: "20s"` read "longer than 0 min" (and a 25-second run "running for 0 min"), and `missedWithin: "10m"`
 * read "in the last 0 h". Both drivers.
 * @module
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createWarden, type Warden } from '../../src/client/warden.js';
import { FakeClock } from '../../src/clock/fake-clock.js';
import { formatDuration } from '../../src/doctor/live-checks.js';
import { HOUR, MINUTE, silent, T0 } from '../schedule/helpers.js';
import { createTestDatabase, DRIVER_KINDS, type TestDatabase } from '../support/test-databases.js';
import * as bad from './fixtures/bad-app.js';

let warden: Warden | undefined;
let tdb: TestDatabase | undefined;
afterEach(async () => {
  await warden?.close();
  await tdb?.cleanup();
  warden = undefined;
  tdb = undefined;
});

describe('formatDuration', () => {
  it.each([
    [20_000, '20s'], [600_000, '10m'], [24 * HOUR, '1d'], [90 * MINUTE, '1h30m'], [1_500, '1s500ms'],
    [250, '250ms'], [0, '0ms'], [HOUR + 1, '1h1ms'], [3 * 86_400_000 + 4 * HOUR + 5 * MINUTE + 6_000 + 7, '3d4h5m6s7ms'],
  ])('%d ms is %s', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });
});

describe.each(DRIVER_KINDS)('doctor messages and their windows (%s)', (kind) => {
  it('name longRun "20s" and missedWithin "10m" as given, and a run time to the second', async () => {
    tdb = await createTestDatabase(kind);
    const clock = new FakeClock(T0);
    warden = createWarden({ database: tdb.url, schema: tdb.schema, logger: silent, clock, jobs: [bad.chargeCard], schedules: [bad.hourlyFlaky] });
    // Schedulers down for 3 hours: three ticks are recorded as missed, now.
    await warden.runSchedulerOnce();
    await clock.set(T0 + 3 * HOUR + 30 * MINUTE);
    await warden.runSchedulerOnce();
    // A run at it for 25 seconds without a checkpoint.
    const { id } = await warden.enqueue(bad.chargeCard, { amount: 5 });
    const [claimed] = await tdb.driver.jobClaim({ queues: ['default'], limit: 1, workerId: 'stuck-worker', leaseMs: HOUR, now: clock.sqlNow() });
    expect(claimed?.id).toBe(id);
    await clock.advance(25_000);

    const { findings } = await warden.doctor({ longRun: '20s', missedWithin: '10m' });
    const message = (id: string) => findings.find((f) => f.id === id)?.message;
    expect(message('job.long-run-without-checkpoint')).toBe(`Expected runs of job "charge-card" longer than 20s to save checkpoints, got job ${id} running for 25s without one`);
    expect(message('schedule.missed')).toMatch(/^Expected schedule "hourly-flaky" to miss no tick in the last 10m, got 3 missed \(newest /);
  });
});
