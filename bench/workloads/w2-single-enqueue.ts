/**
 * W2 single enqueue: awaited one-at-a-time enqueues, as a request handler does (jobs/s and per-call p50/p99).
 * @module
 */
import { now } from '../clock.js';
import { percentile } from '../stats.js';
import { withStore, type Workload } from './workload.js';

export const w2SingleEnqueue: Workload = {
  id: 'W2',
  title: 'W2 single enqueue',
  method: (s) => `${s.single.toLocaleString('en-US')} awaited single enqueues in a row from one client, no worker running; each call timed.`,
  metrics: [
    { key: 'rate', label: 'jobs/s', better: 'higher', ratio: true },
    { key: 'p50', label: 'call p50 (ms)', better: 'lower', digits: 2 },
    { key: 'p99', label: 'call p99 (ms)', better: 'lower', digits: 2 },
  ],
  measure: (ctx) => withStore(ctx, async (_target, producer) => {
    const calls: number[] = [];
    const t0 = now();
    for (let i = 0; i < ctx.settings.single; i++) {
      const s = now();
      await producer.enqueueOne({ i });
      calls.push(now() - s);
    }
    const seconds = (now() - t0) / 1000;
    return { rate: ctx.settings.single / seconds, p50: percentile(calls, 50), p99: percentile(calls, 99) };
  }),
};
