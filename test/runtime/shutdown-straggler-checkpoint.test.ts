/**
 * Scenario 22, the parts test/process/graceful-shutdown.test.ts does not assert:
 * - a straggler that saved checkpoints (`ctx.iterate`, one per item) and then ignores its signal inside a batch is
 *   aborted at the grace deadline, not before, and returned for retry with its checkpoint kept: the job is `queued`,
 *   its attempt counted as `aborted`, its cursor and progress as last saved; the next attempt resumes from that
 *   cursor (the items before it are never run again);
 * - readiness (`/readyz` of a health server on `warden.readiness.check`) says not ready once `stop()` has begun,
 *   before the first in-flight job finishes (an order, not a figure), while the in-flight jobs still finish.
 * @module
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ShutdownAbortError } from '../../src/errors.js';
import { defineJob } from '../../src/job/define-job.js';
import { startHealthServer } from '../../src/observe/health-server.js';
import type { ReadinessResult } from '../../src/observe/readiness-check.js';
import { Cleanup } from '../support/cleanup.js';
import { createTestDatabase, DRIVER_KINDS } from '../support/test-databases.js';
import { deferred, makeWarden, within } from './helpers.js';

const GRACE_MS = 1_500;
/** How long the quick jobs go on working after shutdown begins: well inside the grace period. */
const QUICK_MS = 400;
const QUICK = 3;
/** The straggler iterates over items 0..ITEMS-1, one per page, and hangs in the batch of item HANG_AT on attempt 1. */
const ITEMS = 8;
const HANG_AT = 3;

describe.each(DRIVER_KINDS)('graceful shutdown with a checkpointed straggler (%s)', (kind) => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('aborts the straggler at the grace deadline and keeps its checkpoint for the next attempt; not ready before the first in-flight job ends', async () => {
    const tdb = cleanup.add(await createTestDatabase(kind), (t) => t.cleanup());

    /** What happened, in order: readiness answers, job endings, the straggler's abort. */
    const timeline: string[] = [];
    /** Resolved as the test calls `stop()`: the quick jobs then finish on their own, not on a Warden event. */
    const stopCalled = deferred();
    const quickStarted: string[] = [];
    const quick = defineJob({
      name: 'quick',
      handler: async (_payload, ctx) => {
        quickStarted.push(ctx.job.id);
        await stopCalled.promise;
        // Work that honours the signal, and ends well inside the grace period.
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(resolve, QUICK_MS);
          ctx.signal.addEventListener('abort', () => (clearTimeout(timer), reject(ctx.signal.reason)), { once: true });
        });
      },
    });

    const sourceCalls: [attempt: number, cursor: number | null][] = [];
    const processed: [attempt: number, item: number][] = [];
    const hanging = deferred();
    let abortedAt: number | null = null;
    let abortReason: unknown = null;
    const straggler = defineJob({
      name: 'straggler',
      handler: async (_payload, ctx) => {
        await ctx.iterate<number, number>({
          source: (cursor) => {
            sourceCalls.push([ctx.attempt, cursor]);
            const at = cursor ?? 0;
            return { items: [at], next: at + 1 < ITEMS ? at + 1 : null, total: ITEMS };
          },
          batch: async ([item], { signal }) => {
            processed.push([ctx.attempt, item!]);
            if (ctx.attempt === 1 && item === HANG_AT) {
              signal.addEventListener('abort', () => {
                abortedAt = performance.now();
                abortReason = signal.reason;
                timeline.push('straggler aborted');
              }, { once: true });
              hanging.resolve();
              // Ignores its signal: hangs on, long past the grace period.
              await new Promise<never>(() => {});
            }
          },
          checkpointEvery: { items: 1 },
        });
      },
    });

    const w = cleanup.add(makeWarden(tdb, {
      jobs: [quick, straggler], retention: false,
      worker: { concurrency: 8, grace: GRACE_MS, lease: '5s', heartbeat: '500ms', pollInterval: '50ms' },
    }), (w) => w.close());
    const health = cleanup.add(await startHealthServer({ port: 0, host: '127.0.0.1', ready: w.readiness.check }), (h) => h.stop());
    const readyz = async (): Promise<{ status: number; body: ReadinessResult }> => {
      const res = await fetch(`http://127.0.0.1:${health.port}/readyz`);
      return { status: res.status, body: (await res.json()) as ReadinessResult };
    };
    const checkpointed: number[] = [];
    w.on('job:checkpointed', (e) => checkpointed.push(e.done));
    w.on('job:completed', (e) => timeline.push(`completed ${e.job.name}`));

    const { id: stragglerId } = await w.enqueue(straggler, {});
    const quickIds = (await w.enqueueMany(Array.from({ length: QUICK }, (_, i) => ({ job: quick, payload: { i } })))).map((r) => r.id);
    await w.start();
    await within(hanging.promise, 'the straggler to reach the batch it hangs in');
    const everyQuickStarted = async () => {
      while (quickStarted.length < QUICK) await new Promise((resolve) => setImmediate(resolve));
    };
    await within(everyQuickStarted(), `all ${QUICK} quick jobs to start`);
    // Checkpoints after items 0..HANG_AT-1, one per item.
    expect(checkpointed).toEqual(Array.from({ length: HANG_AT }, (_, i) => i + 1));
    expect((await readyz()).status).toBe(200);

    // Shutdown begins; readiness is probed at once and again until it says not ready.
    const stopBegan = performance.now();
    stopCalled.resolve();
    const stopping = w.stop();
    const notReady = (async () => {
      for (;;) {
        const answer = await readyz();
        if (answer.status !== 200) {
          timeline.push('not ready');
          return answer;
        }
      }
    })();
    const firstNotReady = await within(notReady, '/readyz to answer not ready after stop() began');
    await within(stopping, 'stop() to return after the grace period');
    const stopReturned = performance.now();

    // Not ready, for the worker draining, before any in-flight job finished; and the quick jobs did finish.
    expect(timeline.indexOf('not ready')).toBe(0);
    expect(timeline.slice(1, 1 + QUICK)).toEqual(Array.from({ length: QUICK }, () => 'completed quick'));
    expect(timeline[1 + QUICK]).toBe('straggler aborted');
    expect(firstNotReady).toEqual({ status: 503, body: expect.objectContaining({ ready: false, worker: 'draining' }) });
    expect((await readyz()).body).toMatchObject({ ready: false, worker: 'stopped' });
    for (const id of quickIds) expect(await tdb.driver.jobGet({ id })).toMatchObject({ state: 'completed', attempt: 1 });

    // The straggler was aborted at the grace deadline (not before it), with the shutdown's error.
    expect(abortReason).toBeInstanceOf(ShutdownAbortError);
    expect(abortedAt! - stopBegan).toBeGreaterThanOrEqual(GRACE_MS - 50);
    expect(abortedAt!).toBeLessThanOrEqual(stopReturned);

    // Returned for retry with its attempt counted and its checkpoint kept: the cursor of the page it hung in.
    const returned = await tdb.driver.jobGet({ id: stragglerId });
    expect(returned).toMatchObject({
      state: 'queued', attempt: 1, leaseWorker: null, checkpoint: { cursor: HANG_AT, finished: false }, progress: { done: HANG_AT, total: ITEMS },
    });
    expect(returned!.lastError).toMatchObject({ name: 'ShutdownAbortError' });
    expect((await tdb.driver.jobAttemptList({ id: stragglerId })).map((a) => [a.attempt, a.outcome, a.error?.name])).toEqual([[1, 'aborted', 'ShutdownAbortError']]);

    // The next attempt (a new worker) resumes from the checkpoint: its first page is the one the straggler hung in.
    const done = deferred();
    w.on('job:completed', (e) => {
      if (e.job.id === stragglerId) done.resolve();
    });
    await w.start();
    await within(done.promise, 'the straggler to complete on its next attempt');
    expect(sourceCalls.filter(([attempt]) => attempt === 2)[0]).toEqual([2, HANG_AT]);
    const second = processed.filter(([attempt]) => attempt === 2).map(([, item]) => item);
    expect(second).toEqual(Array.from({ length: ITEMS - HANG_AT }, (_, i) => HANG_AT + i));
    // Items before the checkpoint ran once; only the page in flight at the abort ran twice.
    const runs = new Map<number, number>();
    for (const [, item] of processed) runs.set(item, (runs.get(item) ?? 0) + 1);
    expect([...runs.entries()].sort((a, b) => a[0] - b[0])).toEqual(Array.from({ length: ITEMS }, (_, i) => [i, i === HANG_AT ? 2 : 1]));
    expect(await tdb.driver.jobGet({ id: stragglerId })).toMatchObject({ state: 'completed', attempt: 2, checkpoint: { finished: true }, progress: { done: ITEMS, total: ITEMS } });
    expect((await tdb.driver.jobAttemptList({ id: stragglerId })).map((a) => [a.attempt, a.outcome])).toEqual([[1, 'aborted'], [2, 'completed']]);
    // Ready again with the new worker running.
    expect((await readyz()).status).toBe(200);
    console.info(`[shutdown ${kind}] not ready first; straggler aborted ${Math.round(abortedAt! - stopBegan)} ms after stop() began (grace ${GRACE_MS} ms)`);
  });
});
