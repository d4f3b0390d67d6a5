/**
 * Claimed jobs that wait before they start (the prefetch buffer, a job held to run alone) are `running` in the
 * database, so an operator's cancel or pause does not take them from the worker. Before starting one whose lease and
 * queue were confirmed more than `RECHECK_MS` ago (by its claim, or the last look-up), the worker looks up every
 * unstarted job in one `jobLeaseCheck`: a cancelled job is dropped and never starts, a paused queue's jobs are handed
 * back unused and start once it is resumed, and a failed look-up starts nothing it did not confirm and is tried again
 * after a back-off. A fast drain, whose jobs wait a few milliseconds, sends no look-up. Fake clock, except the drain.
 * @module
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createWarden, type Warden } from '../../src/client/warden.js';
import type { Driver } from '../../src/driver/driver.js';
import { defineJob } from '../../src/job/define-job.js';
import type { JobRow } from '../../src/job/job-record.js';
import { RECHECK_MS } from '../../src/runtime/worker.js';
import type { WorkerOptions } from '../../src/runtime/worker-options.js';
import { overrideDriver } from '../support/override-driver.js';
import { createTestDatabase, DRIVER_KINDS, type TestDatabase } from '../support/test-databases.js';
import { deferred, type Deferred, record, silent, T0, TestClock, waitFor, within } from './helpers.js';

/** One handler running, two jobs in the buffer; no poll, heartbeat or rescue gets between the steps. */
const WORKER: WorkerOptions = { concurrency: 1, prefetch: 2, lease: '60s', heartbeat: '20s', pollInterval: '1h', rescueInterval: '1h' };

describe.each(DRIVER_KINDS)('claimed jobs looked up before they start (%s)', (kind) => {
  let tdb: TestDatabase;
  let clock: TestClock;
  let warden: Warden;
  let started: string[];
  let gates: Map<string, Deferred>;
  /** Look-ups sent, and how each is answered: `fail` makes the next ones throw. */
  let checks: number;
  let fail: number;

  /** Set when the test is over: handlers that start from then on (during shutdown) return at once. */
  let released: boolean;
  const gate = (tag: string): Deferred => {
    if (!gates.has(tag)) gates.set(tag, deferred());
    if (released) gates.get(tag)!.resolve();
    return gates.get(tag)!;
  };
  const task = defineJob<{ tag: string }>({
    name: 'task',
    retry: { maxAttempts: 3 },
    handler: async ({ tag }) => {
      started.push(tag);
      await gate(tag).promise;
    },
  });

  beforeEach(async () => {
    started = [];
    gates = new Map();
    released = false;
    checks = 0;
    fail = 0;
    tdb = await createTestDatabase(kind);
    clock = new TestClock(T0);
    const driver: Driver = overrideDriver(tdb.newDriver(), {
      jobLeaseCheck: (real) => async (params) => {
        checks++;
        if (fail > 0) {
          fail--;
          throw new Error('database unreachable');
        }
        return real(params);
      },
    });
    warden = createWarden({ database: driver, logger: silent, jobs: [task], clock, retention: false, worker: { maxLost: 2 } });
    await warden.migrate();
  });

  afterEach(async () => {
    released = true;
    for (const g of gates.values()) g.resolve();
    await warden.close();
    await tdb.cleanup();
  });

  async function get(id: string): Promise<JobRow> {
    return (await warden.jobs.get(id))!;
  }

  /** Enqueues `tags` (each handler waits for its gate) and starts the worker: the first runs, the next two wait. */
  async function bufferTwo(tags = ['a', 'b', 'c']): Promise<string[]> {
    const ids = (await warden.enqueueMany(tags.map((tag) => ({ job: task, payload: { tag } })))).map((r) => r.id);
    await warden.start(WORKER);
    await within(waitFor(async () => {
      const states = await Promise.all(ids.map(async (id) => (await get(id)).state));
      return started.length === 1 && states.every((s) => s === 'running');
    }), 'the first job running and the other two buffered');
    expect(started).toEqual([tags[0]]);
    return ids;
  }

  it('a buffered job cancelled more than RECHECK_MS before a slot frees never starts; one look-up, the rest start', async () => {
    const ids = await bufferTwo();
    const rejected = record(warden, 'job:stale-write-rejected');
    expect((await warden.jobs.cancel(ids[1]!)).state).toBe('cancelled');
    await clock.advance(RECHECK_MS + 1);
    gate('a').resolve();
    await within(waitFor(async () => (await get(ids[2]!)).state === 'running' && started.length === 2), 'c to start');
    expect(started).toEqual(['a', 'c']);
    expect(checks).toBe(1);
    expect(rejected).toEqual([{ jobId: ids[1], leaseToken: 1, write: 'heartbeat' }]);
    expect(warden.workerCounters!.staleWritesRejected).toBe(1);
    expect(await get(ids[1]!)).toMatchObject({ state: 'cancelled' });
  });

  it('the jobs of a queue paused while they wait are handed back unused, and start once it is resumed', async () => {
    const ids = await bufferTwo();
    await warden.queues.pause('default');
    await clock.advance(RECHECK_MS + 1);
    gate('a').resolve();
    await within(waitFor(async () => {
      const rows = await Promise.all(ids.slice(1).map(get));
      return rows.every((r) => r.state === 'queued');
    }), 'b and c to be handed back');
    expect(started).toEqual(['a']);
    for (const id of ids.slice(1)) {
      expect(await get(id)).toMatchObject({ state: 'queued', attempt: 0 });
      expect(await warden.jobs.attempts(id)).toEqual([]);
    }
    expect(checks).toBe(1);
    expect(warden.workerCounters!.staleWritesRejected).toBe(0);

    await warden.queues.resume('default');
    // The worker's next poll claims them.
    await clock.advance(3_600_000);
    await within(waitFor(() => started.length === 2), 'b to start after the resume');
    expect(started).toEqual(['a', 'b']);
  });

  it('a failed look-up starts nothing it did not confirm, and is tried again after a back-off', async () => {
    const ids = await bufferTwo();
    const errors = record(warden, 'error');
    await warden.jobs.cancel(ids[1]!);
    await clock.advance(RECHECK_MS + 1);
    fail = 1;
    gate('a').resolve();
    await within(waitFor(() => errors.length === 1 && checks === 1), 'the look-up to fail');
    expect(errors[0]!.context).toBe('looking up claimed jobs before starting them');
    // Not before the back-off (200 ms), and then once.
    await clock.advance(199);
    expect([checks, started]).toEqual([1, ['a']]);
    await clock.advance(1);
    await within(waitFor(() => started.length === 2), 'c to start after the second look-up');
    expect([checks, started]).toEqual([2, ['a', 'c']]);
    expect(await get(ids[1]!)).toMatchObject({ state: 'cancelled' });
  });

  /**
   * Enqueues a job `lost` that a worker that died claimed (lost once: with maxLost 2 it runs alone), then `a`, which
   * is claimed with it and runs first while `lost` is held.
   */
  async function lostAndA(): Promise<{ lost: string; a: string }> {
    const { id: lost } = await warden.enqueue(task, { tag: 'lost' });
    const claimed = await tdb.driver.jobClaim({ queues: ['default'], limit: 1, workerId: 'dead-worker', leaseMs: 1_000, now: clock.sqlNow() });
    expect(claimed.map((r) => r.id)).toEqual([lost]);
    await clock.advance(1_001);
    await warden.rescue();
    const { id: a } = await warden.enqueue(task, { tag: 'a' });
    return { lost, a };
  }

  it('a job held to run alone that was cancelled while it waited for the others never starts', async () => {
    const { lost, a } = await lostAndA();
    await warden.start({ ...WORKER, concurrency: 2, prefetch: 0 });
    await within(waitFor(async () => started.length === 1 && (await get(lost)).state === 'running'), 'a to run and the lost job to be held');
    expect(started).toEqual(['a']);
    await warden.jobs.cancel(lost);
    await clock.advance(RECHECK_MS + 1);
    gate('a').resolve();
    await within(waitFor(() => warden.workerCounters!.staleWritesRejected === 1), 'the look-up to find the held job cancelled');
    expect(await get(a)).toMatchObject({ state: 'completed' });
    expect([checks, started, warden.workerCounters!.ranAlone]).toEqual([1, ['a'], 0]);
  });

  it('a job held to run alone whose queue was paused while it waited is handed back unused', async () => {
    const { lost } = await lostAndA();
    await warden.start({ ...WORKER, concurrency: 2, prefetch: 0 });
    await within(waitFor(async () => started.length === 1 && (await get(lost)).state === 'running'), 'a to run and the lost job to be held');
    await warden.queues.pause('default');
    await clock.advance(RECHECK_MS + 1);
    gate('a').resolve();
    await within(waitFor(async () => (await get(lost)).state === 'retrying' || (await get(lost)).state === 'queued'), 'the held job to be handed back');
    expect(started).toEqual(['a']);
    // Handed back: the claim's attempt taken back, its loss kept.
    expect(await get(lost)).toMatchObject({ state: 'queued', attempt: 1, lostCount: 1 });
    expect(warden.workerCounters!.ranAlone).toBe(0);
  });

  it('drain() looks up a held job once the rest of its claim has run: cancelled meanwhile, it is not run', async () => {
    const { lost } = await lostAndA();
    const draining = warden.drain({ concurrency: 2 });
    await within(waitFor(async () => started.length === 1 && (await get(lost)).state === 'running'), 'a to run and the lost job to be held');
    await warden.jobs.cancel(lost);
    await clock.advance(RECHECK_MS + 1);
    gate('a').resolve();
    expect(await within(draining, 'the drain')).toEqual({ attempts: 1 });
    expect([checks, started]).toEqual([1, ['a']]);
  });
});

describe.each(DRIVER_KINDS)('a fast drain looks nothing up (%s)', (kind) => {
  let tdb: TestDatabase;
  let warden: Warden;

  beforeEach(async () => {
    tdb = await createTestDatabase(kind);
  });
  afterEach(async () => {
    await warden.close();
    await tdb.cleanup();
  });

  it('runs 3,000 jobs with prefetch 500 and sends no jobLeaseCheck', async () => {
    let checks = 0;
    const driver = overrideDriver(tdb.newDriver(), {
      jobLeaseCheck: (real) => (params) => {
        checks++;
        return real(params);
      },
    });
    const noop = defineJob({ name: 'noop', handler: () => undefined });
    warden = createWarden({ database: driver, logger: silent, jobs: [noop], retention: false });
    await warden.migrate();
    for (let i = 0; i < 3; i++) await warden.enqueueMany(Array.from({ length: 1_000 }, () => ({ job: noop, payload: {} })));
    await warden.start({ concurrency: 10, prefetch: 500, pollInterval: '50ms' });
    await within(waitFor(async () => (await warden.stats()).totals.completed === 3_000), 'every job to complete');
    expect(checks).toBe(0);
  });
});
