/**
 * Memoized steps, checkpoints and releases of the PostgreSQL driver (`Driver.jobStepRecord`, `jobStepList`,
 * `jobCheckpoint`, `jobRelease`): each one statement from `postgres-steps-sql.ts`, on the pool or (steps and
 * checkpoints) on the caller's transaction (`tx`).
 * @module
 */
import { InvalidTransactionError } from '../../errors.js';
import { checkLeasedToLimit } from '../check-leased-to-limit.js';
import type {
  GuardedWriteResult, JobCheckpointParams, JobLease, JobLeaseResult, JobReleaseParams, JobStepRecordParams, JobStepRow,
} from '../driver.js';
import type { Run } from './postgres-insert.js';
import { isJobId, toStepRow, type PgStepRecord } from './postgres-rows.js';
import type { PostgresStepStatements } from './postgres-steps-sql.js';
import { isPgClient } from './postgres-transaction.js';

/** What the step and checkpoint operations run on. */
export interface PostgresStepContext {
  /** Runs one statement on any pooled connection. */
  run: Run;
  sql: PostgresStepStatements;
  /** What `tx` must be, for {@link InvalidTransactionError}. */
  transactionHandle: string;
  /** The wake-up channel, `<schema>_jobs`. */
  channel: string;
}

/**
 * The connection to run on: the caller's transaction when `tx` is given, else the pool.
 * @throws InvalidTransactionError when `tx` is given but is not a pg client.
 */
export function runOn(ctx: { run: Run; transactionHandle: string }, tx: unknown): Run {
  if (tx === undefined) return ctx.run;
  if (!isPgClient(tx)) throw new InvalidTransactionError(ctx.transactionHandle, tx);
  return (text, values) => tx.query(text, values);
}

/** A lease that cannot be sent as (`bigint` id, `bigint` token) can never match: report it stale without SQL. */
function isSendable(id: string, leaseToken: number): boolean {
  return isJobId(id) && Number.isSafeInteger(leaseToken);
}

/** Records a step's result if the lease is still held. @throws InvalidTransactionError for a bad `tx`. */
export async function jobStepRecord(ctx: PostgresStepContext, params: JobStepRecordParams): Promise<GuardedWriteResult> {
  const run = runOn(ctx, params.tx);
  if (!isSendable(params.id, params.leaseToken)) return 'stale';
  const { rowCount } = await run(ctx.sql.jobStepRecord, [
    params.id, params.leaseToken, params.name, params.resultJson, params.attempt, params.now,
  ]);
  return (rowCount ?? 0) > 0 ? 'applied' : 'stale';
}

/** A job's steps, oldest first; none for an unknown or malformed id. */
export async function jobStepList(ctx: PostgresStepContext, params: { id: string }): Promise<JobStepRow[]> {
  if (!isJobId(params.id)) return [];
  const { rows } = await ctx.run<PgStepRecord>(ctx.sql.jobStepList, [params.id]);
  return rows.map(toStepRow);
}

/** Saves a checkpoint and progress if the lease is still held. @throws InvalidTransactionError for a bad `tx`. */
export async function jobCheckpoint(ctx: PostgresStepContext, params: JobCheckpointParams): Promise<GuardedWriteResult> {
  const run = runOn(ctx, params.tx);
  if (!isSendable(params.id, params.leaseToken)) return 'stale';
  const { rowCount } = await run(ctx.sql.jobCheckpoint, [
    params.id, params.leaseToken, params.checkpointJson, params.progressDone, params.progressTotal, params.now,
  ]);
  return (rowCount ?? 0) > 0 ? 'applied' : 'stale';
}

/**
 * Hands back never-started claims whose lease is still held (one statement, waking their queues); the rest are
 * stale. A lease listed twice is applied at most once.
 */
export async function jobRelease(ctx: PostgresStepContext, params: JobReleaseParams): Promise<JobLeaseResult> {
  const seen = new Set<string>();
  const leases = params.leases.filter((l) => isSendable(l.id, l.leaseToken) && !seen.has(l.id) && seen.add(l.id));
  const released = new Set<string>();
  if (leases.length > 0) {
    const { rows } = await ctx.run<{ id: string; lease_token: string }>(ctx.sql.jobRelease, [
      leases.map((l) => l.id), leases.map((l) => l.leaseToken), params.now, ctx.channel,
    ]);
    for (const r of rows) released.add(`${String(r.id)}:${Number(r.lease_token)}`);
  }
  const result: JobLeaseResult = { applied: [], stale: [] };
  for (const lease of params.leases) {
    const key = `${lease.id}:${lease.leaseToken}`;
    // Deleting makes a repeat of the same lease stale: it was applied once.
    (released.delete(key) ? result.applied : result.stale).push(lease.id);
  }
  return result;
}

/** The running jobs leased to `workerId` (see `Driver.jobLeasedTo`). @throws InvalidOptionError for a limit outside 1..10,000. */
export async function jobLeasedTo(ctx: PostgresStepContext, params: { workerId: string; limit: number }): Promise<JobLease[]> {
  const limit = checkLeasedToLimit(params.limit);
  const { rows } = await ctx.run<{ id: string; lease_token: string }>(ctx.sql.jobLeasedTo, [params.workerId, limit]);
  return rows.map((r) => ({ id: String(r.id), leaseToken: Number(r.lease_token) }));
}
