/**
 * Benchmark settings: from the command line (`npm run bench -- --only W1,W3 --systems warden-pg,graphile
 * --quick`) and the environment (`BENCH_*`). Everything the report must state comes from here.
 * @module
 */
import { parseArgs } from 'node:util';

/** The workloads of issue 3. */
export const WORKLOAD_IDS = ['W1', 'W2', 'W3', 'W4', 'W5', 'W6'] as const;
export type WorkloadId = (typeof WORKLOAD_IDS)[number];

/** Every system the benchmark can drive, in report order. graphile-worker is the reference for ratios. */
export const SYSTEM_NAMES = ['warden-pg', 'warden-sqlite', 'graphile', 'pg-boss', 'bullmq', 'raw-pg', 'raw-sqlite'] as const;
export type SystemName = (typeof SYSTEM_NAMES)[number];

/** The resolved settings of one run. */
export interface BenchSettings {
  workloads: WorkloadId[];
  systems: SystemName[];
  quick: boolean;
  /** Repetitions per figure; each figure is their median. */
  repetitions: number;
  /** W1/W4/W5 job count. */
  jobs: number;
  /** Jobs per bulk call in W1's enqueue (every system gets the same chunking). */
  bulkChunk: number;
  /** W2: awaited single enqueues. */
  single: number;
  /** W3: measured jobs, their spacing, and unmeasured warm-up jobs sent first. */
  latencyJobs: number;
  latencyIntervalMs: number;
  latencyWarmup: number;
  /** W5: finished rows seeded before the drain, and the length of the memory-sampled long drain. */
  retained: number;
  longDrain: number;
  /** Worker concurrency for every system. */
  concurrency: number;
  /** Raw ceiling: rows per claim and per completion statement, and parallel claim loops (PostgreSQL). */
  rawBatch: number;
  rawLoops: number;
  pgUrl: string;
  redis: { host: string; port: number };
  /** When set, Warden worker children run under `node --cpu-prof` and write profiles here. */
  cpuProfDir: string | null;
  /** When set, worker children sample their allocations (`bench/alloc-profiler.ts`) and write profiles here. */
  allocProfDir: string | null;
  /** Extra `node` flags for every worker child (`--child-node-flags="--trace-gc"`); none by default. */
  childNodeFlags: string[];
  /** Where results.md and results.svg go; null = do not write (e.g. a partial smoke run). */
  outDir: string | null;
}

function list<T extends string>(value: string | undefined, allowed: readonly T[], what: string): T[] | undefined {
  if (value === undefined || value === '') return undefined;
  const items = value.split(',').map((s) => s.trim()).filter(Boolean);
  for (const item of items) {
    if (!allowed.includes(item as T)) throw new Error(`Expected ${what} from ${allowed.join(', ')}, got "${item}"`);
  }
  return items as T[];
}

function int(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw.replaceAll('_', ''));
  if (!Number.isInteger(value) || value < 0) throw new Error(`Expected ${name} to be a non-negative integer, got "${raw}"`);
  return value;
}

/** Space-separated `node` flags, each starting with `--` (`--trace-gc --max-semi-space-size=64`). */
function nodeFlags(value: string | undefined): string[] {
  const flags = (value ?? '').split(/\s+/).filter(Boolean);
  for (const flag of flags) {
    if (!flag.startsWith('--')) throw new Error(`Expected --child-node-flags to be node flags starting with --, got "${flag}"`);
  }
  return flags;
}

/** Reads the command line and the environment. `--quick` shrinks every size for a smoke test. */
export function readSettings(argv: string[] = process.argv.slice(2)): BenchSettings {
  const { values } = parseArgs({
    args: argv,
    options: {
      only: { type: 'string' },
      systems: { type: 'string' },
      quick: { type: 'boolean', default: false },
      reps: { type: 'string' },
      out: { type: 'string' },
      'no-write': { type: 'boolean', default: false },
      'cpu-prof': { type: 'string' },
      'alloc-prof': { type: 'string' },
      'child-node-flags': { type: 'string' },
    },
    allowPositionals: false,
  });
  const quick = values.quick || process.env.BENCH_QUICK === '1';
  const workloads = list(values.only ?? process.env.BENCH_ONLY, WORKLOAD_IDS, 'workloads') ?? [...WORKLOAD_IDS];
  const systems = list(values.systems ?? process.env.BENCH_SYSTEMS, SYSTEM_NAMES, 'systems') ?? [...SYSTEM_NAMES];
  const reps = values.reps ?? process.env.BENCH_REPS;
  // A quick run and a partial run do not overwrite the full run's report unless an output is named.
  const partial = quick || workloads.length < WORKLOAD_IDS.length || systems.length < SYSTEM_NAMES.length;
  const out = values.out ?? process.env.BENCH_OUT;
  return {
    workloads,
    systems,
    quick,
    repetitions: reps !== undefined ? Number(reps) : quick ? 1 : 3,
    jobs: int('BENCH_JOBS', quick ? 2_000 : 20_000),
    bulkChunk: int('BENCH_BULK_CHUNK', 1_000),
    single: int('BENCH_SINGLE', quick ? 200 : 2_000),
    latencyJobs: int('BENCH_W3_JOBS', quick ? 50 : 500),
    latencyIntervalMs: int('BENCH_W3_INTERVAL_MS', 20),
    latencyWarmup: int('BENCH_W3_WARMUP', 10),
    retained: int('BENCH_W5_RETAINED', quick ? 20_000 : 1_000_000),
    longDrain: int('BENCH_W5_DRAIN', quick ? 5_000 : 1_000_000),
    concurrency: int('BENCH_CONCURRENCY', 10),
    // 500 = graphile-worker's recommended local queue: the ceiling batches at least as much as the best peer.
    rawBatch: int('BENCH_RAW_BATCH', 500),
    rawLoops: int('BENCH_RAW_LOOPS', 2),
    pgUrl: process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
    redis: { host: process.env.BENCH_REDIS_HOST ?? '127.0.0.1', port: int('BENCH_REDIS_PORT', 6379) },
    cpuProfDir: values['cpu-prof'] ?? process.env.BENCH_CPU_PROF ?? null,
    allocProfDir: values['alloc-prof'] ?? process.env.BENCH_ALLOC_PROF ?? null,
    childNodeFlags: nodeFlags(values['child-node-flags'] ?? process.env.BENCH_CHILD_NODE_FLAGS),
    outDir: values['no-write'] ? null : out ?? (partial ? null : new URL('.', import.meta.url).pathname),
  };
}
