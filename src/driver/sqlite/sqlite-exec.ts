/**
 * Running this driver's statements on a better-sqlite3 connection: the prepared-statement cache, parameter
 * conversion, and the insert algorithm, which runs both on the driver's own connection and on an
 * application's `tx` connection (so it cannot depend on the driver instance).
 * @module
 */
import type Database from 'better-sqlite3';
import { InvalidOptionError } from '../../errors.js';
import type { JobInsert, JobInsertResult } from '../driver.js';
import { int, toJobRow, type DbInt, type JobDbRow } from './sqlite-rows.js';
import * as SQL from './sqlite-sql.js';

/** A prepared statement, called with one named-parameter object (or nothing). */
export type Statement = Database.Statement<unknown[], unknown>;

/** Returns the prepared statement for an SQL text on one particular connection. */
export type Prepare = (sql: string) => Statement;

/** The insert-or-find-duplicate loop of one job; more rounds than this means the database is inconsistent. */
const MAX_INSERT_ROUNDS = 5;

/**
 * The prepared statement for `sql` on `db`, taken from `cache` or prepared now and cached. Preparing is the
 * costly part of a statement, and every SQL text here is a constant, so each is prepared once per connection.
 */
export function cachedStatement(cache: Map<string, Statement>, db: Database.Database, sql: string): Statement {
  let statement = cache.get(sql);
  if (!statement) {
    statement = db.prepare(sql) as Statement;
    cache.set(sql, statement);
  }
  return statement;
}

/**
 * `now` (ms) or, when `null`, the database clock, as integer ms. Transactions of several statements call this
 * once and bind the result everywhere, so the attempt row and the job row of one write carry the same time.
 */
export function resolveNow(prepare: Prepare, now: number | null): number {
  return int((prepare(SQL.NOW_SELECT).get({ now }) as { now: DbInt }).now);
}

/**
 * A `now`/`runAt` Date as integer ms for binding; `null` stays `null` (the database clock, or "not set").
 * @throws InvalidOptionError for something that is not a valid Date.
 */
export function toMs(value: Date | null, field: string): number | null {
  if (value === null) return null;
  const ms = value instanceof Date ? value.getTime() : Number.NaN;
  if (Number.isNaN(ms)) throw new InvalidOptionError(field, value, 'a valid Date or null');
  return ms;
}

/**
 * Whether `tx` can carry a transactional enqueue: a better-sqlite3 Database (duck-typed, so an application's
 * own copy of the module passes too) with an open transaction.
 */
export function isSqliteTransaction(tx: unknown): tx is Database.Database {
  if (typeof tx !== 'object' || tx === null) return false;
  const candidate = tx as { prepare?: unknown; inTransaction?: unknown };
  return typeof candidate.prepare === 'function' && candidate.inTransaction === true;
}

/**
 * Inserts jobs in input order through `prepare`, which must be inside a transaction (the driver's
 * `BEGIN IMMEDIATE`, or the application's own). The partial unique index decides duplicates
 * (`ON CONFLICT … DO NOTHING`); the active holder of the key is read only after the insert did nothing, and
 * if it finished in between, the insert is tried again.
 */
export function insertJobs(prepare: Prepare, jobs: readonly JobInsert[], nowParam: number | null): JobInsertResult[] {
  const now = resolveNow(prepare, nowParam);
  const insert = prepare(SQL.JOB_INSERT);
  const activeByKey = prepare(SQL.JOB_GET_ACTIVE_BY_KEY);
  return jobs.map((job) => {
    const values = {
      name: job.name,
      queue: job.queue,
      payload: job.payloadJson,
      priority: job.priority,
      runAt: toMs(job.runAt, 'runAt'),
      delayMs: Math.trunc(job.delayMs),
      maxAttempts: job.maxAttempts,
      key: job.key,
      scheduleName: job.scheduleName ?? null,
      tickAt: toMs(job.tickAt ?? null, 'tickAt'),
      now,
    };
    for (let round = 0; round < MAX_INSERT_ROUNDS; round++) {
      const inserted = insert.get(values) as JobDbRow | undefined;
      if (inserted) return { job: toJobRow(inserted), duplicate: false };
      const existing = job.key === null ? undefined : (activeByKey.get({ key: job.key }) as JobDbRow | undefined);
      if (existing) return { job: toJobRow(existing), duplicate: true };
    }
    throw new Error(
      `Expected job "${job.name}" to be inserted or to find the active job with key ${JSON.stringify(job.key)}, got neither after ${MAX_INSERT_ROUNDS} tries`,
    );
  });
}
