/**
 * A graceful shutdown hands over an iteration running inside a `{ transaction: true }` step at the next batch
 * boundary (the transaction rolls back; the attempt is `yielded`, not counted, and the job queued again), unlike
 * `maxRuntime`, which does not hand over there. Running on instead, the iteration was aborted at the end of the grace
 * period and counted: with maxAttempts 1 a deploy dead-lettered a healthy job.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Warden } from '../../src/client/warden.js';
import { defineJob, type JobContext } from '../../src/job/define-job.js';
import { deferred, makeWarden, T0, TestClock, within } from '../runtime/helpers.js';
import { createTestDatabase, DRIVER_KINDS, type TestDatabase } from '../support/test-databases.js';
import { attemptSummary, getJob } from './helpers.js';
import { numbers } from './iterate-pages.js';

describe.each(DRIVER_KINDS)('shutdown during an iteration inside a transactional step (%s)', (kind) => {
  let tdb: TestDatabase;
  let w: Warden | undefined;
  beforeEach(async () => {
    tdb = await createTestDatabase(kind);
  });
  afterEach(async () => {
    await w?.close();
    await tdb?.cleanup();
  });

  it('a graceful stop whose grace ends mid-iteration leaves the job queued (yielded, not counted), not dead', async () => {
    const clock = new TestClock(T0);
    const paused = deferred();
    const resume = deferred();
    const job = defineJob({
      name: 'iter-in-step',
      retry: { maxAttempts: 1 },
      timeout: '1h',
      handler: async (_p, ctx: JobContext) => {
        await ctx.step(
          'walk',
          () =>
            ctx.iterate({
              source: numbers(100, 10),
              batch: async (items, { signal }) => {
                if (ctx.attempt === 1 && items[0] === 41) {
                  paused.resolve();
                  await resume.promise;
                }
                if (ctx.attempt === 1 && items[0]! > 41) {
                  // Slow batches: the rest of the walk takes longer than the grace period (honours the abort).
                  await new Promise<void>((_, reject) => signal.addEventListener('abort', () => reject(signal.reason), { once: true }));
                }
              },
            }),
          { transaction: true },
        );
      },
    });
    w = makeWarden(tdb, { jobs: [job], clock, worker: { grace: '10s' } });
    const { id } = await w.enqueue(job, {});
    await w.start({ concurrency: 1, pollInterval: '1s' });
    await within(paused.promise, 'the 5th batch');
    const draining = new Promise<void>((r) => w!.on('worker:draining', () => r()));
    const stopping = w.stop();
    await within(draining, 'draining');
    resume.resolve();
    let stopped = false;
    void stopping.then(() => (stopped = true), () => (stopped = true));
    for (let i = 0; i < 60 && !stopped; i++) {
      await clock.advance(1_000);
      await new Promise((r) => setTimeout(r, 20));
    }
    await within(stopping, 'the worker to stop');
    const row = await getJob(w, id);
    // Before a2204af: [[1, 'yielded', null]], state queued. Now: aborted, dead.
    expect({ state: row.state, attempts: await attemptSummary(w, id) }).toEqual({ state: 'queued', attempts: [[1, 'yielded', null]] });
  });
});
