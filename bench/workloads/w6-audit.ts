/**
 * W6 guarantees on: W1 with Warden's full audit trail on (`createWarden({ audit: true })`, every job at its
 * default level `"all"`: every state change recorded in the hash-chained trail). The peers have no audit trail,
 * so they run W1 as it is, in the same run, as the bar. Because audit entries may be buffered, the drain here
 * ends when the worker has also stopped gracefully (for every system alike), and the entries written are counted.
 * @module
 */
import { bulkEnqueue, drain, withStore, type Workload } from './workload.js';

export const w6Audit: Workload = {
  id: 'W6',
  title: 'W6 guarantees on: W1 with the full audit trail',
  method: (s) => `As W1 (${s.jobs.toLocaleString('en-US')} jobs, one worker child at concurrency ${s.concurrency}), with Warden's audit trail on (\`createWarden({ audit: true })\`, job level \`"all"\`) in the producer and the worker; the peers have no audit trail and run plain W1. The drain ends when every job is completed and the worker has stopped gracefully (so buffered audit entries are written), for every system; audit entries per job counted afterwards.`,
  metrics: [
    { key: 'drain', label: 'drain incl. stop (jobs/s)', better: 'higher', ratio: true },
    { key: 'auditPerJob', label: 'audit entries per job', better: 'lower', digits: 2 },
  ],
  measure: (ctx) => withStore(ctx, async (target, producer) => {
    await bulkEnqueue(ctx.settings, producer, ctx.settings.jobs);
    const result = await drain(ctx, target, producer, ctx.settings.jobs, 1, { untilStopped: true });
    const entries = producer.auditEntries ? await producer.auditEntries() : Number.NaN;
    return { drain: result.perSec, auditPerJob: entries / ctx.settings.jobs, duplicates: result.duplicates, missing: result.missing };
  }, ctx.system.supportsAudit ? { audit: true } : {}),
};
