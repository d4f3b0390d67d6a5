/**
 * Key ownership outside inserts, for the PostgreSQL driver: an operator retry makes a finished keyed job active
 * again, so it must take its key's `job_keys` row lock and become the key's holder, like a keyed insert does.
 * @module
 */
import type pg from 'pg';
import { KeyConflictError } from '../../errors.js';
import type { JobState } from '../../job/job-record.js';
import type { Run } from './postgres-insert.js';
import type { PostgresKeyStatements } from './postgres-keys-sql.js';
import type { PgJobRecord } from './postgres-rows.js';
import type { PostgresStatements } from './postgres-statements.js';
import { withTransaction } from './postgres-transaction.js';

/** What the key operations run on. */
export interface PostgresKeyContext {
  pool: pg.Pool;
  /** Runs one statement on any pooled connection. */
  run: Run;
  sql: Pick<PostgresStatements, 'jobRetry'>;
  keySql: Pick<PostgresKeyStatements, 'keyLock' | 'jobKeyOf' | 'jobRetryKeyed'>;
}

/** States an operator retry starts from. */
export const RETRYABLE: readonly JobState[] = ['dead', 'retrying'];

/**
 * Operator retry: `dead`/`retrying` → `queued` due now. A keyed job locks its key's row first; a `dead` one is then
 * refused when any other job with its key is active (not only the job the key row names: see `jobRetryKeyedSql`),
 * and the test and the update are one statement, so two operators (or an operator and a producer) cannot both
 * make a job of the key active. The retried job becomes the key's holder unless another active job holds it.
 * @returns The retried row, or null when the job is missing or not retryable (the caller says which).
 * @throws KeyConflictError when retrying would make a second active job with the job's key.
 */
export async function jobRetry(ctx: PostgresKeyContext, id: string, now: Date | null): Promise<PgJobRecord | null> {
  // The key never changes, so it can be read before the lock; the state is re-checked under the job's row lock.
  const job = (await ctx.run<{ key: string | null; state: JobState }>(ctx.keySql.jobKeyOf, [id])).rows[0];
  if (!job || !RETRYABLE.includes(job.state)) return null;
  const { key } = job;
  if (key === null) return (await ctx.run<PgJobRecord>(ctx.sql.jobRetry, [id, now])).rows[0] ?? null;
  return withTransaction(ctx.pool, async (run) => {
    await run(ctx.keySql.keyLock, [[key]]);
    const [row] = (await run<PgJobRecord & { conflict_id: string | null }>(ctx.keySql.jobRetryKeyed, [id, now])).rows;
    if (row?.conflict_id != null) throw new KeyConflictError(key, String(row.conflict_id));
    return row?.id == null ? null : row;
  });
}
