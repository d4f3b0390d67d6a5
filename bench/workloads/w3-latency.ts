/**
 * W3 latency: an idle worker in another process; one job every `interval` ms; enqueue-to-start latency, from
 * the enqueue call's start in this process to the handler's start in the worker, on the shared clock.
 * @module
 */
import { now, sleep, waitFor } from '../clock.js';
import { percentile } from '../stats.js';
import { WorkerProcess } from '../worker-process.js';
import { withStore, type Workload } from './workload.js';

/** Time the worker sits idle before the first job, so it is waiting (polling or listening), not starting. */
const IDLE_MS = 1_000;

export const w3Latency: Workload = {
  id: 'W3',
  title: 'W3 latency: idle worker in another process',
  method: (s) => `An idle worker child (idle ${IDLE_MS} ms first); ${s.latencyWarmup} unmeasured warm-up jobs, then ${s.latencyJobs} jobs, one every ${s.latencyIntervalMs} ms on a fixed schedule, each an awaited single enqueue whose payload carries the enqueue time (the machine's monotonic clock, \`process.hrtime\`, which both processes read alike); latency = handler start − enqueue call start.`,
  metrics: [
    { key: 'p50', label: 'p50 (ms)', better: 'lower', ratio: true, digits: 1 },
    { key: 'p95', label: 'p95 (ms)', better: 'lower', digits: 1 },
    { key: 'p99', label: 'p99 (ms)', better: 'lower', ratio: true, digits: 1 },
    { key: 'max', label: 'max (ms)', better: 'lower', digits: 1 },
  ],
  measure: (ctx) => withStore(ctx, async (target, producer) => {
    const { settings } = ctx;
    const total = settings.latencyWarmup + settings.latencyJobs;
    const pending = await WorkerProcess.spawn(settings, { target, expected: total, recordLatency: true, profileName: `${ctx.id}_w0` }, { concurrency: settings.concurrency });
    const child = pending.child;
    try {
      await pending.start();
      await sleep(IDLE_MS);
      const t0 = now();
      for (let k = 0; k < total; k++) {
        await sleep(t0 + k * settings.latencyIntervalMs - now());
        await producer.enqueueOne({ i: k, t: now() });
      }
      // A job that never starts within 30 s counts as missing rather than hanging the run.
      await waitFor('every W3 job to start', () => child.count >= total, 30_000, 5).catch(() => undefined);
      const report = await child.stop();
      const latencies = report.latencies.filter(([i]) => i >= settings.latencyWarmup).map(([, ms]) => ms);
      return {
        p50: percentile(latencies, 50),
        p95: percentile(latencies, 95),
        p99: percentile(latencies, 99),
        max: latencies.length > 0 ? Math.max(...latencies) : Number.NaN,
        missing: settings.latencyJobs - latencies.length,
      };
    } finally {
      child.kill();
    }
  }),
};
