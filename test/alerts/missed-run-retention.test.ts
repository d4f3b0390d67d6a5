/**
 * The dead man's switch with tick retention on, when `expect.within` (40 days) is longer than `retention.scheduleTicks`
 * (its default, 30 days), on both drivers with a fake clock. Retention used to delete every tick older than
 * `scheduleTicks` but each schedule's newest, so by a tick's deadline its row was gone, and so was the last success's:
 * the alert never opened, however long every run failed. It now keeps the ticks the check reads (from the last success
 * on, as many as it counts), so
 * - a daily schedule failing after its day-1 run opens the alert at day 2's deadline (day 42), with the exact first
 *   missed tick and last success, keeps it open while failing, and resolves it when a run completes; the ticks then
 *   covered by that success are pruned again;
 * - a schedule that never completed a run opens it at its first tick's deadline.
 * @module
 */
import { describe, expect, it } from 'vitest';
import { defineJob } from '../../src/job/define-job.js';
import { defineSchedule } from '../../src/schedule/define-schedule.js';
import { record } from '../runtime/helpers.js';
import { T0 } from '../schedule/helpers.js';
import { alertTestBed, onlyRules } from '../support/alert-rules.js';
import { DRIVER_KINDS } from '../support/test-databases.js';

const DAY = 86_400_000;
/** Only the missed-run rule: the failing runs would otherwise raise dead-letter and failure alerts too. */
const MISSED_RUN_ONLY = { rules: onlyRules({ missedRun: true }) };
/** The time `d` days after T0, as the alert details write it. */
const iso = (d: number) => new Date(T0 + d * DAY).toISOString();

describe.each(DRIVER_KINDS)('missed-run alert with tick retention shorter than expect.within (%s)', (kind) => {
  const bed = alertTestBed(kind);

  /**
   * A Warden on the test's fresh database (both closed when the test ends) with a daily schedule expected within 40
   * days, retention on with its defaults, and a `day(d)` step.
   */
  function setUp(fails: (d: number) => boolean) {
    let today = 0;
    const job = defineJob({ name: 'report-job', retry: { maxAttempts: 1 }, handler: () => { if (fails(today)) throw new Error('down'); } });
    const { clock } = bed;
    const schedule = defineSchedule({ name: 'report', every: '1d', job, overlap: 'allow', expect: { within: '40d' } });
    const w = bed.warden({ schedules: [schedule], jobs: [job], alerts: MISSED_RUN_ONLY, retention: {} });
    /** Moves to day `d`, fires and runs its tick, runs a retention pass and an alert check. */
    async function day(d: number): Promise<void> {
      today = d;
      await clock.set(T0 + d * DAY);
      await w.runSchedulerOnce();
      await w.drain();
      await w.runRetentionOnce();
      await w.alerts.check();
    }
    return { w, day, opened: record(w, 'alert:opened'), resolved: record(w, 'alert:resolved') };
  }

  it("failing after day 1: opens at day 2's deadline with the exact ticks, stays open, resolves on a success", async () => {
    const { w, day, opened, resolved } = setUp((d) => d >= 2 && d < 81);
    await w.runSchedulerOnce();
    for (let d = 1; d <= 41; d++) await day(d);
    expect(opened).toEqual([]);
    await day(42);
    expect(opened.map((e) => e.alert.details)).toEqual([{
      schedule: 'report', job: 'report-job', firstMissedTickAt: iso(2), dueBy: iso(42), missedTicks: 1, unhandledTicks: 0,
      lastSuccessTickAt: iso(1), withinMs: 40 * DAY,
    }]);
    // Failing on, past the tick retention twice over: every tick since the success is kept, the alert stays open.
    for (let d = 43; d <= 80; d++) await day(d);
    expect(opened).toHaveLength(1);
    expect(resolved).toEqual([]);
    const failing = (await w.schedules.ticks('report', { limit: 1000 })).map((t) => t.tickAt.toISOString());
    expect([failing.length, failing.at(-1)]).toEqual([80, iso(1)]);
    await day(81);
    expect(resolved.map((e) => [e.alert.details.resolution, e.alert.details.lastSuccessTickAt])).toEqual([['a run succeeded', iso(81)]]);
    // The success covers every tick before it: those recorded 30 days ago or more (day 51 and before) go again.
    const kept = (await w.schedules.ticks('report', { limit: 1000 })).map((t) => t.tickAt.toISOString());
    expect(kept.at(-1)).toBe(iso(52));
    expect(kept[0]).toBe(iso(81));
  });

  it('never completing a run: opens at its first tick\'s deadline, with no last success', async () => {
    const { w, day, opened } = setUp(() => true);
    await w.runSchedulerOnce();
    for (let d = 1; d <= 40; d++) await day(d);
    expect(opened).toEqual([]);
    await day(41);
    expect(opened.map((e) => [e.alert.details.firstMissedTickAt, e.alert.details.missedTicks, e.alert.details.lastSuccessTickAt])).toEqual([[iso(1), 1, null]]);
  });
});
