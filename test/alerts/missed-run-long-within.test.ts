/**
 * The dead man's switch of a schedule whose `expect.within` spans far more intervals than any fixed window of newest
 * ticks, on both drivers with a fake clock: the ticks after the last success are read oldest first
 * (`Driver.scheduleTicksAfter`), so
 * - every 1m within 3h, failing every run while schedulers keep recording ticks: the alert opens at the first missed
 *   tick's deadline (180 ticks after it), not before, notifies once, and resolves once a later run succeeds;
 * - more overdue ticks than are counted: the first missed tick is still exact, and the count says "at least";
 * - a schedule whose newest tick succeeded costs no read beyond the schedule list.
 * @module
 */
import { describe, expect, it, vi } from 'vitest';
import { MAX_COUNTED_TICKS } from '../../src/alerts/missed-run.js';
import { defineJob } from '../../src/job/define-job.js';
import { defineSchedule } from '../../src/schedule/define-schedule.js';
import { record } from '../runtime/helpers.js';
import { MINUTE, noopJob, T0 } from '../schedule/helpers.js';
import { alertTestBed, onlyRules } from '../support/alert-rules.js';
import { DRIVER_KINDS } from '../support/test-databases.js';

/** Only the missed-run rule: the failing runs would otherwise raise dead-letter and failure alerts too. */
const MISSED_RUN_ONLY = { rules: onlyRules({ missedRun: true }) };

/** The time `m` minutes after T0, as the alert details write it. */
const iso = (m: number) => new Date(T0 + m * MINUTE).toISOString();

describe.each(DRIVER_KINDS)('missed-run alert with expect.within longer than 100 intervals (%s)', (kind) => {
  const bed = alertTestBed(kind);

  it('every 1m within 3h, every run failing after +1m: opens at +2m\'s deadline (+182m), once, and resolves when a run succeeds', async () => {
    let failing = false;
    const job = defineJob({ name: 'rescreen-job', retry: { maxAttempts: 1 }, handler: () => { if (failing) throw new Error('screening service down'); } });
    const { clock } = bed;
    const schedule = defineSchedule({ name: 'rescreen', every: '1m', job, overlap: 'allow', expect: { within: '3h' } });
    const w = bed.warden({ schedules: [schedule], jobs: [job], alerts: MISSED_RUN_ONLY });
    const opened = record(w, 'alert:opened');
    const resolved = record(w, 'alert:resolved');
    /** Moves to +m, fires that minute's tick and runs it. */
    async function minute(m: number): Promise<void> {
      await clock.set(T0 + m * MINUTE);
      await w.runSchedulerOnce();
      await w.drain();
    }
    await w.runSchedulerOnce();
    await minute(1); // +1m completes: the last success
    failing = true;
    for (let m = 2; m <= 181; m++) await minute(m);
    // +2m's run was due by +182m: 180 ticks recorded after it, more than any window of newest ticks read before.
    await w.alerts.check();
    expect(opened).toEqual([]);

    await minute(182);
    await w.alerts.check();
    expect(opened.map((e) => [e.alert.key, e.alert.severity, e.alert.details])).toEqual([['missed-run:rescreen', 'critical', {
      schedule: 'rescreen', job: 'rescreen-job', firstMissedTickAt: iso(2), dueBy: iso(182), missedTicks: 1, unhandledTicks: 0,
      lastSuccessTickAt: iso(1), withinMs: 180 * MINUTE,
    }]]);
    expect(opened[0]!.alert.summary).toBe(`schedule rescreen has no successful run of its ${iso(2)} tick within 3h`);

    // Still failing: more ticks past their deadline, the same open alert, no second notice.
    for (let m = 183; m <= 200; m++) await minute(m);
    await w.alerts.check();
    expect(opened).toHaveLength(1);
    expect(resolved).toEqual([]);

    // A later run succeeds: resolved, with that run as the last success.
    failing = false;
    await minute(201);
    await w.alerts.check();
    expect(resolved.map((e) => [e.alert.key, e.alert.details.resolution, e.alert.details.lastSuccessTickAt]))
      .toEqual([['missed-run:rescreen', 'a run succeeded', iso(201)]]);
    await w.alerts.check();
    expect(opened).toHaveLength(1);
    expect(resolved).toHaveLength(1);
  });

  it(`more than ${MAX_COUNTED_TICKS} overdue ticks: the first missed tick is exact and the count says "at least"`, async () => {
    const { clock } = bed;
    const schedule = defineSchedule({ name: 'rescreen', every: '1m', job: noopJob, overlap: 'allow', misfire: { policy: 'skip', grace: '5s' }, expect: { within: '3h' } });
    const w = bed.warden({ schedules: [schedule], alerts: MISSED_RUN_ONLY });
    const opened = record(w, 'alert:opened');
    const resolved = record(w, 'alert:resolved');
    await w.runSchedulerOnce();
    await clock.set(T0 + MINUTE);
    await w.runSchedulerOnce();
    await w.drain(); // +1m completes: the last success

    // Two outages of every scheduler, each caught up at once: +2m…+900m and +902m…+1800m recorded missed, +901m and
    // +1801m fired (their runs not yet done). At +1801m, +2m…+1621m are past their deadline: 1,620 ticks.
    await clock.set(T0 + 901 * MINUTE);
    await w.runSchedulerOnce();
    await clock.set(T0 + 1801 * MINUTE);
    await w.runSchedulerOnce();
    const overdue = await w.driver.scheduleTicksAfter({ name: 'rescreen', after: new Date(T0 + MINUTE), through: new Date(T0 + 1621 * MINUTE), limit: 1000 });
    expect([overdue.length, overdue[0]!.tickAt.toISOString(), overdue.at(-1)!.tickAt.toISOString()]).toEqual([1000, iso(2), iso(1001)]);
    await w.alerts.check();
    expect(opened.map((e) => e.alert.details)).toEqual([{
      schedule: 'rescreen', job: 'noop-job', firstMissedTickAt: iso(2), dueBy: iso(182), missedTicks: MAX_COUNTED_TICKS, unhandledTicks: 0,
      ticksCapped: true, lastSuccessTickAt: iso(1), withinMs: 180 * MINUTE,
    }]);
    expect(opened[0]!.alert.summary).toBe(`schedule rescreen has no successful run of its ${iso(2)} tick within 3h (at least ${MAX_COUNTED_TICKS} ticks missed)`);

    await w.drain(); // +901m and +1801m complete
    await w.alerts.check();
    expect(resolved.map((e) => [e.alert.key, e.alert.details.lastSuccessTickAt])).toEqual([['missed-run:rescreen', iso(1801)]]);
  });

  it('reads nothing beyond the schedule list while the newest tick succeeded, and reads on once it did not', async () => {
    let failing = false;
    const job = defineJob({ name: 'rescreen-job', retry: { maxAttempts: 1 }, handler: () => { if (failing) throw new Error('screening service down'); } });
    const { clock } = bed;
    const schedule = defineSchedule({ name: 'rescreen', every: '1m', job, overlap: 'allow', expect: { within: '3h' } });
    const w = bed.warden({ schedules: [schedule], jobs: [job], alerts: MISSED_RUN_ONLY });
    const lastSuccess = vi.spyOn(w.driver, 'scheduleLastSuccess');
    const ticksAfter = vi.spyOn(w.driver, 'scheduleTicksAfter');
    await w.runSchedulerOnce();
    await w.alerts.check(); // no tick yet
    for (let m = 1; m <= 5; m++) {
      await clock.set(T0 + m * MINUTE);
      await w.runSchedulerOnce();
      await w.drain();
      await w.alerts.check();
    }
    expect([lastSuccess.mock.calls.length, ticksAfter.mock.calls.length]).toEqual([0, 0]);

    // +6m fails: the row no longer settles it, so the last success is read; no tick after it is past its deadline yet.
    failing = true;
    await clock.set(T0 + 6 * MINUTE);
    await w.runSchedulerOnce();
    await w.drain();
    await w.alerts.check();
    expect([lastSuccess.mock.calls.length, ticksAfter.mock.calls.length]).toEqual([1, 0]);
    // At +186m, +6m is past its deadline: the ticks after +5m up to +6m are read.
    await clock.set(T0 + 186 * MINUTE);
    await w.alerts.check();
    expect(ticksAfter.mock.calls.map(([params]) => params)).toEqual([
      { name: 'rescreen', after: new Date(T0 + 5 * MINUTE), through: new Date(T0 + 6 * MINUTE), limit: MAX_COUNTED_TICKS },
    ]);
  });
});
