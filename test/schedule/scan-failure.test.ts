/**
 * A schedule whose advance fails does not hold back the others. The failing one keeps the oldest `next_run_at`,
 * so it is first in every scan (due schedules are read by `next_run_at`, then name): when its failure ended the
 * scan, no schedule due after it fired for as long as it failed. Now each failure is reported as an `error` event
 * naming its schedule, the scan goes on, and then `runSchedulerOnce()` rejects with a `ScheduleAdvanceError`
 * listing the failures. Checked on both drivers: the healthy schedule's ticks, rows and events; the failing one's
 * ticks left due and handled (by its misfire policy) once its advance works again; and a started scheduler, which
 * reports each failure once.
 * @module
 */
import { afterEach, describe, expect, it } from 'vitest';
import { FakeClock } from '../../src/clock/fake-clock.js';
import { createWarden, type Warden } from '../../src/client/warden.js';
import type { Driver } from '../../src/driver/driver.js';
import { defineSchedule } from '../../src/schedule/define-schedule.js';
import { ScheduleAdvanceError } from '../../src/schedule/schedule-advance-error.js';
import { Cleanup } from '../support/cleanup.js';
import { overrideDriver } from '../support/override-driver.js';
import { createTestDatabase, DRIVER_KINDS, type TestDatabase } from '../support/test-databases.js';
import { jobsOf, MINUTE, noopJob, openOracle, type Oracle, silent, T0, ticksOf, until } from './helpers.js';

const SECOND = 1_000;
const injected = new Error('injected: the advance of a-failing fails');

describe.each(DRIVER_KINDS)('a schedule whose advance fails (%s)', (kind) => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  let failing = true;
  let tdb: TestDatabase;
  let oracle: Oracle;

  /** A driver whose advances of `a-failing` throw while `failing` is set, and a Warden on it with two schedules. */
  async function open(clock: FakeClock): Promise<{ warden: Warden; events: string[]; errors: { error: unknown; context: string }[] }> {
    tdb = cleanup.add(await createTestDatabase(kind), (t) => t.cleanup());
    oracle = cleanup.add(await openOracle(tdb), (o) => o.close());
    failing = true;
    const driver: Driver = overrideDriver(tdb.newDriver(), {
      scheduleAdvance: (advance) => async (params) => {
        if (failing && params.name === 'a-failing') throw injected;
        return advance(params);
      },
    });
    const schedules = [
      defineSchedule({ name: 'a-failing', cron: '* * * * *', job: noopJob, overlap: 'allow' }),
      defineSchedule({ name: 'b-healthy', cron: '* * * * *', job: noopJob, overlap: 'allow', misfire: { policy: 'skip', grace: '30s' } }),
    ];
    const warden = cleanup.add(createWarden({ database: driver, logger: silent, clock, schedules, retention: false }), (w) => w.close());
    const events: string[] = [];
    for (const name of ['schedule:fired', 'schedule:missed', 'schedule:skipped'] as const) {
      warden.on(name, (e) => events.push(`${name} ${e.schedule} +${(e.tickAt.getTime() - T0) / MINUTE}m`));
    }
    const errors: { error: unknown; context: string }[] = [];
    warden.on('error', (e) => errors.push(e));
    return { warden, events, errors };
  }

  it('the other due schedules fire every tick; the pass rejects with a ScheduleAdvanceError naming the failing one', async () => {
    const clock = new FakeClock(T0);
    const { warden, events, errors } = await open(clock);
    await warden.runSchedulerOnce(); // sync at T0
    for (let m = 1; m <= 5; m++) {
      await clock.advance(MINUTE);
      const error = await warden.runSchedulerOnce().then(() => null, (e: unknown) => e);
      expect(error).toBeInstanceOf(ScheduleAdvanceError);
      expect(error).toMatchObject({ code: 'SCHEDULE_ADVANCE_FAILED', failures: [{ schedule: 'a-failing', error: injected }], advanced: 1, cause: injected });
    }
    expect((await jobsOf(oracle, 'b-healthy')).map((j) => (j.tickAt! - T0) / MINUTE)).toEqual([1, 2, 3, 4, 5]);
    expect((await ticksOf(oracle, 'b-healthy')).map((t) => [(t.tickAt - T0) / MINUTE, t.outcome])).toEqual([1, 2, 3, 4, 5].map((m) => [m, 'fired']));
    expect(events).toEqual([1, 2, 3, 4, 5].map((m) => `schedule:fired b-healthy +${m}m`));
    // One error event per failed advance, naming the schedule; nothing of a-failing written, its first tick still due.
    expect(errors).toEqual(Array(5).fill({ error: injected, context: 'advancing schedule a-failing' }));
    expect(await ticksOf(oracle, 'a-failing')).toEqual([]);
    expect((await warden.schedules.get('a-failing'))?.nextRunAt?.getTime()).toBe(T0 + MINUTE);
  });

  it('once its advance works again, its due ticks go to its misfire policy (run-once: the newest missed one fires, late)', async () => {
    const clock = new FakeClock(T0);
    const { warden, errors } = await open(clock);
    await warden.runSchedulerOnce();
    for (let m = 1; m <= 3; m++) {
      await clock.advance(MINUTE);
      await expect(warden.runSchedulerOnce()).rejects.toBeInstanceOf(ScheduleAdvanceError);
    }
    failing = false;
    await clock.advance(30 * SECOND);
    expect(await warden.runSchedulerOnce()).toBe(1);
    // At +3m30s: +1m and +2m were missed (the default grace is 1m), +2m is within its interval plus the grace.
    expect((await ticksOf(oracle, 'a-failing')).map((t) => [(t.tickAt - T0) / MINUTE, t.outcome, t.late])).toEqual([[1, 'missed', true], [2, 'fired', true], [3, 'fired', false]]);
    expect(errors).toHaveLength(3);
  });

  it('a started scheduler reports each failure once, as the failing schedule\'s, and keeps firing the others', async () => {
    const clock = new FakeClock(T0);
    const { warden, events, errors } = await open(clock);
    await warden.start({ worker: false });
    for (let m = 1; m <= 3; m++) {
      await clock.advance(MINUTE);
      await until(() => events.length === m, `b-healthy's tick +${m}m to fire`);
    }
    await warden.stop();
    expect(events).toEqual([1, 2, 3].map((m) => `schedule:fired b-healthy +${m}m`));
    // No second report of the same failures as a failed scan.
    expect(errors.length).toBeGreaterThanOrEqual(3);
    expect(errors.every((e) => e.error === injected && e.context === 'advancing schedule a-failing')).toBe(true);
  });
});

describe('ScheduleAdvanceError', () => {
  it('names at most 5 failed schedules, keeps every failure, and the first one as its cause', () => {
    const failures = Array.from({ length: 7 }, (_, i) => ({ schedule: `s${i}`, error: new Error(`e${i}`) }));
    const error = new ScheduleAdvanceError(failures, 3);
    expect(error.message).toBe('Expected every due schedule to be advanced, got 7 failed (s0, s1, s2, s3, s4, and 2 more); the others were handled (3 advanced), and the first failure is the cause');
    expect(error).toMatchObject({ name: 'ScheduleAdvanceError', code: 'SCHEDULE_ADVANCE_FAILED', failures, advanced: 3, cause: failures[0]!.error });
  });
});
