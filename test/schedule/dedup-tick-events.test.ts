/**
 * Ticks whose job is deduplicated on its unique key, on both drivers: what the tick row, the events, the audit
 * trail, the metrics and the missed-run alert say about each outcome.
 * - a manual trigger whose key is held by an active job runs nothing: tick `skipped`, `schedule:skipped` with
 *   reason `duplicate` and the operator as actor (audited as the operator's), counted under `reason="duplicate"`;
 *   it is no scheduled run, so it neither opens a missed-run alert nor reads as an overlap;
 * - a manual trigger whose key replaces a waiting job: that job runs the trigger's payload, so the tick is `fired`
 *   with it, and `schedule:fired` says `replaced` (no `schedule:skipped`); the audit trail reads trigger,
 *   `job.replaced`, `schedule.fired`;
 * - a scheduled tick whose key replaces a waiting job fires with it too, and that job's completion is the tick's
 *   success: no missed-run alert;
 * - a scheduled tick held back by its overlap policy is `overlap` (no job named), one deduplicated on its key is
 *   `duplicate` (naming the active job).
 * @module
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AlertRulesOptions } from '../../src/alerts/alert-options.js';
import { FakeClock } from '../../src/clock/fake-clock.js';
import type { Warden } from '../../src/client/warden.js';
import { defineJob } from '../../src/job/define-job.js';
import { attachMetrics, type MetricsHandle } from '../../src/observe/metrics.js';
import { defineSchedule } from '../../src/schedule/define-schedule.js';
import { scrape, total } from '../observe/helpers.js';
import { record } from '../runtime/helpers.js';
import { createTestDatabase, DRIVER_KINDS, type TestDatabase } from '../support/test-databases.js';
import { HOUR, makeWarden, type MakeWardenOptions, MINUTE, T0 } from './helpers.js';

const SECOND = 1_000;
/** Only the missed-run rule, so nothing else opens an alert. */
const MISSED_RUN_ONLY: AlertRulesOptions = {
  deadLetter: false, consecutiveFailures: false, failureRate: false, missedRun: true, runTooLong: false, queueLag: false, leaseExpiry: false,
};

/** Payloads the jobs below ran with, in order. */
let ran: unknown[] = [];
/** At most one active at a time (key `the-rebuild`). */
const rebuild = defineJob<{ at?: string }>({ name: 'rebuild', handler: (payload) => void ran.push(payload), unique: { key: () => 'the-rebuild' } });
/** A second enqueue while one waits gives the waiting one its payload and due time (debounce). */
const refresh = defineJob<{ at?: string }>({ name: 'refresh', handler: (payload) => void ran.push(payload), unique: { key: () => 'the-refresh', replace: true } });
/** Each tick's payload names its tick. */
const payload = ({ tickAt }: { tickAt: Date }) => ({ at: tickAt.toISOString() });

describe.each(DRIVER_KINDS)('ticks deduplicated on a unique key (%s)', (kind) => {
  let tdb: TestDatabase;
  let wardens: Warden[];
  let metrics: MetricsHandle[];

  beforeEach(async () => {
    tdb = await createTestDatabase(kind);
    wardens = [];
    metrics = [];
    ran = [];
  });

  afterEach(async () => {
    for (const m of metrics) m.detach();
    await Promise.allSettled(wardens.map((w) => w.close()));
    await tdb?.cleanup();
  });

  function open(options: MakeWardenOptions): Warden {
    const warden = makeWarden(tdb, { audit: { actor: 'system:test' }, alerts: { rules: MISSED_RUN_ONLY }, ...options });
    wardens.push(warden);
    return warden;
  }

  function attach(warden: Warden, clock: FakeClock): MetricsHandle {
    const handle = attachMetrics({ events: warden.events, driver: warden.driver, cache: 0, clock });
    metrics.push(handle);
    return handle;
  }

  async function trail(warden: Warden): Promise<{ action: string; actor: string; reason: string | null; data: unknown }[]> {
    await warden.audit.flush();
    const entries = [];
    for await (const e of warden.audit.entries()) entries.push({ action: e.action, actor: e.actor, reason: e.reason, data: e.data });
    return entries;
  }

  it('a trigger whose key is held by an active job: skipped as a duplicate by its operator, no missed run, no overlap', async () => {
    const clock = new FakeClock(T0 + 10 * SECOND);
    const schedule = defineSchedule({ name: 'nightly', cron: '0 * * * *', job: rebuild, payload, overlap: 'skip', expect: { within: '10m' } });
    const warden = open({ schedules: [schedule], clock });
    const handle = attach(warden, clock);
    await warden.runSchedulerOnce();
    await clock.set(T0 + HOUR);
    expect(await warden.runSchedulerOnce()).toBe(1); // the 01:00 run, left waiting
    const [scheduled] = await warden.schedules.ticks('nightly');
    const fired = record(warden, 'schedule:fired');
    const skipped = record(warden, 'schedule:skipped');
    const opened = record(warden, 'alert:opened');

    await clock.set(T0 + HOUR + 2 * MINUTE);
    const result = await warden.schedules.trigger('nightly', { actor: 'ops', reason: 'rerun' });
    expect(result).toEqual({ jobId: scheduled!.jobId, tickAt: new Date(T0 + HOUR + 2 * MINUTE), duplicate: true, replaced: false });
    expect(fired).toEqual([]);
    expect(skipped).toEqual([{ schedule: 'nightly', tickAt: new Date(T0 + HOUR + 2 * MINUTE), reason: 'duplicate', activeJobId: scheduled!.jobId, actor: 'ops' }]);
    const samples = await scrape(handle.registry);
    expect(total(samples, 'warden_schedule_skipped_total', { schedule: 'nightly', reason: 'duplicate' })).toBe(1);
    expect(total(samples, 'warden_schedule_skipped_total', { schedule: 'nightly', reason: 'overlap' })).toBe(0);
    // The operator's action, recorded as such, with the reason the tick ran nothing.
    expect((await trail(warden)).slice(-2)).toEqual([
      { action: 'schedule.triggered', actor: 'ops', reason: 'rerun', data: { operator: true } },
      { action: 'schedule.skipped', actor: 'ops', reason: 'duplicate', data: { tickAt: new Date(T0 + HOUR + 2 * MINUTE).toISOString(), activeJobId: scheduled!.jobId } },
    ]);

    // The 01:00 run completes; well past 01:10 no missed-run alert: the skipped trigger was never a scheduled run.
    await warden.drain();
    await clock.set(T0 + HOUR + 30 * MINUTE);
    await warden.alerts.check();
    await warden.alerts.settled();
    expect(opened).toEqual([]);
    expect((await warden.schedules.ticks('nightly')).map((t) => [t.kind, t.outcome, t.jobState])).toEqual([
      ['triggered', 'skipped', 'completed'],
      ['scheduled', 'fired', 'completed'],
    ]);
  });

  it('a trigger whose key replaces a waiting job: fired with that job, which runs the trigger\'s payload; audited as replaced', async () => {
    const clock = new FakeClock(T0 + 10 * SECOND);
    const schedule = defineSchedule({ name: 'refresher', cron: '0 3 * * *', job: refresh, payload, overlap: 'skip' });
    const warden = open({ schedules: [schedule], clock });
    const handle = attach(warden, clock);
    await warden.runSchedulerOnce();
    const first = await warden.schedules.trigger('refresher', { actor: 'alice' });
    const fired = record(warden, 'schedule:fired');
    const skipped = record(warden, 'schedule:skipped');
    const enqueued = record(warden, 'job:enqueued');
    await clock.advance(SECOND);

    const second = await warden.schedules.trigger('refresher', { actor: 'bob' });
    const tickAt = new Date(T0 + 11 * SECOND);
    expect(second).toEqual({ jobId: first.jobId, tickAt, duplicate: true, replaced: true });
    // The tick row says what happened: bob's trigger runs, as the waiting job.
    expect((await warden.schedules.ticks('refresher')).map((t) => [t.actor, t.kind, t.outcome, t.jobId])).toEqual([
      ['bob', 'triggered', 'fired', first.jobId],
      ['alice', 'triggered', 'fired', first.jobId],
    ]);
    expect(skipped).toEqual([]);
    expect(fired).toEqual([{
      schedule: 'refresher', tickAt, jobId: first.jobId, job: { id: first.jobId, name: 'refresh', queue: 'default', scheduleName: 'refresher' }, late: false, actor: 'bob', replaced: true,
    }]);
    expect(enqueued.map((e) => [e.job.id, e.duplicate, e.replaced])).toEqual([[first.jobId, true, true]]);
    const samples = await scrape(handle.registry);
    expect(total(samples, 'warden_schedule_skipped_total', { schedule: 'refresher' })).toBe(0);
    expect(total(samples, 'warden_schedule_runs_total', { schedule: 'refresher' })).toBe(2);

    await warden.drain();
    expect(ran).toEqual([{ at: tickAt.toISOString() }]);
    const entries = await trail(warden);
    expect(entries.map((e) => [e.action, e.actor])).toEqual([
      ['schedule.triggered', 'alice'], ['job.created', 'system:test'], ['schedule.fired', 'alice'],
      ['schedule.triggered', 'bob'], ['job.replaced', 'system:test'], ['schedule.fired', 'bob'],
      ['job.started', 'system:test'], ['job.completed', 'system:test'],
    ]);
    expect(entries[5]!.data).toEqual({ tickAt: tickAt.toISOString(), jobId: first.jobId, late: false, replaced: true });
    expect(entries[2]!.data).not.toHaveProperty('replaced');
  });

  it('a scheduled tick whose key replaces a waiting job fires with it; that job completing is the tick\'s success', async () => {
    const clock = new FakeClock(T0 + 10 * SECOND);
    const schedule = defineSchedule({ name: 'hourly-refresh', cron: '0 * * * *', job: refresh, payload, overlap: 'skip', expect: { within: '10m' } });
    const warden = open({ schedules: [schedule], jobs: [refresh], clock });
    await warden.runSchedulerOnce();
    // A waiting job of the same key, enqueued by hand for later.
    const holder = await warden.enqueue(refresh, { at: 'by hand' }, { delay: '3h' });
    const fired = record(warden, 'schedule:fired');
    const skipped = record(warden, 'schedule:skipped');
    const enqueued = record(warden, 'job:enqueued');
    const opened = record(warden, 'alert:opened');

    await clock.set(T0 + HOUR);
    expect(await warden.runSchedulerOnce()).toBe(1);
    const tickAt = new Date(T0 + HOUR);
    expect(skipped).toEqual([]);
    expect(fired.map((e) => [e.tickAt, e.jobId, e.actor, e.replaced])).toEqual([[tickAt, holder.id, null, true]]);
    expect(enqueued.map((e) => [e.job.id, e.duplicate, e.replaced])).toEqual([[holder.id, true, true]]);
    expect((await warden.schedules.ticks('hourly-refresh')).map((t) => [t.kind, t.outcome, t.jobId])).toEqual([['scheduled', 'fired', holder.id]]);

    // The held job now runs the tick's payload, due now; its completion covers the tick.
    await warden.drain();
    expect(ran).toEqual([{ at: tickAt.toISOString() }]);
    await clock.set(T0 + HOUR + 30 * MINUTE);
    await warden.alerts.check();
    await warden.alerts.settled();
    expect(opened).toEqual([]);
    expect(await warden.alerts.list()).toEqual([]);
  });

  it('scheduled ticks: held back by the overlap policy is "overlap", deduplicated on the key is "duplicate"', async () => {
    const clock = new FakeClock(T0 + 10 * SECOND);
    const schedule = defineSchedule({ name: 'minutely', cron: '* * * * *', job: rebuild, payload, overlap: 'skip', misfire: { grace: '5s' } });
    const warden = open({ schedules: [schedule], jobs: [rebuild], clock });
    const handle = attach(warden, clock);
    await warden.runSchedulerOnce();
    const holder = await warden.enqueue(rebuild, { at: 'by hand' }, { delay: '1h' });
    const skipped = record(warden, 'schedule:skipped');

    await clock.set(T0 + MINUTE);
    await warden.runSchedulerOnce(); // the key is held by the job enqueued by hand: a duplicate
    await warden.jobs.cancel(holder.id);
    await clock.set(T0 + 2 * MINUTE);
    await warden.runSchedulerOnce(); // fires, and its run waits
    await clock.set(T0 + 3 * MINUTE);
    await warden.runSchedulerOnce(); // held back by overlap "skip"

    expect(skipped).toEqual([
      { schedule: 'minutely', tickAt: new Date(T0 + MINUTE), reason: 'duplicate', activeJobId: holder.id, actor: null },
      { schedule: 'minutely', tickAt: new Date(T0 + 3 * MINUTE), reason: 'overlap', activeJobId: null, actor: null },
    ]);
    const samples = await scrape(handle.registry);
    expect(total(samples, 'warden_schedule_skipped_total', { schedule: 'minutely', reason: 'duplicate' })).toBe(1);
    expect(total(samples, 'warden_schedule_skipped_total', { schedule: 'minutely', reason: 'overlap' })).toBe(1);
    const entries = (await trail(warden)).filter((e) => e.action === 'schedule.skipped');
    expect(entries.map((e) => [e.actor, e.reason])).toEqual([['system:test', 'duplicate'], ['system:test', 'overlap']]);
  });
});
