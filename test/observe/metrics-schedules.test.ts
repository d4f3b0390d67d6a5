/**
 * Schedule, lock and stale-write metrics against real databases: schedule counters agree with the tick rows,
 * the last-success timestamp comes from this process's events and, in a process that saw none (another instance,
 * a restart), from the database; lock acquisitions and losses, and stale writes, are counted by their stable
 * names. Schedules are driven by a fake clock and `runSchedulerOnce`; the lock test needs real time for renewal.
 * @module
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Warden } from '../../src/client/warden.js';
import { TypedEmitter } from '../../src/events/typed-emitter.js';
import { defineJob } from '../../src/job/define-job.js';
import { attachMetrics, type MetricsHandle } from '../../src/observe/metrics.js';
import { defineSchedule } from '../../src/schedule/define-schedule.js';
import { deferred, makeWarden, record, T0, TestClock, within } from '../runtime/helpers.js';
import { createTestDatabase, DRIVER_KINDS, type TestDatabase } from '../support/test-databases.js';
import { countBy, matching, promtoolCheck, scrape, total } from './helpers.js';

const MINUTE = 60_000;
const tickJob = defineJob({ name: 'tick-job', handler: () => undefined });
const everyMinute = defineSchedule({ name: 'rescreen', every: '1m', job: tickJob, overlap: 'skip', misfire: { policy: 'skip', grace: '10s' } });

describe.each(DRIVER_KINDS)('schedule, lock and stale-write metrics (%s)', (kind) => {
  let tdb: TestDatabase;
  let clock: TestClock;
  let warden: Warden | undefined;
  const handles: MetricsHandle[] = [];

  beforeEach(async () => {
    tdb = await createTestDatabase(kind);
    clock = new TestClock(T0);
  });

  afterEach(async () => {
    for (const h of handles.splice(0)) h.detach();
    await warden?.close();
    warden = undefined;
    await tdb?.cleanup();
  });

  function attach(w: Warden, events = w.events): MetricsHandle {
    const handle = attachMetrics({ events, driver: w.driver, cache: 0, clock });
    handles.push(handle);
    return handle;
  }

  it('counts fired, skipped and missed ticks as the tick rows record them, and the last success', async () => {
    const w = (warden = makeWarden(tdb, { schedules: [everyMinute], clock }));
    const metrics = attach(w);
    // Its database read is cached for the whole test: only the events can tell it about the success.
    const cached = attachMetrics({ events: w.events, driver: w.driver, cache: '1h', clock });
    handles.push(cached);
    const missed = record(w, 'schedule:missed');
    await w.runSchedulerOnce(); // syncs; the first tick is T0 + 1m
    await scrape(cached.registry);

    // Known schedules start at 0, so rates and absence alerts work before the first tick.
    let samples = await scrape(metrics.registry);
    for (const name of ['runs', 'skipped', 'missed']) {
      expect(matching(samples, `warden_schedule_${name}_total`, { schedule: 'rescreen' }).map((s) => s.value)).toEqual([0]);
    }
    expect(matching(samples, 'warden_schedule_last_success_timestamp_seconds')).toEqual([]);

    await clock.advance(MINUTE);
    await w.runSchedulerOnce(); // fires T0+1m
    await clock.advance(MINUTE);
    await w.runSchedulerOnce(); // T0+2m: the previous run still waits, so it is skipped
    await w.drain();
    const firstSuccess = clock.now() / 1000;
    await clock.advance(5 * MINUTE + 30_000);
    await w.runSchedulerOnce(); // T0+3m…7m late beyond grace: missed (policy skip)
    await clock.advance(30_000);
    await w.runSchedulerOnce(); // T0+8m on time: fired

    const ticks = await w.schedules.ticks('rescreen', { limit: 100 });
    const byOutcome = countBy(ticks, (t) => t.outcome);
    expect(Object.fromEntries(byOutcome)).toEqual({ fired: 2, skipped: 1, missed: 5 });
    samples = await scrape(metrics.registry);
    expect(total(samples, 'warden_schedule_runs_total', { schedule: 'rescreen' })).toBe(byOutcome.get('fired'));
    expect(total(samples, 'warden_schedule_skipped_total', { schedule: 'rescreen' })).toBe(byOutcome.get('skipped'));
    expect(total(samples, 'warden_schedule_missed_total', { schedule: 'rescreen' })).toBe(missed.reduce((n, e) => n + e.count, 0));
    expect(total(samples, 'warden_schedule_missed_total', { schedule: 'rescreen' })).toBe(byOutcome.get('missed'));
    expect(total(samples, 'warden_schedule_last_success_timestamp_seconds', { schedule: 'rescreen' })).toBe(firstSuccess);
    // Seen through job:completed of a run this process fired.
    expect(total(await scrape(cached.registry), 'warden_schedule_last_success_timestamp_seconds', { schedule: 'rescreen' })).toBe(firstSuccess);
    expect(promtoolCheck(await metrics.registry.metrics())).toEqual({ status: 0, output: '' });

    // Another process (its own events, none of them seen) finds the success in the database, even though the
    // newest tick's run has not completed yet.
    const elsewhere = attach(w, new TypedEmitter());
    const firstJob = (await w.jobs.list({ state: 'completed' }))[0]!;
    expect(total(await scrape(elsewhere.registry), 'warden_schedule_last_success_timestamp_seconds', { schedule: 'rescreen' })).toBe(firstJob.finishedAt!.getTime() / 1000);

    // Once the newest run completes, both report it: one from the event, the other from the newest tick's job.
    await clock.advance(1_000);
    await w.drain();
    const newest = (await w.jobs.list({ state: 'completed' })).find((j) => j.id !== firstJob.id)!;
    for (const handle of [metrics, elsewhere]) {
      expect(total(await scrape(handle.registry), 'warden_schedule_last_success_timestamp_seconds', { schedule: 'rescreen' })).toBe(newest.finishedAt!.getTime() / 1000);
    }
  });

  it('counts a scheduled tick deduplicated on its key in jobs_deduplicated_total, as a trigger is, and audits no job for it', async () => {
    // Every run of this job has the same key: while one waits, the next tick is a duplicate of it.
    const keyed = defineJob({ name: 'keyed-job', unique: { key: () => 'singleton' }, handler: () => undefined });
    const schedule = defineSchedule({ name: 'keyed', every: '1m', job: keyed, overlap: 'allow', misfire: { policy: 'skip', grace: '10s' } });
    const w = (warden = makeWarden(tdb, { schedules: [schedule], clock, audit: { actor: 'system:test' } }));
    const metrics = attach(w);
    const skipped = record(w, 'schedule:skipped');
    const enqueued = record(w, 'job:enqueued');
    await w.runSchedulerOnce(); // syncs; the first tick is T0 + 1m
    await clock.advance(MINUTE);
    await w.runSchedulerOnce(); // a new job
    await clock.advance(MINUTE);
    await w.runSchedulerOnce(); // deduplicated against the first tick's job, still waiting
    const [first] = enqueued;
    expect(skipped.map((s) => [s.reason, s.activeJobId, s.actor])).toEqual([['duplicate', first!.job.id, null]]);
    expect(enqueued.map((e) => [e.job, e.duplicate, e.replaced, e.runAt.getTime()])).toEqual([
      [{ id: first!.job.id, name: 'keyed-job', queue: 'default', scheduleName: 'keyed' }, false, false, T0 + MINUTE],
      [{ id: first!.job.id, name: 'keyed-job', queue: 'default', scheduleName: 'keyed' }, true, false, T0 + MINUTE], // the holder's due time, not the tick's
    ]);
    let samples = await scrape(metrics.registry);
    expect(total(samples, 'warden_jobs_enqueued_total', { job: 'keyed-job' })).toBe(1);
    expect(total(samples, 'warden_jobs_deduplicated_total', { job: 'keyed-job', queue: 'default' })).toBe(1);

    // The same thing through a trigger is counted the same way.
    await w.schedules.trigger('keyed');
    samples = await scrape(metrics.registry);
    expect(skipped.map((s) => s.reason)).toEqual(['duplicate', 'duplicate']);
    expect(total(samples, 'warden_jobs_deduplicated_total', { job: 'keyed-job' })).toBe(2);
    // A duplicate changed nothing: one job, created once in the audit trail.
    await w.audit.flush();
    const created: string[] = [];
    for await (const e of w.audit.entries()) if (e.action === 'job.created' || e.action === 'job.replaced') created.push(`${e.action} ${e.subjectId}`);
    expect(created).toEqual([`job.created ${first!.job.id}`]);
  });

  it('names a key holder in another queue as it is, for a deduplicated tick and trigger alike (its queue labels the metric)', async () => {
    const keyed = defineJob({ name: 'keyed-job', unique: { key: () => 'singleton' }, handler: () => undefined });
    const schedule = defineSchedule({ name: 'keyed', every: '1m', job: keyed, overlap: 'allow', misfire: { policy: 'skip', grace: '10s' } });
    const w = (warden = makeWarden(tdb, { schedules: [schedule], clock, jobs: [keyed] }));
    const metrics = attach(w);
    const enqueued = record(w, 'job:enqueued');
    await w.runSchedulerOnce(); // syncs; the first tick is T0 + 1m
    // A unique key is shared by every job: the holder was enqueued by hand, into another queue, due at T0.
    const holder = await w.enqueue(keyed, {}, { queue: 'other' });
    await clock.advance(MINUTE);
    await w.runSchedulerOnce(); // the tick is deduplicated against it
    await w.schedules.trigger('keyed'); // and so is the trigger
    const asHeld = { id: holder.id, name: 'keyed-job', queue: 'other', scheduleName: null };
    expect(enqueued.slice(1).map((e) => [e.job, e.duplicate, e.runAt.getTime()])).toEqual([[asHeld, true, T0], [asHeld, true, T0]]);
    const samples = await scrape(metrics.registry);
    expect(total(samples, 'warden_jobs_deduplicated_total', { job: 'keyed-job', queue: 'other' })).toBe(2);
    expect(total(samples, 'warden_jobs_deduplicated_total', { job: 'keyed-job', queue: 'default' })).toBe(0);
  });

  it('counts lock acquisitions and losses by lock name', async () => {
    // Real time: the lease renews on the process clock.
    const w = (warden = makeWarden(tdb, {}));
    const metrics = attachMetrics({ events: w.events, driver: w.driver, cache: 0 });
    handles.push(metrics);
    const lost = w.events.next('lock:lost');
    const lease = await w.locks.acquire('nightly-report', { ttl: '300ms' });
    expect(lease).not.toBeNull();
    // Another holder takes the lock over, so the next renewal is refused.
    expect(await tdb.driver.lockRelease({ name: 'nightly-report', token: lease!.token })).toBe(true);
    expect(await tdb.driver.lockAcquire({ name: 'nightly-report', holder: 'other', ttlMs: 60_000, now: null })).not.toBeNull();
    await within(lost, 'lock:lost');
    await lease!.release();
    expect(await w.locks.acquire('nightly-report', { ttl: '300ms' })).toBeNull();

    const samples = await scrape(metrics.registry);
    expect(total(samples, 'warden_lock_acquisitions_total', { lock: 'nightly-report' })).toBe(1);
    expect(total(samples, 'warden_lock_losses_total', { lock: 'nightly-report' })).toBe(1);
    expect(promtoolCheck(await metrics.registry.metrics())).toEqual({ status: 0, output: '' });
  });

  it('maps lock names through lockLabel', async () => {
    const w = (warden = makeWarden(tdb, {}));
    const metrics = attachMetrics({ events: w.events, driver: w.driver, lockLabel: (name) => name.split(':')[0]! });
    handles.push(metrics);
    for (const customer of ['customer:41', 'customer:42']) await (await w.locks.acquire(customer, { ttl: '1m' }))!.release();
    const samples = await scrape(metrics.registry);
    expect(matching(samples, 'warden_lock_acquisitions_total').map((s) => [s.labels.lock, s.value])).toEqual([['customer', 2]]);
  });

  it('counts a finish rejected after an operator cancel as a stale write, without the job id', async () => {
    const release = deferred();
    const started = deferred();
    const slow = defineJob({
      name: 'slow-job',
      handler: async () => {
        started.resolve();
        await release.promise;
      },
    });
    const w = (warden = makeWarden(tdb, { jobs: [slow], clock }));
    const metrics = attach(w);
    const stale = record(w, 'job:stale-write-rejected');
    const { id } = await w.enqueue(slow, {});
    const drained = w.drain();
    await within(started.promise, 'the slow job to start');
    await w.jobs.cancel(id);
    release.resolve();
    await within(drained, 'the drain to finish');

    expect(stale).toEqual([expect.objectContaining({ jobId: id, write: 'finish' })]);
    const samples = await scrape(metrics.registry);
    expect(total(samples, 'warden_stale_writes_rejected_total', { write: 'finish' })).toBe(1);
    expect(total(samples, 'warden_jobs_completed_total')).toBe(0);
    expect(samples.flatMap((s) => Object.values(s.labels)).map(String)).not.toContain(id);
  });
});
