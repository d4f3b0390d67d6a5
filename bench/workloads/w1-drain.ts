/**
 * W1 drain: bulk-enqueue N jobs (enqueue jobs/s), then one worker child at the benchmark's concurrency drains
 * them (drain jobs/s, from the worker's start call to the last completion recorded in the store).
 * @module
 */
import { bulkEnqueue, drain, withStore, type Workload } from './workload.js';

export const w1Drain: Workload = {
  id: 'W1',
  title: 'W1 drain: bulk enqueue, then one worker process',
  method: (s) => `${s.jobs.toLocaleString('en-US')} jobs bulk-enqueued in calls of ${s.bulkChunk.toLocaleString('en-US')} (from a fresh client, connection set-up included), then one worker child process at concurrency ${s.concurrency}; drain time runs from the worker's start call until the store reports no job left to complete (the moment the check that found none was sent, its snapshot: that check's own duration, 1–6 ms depending on the system, is the instrument's; checked every 2 ms, on a connection opened before the drain).`,
  metrics: [
    { key: 'enqueue', label: 'bulk enqueue (jobs/s)', better: 'higher', ratio: true },
    { key: 'drain', label: 'drain (jobs/s)', better: 'higher', ratio: true },
  ],
  measure: (ctx) => withStore(ctx, async (target, producer) => {
    const enqueue = await bulkEnqueue(ctx.settings, producer, ctx.settings.jobs);
    const result = await drain(ctx, target, producer, ctx.settings.jobs, 1);
    return { enqueue, drain: result.perSec, duplicates: result.duplicates, missing: result.missing };
  }),
};
