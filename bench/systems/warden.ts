/**
 * Warden on PostgreSQL and on SQLite, driven through its public API (`createWarden`, `defineJob`,
 * `enqueueMany`, `enqueue`, `start`, `close`). Only the progress check and W5's seeding read or write Warden's
 * tables directly: the seeding must put a million finished jobs in place in seconds, not in an hour of draining.
 * @module
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { pino } from 'pino';
import { createWarden, defineJob, type Warden } from '../../src/index.js';
import { createDatabase, dropDatabase } from '../postgres-admin.js';
import type { BenchSettings } from '../settings.js';
import type { BenchPayload, BenchSystem, Producer, RunningWorker, StoreTarget, WorkerSpec } from './system.js';

/** Warden's default PostgreSQL schema, which the benchmark keeps. */
const PG_SCHEMA = 'warden';
/**
 * Jobs not yet ended, counted through the two partial indexes that hold exactly them (waiting: jobs_claim_idx,
 * running: jobs_lease_idx), each predicate written as its index's `WHERE` so SQLite can use it too. The benchmark
 * polls this every 2 ms to see a drain end; a count that read every row (since migration 0009 there is no index
 * on state over all rows) would take a core from the system measured once a million finished rows are kept (W5).
 */
function activeCountSql(jobs: string, forceIndex: boolean): string {
  const by = (index: string) => (forceIndex ? ` INDEXED BY ${index}` : '');
  return `SELECT (SELECT count(*) FROM ${jobs}${by('jobs_claim_idx')} WHERE state IN ('queued','retrying'))
  + (SELECT count(*) FROM ${jobs}${by('jobs_lease_idx')} WHERE state = 'running') AS n`;
}

function benchJob(queue: string, handler: (payload: BenchPayload) => void) {
  return defineJob({ name: 'noop', queue, handler: (payload: BenchPayload) => void handler(payload) });
}

/** A Warden on the target with the bench job registered; enqueue with the returned definition. */
function open(target: StoreTarget, handler: (payload: BenchPayload) => void = () => {}): { warden: Warden; job: ReturnType<typeof benchJob> } {
  const job = benchJob(target.queue, handler);
  // W6 sets `audit` on the target: the full audit trail (every state change of every job) is then recorded.
  const audit = target.options.audit === true;
  return { warden: createWarden({ database: target.url, jobs: [job], logger: pino({ level: 'silent' }), ...(audit ? { audit: true } : {}) }), job };
}

function sqliteFile(target: StoreTarget): string {
  return target.url.slice('sqlite:'.length);
}

/** Warden's throughput tuning in the benchmark (its guide's advice for many short jobs). */
const DEFAULT_BENCH_PREFETCH = 500;

/**
 * Warden on `kind`, tuned for throughput the way its configuration guide says, as the peers are tuned the way
 * theirs say: `prefetch: 500`, the counterpart of graphile-worker's `localQueue: { size: 500 }`
 * (BENCH_WARDEN_PREFETCH overrides it; `0` measures Warden's out-of-the-box default). Everything else is Warden's
 * default except `concurrency` (and `pollInterval` when BENCH_WARDEN_POLL is set).
 */
export function wardenSystem(kind: 'postgres' | 'sqlite', settings: BenchSettings): BenchSystem {
  const poll = process.env.BENCH_WARDEN_POLL;
  const prefetch = Number(process.env.BENCH_WARDEN_PREFETCH ?? DEFAULT_BENCH_PREFETCH);
  if (!Number.isInteger(prefetch) || prefetch < 0) throw new Error(`Expected BENCH_WARDEN_PREFETCH to be an integer >= 0, got ${process.env.BENCH_WARDEN_PREFETCH}`);
  return {
    name: kind === 'postgres' ? 'warden-pg' : 'warden-sqlite',
    label: kind === 'postgres' ? 'Warden (PostgreSQL)' : 'Warden (SQLite)',
    describe: `\`createWarden\` + \`start({ concurrency: ${settings.concurrency}${poll ? `, pollInterval: '${poll}'` : ''}${prefetch !== 0 ? `, prefetch: ${prefetch}` : ''} })\`, other worker options at their defaults; bulk enqueue with \`enqueueMany\`, single with \`enqueue\`${kind === 'sqlite' ? '; SQLite file in a temporary directory, WAL, `synchronous=normal` (the default)' : ''}.`,
    workloads: ['W1', 'W2', 'W3', 'W4', 'W5', 'W6'],
    supportsAudit: true,
    async prepare(id) {
      const url = kind === 'postgres'
        ? await createDatabase(settings.pgUrl, `bench_${id}`)
        : `sqlite:${join(await mkdtemp(join(tmpdir(), 'warden-bench-')), 'bench.db')}`;
      const target: StoreTarget = { system: this.name, url, prefix: '', queue: 'bench', options: {} };
      const { warden } = open(target);
      try {
        await warden.migrate();
      } finally {
        await warden.close();
      }
      return target;
    },
    async destroy(target) {
      if (kind === 'postgres') await dropDatabase(settings.pgUrl, target.url);
      else await rm(join(sqliteFile(target), '..'), { recursive: true, force: true });
    },
    async producer(target): Promise<Producer> {
      const { warden, job } = open(target);
      const done = kind === 'postgres' ? postgresActiveCheck(target) : sqliteActiveCheck(target);
      return {
        enqueueBulk: async (payloads) => {
          await warden.enqueueMany(payloads.map((payload) => ({ job, payload })));
        },
        enqueueOne: async (payload) => {
          await warden.enqueue(job, payload);
        },
        remaining: done.remaining,
        auditEntries: done.auditEntries,
        close: async () => {
          await done.close();
          await warden.close();
        },
      };
    },
    async startWorker(target, spec: WorkerSpec): Promise<RunningWorker> {
      const { warden } = open(target, spec.onJob);
      await warden.start({ concurrency: spec.concurrency, ...(poll ? { pollInterval: poll as `${number}ms` } : {}), ...(prefetch !== 0 ? { prefetch } : {}) });
      return { stop: () => warden.close() };
    },
    async seedFinished(target, count) {
      // One real job, enqueued and run by Warden, is the template: its row and its attempt rows (none since
      // migration 0011, which keeps a completing attempt on the job row) are cloned, so the seeded rows have
      // whatever columns and values the current schema gives a finished job.
      const { warden, job } = open(target);
      let templateId: string;
      try {
        templateId = (await warden.enqueue(job, { i: -1 })).id;
        await warden.drain();
      } finally {
        await warden.close();
      }
      if (kind === 'postgres') await seedPostgres(target, templateId, count);
      else seedSqlite(target, templateId, count);
    },
  };
}

interface ActiveCheck {
  remaining(): Promise<number>;
  auditEntries(): Promise<number>;
  close(): Promise<void>;
}

function postgresActiveCheck(target: StoreTarget): ActiveCheck {
  const pool = new pg.Pool({ connectionString: target.url, max: 1 });
  return {
    remaining: async () => Number((await pool.query(activeCountSql(`${PG_SCHEMA}.jobs`, false))).rows[0].n),
    auditEntries: async () => Number((await pool.query(`SELECT coalesce(sum(last_seq - first_seq + 1), 0) AS n FROM ${PG_SCHEMA}.audit_blocks`)).rows[0].n),
    close: () => pool.end(),
  };
}

function sqliteActiveCheck(target: StoreTarget): ActiveCheck {
  const db = new Database(sqliteFile(target), { readonly: true });
  db.pragma('busy_timeout = 5000');
  const count = db.prepare(activeCountSql('jobs', true));
  return {
    remaining: async () => (count.get() as { n: number }).n,
    auditEntries: async () => (db.prepare('SELECT coalesce(sum(last_seq - first_seq + 1), 0) AS n FROM audit_blocks').get() as { n: number }).n,
    close: async () => void db.close(),
  };
}

async function seedPostgres(target: StoreTarget, templateId: string, count: number): Promise<void> {
  const client = new pg.Client({ connectionString: target.url });
  await client.connect();
  try {
    const columns = async (table: string, skip: string) => (await client.query(
      `SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2 AND column_name <> $3 AND is_generated = 'NEVER' ORDER BY ordinal_position`,
      [PG_SCHEMA, table, skip],
    )).rows.map((r) => `"${r.column_name}"`).join(', ');
    const jobColumns = await columns('jobs', 'id');
    const attemptColumns = await columns('job_attempts', 'job_id');
    // Chunks keep each transaction (and its WAL) moderate on a small machine.
    for (let done = 0; done < count; done += 100_000) {
      const n = Math.min(100_000, count - done);
      await client.query(`
        WITH cloned AS (
          INSERT INTO ${PG_SCHEMA}.jobs (${jobColumns})
          SELECT ${jobColumns} FROM ${PG_SCHEMA}.jobs, generate_series(1, $2::int) WHERE id = $1
          RETURNING id)
        INSERT INTO ${PG_SCHEMA}.job_attempts (job_id, ${attemptColumns})
        SELECT cloned.id, ${attemptColumns.split(', ').map((c) => `a.${c}`).join(', ')}
        FROM cloned, ${PG_SCHEMA}.job_attempts a WHERE a.job_id = $1`, [templateId, n]);
    }
    // A long-running deployment has had autovacuum and analyze run over these rows.
    await client.query(`VACUUM ANALYZE ${PG_SCHEMA}.jobs`);
    await client.query(`VACUUM ANALYZE ${PG_SCHEMA}.job_attempts`);
  } finally {
    await client.end();
  }
}

function seedSqlite(target: StoreTarget, templateId: string, count: number): void {
  const db = new Database(sqliteFile(target));
  try {
    db.pragma('busy_timeout = 5000');
    const columns = (table: string, skip: string) => (db.prepare(`PRAGMA table_info(${table})`).all() as { name: string }[])
      .map((c) => c.name).filter((c) => c !== skip).map((c) => `"${c}"`);
    const jobColumns = columns('jobs', 'id').join(', ');
    const attemptColumns = columns('job_attempts', 'job_id');
    const template = Number(templateId);
    const cloneJobs = db.prepare(`
      WITH RECURSIVE n(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM n WHERE k < ?)
      INSERT INTO jobs (${jobColumns}) SELECT ${jobColumns} FROM jobs, n WHERE id = ?`);
    const cloneAttempts = db.prepare(`
      INSERT INTO job_attempts (job_id, ${attemptColumns.join(', ')})
      SELECT j.id, ${attemptColumns.map((c) => `a.${c}`).join(', ')} FROM jobs j, job_attempts a
      WHERE a.job_id = ? AND j.id > ?`);
    for (let done = 0; done < count; done += 100_000) {
      const n = Math.min(100_000, count - done);
      db.transaction(() => {
        const before = (db.prepare('SELECT max(id) AS m FROM jobs').get() as { m: number }).m;
        cloneJobs.run(n, template);
        cloneAttempts.run(template, before);
      }).immediate();
    }
    // The seeded pages go into the database file now: left in the WAL, the worker's first commits would copy
    // them there (an automatic checkpoint of a million rows) inside the measured drain.
    db.pragma('wal_checkpoint(TRUNCATE)');
  } finally {
    db.close();
  }
}
