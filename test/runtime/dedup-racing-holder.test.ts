/**
 * Scenario 13 against a holder that is not just queued (test/process/dedup-producers.test.ts covers that): the key's
 * holder is RUNNING, then COMPLETING, while waves of concurrent enqueues of the same key from several producers (each
 * with its own connections) race it. What docs/idempotency.md and docs/guarantees.md ("Dedup keys and windows")
 * promise, asserted for every caller:
 * - with a `window`, the default states include `completed`: while the holder runs, as it completes and after it
 *   completed within the window, every enqueue returns the holder (`duplicate: true`, `replaced: false`), and the
 *   database holds exactly one job with the key, run once. Past the window (database time) the holder no longer
 *   counts: racing producers then make exactly one new job, and all of them get its id.
 * - without a window, the key is free once the holder is `completed`: every enqueue gets either the holder (before
 *   its completion committed) or one single new job; once any caller got the new job, no later one gets the holder.
 * @module
 */
import { afterEach, describe, expect, it } from 'vitest';
import { FakeClock } from '../../src/clock/fake-clock.js';
import type { Warden } from '../../src/client/warden.js';
import type { EnqueueResult } from '../../src/client/warden-options.js';
import { defineJob, type JobDefinition } from '../../src/job/define-job.js';
import type { UniqueOptions } from '../../src/job/unique-options.js';
import { type Oracle, openOracle } from '../process/db-oracle.js';
import { Cleanup } from '../support/cleanup.js';
import { createTestDatabase, DRIVER_KINDS } from '../support/test-databases.js';
import { deferred, makeWarden, within } from './helpers.js';

const KEY = 'invoice:2024-05/ünïcode';
const PRODUCERS = 4;
/** Concurrent enqueues per wave, spread over the producers. */
const WAVE = 24;
const WINDOW_MS = 60 * 60_000;

describe.each(DRIVER_KINDS)('enqueues racing a running, then completing key holder (%s)', (kind) => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  /** A test database, a worker (started later) whose first `keyed` job blocks until `gate` is resolved, and producers. */
  async function setUp() {
    const tdb = cleanup.add(await createTestDatabase(kind), (t) => t.cleanup());
    const oracle = cleanup.add(await openOracle(tdb), (o) => o.close());
    const started = deferred<string>();
    const gate = deferred();
    let runs = 0;
    const keyed = defineJob({
      name: 'keyed',
      handler: async (_payload, ctx) => {
        runs++;
        if (!started.settled) {
          started.resolve(ctx.job.id);
          await gate.promise;
        } else {
          // Jobs after the holder stay running until the test ends: they hold the key meanwhile.
          await cleanup.add(deferred(), (d) => d.resolve()).promise;
        }
      },
    });
    const worker = cleanup.add(makeWarden(tdb, { jobs: [keyed], retention: false, worker: { concurrency: 2, pollInterval: '50ms' } }), (w) => w.close());
    const producers = Array.from({ length: PRODUCERS }, () => cleanup.add(makeWarden(tdb, { jobs: [keyed], retention: false }), (w) => w.close()));
    // Opened before the worker is closed, should the test end early.
    cleanup.add(gate, (g) => g.resolve());
    return { tdb, oracle, keyed, worker, producers, started, gate, runs: () => runs };
  }

  /** One wave: {@link WAVE} enqueues of `KEY` at once, round-robin over `producers`. */
  function wave(producers: Warden[], job: JobDefinition<any, any>, unique: UniqueOptions): Promise<EnqueueResult[]> {
    return Promise.all(Array.from({ length: WAVE }, (_, i) => producers[i % producers.length]!.enqueue(job, { i }, { unique })));
  }

  /** Waves back to back until `done()` holds, then one more; the results of each wave, in order. */
  async function wavesUntil(done: () => boolean, producers: Warden[], job: JobDefinition<any, any>, unique: UniqueOptions): Promise<EnqueueResult[][]> {
    const waves: EnqueueResult[][] = [];
    const run = async () => {
      while (!done()) waves.push(await wave(producers, job, unique));
      waves.push(await wave(producers, job, unique));
    };
    await within(run(), 'waves of enqueues until the holder completed');
    return waves;
  }

  async function keyRows(oracle: Oracle): Promise<{ jobs: { id: string; state: string }[]; holder: string[] }> {
    const jobs = await oracle.all<{ id: unknown; state: string }>('SELECT id, state FROM {jobs} WHERE key = $1 ORDER BY id', [KEY]);
    const keys = await oracle.all<{ job_id: unknown }>('SELECT job_id FROM {job_keys} WHERE key = $1', [KEY]);
    return { jobs: jobs.map((j) => ({ id: String(j.id), state: j.state })), holder: keys.map((k) => String(k.job_id)) };
  }

  const summary = (results: EnqueueResult[]) => results.map((r) => ({ id: r.id, duplicate: r.duplicate, replaced: r.replaced, job: r.job.id }));

  it(`with a window: ${WAVE}-enqueue waves while the holder runs, completes and is completed all get the holder; past the window exactly one new job`, async () => {
    const { tdb, oracle, keyed, worker, producers, started, gate, runs } = await setUp();
    const unique: UniqueOptions = { key: KEY, window: '1h' };
    const duplicateEvents: boolean[] = [];
    for (const p of producers) p.on('job:enqueued', (e) => duplicateEvents.push(e.duplicate));

    const holder = await producers[0]!.enqueue(keyed, { first: true }, { unique });
    expect(holder.duplicate).toBe(false);
    await worker.start();
    expect(await within(started.promise, 'the holder to start running')).toBe(holder.id);
    expect((await tdb.driver.jobGet({ id: holder.id }))?.state).toBe('running');

    const asHolder = { id: holder.id, duplicate: true, replaced: false, job: holder.id };
    // Running.
    const whileRunning = await wave(producers, keyed, unique);
    expect(summary(whileRunning)).toEqual(whileRunning.map(() => asHolder));
    expect(whileRunning.every((r) => r.job.state === 'running')).toBe(true);

    // Completing: the gate opens and waves race the completion until the worker reports it, and one more after.
    let completed = false;
    worker.on('job:completed', (e) => {
      if (e.job.id === holder.id) completed = true;
    });
    gate.resolve();
    const racing = (await wavesUntil(() => completed, producers, keyed, unique)).flat();
    expect(summary(racing)).toEqual(racing.map(() => asHolder));
    expect(new Set(racing.map((r) => r.job.state))).toContain('completed');

    // Completed, within the window: still the holder.
    const afterCompletion = await wave(producers, keyed, unique);
    expect(summary(afterCompletion)).toEqual(afterCompletion.map(() => asHolder));
    expect(afterCompletion.every((r) => r.job.state === 'completed')).toBe(true);

    // Exactly one job with the key, holding it, run once; every enqueue but the first reported as a duplicate.
    expect(await keyRows(oracle)).toEqual({ jobs: [{ id: holder.id, state: 'completed' }], holder: [holder.id] });
    expect(runs()).toBe(1);
    expect((await tdb.driver.jobAttemptList({ id: holder.id })).map((a) => a.outcome)).toEqual(['completed']);
    const enqueues = 1 + whileRunning.length + racing.length + afterCompletion.length;
    expect(duplicateEvents).toEqual([false, ...Array.from({ length: enqueues - 1 }, () => true)]);
    console.info(`[dedup ${kind}] ${racing.length / WAVE} waves raced the completion`);

    // Past the window, by the database's time (producers whose clock, passed to SQL, is an hour and a minute on):
    // the holder no longer counts. Racing producers make exactly one new job, and all get its id.
    const later = (await tdb.driver.dbNow()).getTime() + WINDOW_MS + 60_000;
    const future = Array.from({ length: PRODUCERS }, () => cleanup.add(makeWarden(tdb, { jobs: [keyed], retention: false, clock: new FakeClock(later) }), (w) => w.close()));
    const pastWindow = await wave(future, keyed, unique);
    const fresh = pastWindow.filter((r) => !r.duplicate);
    expect(fresh).toHaveLength(1);
    const newId = fresh[0]!.id;
    expect(newId).not.toBe(holder.id);
    expect(pastWindow.map((r) => r.id)).toEqual(pastWindow.map(() => newId));
    expect(pastWindow.every((r) => !r.replaced)).toBe(true);
    expect(await keyRows(oracle)).toEqual({ jobs: [{ id: holder.id, state: 'completed' }, { id: newId, state: 'queued' }], holder: [newId] });
  });

  it(`without a window: ${WAVE}-enqueue waves racing the holder's completion get the holder or exactly one new job, never the holder after it`, async () => {
    const { oracle, keyed, worker, producers, started, gate } = await setUp();
    const unique: UniqueOptions = { key: KEY };

    const holder = await producers[0]!.enqueue(keyed, { first: true }, { unique });
    await worker.start();
    expect(await within(started.promise, 'the holder to start running')).toBe(holder.id);

    const whileRunning = await wave(producers, keyed, unique);
    expect(summary(whileRunning)).toEqual(whileRunning.map(() => ({ id: holder.id, duplicate: true, replaced: false, job: holder.id })));

    let completed = false;
    worker.on('job:completed', (e) => {
      if (e.job.id === holder.id) completed = true;
    });
    gate.resolve();
    const waves = await wavesUntil(() => completed, producers, keyed, unique);
    // And one wave once the completion is surely committed (the holder is read completed).
    const { jobs: afterJobs } = await keyRows(oracle);
    expect(afterJobs.find((j) => j.id === holder.id)?.state).toBe('completed');
    waves.push(await wave(producers, keyed, unique));

    const all = waves.flat();
    const inserted = all.filter((r) => !r.duplicate);
    // The key was freed once: exactly one enqueue made a new job, and nothing was replaced.
    expect(inserted).toHaveLength(1);
    const newId = inserted[0]!.id;
    expect(newId).not.toBe(holder.id);
    expect(all.every((r) => !r.replaced && r.job.id === r.id)).toBe(true);
    expect(new Set(all.map((r) => r.id))).toEqual(new Set([holder.id, newId]));
    // Every duplicate of the holder saw it before its completion committed (running); those of the new job saw it waiting or running.
    expect(new Set(all.filter((r) => r.id === holder.id).map((r) => r.job.state))).toEqual(new Set(['running']));
    // Waves run one after another: once a wave returned the new job, no later wave returned the holder.
    const firstNew = waves.findIndex((w) => w.some((r) => r.id === newId));
    expect(firstNew).toBeGreaterThanOrEqual(0);
    expect(waves.slice(firstNew + 1).flat().filter((r) => r.id === holder.id)).toEqual([]);
    expect(waves.at(-1)!.map((r) => r.id)).toEqual(waves.at(-1)!.map(() => newId));

    const rows = await keyRows(oracle);
    expect(rows.jobs.map((j) => j.id)).toEqual([holder.id, newId]);
    expect(rows.jobs[0]!.state).toBe('completed');
    expect(['queued', 'running']).toContain(rows.jobs[1]!.state);
    expect(rows.holder).toEqual([newId]);
  });
});
