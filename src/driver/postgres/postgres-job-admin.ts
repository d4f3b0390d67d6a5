/**
 * Operator actions and reads of the PostgreSQL driver: cancel, retry and discard of one job (`Driver.jobCancel`,
 * `jobRetry`, `jobDiscard`), the job, attempt and queue reads (`jobGet`, `jobGetMany`, `jobList`, `jobAttemptList`,
 * `queueList`, `queueActivity`) and queue pausing (`queuePause`, `queueResume`). Each is one statement from
 * `postgres-sql.ts` on the pool, except a keyed retry (`postgres-keys.ts`).
 * @module
 */
import { JobNotFoundError, JobStateError } from '../../errors.js';
import type { AttemptRow, JobRow, JobState, QueueActivity, QueueStats } from '../../job/job-record.js';
import { checkJobGetManyIds } from '../check-job-get-many-ids.js';
import type { JobGetManyParams, JobListParams } from '../driver.js';
import { jobListBounds } from '../job-params.js';
import { idArrayParam } from './postgres-array-params.js';
import type { Run } from './postgres-insert.js';
import * as Keys from './postgres-keys.js';
import { isJobId, toAttemptRow, toJobRow, type PgAttemptRecord, type PgJobRecord } from './postgres-rows.js';
import type { PostgresStatements } from './postgres-statements.js';
import { CANCELLED_ERROR } from '../stored-errors.js';

/** What the operator actions and reads run on. */
export interface PostgresJobAdminContext {
  /** Runs one statement on any pooled connection. */
  run: Run;
  sql: Pick<PostgresStatements, 'jobCancel' | 'jobDiscard' | 'jobGet' | 'jobGetMany' | 'jobList' | 'jobAttemptList' | 'queueList' | 'queueActivity' | 'queueSetPaused'>;
  /** What operator retry's key handling (`postgres-keys.ts`) runs on. */
  keys: Keys.PostgresKeyContext;
}

/** States a job can be cancelled from. */
const CANCELLABLE: readonly JobState[] = ['queued', 'retrying', 'running'];
/** States a job can be discarded from. */
const DISCARDABLE: readonly JobState[] = ['queued', 'retrying', 'completed', 'dead', 'cancelled'];

/**
 * Cancels a queued, retrying or running job.
 * @throws JobNotFoundError, or JobStateError when it already finished.
 */
export async function jobCancel(ctx: PostgresJobAdminContext, params: { id: string; now: Date | null }): Promise<JobRow> {
  const { id } = params;
  if (!isJobId(id)) throw new JobNotFoundError(id);
  const { rows } = await ctx.run<PgJobRecord>(ctx.sql.jobCancel, [id, JSON.stringify(CANCELLED_ERROR), params.now]);
  if (rows[0]) return toJobRow(rows[0]);
  throw await stateError(ctx, id, 'cancel', CANCELLABLE);
}

/**
 * Operator retry of a `dead` or `retrying` job: `queued`, due now, with at least one more attempt; a keyed job
 * becomes its key's holder. Checkpoint and steps are kept.
 * @throws JobNotFoundError, JobStateError, or KeyConflictError when retrying would make a second active job with
 * its key (see `postgres-keys.ts`).
 */
export async function jobRetry(ctx: PostgresJobAdminContext, params: { id: string; now: Date | null }): Promise<JobRow> {
  const { id } = params;
  if (!isJobId(id)) throw new JobNotFoundError(id);
  const row = await Keys.jobRetry(ctx.keys, id, params.now);
  if (row) return toJobRow(row);
  throw await stateError(ctx, id, 'retry', Keys.RETRYABLE);
}

/**
 * Deletes a job that is not running, with its attempts, and returns it.
 * @throws JobNotFoundError, or JobStateError when it is running.
 */
export async function jobDiscard(ctx: PostgresJobAdminContext, params: { id: string }): Promise<JobRow> {
  const { id } = params;
  if (!isJobId(id)) throw new JobNotFoundError(id);
  const { rows } = await ctx.run<PgJobRecord>(ctx.sql.jobDiscard, [id]);
  if (rows[0]) return toJobRow(rows[0]);
  throw await stateError(ctx, id, 'discard', DISCARDABLE);
}

/** One job, or null (also for an id that is not a decimal bigint). */
export async function jobGet(ctx: PostgresJobAdminContext, params: { id: string }): Promise<JobRow | null> {
  if (!isJobId(params.id)) return null;
  const { rows } = await ctx.run<PgJobRecord>(ctx.sql.jobGet, [params.id]);
  return rows[0] ? toJobRow(rows[0]) : null;
}

/**
 * The jobs of `ids` that exist, each once, in one statement; an id {@link jobGet} answers null for is left out
 * before the read. @throws InvalidOptionError for more than `JOB_GET_MANY_MAX_IDS` ids.
 */
export async function jobGetMany(ctx: PostgresJobAdminContext, params: JobGetManyParams): Promise<JobRow[]> {
  const ids = checkJobGetManyIds(params.ids).filter(isJobId);
  if (ids.length === 0) return [];
  const { rows } = await ctx.run<PgJobRecord>(ctx.sql.jobGetMany, [idArrayParam(ids)]);
  return rows.map(toJobRow);
}

/**
 * Jobs newest first, filtered; `limit` and `beforeId` as {@link jobListBounds} reads them, alike on both drivers.
 * @throws InvalidOptionError for a `limit` that is not a whole number or a `beforeId` that is not a job id.
 */
export async function jobList(ctx: PostgresJobAdminContext, params: JobListParams): Promise<JobRow[]> {
  const { limit, beforeId } = jobListBounds(params);
  const { rows } = await ctx.run<PgJobRecord>(ctx.sql.jobList, [
    params.state ?? null, params.queue ?? null, params.name ?? null, beforeId, limit,
  ]);
  return rows.map(toJobRow);
}

/** A job's finished attempts, oldest first. */
export async function jobAttemptList(ctx: PostgresJobAdminContext, params: { id: string }): Promise<AttemptRow[]> {
  if (!isJobId(params.id)) return [];
  const { rows } = await ctx.run<PgAttemptRecord>(ctx.sql.jobAttemptList, [params.id]);
  return rows.map(toAttemptRow);
}

/** Every queue with jobs or a pause row, with per-state counts and lag, sorted by name. */
export async function queueList(ctx: PostgresJobAdminContext): Promise<QueueStats[]> {
  type Row = { queue: string; paused: boolean; lag_ms: number } & Record<JobState, number>;
  const { rows } = await ctx.run<Row>(ctx.sql.queueList);
  return rows.map((r) => ({
    queue: r.queue,
    paused: r.paused,
    counts: {
      queued: r.queued, retrying: r.retrying, running: r.running,
      completed: r.completed, dead: r.dead, cancelled: r.cancelled,
    },
    lagMs: r.lag_ms,
  }));
}

/** Every queue with jobs not yet ended or a pause row, with waiting and running counts and lag, sorted by name. */
export async function queueActivity(ctx: PostgresJobAdminContext): Promise<QueueActivity[]> {
  type Row = { queue: string; paused: boolean; queued: number; retrying: number; running: number; lag_ms: number };
  const { rows } = await ctx.run<Row>(ctx.sql.queueActivity);
  return rows.map((r) => ({ queue: r.queue, paused: r.paused, counts: { queued: r.queued, retrying: r.retrying, running: r.running }, lagMs: r.lag_ms }));
}

/** Stops claims from a queue (persisted; takes effect for every process). */
export async function queuePause(ctx: PostgresJobAdminContext, params: { queue: string }): Promise<void> {
  await ctx.run(ctx.sql.queueSetPaused, [params.queue, true]);
}

/** Lets claims from a queue resume. */
export async function queueResume(ctx: PostgresJobAdminContext, params: { queue: string }): Promise<void> {
  await ctx.run(ctx.sql.queueSetPaused, [params.queue, false]);
}

/** Builds the error for an operator action that matched no row: not found, or in the wrong state. */
async function stateError(ctx: PostgresJobAdminContext, id: string, action: string, allowed: readonly JobState[]): Promise<Error> {
  const job = await jobGet(ctx, { id });
  if (!job) return new JobNotFoundError(id);
  return new JobStateError(id, action, allowed, job.state);
}
