/**
 * The lease-guarded writes after a claim. On the driver's connection only: lease renewals (`jobHeartbeat`), hand
 * backs of never-started claims (`jobRelease`) and the rescue of expired leases (`jobRescue`), and the look-up of
 * leases not started yet (`jobLeaseCheck`). Also inside an
 * application's transaction (`tx`): attempt endings (`jobFinishMany`), memoized steps (`jobStepRecord`) and
 * checkpoints (`jobCheckpoint`); plus the step list. Each write matches `id AND lease_token AND state = 'running'`
 * and runs in a write transaction (the driver's `BEGIN IMMEDIATE` or the caller's), so a rescue or cancel cannot
 * come between the guard and the write.
 * @module
 */
import type {
  GuardedWriteResult, JobCheckpointParams, JobFinish, JobFinishManyParams, JobHeartbeatParams, JobLease, JobLeaseCheckParams,
  JobLeaseCheckResult, JobLeaseResult, JobReleaseParams, JobRescueParams, JobStepRecordParams, JobStepRow, RescuedJob,
} from '../driver.js';
import { checkLeasedToLimit } from '../check-leased-to-limit.js';
import { leaseCheckResult } from '../job-params.js';
import { isPlainCompletion } from '../is-plain-completion.js';
import { LEASE_EXPIRED_ERROR } from '../stored-errors.js';
import { resolveNow, toMs, writeWith, type Prepare, type SqliteContext } from './sqlite-exec.js';
import { int, jobId, parseJobId, toStepRow, type DbInt, type RescueDbRow, type StepDbRow } from './sqlite-rows.js';
import * as LeaseSQL from './sqlite-lease-sql.js';
import * as StepSQL from './sqlite-step-sql.js';

const LEASE_EXPIRED_ERROR_JSON = JSON.stringify(LEASE_EXPIRED_ERROR);

/** Extends each lease still held by `leaseMs` from now; the others are stale. */
export async function jobHeartbeat(ctx: SqliteContext, params: JobHeartbeatParams): Promise<JobLeaseResult> {
  const leaseMs = Math.trunc(params.leaseMs);
  return eachLease(ctx, params.leases, toMs(params.now, 'now'), (id, leaseToken, now) =>
    ctx.stmt(LeaseSQL.JOB_HEARTBEAT).run({ id, leaseToken, leaseMs, now }).changes > 0,
  );
}

/** Hands back claimed jobs that never started (`queued`, the claim's attempt taken back); lost leases are stale. */
export async function jobRelease(ctx: SqliteContext, params: JobReleaseParams): Promise<JobLeaseResult> {
  return eachLease(ctx, params.leases, toMs(params.now, 'now'), (id, leaseToken, now) =>
    ctx.stmt(LeaseSQL.JOB_RELEASE).run({ id, leaseToken, now }).changes > 0,
  );
}

/**
 * Which leases no longer hold, and which of those held are in a paused queue (see `Driver.jobLeaseCheck`): one read,
 * {@link LeaseSQL.JOB_LEASE_CHECK}. An id that is not a job id is stale.
 */
export async function jobLeaseCheck(ctx: SqliteContext, params: JobLeaseCheckParams): Promise<JobLeaseCheckResult> {
  const pairs: [number, number][] = [];
  for (const lease of params.leases) {
    const id = parseJobId(lease.id);
    if (id !== null) pairs.push([id, lease.leaseToken]);
  }
  const rows = pairs.length === 0 ? [] : await ctx.read(() =>
    ctx.stmt(LeaseSQL.JOB_LEASE_CHECK).all({ leases: JSON.stringify(pairs) }) as { id: DbInt; lease_token: DbInt; paused: DbInt }[]);
  return leaseCheckResult(params.leases, rows.map((r) => ({ id: String(r.id), leaseToken: Number(r.lease_token), paused: Number(r.paused) === 1 })));
}

/** The running jobs leased to `workerId` (see `Driver.jobLeasedTo`). @throws InvalidOptionError for a limit outside 1..10,000. */
export async function jobLeasedTo(ctx: SqliteContext, params: { workerId: string; limit: number }): Promise<JobLease[]> {
  const limit = checkLeasedToLimit(params.limit);
  const rows = await ctx.read(() => ctx.stmt(LeaseSQL.JOB_LEASED_TO).all({ workerId: params.workerId, limit }) as { id: DbInt; lease_token: DbInt }[]);
  return rows.map((r) => ({ id: String(r.id), leaseToken: Number(r.lease_token) }));
}

/**
 * One guarded statement per lease in one write transaction, reported in request order: applied when `write`
 * changed its row, stale otherwise (including an id that is not a job id).
 */
async function eachLease(
  ctx: SqliteContext,
  leases: readonly { id: string; leaseToken: number }[],
  nowParam: number | null,
  write: (id: number, leaseToken: number, now: number) => boolean,
): Promise<JobLeaseResult> {
  if (leases.length === 0) return { applied: [], stale: [] };
  return ctx.write(() => {
    const now = resolveNow(ctx.stmt, nowParam);
    const result: JobLeaseResult = { applied: [], stale: [] };
    for (const lease of leases) {
      const id = parseJobId(lease.id);
      const held = id !== null && write(id, lease.leaseToken, now);
      (held ? result.applied : result.stale).push(lease.id);
    }
    return result;
  });
}

/** Moves running jobs with expired leases to `retrying` (or `dead`), recording a `lost` attempt each. */
export async function jobRescue(ctx: SqliteContext, params: JobRescueParams): Promise<RescuedJob[]> {
  const nowParam = toMs(params.now, 'now');
  if (params.limit < 1) return [];
  return ctx.write(() => {
    const now = resolveNow(ctx.stmt, nowParam);
    const candidates = ctx.stmt(LeaseSQL.JOB_RESCUE_CANDIDATES).all({ limit: Math.trunc(params.limit), now }) as { id: DbInt; lease_token: DbInt }[];
    const rescued: RescuedJob[] = [];
    for (const c of candidates) {
      const lease = { id: c.id, leaseToken: c.lease_token, now, error: LEASE_EXPIRED_ERROR_JSON };
      if (ctx.stmt(LeaseSQL.ATTEMPT_INSERT_FROM_LEASE).run({ ...lease, outcome: 'lost' }).changes === 0) continue;
      const r = ctx.stmt(LeaseSQL.JOB_RESCUE).get({ ...lease, maxLost: params.maxLost }) as RescueDbRow | undefined;
      if (r) rescued.push({ id: jobId(r.id), name: r.name, queue: r.queue, attempt: int(r.attempt), leaseToken: int(r.lease_token), state: r.state });
    }
    return rescued;
  });
}

/**
 * Applies attempt endings, each guarded by its lease, on the driver's connection or through `tx`.
 * @throws InvalidTransactionError when `tx` is not a better-sqlite3 Database inside a transaction.
 */
export async function jobFinishMany(ctx: SqliteContext, params: JobFinishManyParams): Promise<JobLeaseResult> {
  const { items, tx } = params;
  const now = toMs(params.now, 'now');
  // With a tx, validate it even for an empty batch, as jobInsertMany does: a wrong handle is a bug either way.
  if (items.length === 0 && tx === undefined) return { applied: [], stale: [] };
  return writeWith(ctx, tx, (prepare) => finishJobs(prepare, items, now));
}

/**
 * The endings inside one write transaction; an attempt row for each applied one that does not complete its job
 * (a completing attempt is kept on the job row). The statements end each job at most once, so endings of one job
 * under different lease tokens (a stale attempt's and the live one's, which the caller may batch together) go in
 * rounds: the first ending of each job, then the repeats under another token, each applied or stale by its own
 * guard. Nearly every batch has no repeat and is one round. The same lease twice is ended once: the repeat is stale.
 */
function finishJobs(prepare: Prepare, items: readonly JobFinish[], nowParam: number | null): JobLeaseResult {
  const result: JobLeaseResult = { applied: [], stale: [] };
  if (items.length === 0) return result;
  const now = resolveNow(prepare, nowParam);
  /** The lease token of each job whose ending was applied, by item id (at most one lease of a job can hold). */
  const applied = new Map<string, number>();
  let pending: readonly JobFinish[] | null = items;
  while (pending !== null) pending = finishRound(prepare, pending, now, applied);
  // In request order; a lease counted applied once (a repeated item for the same lease was not applied again).
  for (const item of items) {
    if (applied.get(item.id) === item.leaseToken) {
      applied.delete(item.id);
      result.applied.push(item.id);
    } else {
      result.stale.push(item.id);
    }
  }
  return result;
}

/**
 * Ends the first ending of each job among `items` (ids distinct, as the statements need), adding the leases applied
 * to `applied`. Items that are not job ids, and repeats of a lease already in this round, are left out: stale.
 * @returns The repeats of a job under another lease token, for the next round; null when there are none.
 */
function finishRound(prepare: Prepare, items: readonly JobFinish[], now: number, applied: Map<string, number>): JobFinish[] | null {
  // A batch that only completes jobs (nearly every batch of a drain) goes through the shorter statement.
  const plain = items.every(isPlainCompletion);
  const batch: unknown[][] = [];
  /** The item id of each `batch` entry (a job id as the caller wrote it, which `parseJobId` accepted). */
  const batchIds: string[] = [];
  /** The lease token sent for each job, by item id. */
  const tokens = new Map<string, number>();
  let repeats: JobFinish[] | null = null;
  for (const item of items) {
    const id = parseJobId(item.id);
    if (id === null) continue;
    const token = tokens.get(item.id);
    if (token !== undefined) {
      if (token !== item.leaseToken) (repeats ??= []).push(item);
      continue;
    }
    tokens.set(item.id, item.leaseToken);
    batchIds.push(item.id);
    if (plain) {
      batch.push([id, item.leaseToken]);
      continue;
    }
    const error = item.error === null ? null : JSON.stringify(item.error);
    batch.push([id, item.leaseToken, item.outcome, item.state, Math.trunc(item.retryDelayMs), error, item.extendAttempts === true ? 1 : 0]);
  }
  if (batch.length === 0) return repeats;
  const json = JSON.stringify(batch);
  if (plain) {
    for (const id of completeJobs(prepare, json, now, batchIds)) applied.set(id, tokens.get(id)!);
  } else {
    // The attempt rows first: they copy attempt/worker/started_at that the job update then clears.
    prepare(LeaseSQL.ATTEMPT_INSERT_FROM_LEASES).run({ items: json, now });
    for (const row of prepare(LeaseSQL.JOB_FINISH_MANY).all({ items: json, now }) as { id: DbInt }[]) {
      const id = String(row.id);
      applied.set(id, tokens.get(id)!);
    }
  }
  return repeats;
}

/**
 * Completes the jobs of a batch of plain completions (`json`: distinct `[id, leaseToken]` pairs, `ids` their item
 * ids in order). Counted, not returned: when the statement completed every job, they all applied; otherwise (a
 * lease lost meanwhile, rare) it is undone to its savepoint and run again returning the ids, so the split into
 * applied and stale is exact. A failing statement leaves the savepoint rolled back and released before the error
 * goes on, so a caller's transaction (`tx`) is left as it was.
 * @returns The ids completed: `ids` itself when all were.
 */
function completeJobs(prepare: Prepare, json: string, now: number, ids: readonly string[]): readonly string[] {
  let completed: readonly string[];
  prepare(LeaseSQL.COMPLETE_SAVEPOINT).run();
  try {
    if (prepare(LeaseSQL.JOB_COMPLETE_MANY_COUNTED).run({ items: json, now }).changes === ids.length) {
      completed = ids;
    } else {
      prepare(LeaseSQL.COMPLETE_ROLLBACK).run();
      completed = (prepare(LeaseSQL.JOB_COMPLETE_MANY).all({ items: json, now }) as { id: DbInt }[]).map((row) => String(row.id));
    }
  } catch (error) {
    try {
      prepare(LeaseSQL.COMPLETE_ROLLBACK).run();
      prepare(LeaseSQL.COMPLETE_RELEASE).run();
    } catch {
      // The transaction itself is gone (SQLite rolled it back): so is the savepoint; the first error tells why.
    }
    throw error;
  }
  prepare(LeaseSQL.COMPLETE_RELEASE).run();
  return completed;
}

/**
 * Records a step's result while the lease holds (`created_at = now`).
 * @throws InvalidTransactionError when `tx` is not a better-sqlite3 Database inside a transaction; the database's
 * constraint error when the step name was already recorded for this job.
 */
export async function jobStepRecord(ctx: SqliteContext, params: JobStepRecordParams): Promise<GuardedWriteResult> {
  const id = parseJobId(params.id);
  const bind = {
    id,
    leaseToken: params.leaseToken,
    name: params.name,
    result: params.resultJson,
    attempt: params.attempt,
    now: toMs(params.now, 'now'),
  };
  return writeWith(ctx, params.tx, (prepare) =>
    id !== null && prepare(StepSQL.STEP_RECORD).run(bind).changes > 0 ? 'applied' : 'stale',
  );
}

/** A job's recorded steps, oldest first; none for an unknown id. */
export async function jobStepList(ctx: SqliteContext, params: { id: string }): Promise<JobStepRow[]> {
  const id = parseJobId(params.id);
  if (id === null) return [];
  const rows = await ctx.read(() => ctx.stmt(StepSQL.STEP_LIST).all({ id }) as StepDbRow[]);
  return rows.map(toStepRow);
}

/**
 * Saves a checkpoint and its progress while the lease holds (`checkpoint_at = updated_at = now`).
 * @throws InvalidTransactionError when `tx` is not a better-sqlite3 Database inside a transaction.
 */
export async function jobCheckpoint(ctx: SqliteContext, params: JobCheckpointParams): Promise<GuardedWriteResult> {
  const id = parseJobId(params.id);
  const bind = {
    id,
    leaseToken: params.leaseToken,
    checkpoint: params.checkpointJson,
    progressDone: params.progressDone,
    progressTotal: params.progressTotal,
    now: toMs(params.now, 'now'),
  };
  return writeWith(ctx, params.tx, (prepare) =>
    id !== null && prepare(StepSQL.JOB_CHECKPOINT).run(bind).changes > 0 ? 'applied' : 'stale',
  );
}
