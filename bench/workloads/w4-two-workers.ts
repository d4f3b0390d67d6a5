/**
 * W4 two workers: W1's drain with two competing worker processes, and a check that every job ran exactly
 * once (executions counted per job across both processes).
 * @module
 */
import { bulkEnqueue, drain, withStore, type Workload } from './workload.js';

export const w4TwoWorkers: Workload = {
  id: 'W4',
  title: 'W4 two competing worker processes',
  method: (s) => `As W1 (${s.jobs.toLocaleString('en-US')} jobs), drained by two worker child processes at concurrency ${s.concurrency} each, started together; every execution is counted per job across both, so duplicates (extra executions) and misses are exact.`,
  metrics: [
    { key: 'drain', label: 'drain (jobs/s)', better: 'higher', ratio: true },
    { key: 'duplicates', label: 'duplicate executions', better: 'lower' },
    { key: 'missing', label: 'jobs never run', better: 'lower' },
  ],
  measure: (ctx) => withStore(ctx, async (target, producer) => {
    await bulkEnqueue(ctx.settings, producer, ctx.settings.jobs);
    const result = await drain(ctx, target, producer, ctx.settings.jobs, 2);
    return { drain: result.perSec, duplicates: result.duplicates, missing: result.missing };
  }),
};
