/**
 * Baseline benchmark of Warden alone (issue 3 adds the peers: graphile-worker, pg-boss, BullMQ).
 * W1: bulk-enqueue N jobs, then drain them with one worker at concurrency 10 (jobs/s for each).
 * W2: 2,000 awaited single enqueues (jobs/s, p50/p99 of the call).
 * Run: `npm run bench` (env BENCH_JOBS, BENCH_PG_URL). Writes bench/results.md.
 */
import { cpus } from 'node:os';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { pino } from 'pino';
import { createWarden, defineJob } from '../src/index.js';

const JOBS = Number(process.env.BENCH_JOBS ?? 20_000);
const SINGLE = 2_000;
const PG_URL = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

let handled = 0;
const noop = defineJob({ name: 'noop', handler: () => void handled++ });

interface Row { system: string; enqueuePerSec: number; drainPerSec: number; singlePerSec: number; p50: number; p99: number }

async function measure(system: string, database: string, schema?: string): Promise<Row> {
  const warden = createWarden({ database, schema, jobs: [noop], logger: pino({ level: 'silent' }) });
  await warden.migrate();
  const payloads = Array.from({ length: JOBS }, (_, i) => ({ job: noop, payload: { i } }));
  let t = performance.now();
  for (let i = 0; i < payloads.length; i += 1_000) await warden.enqueueMany(payloads.slice(i, i + 1_000));
  const enqueuePerSec = JOBS / ((performance.now() - t) / 1000);
  handled = 0;
  t = performance.now();
  const done = new Promise<void>((resolve) => warden.on('job:completed', () => handled >= JOBS && resolve()));
  await warden.start({ concurrency: 10, pollInterval: '50ms' });
  await done;
  const drainPerSec = JOBS / ((performance.now() - t) / 1000);
  await warden.stop();
  const times: number[] = [];
  t = performance.now();
  for (let i = 0; i < SINGLE; i++) {
    const s = performance.now();
    await warden.enqueue(noop, { i });
    times.push(performance.now() - s);
  }
  const singlePerSec = SINGLE / ((performance.now() - t) / 1000);
  times.sort((a, b) => a - b);
  await warden.close();
  return { system, enqueuePerSec, drainPerSec, singlePerSec, p50: times[Math.floor(SINGLE * 0.5)]!, p99: times[Math.floor(SINGLE * 0.99)]! };
}

const rows: Row[] = [];
const dir = await mkdtemp(join(tmpdir(), 'warden-bench-'));
try {
  rows.push(await measure('warden-sqlite', `sqlite:${join(dir, 'bench.db')}`));
} finally {
  await rm(dir, { recursive: true, force: true });
}
const schema = `bench_${process.pid}`;
try {
  rows.push(await measure('warden-postgres', PG_URL, schema));
} finally {
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  const version = (await client.query('SHOW server_version')).rows[0].server_version;
  await client.end();
  const f = (n: number) => Math.round(n).toLocaleString('en-US');
  const md = [
    '# Benchmark results (baseline, Warden only)',
    '',
    `Machine: ${cpus().length} cores (${cpus()[0]?.model ?? 'unknown'}), Node ${process.version}, PostgreSQL ${version}. ${JOBS.toLocaleString('en-US')} jobs, concurrency 10, one in-process worker, no-op handler. One repetition (issue 3 brings medians of 3 and the peers).`,
    '',
    '| system | W1 enqueue (jobs/s) | W1 drain (jobs/s) | W2 single enqueue (jobs/s) | W2 p50 (ms) | W2 p99 (ms) |',
    '|---|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.system} | ${f(r.enqueuePerSec)} | ${f(r.drainPerSec)} | ${f(r.singlePerSec)} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} |`),
    '',
  ].join('\n');
  await writeFile(new URL('./results.md', import.meta.url), md);
  console.log(md);
}
