/**
 * Hand-off to an idle worker (PostgreSQL): the advisory lock key that says a worker is listening, the statement
 * that withdraws a registration, and the reading of a hand-off notification and of the job it names. The
 * registering and handing SQL live with the claim (`postgres-lease-sql.ts`) and the single insert (`postgres-sql.ts`); docs/guarantees.md
 * (PostgreSQL specifics, "Hand-off to an idle worker") explains the whole.
 * @module
 */
import { createHash } from 'node:crypto';
import { CLAIM_JSON } from './postgres-lease-sql.js';

/**
 * The session advisory lock key of `workerId`'s LISTEN connection in `schema`: the first 8 bytes of a SHA-256 of
 * both, as the signed `bigint` PostgreSQL's advisory locks take (decimal text, so no precision is lost in JS).
 * Derived, not stored, so the claim that registers the worker and the listener that holds the lock agree without
 * talking; SHA-256 rather than a short hash so the 64-bit key does not meet an application's advisory lock keys.
 */
export function handoffLockKey(schema: string, workerId: string): string {
  const digest = createHash('sha256').update(`warden-handoff\u0000${schema}\u0000${workerId}`).digest();
  return digest.readBigInt64BE(0).toString();
}

/** Takes the worker's hand-off lock on its LISTEN connection, without waiting. `$1` the key. Returns `ok`. */
export const HANDOFF_LOCK_SQL = 'SELECT pg_try_advisory_lock($1::bigint) AS ok';

/**
 * Takes it waiting (after {@link HANDOFF_LOCK_TIMEOUT_SQL}): an enqueue that found the lock free while this worker
 * reconnected holds it shared until its commit, a few milliseconds.
 */
export const HANDOFF_LOCK_WAIT_SQL = 'SELECT pg_advisory_lock($1::bigint)';
/** Bounds that wait (reset after it): an earlier session of this worker not yet seen dead may hold the lock. */
export const HANDOFF_LOCK_TIMEOUT_SQL = "SET lock_timeout = '2s'";
/** Back to the server's lock timeout for the rest of the session (the reads of handed jobs). */
export const HANDOFF_LOCK_TIMEOUT_RESET_SQL = 'RESET lock_timeout';

/**
 * Withdraws a registration. Its `DELETE` waits for an enqueue holding the row (handing a job to this worker right
 * now) to commit, so when it returns every job handed to the worker is committed, and none follows.
 */
export function handoffWithdrawSql(s: string): string {
  return `DELETE FROM ${s}.handoff_waiters WHERE worker_id = $1`;
}

/**
 * Reads a job handed to a worker, on its LISTEN connection: the notification names the job, never its data. The
 * row as the claim returns it ({@link CLAIM_JSON}), while still this worker's (`$2`) under the lease token a
 * hand-off gives (1); nothing when an operator cancelled it meanwhile. `$1` the job id.
 */
export function handoffFetchSql(s: string): string {
  return `SELECT json_build_array(${CLAIM_JSON}) AS job FROM ${s}.jobs
WHERE id = $1::bigint AND state = 'running' AND lease_worker = $2 AND lease_token = 1`;
}

/** A hand-off notification's payload: `[worker id, slots left, lease ms, job id]`. */
type HandoffPayload = [string, number, number, string];

/** What a hand-off notification tells its worker. */
export interface HandoffNotice {
  jobId: string;
  leaseMs: number;
  slotsLeft: number;
}

/** Whether a notification's payload is a hand-off (to any worker) rather than a queue's wake-up. */
export function isHandoff(payload: string): boolean {
  // Queue names start with a letter or digit (NAME_PATTERN).
  return payload.startsWith('[');
}

/**
 * Reads the hand-offs to `workerId` among the notifications on the channel (every listener sees every one): a
 * payload for another worker is recognised by its first element without being parsed.
 */
export function handoffReader(workerId: string): (payload: string) => HandoffNotice | null {
  // PostgreSQL's json_build_array writes `["<id>", …`, escaping as JSON.stringify does.
  const prefix = `[${JSON.stringify(workerId)},`;
  return (payload) => {
    if (!payload.startsWith(prefix)) return null;
    const [, slotsLeft, leaseMs, jobId] = JSON.parse(payload) as HandoffPayload;
    return { jobId, leaseMs, slotsLeft };
  };
}

