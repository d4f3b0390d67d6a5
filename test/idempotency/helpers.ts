/**
 * Shared helpers for the idempotency tests (`ctx.step`, `ctx.transaction`, `ctx.iterate`, dedup windows): an
 * application table written through Warden's transaction handle, read back through an independent connection,
 * and small utilities for inspecting jobs.
 * @module
 */
import { expect } from 'vitest';
import type { Warden } from '../../src/client/warden.js';
import type { WardenError } from '../../src/errors.js';
import type { TransactionHandle } from '../../src/job/job-context-options.js';
import type { AttemptRow, JobRow } from '../../src/job/job-record.js';
import { type Oracle } from '../process/db-oracle.js';
import type { TestDatabase } from '../support/test-databases.js';

/** A retry policy that makes every retry due exactly 1 s after the failure (fake clock friendly). */
export const RETRY_1S = { type: 'fixed', base: '1s', jitter: 'none' } as const;

/**
 * An application table `(id, job_id, tag)` in the test database. Rows are written through a transaction handle
 * Warden hands out (`ctx.transaction`, `{ transaction: true }` steps and batches): a better-sqlite3 Database on
 * SQLite, a `pg` client on PostgreSQL. They are read back through the oracle, a connection of its own, so only
 * committed rows are ever seen.
 */
export interface AppTable {
  readonly name: string;
  /** Inserts one row through `tx`, inside the transaction that handle belongs to. */
  insert(tx: TransactionHandle, jobId: string, tag: string): Promise<void>;
  /** Committed rows, in insertion order. */
  rows(): Promise<{ jobId: string; tag: string }[]>;
  /** Committed rows of one job, their tags in insertion order. */
  tags(jobId: string): Promise<string[]>;
}

/** Creates the application table `name` in `tdb` (through `oracle`) and returns its accessors. */
export async function createAppTable(tdb: TestDatabase, oracle: Oracle, name = 'app_effects'): Promise<AppTable> {
  await oracle.exec(
    tdb.kind === 'sqlite'
      ? `CREATE TABLE {${name}} (id INTEGER PRIMARY KEY, job_id TEXT NOT NULL, tag TEXT NOT NULL)`
      : `CREATE TABLE {${name}} (id bigserial PRIMARY KEY, job_id text NOT NULL, tag text NOT NULL)`,
  );
  const qualified = tdb.kind === 'sqlite' ? name : `"${tdb.schema!}".${name}`;
  const insert =
    tdb.kind === 'sqlite'
      ? async (tx: TransactionHandle, jobId: string, tag: string) => {
          (tx as { prepare(sql: string): { run(...args: unknown[]): unknown } }).prepare(`INSERT INTO ${qualified} (job_id, tag) VALUES (?, ?)`).run(jobId, tag);
        }
      : async (tx: TransactionHandle, jobId: string, tag: string) => {
          await (tx as { query(sql: string, values: unknown[]): Promise<unknown> }).query(`INSERT INTO ${qualified} (job_id, tag) VALUES ($1, $2)`, [jobId, tag]);
        };
  const rows = async () =>
    (await oracle.all<{ job_id: unknown; tag: string }>(`SELECT job_id, tag FROM {${name}} ORDER BY id`)).map((r) => ({ jobId: String(r.job_id), tag: r.tag }));
  return {
    name,
    insert,
    rows,
    tags: async (jobId) => (await rows()).filter((r) => r.jobId === jobId).map((r) => r.tag),
  };
}

/** A job that must exist. */
export async function getJob(warden: Warden, id: string): Promise<JobRow> {
  const row = await warden.jobs.get(id);
  expect(row, `job ${id}`).not.toBeNull();
  return row!;
}

/** A job's finished attempts as `[attempt, outcome, error name or null]`. */
export async function attemptSummary(warden: Warden, id: string): Promise<[number, AttemptRow['outcome'], string | null][]> {
  return (await warden.jobs.attempts(id)).map((a) => [a.attempt, a.outcome, a.error?.name ?? null]);
}

/** Asserts that `error` is an instance of `type` whose message is worded "Expected …, got …". */
export function expectTyped<E extends WardenError>(error: unknown, type: abstract new (...args: any[]) => E): E {
  expect(error, `expected a ${type.name}`).toBeInstanceOf(type);
  const typed = error as E;
  expect(typed.name).toBe(type.name);
  expect(typed.message).toMatch(/^Expected .*, got /s);
  return typed;
}

/** Runs `fn` and returns what it threw (or rejected with); fails the test when it did not throw. */
export async function caught(fn: () => unknown): Promise<unknown> {
  try {
    await fn();
  } catch (error) {
    return error;
  }
  expect.fail('expected the call to throw');
}
