/**
 * The monitor's resolution of dead-letter alerts with more open than one pass checks, on both drivers: each pass
 * reads the jobs of {@link ALERTS_CHECKED} alerts, taking up where the last pass stopped, so every open dead
 * letter is checked within `ceil(n / ALERTS_CHECKED)` passes (docs/alerts.md, Limits), however many stay dead.
 * Time is a fake clock; each pass is one `alerts.check()`.
 * @module
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ALERTS_CHECKED } from '../../src/alerts/alert-monitor.js';
import type { AlertRulesOptions } from '../../src/alerts/alert-options.js';
import { FakeClock } from '../../src/clock/fake-clock.js';
import { createWarden, type Warden } from '../../src/client/warden.js';
import { defineJob } from '../../src/job/define-job.js';
import { makeWarden, silent, T0 } from '../schedule/helpers.js';
import { overrideDriver } from '../support/override-driver.js';
import { createTestDatabase, DRIVER_KINDS, type TestDatabase } from '../support/test-databases.js';

const RULES: AlertRulesOptions = { deadLetter: true, consecutiveFailures: false, failureRate: false, missedRun: false, runTooLong: false, queueLag: false, leaseExpiry: false };
/** Dead at its first attempt. */
const doomed = defineJob<{ i: number }>({ name: 'doomed', retry: { maxAttempts: 1 }, handler: () => { throw new Error('no'); } });

describe.each(DRIVER_KINDS)('dead-letter alert resolution with many dead letters (%s)', (kind) => {
  let tdb: TestDatabase;
  let warden: Warden;
  let clock: FakeClock;

  beforeEach(async () => {
    tdb = await createTestDatabase(kind);
    clock = new FakeClock(T0);
  });

  afterEach(async () => {
    await warden?.close();
    await tdb?.cleanup();
  });

  /** `count` more dead jobs, each with its open alert. */
  async function kill(count: number, first = 0): Promise<void> {
    await warden.enqueueMany(Array.from({ length: count }, (_, i) => ({ job: doomed, payload: { i: first + i } })));
    await warden.drain();
    await warden.alerts.settled();
  }

  // 199 others: every alert fits one pass (the control). 200: the oldest is past the newest 200.
  it.each([ALERTS_CHECKED - 1, ALERTS_CHECKED])('resolves the alert of an older dead job the operator discarded, with %i other jobs staying dead', async (others) => {
    warden = makeWarden(tdb, { jobs: [doomed], clock, alerts: { rules: RULES } });
    const first = await warden.enqueue(doomed, { i: 0 });
    await warden.drain();
    await warden.alerts.settled();
    await clock.advance(1_000);
    await kill(others, 1);
    expect(await warden.alerts.list({ state: 'open', limit: 1_000 })).toHaveLength(others + 1);

    await warden.jobs.discard(first.id);
    for (let pass = 0; pass < Math.ceil((others + 1) / ALERTS_CHECKED); pass++) await warden.alerts.check();
    const row = (await warden.alerts.list({ limit: 1_000 })).find((a) => a.key === `dead-letter:${first.id}:1`)!;
    expect(row).toMatchObject({ state: 'resolved', details: { resolution: 'the job was discarded or pruned' } });
  });

  it(`checks every open dead letter within ceil(n / ${ALERTS_CHECKED}) passes, reading ${ALERTS_CHECKED} jobs a pass`, async () => {
    let reads: string[] | null = null;
    const driver = overrideDriver(tdb.newDriver(), {
      jobGet: (real) => (params) => {
        reads?.push(params.id);
        return real(params);
      },
    });
    warden = createWarden({ database: driver, logger: silent, jobs: [doomed], clock, alerts: { rules: RULES } });
    const n = 2 * ALERTS_CHECKED + 1;
    await kill(n);
    const open = await warden.alerts.list({ state: 'open', limit: 1_000 });
    expect(open).toHaveLength(n);

    // The operator deals with the oldest, one in the middle and the newest.
    const ids = open.map((a) => a.details.jobId as string);
    const discarded = [ids[0]!, ids[ALERTS_CHECKED]!, ids[n - 1]!];
    for (const id of discarded) await warden.jobs.discard(id);

    const checked = new Set<string>();
    for (let pass = 0; pass < Math.ceil(n / ALERTS_CHECKED); pass++) {
      reads = [];
      await warden.alerts.check();
      expect(reads.length).toBeLessThanOrEqual(ALERTS_CHECKED);
      for (const id of reads) checked.add(id);
    }
    reads = null;
    expect(checked.size).toBe(n);
    const resolved = await warden.alerts.list({ state: 'resolved', limit: 1_000 });
    expect(resolved.map((a) => a.details.jobId).sort()).toEqual([...discarded].sort());
  });
});
