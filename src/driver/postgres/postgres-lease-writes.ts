/**
 * The lease-guarded writes of a worker for the PostgreSQL driver: heartbeats (`Driver.jobHeartbeat`), attempt
 * endings (`jobFinishMany`, also on the caller's transaction `tx`) and the rescue of expired leases (`jobRescue`);
 * and the look-up of leases not started yet (`jobLeaseCheck`).
 * Each is one statement from `postgres-sql.ts`; heartbeats and endings without `tx` run on the worker pool.
 * @module
 */
import type {
  JobFinish, JobFinishManyParams, JobHeartbeatParams, JobLeaseCheckParams, JobLeaseCheckResult, JobLeaseResult, JobRescueParams, RescuedJob,
} from '../driver.js';
import { isPlainCompletion } from '../is-plain-completion.js';
import { leaseCheckResult } from '../job-params.js';
import { boolArrayParam, floatArrayParam, idArrayParam, intArrayParam, nullableTextArrayParam, wordArrayParam } from './postgres-array-params.js';
import type { Run } from './postgres-insert.js';
import { isJobId } from './postgres-rows.js';
import type { PostgresStatements } from './postgres-statements.js';
import { runOn } from './postgres-steps.js';
import { LEASE_EXPIRED_ERROR } from '../stored-errors.js';
import { HEARTBEAT_WAIT_BEGIN } from './postgres-lease-sql.js';

/** What the lease-guarded writes run on. */
export interface PostgresLeaseWriteContext {
  /** Runs one statement on any pooled connection. */
  run: Run;
  /** Runs one of the worker's statements (claim, endings, heartbeat) on the worker pool. */
  runWorker: Run;
  /** Runs `fn` in a transaction of its own opened by `begin` (statements without parameters), on the worker's connections. */
  inTransaction: <T>(begin: string, fn: (run: Run) => Promise<T>) => Promise<T>;
  sql: Pick<PostgresStatements, 'jobHeartbeat' | 'jobHeartbeatWait' | 'jobLeaseCheck' | 'jobCompleteMany' | 'jobFinishMany' | 'jobRescue'>;
  /** What `tx` must be, for `InvalidTransactionError`. */
  transactionHandle: string;
}

/**
 * Extends each lease still held; the others are reported stale. A lease whose row another transaction holds locked
 * is skipped by the first statement, which renews the others without waiting (see `jobHeartbeatSql`), then tried
 * once more waiting at most `lock_timeout` for its lock (`jobHeartbeatWaitSql`): a short write of the attempt
 * itself is waited for, the attempt's own open transaction is not. One still locked then is reported neither
 * applied nor stale, and renewed by a later beat.
 */
export async function jobHeartbeat(ctx: PostgresLeaseWriteContext, params: JobHeartbeatParams): Promise<JobLeaseResult> {
  const leases = params.leases.filter((l) => isJobId(l.id));
  if (leases.length === 0) return { applied: [], stale: params.leases.map((l) => l.id) };
  const { rows } = await ctx.runWorker<{ id: string; lease_token: string; renewed: boolean }>(ctx.sql.jobHeartbeat, [
    idArrayParam(leases.map((l) => l.id)), intArrayParam(leases.map((l) => l.leaseToken)), params.leaseMs, params.now,
  ]);
  const renewed = appliedTokens(rows.filter((r) => r.renewed));
  const skipped = appliedTokens(rows.filter((r) => !r.renewed));
  if (skipped.size > 0) {
    const ids = [...skipped.keys()];
    try {
      const second = await ctx.inTransaction(HEARTBEAT_WAIT_BEGIN, (run) => run<{ id: string; lease_token: string }>(ctx.sql.jobHeartbeatWait, [
        idArrayParam(ids), intArrayParam(ids.map((id) => skipped.get(id)!)), params.leaseMs, params.now,
      ]));
      // Tried with its lock granted: renewed, or not held any more (stale, below).
      for (const [id, token] of appliedTokens(second.rows)) renewed.set(id, token);
      skipped.clear();
    } catch {
      // Still locked after the wait (`lock_not_available`), or the try failed otherwise (no connection, a deadlock
      // with an application transaction): those leases stay skipped this beat, and what the first statement found
      // (renewals, stale leases, whose attempts must be aborted) is reported all the same. The next beat tries again.
    }
  }
  const result: JobLeaseResult = { applied: [], stale: [] };
  for (const lease of params.leases) {
    if (renewed.get(lease.id) === lease.leaseToken) result.applied.push(lease.id);
    // Stale means lost, and the worker aborts a lost attempt: a lease merely locked this beat is not that.
    else if (skipped.get(lease.id) !== lease.leaseToken) result.stale.push(lease.id);
  }
  return result;
}

/**
 * Which leases no longer hold, and which of those held are in a paused queue (see `Driver.jobLeaseCheck`): one
 * statement (`jobLeaseCheckSql`), on the worker's connections, as the heartbeat. An id that is not a job id is stale.
 */
export async function jobLeaseCheck(ctx: PostgresLeaseWriteContext, params: JobLeaseCheckParams): Promise<JobLeaseCheckResult> {
  const leases = params.leases.filter((l) => isJobId(l.id));
  const rows = leases.length === 0 ? [] : (await ctx.runWorker<{ id: string; lease_token: string; paused: boolean }>(ctx.sql.jobLeaseCheck, [
    idArrayParam(leases.map((l) => l.id)), intArrayParam(leases.map((l) => l.leaseToken)),
  ])).rows;
  return leaseCheckResult(params.leases, rows.map((r) => ({ id: String(r.id), leaseToken: Number(r.lease_token), paused: r.paused })));
}

/**
 * Ends attempts in one statement (on the caller's transaction with `tx`); a lease no longer held is stale and
 * changes nothing. Two endings of one job under different lease tokens (a stale attempt's and the live one's,
 * which the caller may batch together) both go to the database: one statement cannot update a row twice, so a
 * repeated job goes in a second statement (a third for a third token, …), each ending applied or stale by its own
 * guard. Nearly every batch has no repeat and is one statement. The same lease twice is ended once: the repeat is
 * stale. @throws InvalidTransactionError when `tx` is not a pg client.
 */
export async function jobFinishMany(ctx: PostgresLeaseWriteContext, params: JobFinishManyParams): Promise<JobLeaseResult> {
  const run = params.tx === undefined ? ctx.runWorker : runOn(ctx, params.tx);
  /** The lease token of each job whose ending was applied, by id (at most one lease of a job can hold). */
  let applied: Map<string, number> | null = null;
  let pending: readonly JobFinish[] | null = params.items;
  while (pending !== null) {
    const round = firstPerJob(pending);
    if (round.items.length > 0) {
      const done = await finishDistinct(ctx, run, round, params.now);
      if (applied === null) applied = done;
      else for (const [id, token] of done) applied.set(id, token);
    }
    pending = round.repeats;
  }
  // In request order; a lease counted applied once (a repeated item for the same lease was not applied again).
  const result: JobLeaseResult = { applied: [], stale: [] };
  for (const item of params.items) {
    if (applied !== null && applied.get(item.id) === item.leaseToken) {
      applied.delete(item.id);
      result.applied.push(item.id);
    } else {
      result.stale.push(item.id);
    }
  }
  return result;
}

/** One statement's worth of endings: at most one per job ({@link firstPerJob}). */
interface DistinctEndings {
  items: JobFinish[];
  /** The lease token of each item sent, by id. */
  tokens: Map<string, number>;
  /** Endings of a job already in `items` under another lease token, for a later statement; null when none. */
  repeats: JobFinish[] | null;
}

/**
 * Splits endings into the first of each job, sent now, and the repeats of a job under another lease token, sent
 * after. Items that are not job ids and repeats of a lease already in `items` are dropped: they are stale.
 */
function firstPerJob(endings: readonly JobFinish[]): DistinctEndings {
  const round: DistinctEndings = { items: [], tokens: new Map(), repeats: null };
  for (const item of endings) {
    if (!isJobId(item.id)) continue;
    const token = round.tokens.get(item.id);
    if (token === undefined) {
      round.tokens.set(item.id, item.leaseToken);
      round.items.push(item);
    } else if (token !== item.leaseToken) {
      (round.repeats ??= []).push(item);
    }
  }
  return round;
}

/** Ends distinct jobs in one statement. @returns The lease token of each job whose ending was applied, by id. */
async function finishDistinct(ctx: PostgresLeaseWriteContext, run: Run, round: DistinctEndings, now: Date | null): Promise<Map<string, number>> {
  const { items, tokens } = round;
  const ids = idArrayParam(items.map((i) => i.id));
  const leaseTokens = intArrayParam(items.map((i) => i.leaseToken));
  // A batch that only completes jobs (nearly every batch of a drain) has no attempt row to write: the shorter
  // statement skips capturing each row first, and answers with null when it applied every item sent.
  if (items.every(isPlainCompletion)) {
    const { rows } = await run<{ applied: string[] | null }>(ctx.sql.jobCompleteMany, [ids, leaseTokens, now]);
    const appliedIds = rows[0]?.applied ?? null;
    if (appliedIds === null) return tokens;
    const applied = new Map<string, number>();
    for (const id of appliedIds) applied.set(String(id), tokens.get(String(id))!);
    return applied;
  }
  const { rows } = await run<{ id: string; lease_token: string }>(ctx.sql.jobFinishMany, [
    ids,
    leaseTokens,
    wordArrayParam(items.map((i) => i.outcome)),
    wordArrayParam(items.map((i) => i.state)),
    floatArrayParam(items.map((i) => i.retryDelayMs)),
    nullableTextArrayParam(items.map((i) => (i.error === null ? null : JSON.stringify(i.error)))),
    now,
    boolArrayParam(items.map((i) => i.extendAttempts ?? false)),
  ]);
  return appliedTokens(rows);
}

/** Moves running jobs with expired leases to `retrying` (or `dead`), recording a `lost` attempt each. */
export async function jobRescue(ctx: PostgresLeaseWriteContext, params: JobRescueParams): Promise<RescuedJob[]> {
  if (params.limit < 1) return [];
  type Rescued = { id: string; name: string; queue: string; attempt: number; lease_token: string; state: 'retrying' | 'dead' };
  const { rows } = await ctx.run<Rescued>(ctx.sql.jobRescue, [
    params.maxLost, params.limit, JSON.stringify(LEASE_EXPIRED_ERROR), params.now,
  ]);
  return rows.map((r) => ({
    id: String(r.id), name: r.name, queue: r.queue, attempt: r.attempt, leaseToken: Number(r.lease_token), state: r.state,
  }));
}

/**
 * The lease token of each job a statement returned, by id, to match requested leases against (an id is returned
 * at most once: one statement updates a row once). A map of numbers, not a set of `id:token` strings: two strings
 * a job less.
 */
function appliedTokens(rows: readonly { id: string; lease_token: string }[]): Map<string, number> {
  const tokens = new Map<string, number>();
  for (const r of rows) tokens.set(String(r.id), Number(r.lease_token));
  return tokens;
}
