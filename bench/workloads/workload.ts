/**
 * What a workload is (one repetition of one system → named numbers) and the drain every throughput workload
 * shares: bulk-enqueue, start worker children, and time until the store says every job is completed.
 * @module
 */
import { now, sleep, waitFor } from '../clock.js';
import type { BenchSettings, WorkloadId } from '../settings.js';
import type { BenchPayload, BenchSystem, Producer, StoreTarget } from '../systems/system.js';
import { WorkerProcess } from '../worker-process.js';

/** One metric of a workload's table. */
export interface MetricSpec {
  key: string;
  /** Column heading, with unit. */
  label: string;
  /** Whether more is better (throughput) or less (latency, duplicates), for the report's ratios. */
  better: 'higher' | 'lower';
  /** Show the ratio against graphile-worker for this metric. */
  ratio?: boolean;
  /** Decimal places. @default 0 */
  digits?: number;
}

/** Everything one repetition needs. */
export interface RepetitionContext {
  settings: BenchSettings;
  system: BenchSystem;
  /** Unique per (workload, system, repetition): names databases, prefixes and profiles. */
  id: string;
  rep: number;
}

/** A workload: its metrics and how to measure one repetition of one system. */
export interface Workload {
  id: WorkloadId;
  title: string;
  /** What it measures and how, for the report. */
  method(settings: BenchSettings): string;
  metrics: MetricSpec[];
  /** Measures one repetition; the keys are `metrics`' keys (extra keys are kept for the console). */
  measure(ctx: RepetitionContext): Promise<Record<string, number>>;
  /** When set, the workload is not run and every system is reported with this reason. */
  unavailable?: string;
  /** Repetitions of this workload (W5's long drain runs once). @default settings.repetitions */
  repetitions?(settings: BenchSettings): number;
}

/** Payloads 0..n-1. */
export function payloads(n: number): BenchPayload[] {
  return Array.from({ length: n }, (_, i) => ({ i }));
}

/** Bulk-enqueues `n` jobs in chunks of `settings.bulkChunk`; returns jobs per second. */
export async function bulkEnqueue(settings: BenchSettings, producer: Producer, n: number): Promise<number> {
  const all = payloads(n);
  const t0 = now();
  for (let i = 0; i < all.length; i += settings.bulkChunk) await producer.enqueueBulk(all.slice(i, i + settings.bulkChunk));
  return n / ((now() - t0) / 1000);
}

/** The result of a drain. */
export interface DrainOutcome {
  seconds: number;
  perSec: number;
  /** Executions beyond the first, summed over jobs. */
  duplicates: number;
  /** Jobs never executed. */
  missing: number;
  /** RSS samples of the first worker: [time, jobs run, bytes]. */
  rss: [number, number, number][];
}

/**
 * Starts `workers` worker children on a store holding `jobs` queued jobs (payload i = 0..jobs-1) and times
 * from the first worker's start call until the store reports no job left to complete, as of the snapshot of the
 * check that found none ({@link storeEmptyAt}; `untilStopped`: until the workers have also stopped gracefully).
 * Every execution is counted per payload index, so duplicates and misses are exact.
 */
export async function drain(ctx: RepetitionContext, target: StoreTarget, producer: Producer, jobs: number, workers: number, options: { rssEveryMs?: number; trackExecutions?: boolean; untilStopped?: boolean } = {}): Promise<DrainOutcome> {
  const { settings } = ctx;
  const pending = await Promise.all(Array.from({ length: workers }, (_, k) => WorkerProcess.spawn(
    settings,
    { target, expected: workers === 1 ? jobs : null, rssEveryMs: k === 0 ? options.rssEveryMs : 0, trackExecutions: options.trackExecutions, profileName: `${ctx.id}_w${k}` },
    { concurrency: settings.concurrency },
  )));
  const children = pending.map((p) => p.child);
  try {
    // Opens the connection the store checks use (some systems' checks have one of their own) before anything is
    // timed: a first check that had to connect would take the connection's set-up for the store's answer.
    await producer.remaining();
    const started = await Promise.all(pending.map((p) => p.start()));
    const t0 = Math.min(...started.map((s) => s.startedAt));
    // Generous: the slowest baseline drains ~1,000 jobs/s; a stuck run fails instead of hanging.
    const timeoutMs = 120_000 + jobs * 5;
    await waitFor(`${jobs} executions`, () => children.reduce((sum, c) => sum + c.count, 0) >= jobs, timeoutMs, 2);
    // Executed is not completed: wait until the store has recorded every completion.
    const emptyAt = await storeEmptyAt(producer, timeoutMs);
    let seconds = (emptyAt - t0) / 1000;
    const reports = await Promise.all(children.map((c) => c.stop()));
    console.log(`    ${ctx.system.name} ${timeline(t0, started, reports, emptyAt, children)}`);
    // W6: what the worker still buffers (audit entries) is written by its graceful stop, so the stop counts.
    if (options.untilStopped) seconds = (Math.max(...reports.map((r) => r.at)) - t0) / 1000;
    const runs = new Uint32Array(jobs);
    for (const report of reports) for (const i of report.executions) if (i >= 0 && i < jobs) runs[i]!++;
    // Without tracked executions (W5's long drain) duplicates and misses are unknown.
    const tracked = options.trackExecutions ?? true;
    let duplicates = tracked ? 0 : Number.NaN;
    let missing = tracked ? 0 : Number.NaN;
    if (tracked) for (const n of runs) {
      if (n === 0) missing++;
      else duplicates += n - 1;
    }
    return { seconds, perSec: jobs / seconds, duplicates, missing, rss: reports[0]!.rss };
  } finally {
    for (const child of children) child.kill();
  }
}

/**
 * When the store was first seen with no job left to complete: the moment the check that found none was sent, not
 * when its answer came back. Its snapshot was taken then (give or take the server's first tenth of a millisecond),
 * so the store was empty by then; the answer's own time is the instrument's, and it differs by system. The end can
 * still lag the store's emptying by the check before (sent while jobs were left, it delays the next one by its own
 * duration) plus 2 ms: Warden's first check after a drain on PostgreSQL takes 4–6 ms (its count walks the index
 * entries of the jobs just drained), graphile-worker's 1–2.4 ms (measured 2026-12-06, connections already open).
 */
async function storeEmptyAt(producer: Producer, timeoutMs: number): Promise<number> {
  let sentAt = 0;
  await waitFor('every job to be recorded completed', async () => {
    sentAt = now();
    return (await producer.remaining()) === 0;
  }, timeoutMs, 2);
  return sentAt;
}

/**
 * Where a drain's time went, for the console (ms after the first start call): each worker's start call (`called`,
 * when there are several) and its return (`ready`), its first job, its `expected`-th job (one worker only), and the
 * store reporting empty.
 */
function timeline(t0: number, started: { startedAt: number; readyAt: number }[], reports: { firstAt: number | null }[], emptyAt: number, children: WorkerProcess[]): string {
  const ms = (t: number | null) => (t === null ? '-' : (t - t0).toFixed(1));
  const workers = started.map((s, k) => `w${k}${started.length > 1 ? ` called ${ms(s.startedAt)}` : ''} ready ${ms(s.readyAt)} first ${ms(reports[k]!.firstAt)}${children[k]!.handledAt === null ? '' : ` last ${ms(children[k]!.handledAt)}`}`);
  return `${workers.join(', ')}; store empty ${ms(emptyAt)} (ms after start)`;
}

/** Prepares a fresh store (with extra `options` for the system, e.g. W6's `audit`), hands it with a producer to `fn`, and always cleans up. */
export async function withStore<T>(ctx: RepetitionContext, fn: (target: StoreTarget, producer: Producer) => Promise<T>, options: StoreTarget['options'] = {}): Promise<T> {
  const target = await ctx.system.prepare(ctx.id);
  Object.assign(target.options, options);
  try {
    const producer = await ctx.system.producer(target);
    try {
      return await fn(target, producer);
    } finally {
      await producer.close();
    }
  } finally {
    // A killed child may still hold connections for a moment; the drop forces them out.
    await sleep(50);
    await ctx.system.destroy(target);
  }
}
