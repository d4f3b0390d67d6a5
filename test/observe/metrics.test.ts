/**
 * The metrics subscriber against real databases: after a run with mixed outcomes (completed, failed then
 * retried, dead, rescued, still pending) every counter agrees with what the database recorded, no label value
 * is a job id, the database gauges match the driver's own counts, and the text output passes `promtool check
 * metrics`. Runs are driven by a fake clock and `warden.drain()`, so every attempt is deterministic.
 * @module
 */
import { Registry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Warden } from '../../src/client/warden.js';
import { InvalidDurationError, InvalidOptionError, NonRetryableError } from '../../src/errors.js';
import { TypedEmitter } from '../../src/events/typed-emitter.js';
import { defineJob } from '../../src/job/define-job.js';
import { JOB_STATES } from '../../src/job/job-record.js';
import { attachMetrics, type MetricsHandle } from '../../src/observe/metrics.js';
import { makeWarden, record, T0, TestClock } from '../runtime/helpers.js';
import { createTestDatabase, DRIVER_KINDS, type TestDatabase } from '../support/test-databases.js';
import { allAttempts, allJobs, countBy, matching, promtoolCheck, scrape, total } from './helpers.js';

const fixed = (maxAttempts: number) => ({ maxAttempts, backoff: { type: 'fixed' as const, base: '1s' as const, jitter: 'none' as const } });

const okJob = defineJob({ name: 'ok-job', handler: () => undefined });
const flakyJob = defineJob({
  name: 'flaky-job',
  queue: 'reports',
  retry: fixed(3),
  handler: (_payload, ctx) => {
    if (ctx.attempt === 1) throw new Error('first attempt fails');
  },
});
const doomedJob = defineJob({ name: 'doomed-job', retry: fixed(2), handler: () => { throw new Error('always fails'); } });
const badJob = defineJob({ name: 'bad-job', handler: () => { throw new NonRetryableError('never retry'); } });
const sideJob = defineJob({ name: 'side-job', queue: 'side', retry: fixed(5), handler: () => undefined });
const JOBS = [okJob, flakyJob, doomedJob, badJob, sideJob];

describe.each(DRIVER_KINDS)('metrics (%s)', (kind) => {
  let tdb: TestDatabase;
  let clock: TestClock;
  let warden: Warden;
  let metrics: MetricsHandle;

  beforeEach(async () => {
    tdb = await createTestDatabase(kind);
    clock = new TestClock(T0);
    warden = makeWarden(tdb, { jobs: JOBS, clock });
    metrics = attachMetrics({ events: warden.events, driver: warden.driver, cache: 0, clock });
  });

  afterEach(async () => {
    metrics?.detach();
    await warden?.close();
    await tdb?.cleanup();
  });

  /**
   * Completed ×5 and ×3 after one failure, dead ×2 after retries and ×1 at once, one rescued from a lost lease,
   * two still waiting, one duplicate enqueue.
   */
  async function mixedRun(): Promise<void> {
    const side = await warden.enqueue(sideJob, {});
    // A worker that dies holding the lease: claimed here, never finished.
    const [ghost] = await tdb.driver.jobClaim({ queues: ['side'], limit: 1, workerId: 'ghost', leaseMs: 1_000, now: new Date(clock.now()) });
    expect(ghost?.id).toBe(side.id);
    for (let i = 0; i < 5; i++) await warden.enqueue(okJob, { i });
    for (let i = 0; i < 3; i++) await warden.enqueue(flakyJob, { i });
    await warden.enqueueMany([{ job: doomedJob, payload: { i: 0 } }, { job: doomedJob, payload: { i: 1 } }, { job: badJob, payload: {} }]);
    await warden.enqueue(okJob, { later: 1 }, { delay: '1h', key: 'later' });
    await warden.enqueue(okJob, { later: 2 }, { delay: '1h', key: 'later' }); // a duplicate
    await warden.enqueue(okJob, { later: 3 }, { delay: '1h' });

    await warden.drain();
    await clock.advance(5_000);
    await warden.rescue();
    await clock.advance(10 * 60_000);
    await warden.drain();
  }

  it('counts agree with the database after a run with mixed outcomes', async () => {
    const deadEvents = record(warden, 'job:dead');
    await mixedRun();
    const samples = await scrape(metrics.registry);
    const jobs = await allJobs(warden.driver);
    const attempts = await allAttempts(warden.driver, jobs);
    const byState = countBy(jobs, (j) => j.state);
    const pending = (byState.get('queued') ?? 0) + (byState.get('retrying') ?? 0) + (byState.get('running') ?? 0);

    const enqueued = total(samples, 'warden_jobs_enqueued_total');
    const completed = total(samples, 'warden_jobs_completed_total');
    const dead = total(samples, 'warden_jobs_dead_total');
    expect({ enqueued, completed, dead, pending }).toEqual({ enqueued: 14, completed: 9, dead: 3, pending: 2 });
    expect(enqueued).toBe(jobs.length);
    expect(completed).toBe(byState.get('completed'));
    expect(dead).toBe(byState.get('dead'));
    expect(completed + dead).toBe(enqueued - pending);
    expect(total(samples, 'warden_jobs_deduplicated_total', { job: 'ok-job', queue: 'default' })).toBe(1);
    expect(deadEvents).toHaveLength(dead);

    // Per job and queue, the counters match the rows.
    for (const [key, count] of countBy(jobs, (j) => `${j.name}|${j.queue}`)) {
      const [job, queue] = key.split('|') as [string, string];
      expect(total(samples, 'warden_jobs_enqueued_total', { job, queue }), `enqueued ${key}`).toBe(count);
    }
    for (const state of ['completed', 'dead'] as const) {
      for (const [key, count] of countBy(jobs.filter((j) => j.state === state), (j) => `${j.name}|${j.queue}`)) {
        const [job, queue] = key.split('|') as [string, string];
        expect(total(samples, `warden_jobs_${state}_total`, { job, queue }), `${state} ${key}`).toBe(count);
      }
    }

    // Every attempt row is in the metrics: failures by outcome, the lost one as a rescue, all but lost in the histogram.
    const failedRows = attempts.filter((a) => a.outcome !== 'completed' && a.outcome !== 'lost');
    for (const [outcome, count] of countBy(failedRows, (a) => a.outcome)) {
      expect(total(samples, 'warden_jobs_failed_total', { outcome }), `failed with ${outcome}`).toBe(count);
    }
    expect(total(samples, 'warden_jobs_failed_total')).toBe(failedRows.length);
    expect(total(samples, 'warden_jobs_rescued_total', { job: 'side-job', queue: 'side' })).toBe(attempts.filter((a) => a.outcome === 'lost').length);
    expect(total(samples, 'warden_jobs_rescued_total')).toBe(1);
    expect(total(samples, 'warden_job_attempt_duration_seconds_count')).toBe(attempts.length - 1);
    expect(total(samples, 'warden_job_attempt_duration_seconds_count', { outcome: 'completed' })).toBe(completed);
    expect(total(samples, 'warden_jobs_dead_total', { job: 'bad-job', reason: 'failed' })).toBe(1);

    // The gauges are the driver's own counts and lag.
    const queues = await warden.driver.queueList();
    expect(queues.length).toBeGreaterThan(0);
    for (const q of queues) {
      for (const state of JOB_STATES) {
        expect(total(samples, 'warden_queue_depth', { queue: q.queue, state }), `${q.queue} ${state}`).toBe(q.counts[state]);
      }
      expect(total(samples, 'warden_queue_lag_seconds', { queue: q.queue })).toBe(q.lagMs / 1000);
      expect(total(samples, 'warden_queue_paused', { queue: q.queue })).toBe(q.paused ? 1 : 0);
    }
    expect(total(samples, 'warden_metrics_collect_errors_total')).toBe(0);
  });

  it('never puts a job id in a label, and its text output passes promtool check metrics', async () => {
    await mixedRun();
    await warden.queues.pause('reports');
    const jobs = await allJobs(warden.driver);
    const ids = new Set(jobs.map((j) => j.id));
    const samples = await scrape(metrics.registry);
    expect(samples.length).toBeGreaterThan(50);
    // `le` holds histogram bucket bounds ("1", "5"), which may coincide with small integer ids without being one.
    const offending = samples.flatMap((s) => Object.entries(s.labels).filter(([k, v]) => k !== 'le' && ids.has(String(v))).map(([k, v]) => `${s.name}{${k}="${v}"}`));
    expect(offending).toEqual([]);
    const labelNames = new Set(samples.flatMap((s) => Object.keys(s.labels)));
    expect([...labelNames].sort()).toEqual(['job', 'le', 'outcome', 'queue', 'reason', 'state']);

    const text = await metrics.registry.metrics();
    expect(text).toContain('warden_jobs_completed_total{job="ok-job",queue="default"} 5');
    expect(text).toContain('warden_queue_paused{queue="reports"} 1');
    expect(promtoolCheck(text)).toEqual({ status: 0, output: '' });
  });

  it('serves counters without the database gauges when the database is unreachable', async () => {
    const driver = tdb.newDriver();
    const events = new TypedEmitter();
    const errors = [] as unknown[];
    events.on('error', (e) => errors.push(e.context));
    const own = attachMetrics({ events, driver, cache: 0 });
    await warden.enqueue(okJob, {});
    events.emit('job:completed', { job: { id: '1', name: 'ok-job', queue: 'default' }, attempt: 1, durationMs: 5 });
    expect(total(await scrape(own.registry), 'warden_queue_depth', { queue: 'default', state: 'queued' })).toBe(1);

    await driver.close();
    const samples = await scrape(own.registry);
    expect(matching(samples, 'warden_queue_depth')).toEqual([]);
    expect(matching(samples, 'warden_queue_lag_seconds')).toEqual([]);
    expect(total(samples, 'warden_jobs_completed_total', { job: 'ok-job' })).toBe(1);
    expect(total(samples, 'warden_metrics_collect_errors_total')).toBe(1);
    expect(errors).toEqual(['reading the database for metrics']);
    own.detach();
  });

  it('registers in a supplied registry, with a prefix, and detaches cleanly', async () => {
    const registry = new Registry();
    const first = attachMetrics({ events: warden.events, driver: warden.driver, registry });
    expect(first.registry).toBe(registry);
    expect(() => attachMetrics({ events: warden.events, driver: warden.driver, registry })).toThrow(InvalidOptionError);
    const other = attachMetrics({ events: warden.events, driver: warden.driver, registry, prefix: 'other_' });
    await warden.enqueue(okJob, {});
    expect(total(await scrape(registry), 'warden_jobs_enqueued_total')).toBe(1);
    expect(total(await scrape(registry), 'other_jobs_enqueued_total')).toBe(1);

    first.detach();
    first.detach();
    expect(registry.getSingleMetric('warden_jobs_enqueued_total')).toBeUndefined();
    await warden.enqueue(okJob, {});
    expect(total(await scrape(registry), 'other_jobs_enqueued_total')).toBe(2);
    // Detached, the names are free again.
    attachMetrics({ events: warden.events, driver: warden.driver, registry }).detach();
    other.detach();
    expect(registry.getMetricsAsArray()).toEqual([]);
  });

  it('reads the counts of jobs not yet ended at every read, the finished counts once per finishedCache', async () => {
    // A queue whose only job has ended: listed by the full read only.
    await warden.enqueue(sideJob, {});
    await warden.drain();
    for (let i = 0; i < 3; i++) await warden.enqueue(okJob, { i });
    const depth = (samples: Awaited<ReturnType<typeof scrape>>, state: string, queue = 'default') => total(samples, 'warden_queue_depth', { queue, state });
    let samples = await scrape(metrics.registry);
    expect([depth(samples, 'queued'), depth(samples, 'completed'), depth(samples, 'completed', 'side')]).toEqual([3, 0, 1]);
    await warden.drain();
    await warden.enqueue(okJob, { i: 3 });
    // The first read counted every job; within the default minute only the jobs not yet ended are read again, and
    // the finished counts of the first read are kept (the side queue's too, though it has no job left to run).
    samples = await scrape(metrics.registry);
    expect([depth(samples, 'queued'), depth(samples, 'completed'), depth(samples, 'completed', 'side'), depth(samples, 'queued', 'side')]).toEqual([1, 0, 1, 0]);
    expect(total(samples, 'warden_queue_lag_seconds', { queue: 'default' })).toBe(0);
    // With finishedCache 0 every read counts finished jobs too.
    const fresh = attachMetrics({ events: warden.events, driver: warden.driver, registry: new Registry(), cache: 0, finishedCache: '0s', clock });
    try {
      samples = await scrape(fresh.registry);
      expect([depth(samples, 'queued'), depth(samples, 'completed'), depth(samples, 'completed', 'side')]).toEqual([1, 3, 1]);
      await warden.drain();
      samples = await scrape(fresh.registry);
      expect([depth(samples, 'queued'), depth(samples, 'completed')]).toEqual([0, 4]);
    } finally {
      fresh.detach();
    }
  });

  it('rejects bad options with InvalidOptionError', () => {
    const base = { events: warden.events, driver: warden.driver };
    expect(() => attachMetrics({ ...base, prefix: 'bad-prefix' })).toThrow(InvalidOptionError);
    expect(() => attachMetrics({ ...base, durationBuckets: [1, 0.5] })).toThrow(InvalidOptionError);
    expect(() => attachMetrics({ ...base, durationBuckets: [] })).toThrow(InvalidOptionError);
    expect(() => attachMetrics({ ...base, registry: {} as Registry })).toThrow(InvalidOptionError);
    expect(() => attachMetrics({ ...base, driver: undefined as never })).toThrow(InvalidOptionError);
    expect(() => attachMetrics({ ...base, lockLabel: 'x' as never })).toThrow(InvalidOptionError);
    expect(() => attachMetrics({ ...base, finishedCache: 'soon' as never })).toThrow(InvalidDurationError);
  });
});
