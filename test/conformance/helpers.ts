/**
 * Small helpers shared by the conformance exercises: a fixed time base, insert/claim/finish shorthands, and
 * raw connections for the few checks the `Driver` interface cannot make itself (transactions, row counts).
 * @module
 */
import Database from 'better-sqlite3';
import pg from 'pg';
import { expect } from 'vitest';
import type { Driver, JobFinish, JobInsert, JobLease } from '../../src/driver/driver.js';
import type { ErrorInfo, JobRow } from '../../src/job/job-record.js';
import { makeInsert, PG_URL, type TestDatabase } from '../support/test-databases.js';

/**
 * The fixed base time of every test, in ms. Deliberately in the future: a driver that used the database clock
 * instead of the `now` it was given would find nothing due, so such a bug cannot hide.
 */
export const T0_MS = Date.UTC(2040, 0, 1, 0, 0, 0, 0);

/** `T0 + offsetMs` as a Date: the `now` passed to every time-dependent driver call. */
export function at(offsetMs = 0): Date {
  return new Date(T0_MS + offsetMs);
}

/** Default lease length in these tests. */
export const LEASE_MS = 30_000;

/** Inserts jobs (each a partial {@link JobInsert}) at `now` (`null`: database clock); expects none to be a duplicate; returns the rows. */
export async function insertJobs(driver: Driver, jobs: Partial<JobInsert>[], now: Date | null = at(0)): Promise<JobRow[]> {
  const results = await driver.jobInsertMany({ jobs: jobs.map((j) => makeInsert(j)), now });
  expect(results.map((r) => r.duplicate)).toEqual(jobs.map(() => false));
  return results.map((r) => r.job);
}

/** Inserts one job at `now` and returns its row. */
export async function insertJob(driver: Driver, overrides: Partial<JobInsert> = {}, now: Date | null = at(0)): Promise<JobRow> {
  const [job] = await insertJobs(driver, [overrides], now);
  return job!;
}

/** Claim parameters with test defaults: queue `default`, limit 10, worker `w1`, {@link LEASE_MS}, now T0. */
export interface ClaimOptions {
  queues?: string[];
  limit?: number;
  workerId?: string;
  leaseMs?: number;
  now?: Date;
}

/** Claims with test defaults (see {@link ClaimOptions}). */
export function claim(driver: Driver, options: ClaimOptions = {}): Promise<JobRow[]> {
  return driver.jobClaim({
    queues: options.queues ?? ['default'],
    limit: options.limit ?? 10,
    workerId: options.workerId ?? 'w1',
    leaseMs: options.leaseMs ?? LEASE_MS,
    now: options.now ?? at(0),
  });
}

/** Claims and expects exactly the job `id` to come back; returns its row. */
export async function claimExactly(driver: Driver, id: string, options: ClaimOptions = {}): Promise<JobRow> {
  const claimed = await claim(driver, options);
  expect(claimed.map((j) => j.id)).toEqual([id]);
  return claimed[0]!;
}

/** The lease a claimed row holds. */
export function leaseOf(job: Pick<JobRow, 'id' | 'leaseToken'>): JobLease {
  return { id: job.id, leaseToken: job.leaseToken };
}

/** A {@link JobFinish} for a claimed row: by default a successful completion. */
export function finishOf(job: Pick<JobRow, 'id' | 'leaseToken'>, overrides: Partial<Omit<JobFinish, 'id'>> = {}): JobFinish {
  return {
    id: job.id,
    leaseToken: job.leaseToken,
    outcome: 'completed',
    state: 'completed',
    retryDelayMs: 0,
    error: null,
    ...overrides,
  };
}

/** A sample stored error. */
export function errorInfo(message = 'boom'): ErrorInfo {
  return { name: 'Error', message, stack: `Error: ${message}\n    at handler (job.ts:1:1)` };
}

/** Reads a job and expects it to exist. */
export async function getJob(driver: Driver, id: string): Promise<JobRow> {
  const job = await driver.jobGet({ id });
  expect(job, `job ${id} should exist`).not.toBeNull();
  return job!;
}

/** Sorts decimal id strings numerically. */
export function sortIds(ids: readonly string[]): string[] {
  return [...ids].sort((a, b) => {
    const d = BigInt(a) - BigInt(b);
    return d < 0n ? -1 : d > 0n ? 1 : 0;
  });
}

/** The SQLite file behind a test database (`url` minus `sqlite:`). */
export function sqliteFilename(tdb: TestDatabase): string {
  if (tdb.kind !== 'sqlite') throw new Error(`Expected an sqlite test database, got ${tdb.kind}`);
  return tdb.url.slice('sqlite:'.length);
}

/** Opens a second, raw better-sqlite3 connection on the test database's file. Close it yourself. */
export function openRawSqlite(tdb: TestDatabase): Database.Database {
  const db = new Database(sqliteFilename(tdb));
  db.pragma('busy_timeout = 5000');
  return db;
}

/** Opens a raw, connected `pg` client on {@link PG_URL}. End it yourself. */
export async function openPgClient(): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  return client;
}

/**
 * Resolves once a statement naming `schema` waits for a lock, read from `pg_stat_activity` on a connection of its
 * own outside any transaction (inside one, the view is read once and kept), without sleeping.
 */
export async function untilWaitingOnLock(schema: string): Promise<void> {
  const client = await openPgClient();
  try {
    for (;;) {
      const { rows } = await client.query<{ n: string }>(`SELECT count(*) AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE $1`, [`%${schema}%`]);
      if (rows[0]!.n !== '0') return;
      await new Promise((resolve) => setImmediate(resolve));
    }
  } finally {
    await client.end();
  }
}

/**
 * Counts rows of one of Warden's tables straight from the database, optionally only those of one job
 * (`job_id` for `job_attempts`, `id` for `jobs`). For checks the driver's own reads cannot make, such as
 * "the attempts of a discarded job are gone".
 */
export async function countRows(tdb: TestDatabase, table: 'jobs' | 'job_attempts' | 'queues', jobId?: string): Promise<number> {
  const column = table === 'job_attempts' ? 'job_id' : 'id';
  const where = jobId === undefined ? '' : ` WHERE ${column} = ?`;
  if (tdb.kind === 'sqlite') {
    const db = openRawSqlite(tdb);
    try {
      const row = db.prepare(`SELECT COUNT(*) AS n FROM ${table}${where}`).get(...(jobId === undefined ? [] : [Number(jobId)])) as { n: number };
      return row.n;
    } finally {
      db.close();
    }
  }
  const client = await openPgClient();
  try {
    const res = await client.query<{ n: string }>(
      `SELECT COUNT(*) AS n FROM "${tdb.schema}".${table}${where.replace('?', '$1')}`,
      jobId === undefined ? [] : [jobId],
    );
    return Number(res.rows[0]!.n);
  } finally {
    await client.end();
  }
}

/** Expects `promise` to reject with an instance of `type`; returns the error for further checks. */
export async function expectRejects<E extends Error>(promise: Promise<unknown>, type: abstract new (...args: never[]) => E): Promise<E> {
  let caught: unknown;
  try {
    await promise;
  } catch (error) {
    caught = error;
  }
  expect(caught, `expected a ${type.name}`).toBeInstanceOf(type);
  return caught as E;
}

/** A Warden or test table's name as raw SQL on this database: schema-qualified on PostgreSQL. */
export function tableRef(tdb: TestDatabase, table: string): string {
  return tdb.kind === 'postgres' ? `"${tdb.schema}".${table}` : table;
}

/** A time as a raw SQL parameter for this database's timestamp columns: integer ms on SQLite, a Date on PostgreSQL. */
export function rawTime(tdb: TestDatabase, date: Date): number | Date {
  return tdb.kind === 'sqlite' ? date.getTime() : date;
}

/**
 * Runs one statement straight on the database, on a fresh raw connection, and returns its rows (none for a
 * statement without results). `?` placeholders (rewritten to `$n` for PostgreSQL); name tables with
 * {@link tableRef}. For setting up states the driver cannot reach (old schemas) and checking raw rows.
 */
export async function rawQuery(tdb: TestDatabase, sql: string, params: unknown[] = []): Promise<Record<string, unknown>[]> {
  if (tdb.kind === 'sqlite') {
    const db = openRawSqlite(tdb);
    try {
      const statement = db.prepare(sql);
      if (statement.reader) return statement.all(...params) as Record<string, unknown>[];
      statement.run(...params);
      return [];
    } finally {
      db.close();
    }
  }
  const client = await openPgClient();
  try {
    let n = 0;
    return (await client.query(sql.replace(/\?/g, () => `$${++n}`), params)).rows as Record<string, unknown>[];
  } finally {
    await client.end();
  }
}

/**
 * Runs one statement through a transaction handle (`Driver.transaction`'s, or an application's): a `pg` client
 * or a better-sqlite3 Database. Same placeholder rules as {@link rawQuery}. Returns its rows.
 */
export async function txQuery(tx: unknown, sql: string, params: unknown[] = []): Promise<Record<string, unknown>[]> {
  if (typeof (tx as { query?: unknown }).query === 'function') {
    let n = 0;
    return (await (tx as pg.ClientBase).query(sql.replace(/\?/g, () => `$${++n}`), params)).rows as Record<string, unknown>[];
  }
  const statement = (tx as Database.Database).prepare(sql);
  if (statement.reader) return statement.all(...params) as Record<string, unknown>[];
  statement.run(...params);
  return [];
}

/**
 * Applies the first `count` migrations of this database's driver straight on a database created with
 * `{ migrate: false }`, recording them in the ledger as `migrate()` would; a later `driver.migrate()` applies
 * the rest. For testing a migration on top of data written under an older schema.
 */
export async function applyMigrationsRaw(tdb: TestDatabase, count: number): Promise<void> {
  if (tdb.kind === 'sqlite') {
    const { SQLITE_MIGRATIONS } = await import('../../src/driver/sqlite/sqlite-migrations.js');
    const SQL = await import('../../src/driver/sqlite/sqlite-sql.js');
    const db = openRawSqlite(tdb);
    try {
      db.exec(SQL.MIGRATIONS_TABLE_CREATE);
      for (const migration of SQLITE_MIGRATIONS.slice(0, count)) {
        db.exec(migration.sql);
        db.prepare(SQL.MIGRATION_RECORD).run({ name: migration.name, now: null });
      }
    } finally {
      db.close();
    }
    return;
  }
  const { POSTGRES_MIGRATIONS } = await import('../../src/driver/postgres/postgres-migrations.js');
  const { buildPostgresStatements } = await import('../../src/driver/postgres/postgres-statements.js');
  const sql = buildPostgresStatements(tdb.schema!);
  const client = await openPgClient();
  try {
    await client.query(sql.schemaCreate);
    await client.query(sql.migrationTableCreate);
    for (const migration of POSTGRES_MIGRATIONS.slice(0, count)) {
      await client.query(migration.sql.replaceAll('{{schema}}', sql.quotedSchema));
      await client.query(sql.migrationRecord, [migration.name]);
    }
  } finally {
    await client.end();
  }
}
