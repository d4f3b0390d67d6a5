/**
 * The database's share of a drain, without a worker: Warden's own claim and ending statements, through the
 * driver, back to back in one loop (claim a batch, end it, repeat) until the queue is empty. What this reports
 * is the most those statements allow on this machine, the ceiling a worker can approach but not pass.
 *
 * Run: `npx tsx bench/driver-loop.ts [--driver postgres|sqlite] [--jobs 20000] [--batch 500] [--retain 0]`.
 * `--retain N` first adds N completed jobs as Warden writes them (PostgreSQL: then `VACUUM ANALYZE`d, as
 * autovacuum would have), for W5's question without a worker. PostgreSQL runs in a fresh schema of
 * BENCH_PG_URL (default `postgres://postgres@127.0.0.1:5432/test`), dropped afterwards; SQLite in a temporary file.
 * @module
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { createDriver } from '../src/driver/create-driver.js';
import type { Driver, JobInsert } from '../src/driver/driver.js';

const { values } = parseArgs({
  options: {
    driver: { type: 'string', default: 'postgres' },
    jobs: { type: 'string', default: '20000' },
    batch: { type: 'string', default: '500' },
    retain: { type: 'string', default: '0' },
  },
});
const kind = values.driver;
if (kind !== 'postgres' && kind !== 'sqlite') throw new Error(`Expected --driver postgres or sqlite, got ${kind}`);
const [jobs, batch, retain] = (['jobs', 'batch', 'retain'] as const).map((name) => {
  const n = Number(values[name]);
  if (!Number.isInteger(n) || n < 0 || (name !== 'retain' && n < 1)) throw new Error(`Expected --${name} to be a whole number, got ${values[name]}`);
  return n;
}) as [number, number, number];

const pgUrl = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const schema = `driver_loop_${process.pid}`;
const dir = kind === 'sqlite' ? await mkdtemp(join(tmpdir(), 'warden-driver-loop-')) : null;
const driver: Driver = createDriver(kind === 'postgres' ? { url: pgUrl, schema } : { url: `sqlite:${join(dir!, 'loop.db')}` });

try {
  await driver.migrate();
  if (retain > 0) await seedFinished(retain);
  const insert = (i: number): JobInsert => ({ name: 'noop', queue: 'default', payloadJson: JSON.stringify({ i }), priority: 0, delayMs: 0, runAt: null, maxAttempts: 3, key: null });
  for (let i = 0; i < jobs; i += 1_000) {
    await driver.jobInsertMany({ jobs: Array.from({ length: Math.min(1_000, jobs - i) }, (_, k) => insert(i + k)), now: null });
  }
  let claimMs = 0;
  let endMs = 0;
  let done = 0;
  const t0 = performance.now();
  for (;;) {
    let t = performance.now();
    const rows = await driver.jobClaim({ queues: ['default'], limit: batch, workerId: 'loop', leaseMs: 60_000, now: null });
    claimMs += performance.now() - t;
    if (rows.length === 0) break;
    t = performance.now();
    await driver.jobFinishMany({
      items: rows.map((r) => ({ id: r.id, leaseToken: r.leaseToken, outcome: 'completed' as const, state: 'completed' as const, retryDelayMs: 0, error: null })),
      now: null,
    });
    endMs += performance.now() - t;
    done += rows.length;
  }
  const seconds = (performance.now() - t0) / 1000;
  const us = (ms: number) => ((ms / done) * 1000).toFixed(1);
  console.log(`${kind}, batches of ${batch}, ${retain.toLocaleString('en-US')} retained: ${done.toLocaleString('en-US')} jobs, ${Math.round(done / seconds).toLocaleString('en-US')} jobs/s; claim ${us(claimMs)} µs a job, endings ${us(endMs)} µs a job`);
} finally {
  await driver.close();
  if (kind === 'postgres') await sql(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  if (dir) await rm(dir, { recursive: true, force: true });
}

/** Runs statements on PostgreSQL outside the driver (seeding and clean-up only). */
async function sql(...statements: string[]): Promise<void> {
  const client = new pg.Client({ connectionString: pgUrl });
  await client.connect();
  try {
    for (const statement of statements) await client.query(statement);
  } finally {
    await client.end();
  }
}

/**
 * `count` completed jobs as Warden writes them since migration 0011 (the completing attempt on the job row,
 * `completed_by` its worker; no `job_attempts` row), inserted in SQL (PostgreSQL) or in one transaction (SQLite).
 */
async function seedFinished(count: number): Promise<void> {
  if (kind === 'postgres') {
    await sql(
      `INSERT INTO ${schema}.jobs (name, queue, payload, state, run_at, max_attempts, created_at, updated_at, finished_at, attempt, lease_token, started_at, completed_by)
       SELECT 'noop', 'default', '{"i":1}', 'completed', now(), 3, now(), now(), now(), 1, 1, now(), 'loop' FROM generate_series(1, ${count})`,
      `VACUUM ANALYZE ${schema}.jobs`,
    );
    return;
  }
  const { default: Database } = await import('better-sqlite3');
  const db = new Database(join(dir!, 'loop.db'));
  try {
    db.exec(`WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < ${count})
      INSERT INTO jobs (name, queue, payload, state, priority, run_at, max_attempts, created_at, updated_at, finished_at, attempt, lease_token, started_at, completed_by)
      SELECT 'noop', 'default', '{"i":1}', 'completed', 0, 0, 3, 0, 0, 0, 1, 1, 0, 'loop' FROM g;
      ANALYZE;`);
  } finally {
    db.close();
  }
}
