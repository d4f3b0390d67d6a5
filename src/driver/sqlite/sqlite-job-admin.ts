/**
 * Operator actions on single jobs (`jobCancel`, `jobRetry`, `jobDiscard`) and the job and queue reads and queue
 * pauses of the SQLite driver. Each action is one write transaction (the driver's `BEGIN IMMEDIATE`) whose guarded
 * statement either changes the row or matches nothing, and then the action throws, which rolls back whatever it
 * wrote before.
 * @module
 */
import { JobNotFoundError, JobStateError, KeyConflictError } from '../../errors.js';
import type { AttemptRow, JobRow, QueueActivity, QueueStats } from '../../job/job-record.js';
import { checkJobGetManyIds } from '../check-job-get-many-ids.js';
import type { JobGetManyParams, JobListParams } from '../driver.js';
import { jobListBounds, MAX_JOB_ID } from '../job-params.js';
import { CANCELLED_ERROR } from '../stored-errors.js';
import { resolveNow, toMs, type Prepare, type SqliteContext } from './sqlite-exec.js';
import { jobId, parseJobId, toAttemptRow, toJobRow, toQueueActivity, toQueueStats, type AttemptDbRow, type DbInt, type JobDbRow, type QueueActivityDbRow, type QueueDbRow } from './sqlite-rows.js';
import * as AdminSQL from './sqlite-job-admin-sql.js';

/** The largest id, bound as `@beforeId` when not paging so one statement text serves both cases. */
const NO_BEFORE_ID = MAX_JOB_ID;

const CANCELLED_ERROR_JSON = JSON.stringify(CANCELLED_ERROR);

/** @throws JobNotFoundError, JobStateError (not queued/retrying/running). */
export async function jobCancel(ctx: SqliteContext, params: { id: string; now: Date | null }): Promise<JobRow> {
  const id = parseJobId(params.id);
  const nowParam = toMs(params.now, 'now');
  if (id === null) throw new JobNotFoundError(params.id);
  return ctx.write(() => {
    const row = cancelOne(ctx.stmt, id, resolveNow(ctx.stmt, nowParam));
    if (row) return toJobRow(row);
    // Throwing rolls back the attempt row cancelOne may have written.
    throw stateError(ctx.stmt, params.id, 'cancel', ['queued', 'retrying', 'running']);
  });
}

/**
 * Cancels one active job inside the caller's write transaction; the job row, or undefined when it was not
 * active (then the caller must throw, so the transaction rolls back). BEGIN IMMEDIATE holds the write lock, so
 * the attempt insert (running jobs only) and the guarded update see the same row. Shared by `jobCancel` and
 * overlap `replace` in `scheduleAdvance`.
 */
export function cancelOne(stmt: Prepare, id: DbInt, now: number): JobDbRow | undefined {
  stmt(AdminSQL.ATTEMPT_INSERT_CANCELLED).run({ id, error: CANCELLED_ERROR_JSON, now });
  return stmt(AdminSQL.JOB_CANCEL).get({ id, error: CANCELLED_ERROR_JSON, now }) as JobDbRow | undefined;
}

/**
 * Operator retry of a `dead` or `retrying` job, in one write transaction (`BEGIN IMMEDIATE`: no other writer, in any
 * process, can make a job of the key active between the test and the update). A `dead` keyed job is refused when any
 * other job with its key is active: retrying it would make a second one. A `retrying` job is active already, so its
 * retry adds none and never conflicts. The retried job becomes its key's holder unless another active job holds it.
 * @throws JobNotFoundError, JobStateError (not dead/retrying), KeyConflictError.
 */
export async function jobRetry(ctx: SqliteContext, params: { id: string; now: Date | null }): Promise<JobRow> {
  const id = parseJobId(params.id);
  const now = toMs(params.now, 'now');
  if (id === null) throw new JobNotFoundError(params.id);
  return ctx.write(() => {
    const current = ctx.stmt(AdminSQL.JOB_GET).get({ id }) as JobDbRow | undefined;
    if (current?.state === 'dead' && current.key !== null) {
      const other = ctx.stmt(AdminSQL.KEY_OTHER_ACTIVE_JOB).get({ key: current.key, id }) as { id: DbInt } | undefined;
      if (other) throw new KeyConflictError(current.key, jobId(other.id));
    }
    const row = ctx.stmt(AdminSQL.JOB_RETRY).get({ id, now }) as JobDbRow | undefined;
    if (!row) throw stateError(ctx.stmt, params.id, 'retry', ['dead', 'retrying']);
    if (row.key !== null) ctx.stmt(AdminSQL.KEY_TAKE_FOR_RETRY).run({ key: row.key, id: row.id });
    return toJobRow(row);
  });
}

/** @throws JobNotFoundError, JobStateError (running). */
export async function jobDiscard(ctx: SqliteContext, params: { id: string }): Promise<JobRow> {
  const id = parseJobId(params.id);
  if (id === null) throw new JobNotFoundError(params.id);
  return ctx.write(() => {
    // Attempts and steps go first; if the job turns out to be running or missing, the throw rolls this back.
    // Explicit, not ON DELETE CASCADE, so it holds even on a connection opened without foreign keys.
    ctx.stmt(AdminSQL.ATTEMPT_DELETE_BY_JOB).run({ id });
    ctx.stmt(AdminSQL.STEP_DELETE_BY_JOB).run({ id });
    const row = ctx.stmt(AdminSQL.JOB_DELETE).get({ id }) as JobDbRow | undefined;
    if (row) return toJobRow(row);
    throw stateError(ctx.stmt, params.id, 'discard', ['queued', 'retrying', 'completed', 'dead', 'cancelled']);
  });
}

/** After a guarded write matched nothing: why. Runs inside the same transaction. */
function stateError(stmt: Prepare, id: string, action: string, allowed: string[]): Error {
  const row = stmt(AdminSQL.JOB_GET).get({ id: parseJobId(id) }) as JobDbRow | undefined;
  return row ? new JobStateError(id, action, allowed, row.state) : new JobNotFoundError(id);
}

/** One job, or null (also for an id that is not a decimal id). */
export async function jobGet(ctx: SqliteContext, params: { id: string }): Promise<JobRow | null> {
  const id = parseJobId(params.id);
  if (id === null) return null;
  const row = await ctx.read(() => ctx.stmt(AdminSQL.JOB_GET).get({ id }) as JobDbRow | undefined);
  return row ? toJobRow(row) : null;
}

/**
 * The jobs of `ids` that exist, each once, in one statement; an id {@link jobGet} answers null for is left out
 * before the read. @throws InvalidOptionError for more than `JOB_GET_MANY_MAX_IDS` ids.
 */
export async function jobGetMany(ctx: SqliteContext, params: JobGetManyParams): Promise<JobRow[]> {
  const ids: number[] = [];
  for (const text of checkJobGetManyIds(params.ids)) {
    const id = parseJobId(text as string);
    if (id !== null) ids.push(id);
  }
  if (ids.length === 0) return [];
  const rows = await ctx.read(() => ctx.stmt(AdminSQL.JOB_GET_MANY).all({ ids: JSON.stringify(ids) }) as JobDbRow[]);
  return rows.map(toJobRow);
}

/**
 * Jobs newest first, filtered; `limit` and `beforeId` as {@link jobListBounds} reads them, alike on both drivers.
 * @throws InvalidOptionError for a `limit` that is not a whole number or a `beforeId` that is not a job id.
 */
export async function jobList(ctx: SqliteContext, params: JobListParams): Promise<JobRow[]> {
  const { state, queue, name } = params;
  const { limit, beforeId } = jobListBounds(params);
  const sql = AdminSQL.jobListSql({ state: AdminSQL.jobListStateFilter(state), queue: queue !== undefined, name: name !== undefined });
  // A BigInt: ids may pass 2^53, where a number would round. jobListBounds keeps it within SQLite's INTEGER.
  const bind: Record<string, unknown> = { beforeId: beforeId === null ? NO_BEFORE_ID : BigInt(beforeId), limit };
  if (state !== undefined) bind.state = state;
  if (queue !== undefined) bind.queue = queue;
  if (name !== undefined) bind.name = name;
  const rows = await ctx.read(() => ctx.stmt(sql).all(bind) as JobDbRow[]);
  return rows.map(toJobRow);
}

/** A job's finished attempts, oldest first; none for an unknown id. */
export async function jobAttemptList(ctx: SqliteContext, params: { id: string }): Promise<AttemptRow[]> {
  const id = parseJobId(params.id);
  if (id === null) return [];
  const rows = await ctx.read(() => ctx.stmt(AdminSQL.ATTEMPT_LIST).all({ id }) as AttemptDbRow[]);
  return rows.map(toAttemptRow);
}

/** Every queue with jobs or a pause row, with per-state counts and lag, sorted by name. */
export async function queueList(ctx: SqliteContext): Promise<QueueStats[]> {
  const rows = await ctx.read(() => ctx.stmt(AdminSQL.QUEUE_LIST).all({ now: null }) as QueueDbRow[]);
  return rows.map(toQueueStats);
}

/** Every queue with jobs not yet ended or a pause row, with waiting and running counts and lag, sorted by name. */
export async function queueActivity(ctx: SqliteContext): Promise<QueueActivity[]> {
  const rows = await ctx.read(() => ctx.stmt(AdminSQL.QUEUE_ACTIVITY).all({ now: null }) as QueueActivityDbRow[]);
  return rows.map(toQueueActivity);
}

/** Stops claims from a queue (persisted; takes effect for every process). */
export async function queuePause(ctx: SqliteContext, params: { queue: string }): Promise<void> {
  await ctx.write(() => ctx.stmt(AdminSQL.QUEUE_SET_PAUSED).run({ queue: params.queue, paused: 1, now: null }));
}

/** Lets claims from a queue resume. */
export async function queueResume(ctx: SqliteContext, params: { queue: string }): Promise<void> {
  await ctx.write(() => ctx.stmt(AdminSQL.QUEUE_SET_PAUSED).run({ queue: params.queue, paused: 0, now: null }));
}
