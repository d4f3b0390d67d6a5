/**
 * Hand-off to an idle worker (PostgreSQL): the advisory lock key that says a worker is listening, the private
 * channel it is handed jobs on and how it listens there, the statement that withdraws a registration, and the
 * reading of a hand-off notification and, when the notification names it only, of the job. The
 * registering and handing SQL live with the claim (`postgres-lease-sql.ts`) and the single insert (`postgres-sql.ts`); docs/guarantees.md
 * (PostgreSQL specifics, "Hand-off to an idle worker") explains the whole.
 * @module
 */
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { CLAIM_JSON } from './postgres-lease-sql.js';
import type { PgClaimTuple } from './postgres-rows.js';

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

/**
 * The private channel `workerId`'s hand-offs are sent on: `warden_h_` and 32 hex digits of an HMAC-SHA256 of the
 * worker id under `secret`, a random key of the driver instance. The notification carries the job's row, so the
 * name is the only thing keeping other sessions from reading it (any role that can connect may LISTEN on a name
 * it knows): 128 bits nobody can guess, stored only in `handoff_waiters` (readable by the roles that can read
 * `jobs`) and never written in a statement's text (see {@link HANDOFF_LISTEN_SQL}). Derived rather than drawn per
 * worker so the claim that registers the worker and its listener agree without shared state, as
 * {@link handoffLockKey} does.
 */
export function handoffChannel(secret: Buffer, workerId: string): string {
  return `warden_h_${createHmac('sha256', secret).update(workerId).digest('hex').slice(0, 32)}`;
}

/**
 * The hand-off lock key ({@link handoffLockKey}) and private channel ({@link handoffChannel}) of each worker of one
 * driver instance, under a random channel key of its own: a claim that registers needs its worker's, and two
 * hashes per claim are waste.
 */
export class HandoffKeys {
  readonly #schema: string;
  /** The key channel names are derived under: never leaves this instance. */
  readonly #secret = randomBytes(32);
  readonly #byWorker = new Map<string, { lockKey: string; channel: string }>();

  /** @param schema The (validated, unquoted) schema the lock keys are for. */
  constructor(schema: string) {
    this.#schema = schema;
  }

  /** `workerId`'s lock key and channel: the same for the life of this instance. */
  of(workerId: string): { lockKey: string; channel: string } {
    let keys = this.#byWorker.get(workerId);
    if (keys === undefined) {
      // Both derived, so clearing the cache changes neither.
      keys = { lockKey: handoffLockKey(this.#schema, workerId), channel: handoffChannel(this.#secret, workerId) };
      // Workers of one process are few; a process creating workers without end must not grow this without end.
      if (this.#byWorker.size >= 1_000) this.#byWorker.clear();
      this.#byWorker.set(workerId, keys);
    }
    return keys;
  }
}

/** Where {@link HANDOFF_LISTEN_SQL} finds the channel name, set for the session only ({@link HANDOFF_CHANNEL_SET_SQL}). */
const CHANNEL_SETTING = 'warden.handoff_channel';

/**
 * Puts the private channel's name (`$1`) in a session setting for {@link HANDOFF_LISTEN_SQL}: as a parameter it is
 * not in the statement text that `pg_stat_activity` shows other sessions of the role and monitoring roles.
 */
export const HANDOFF_CHANNEL_SET_SQL = `SELECT set_config('${CHANNEL_SETTING}', $1, false)`;

/**
 * LISTENs on the private channel named in the session setting, then clears the setting. `LISTEN` takes no
 * parameter, and its own text is what `pg_stat_statements` (tracking utility statements, its default) keeps and
 * shows to monitoring roles: run from a `DO` block the text is this constant one.
 */
export const HANDOFF_LISTEN_SQL = `DO $$BEGIN
  EXECUTE format('LISTEN %I', current_setting('${CHANNEL_SETTING}'));
  PERFORM set_config('${CHANNEL_SETTING}', '', false);
END$$`;

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
 * Reads a job handed to a worker, on its LISTEN connection, when the notification names it only (its row over
 * `HANDOFF_INLINE_MAX_BYTES` (`postgres-sql.ts`), or sent on the shared channel by an earlier version). The
 * row as the claim returns it ({@link CLAIM_JSON}), while still this worker's (`$2`) under the lease token a
 * hand-off gives (1); nothing when an operator cancelled it meanwhile. `$1` the job id.
 */
export function handoffFetchSql(s: string): string {
  return `SELECT json_build_array(${CLAIM_JSON}) AS job FROM ${s}.jobs
WHERE id = $1::bigint AND state = 'running' AND lease_worker = $2 AND lease_token = 1`;
}

/**
 * A hand-off notification's payload on the shared channel, as a version before migration 0017 sends it (and
 * this one, to a registration such a version wrote, which names no channel): `[worker id, slots left, lease ms,
 * job id]`.
 */
type HandoffPayload = [string, number, number, string];

/** A hand-off notification's payload on the worker's private channel: `[slots left, lease ms, job id, row or null]`. */
type HandedPayload = [number, number, string, PgClaimTuple | null];

/** What a hand-off notification tells its worker. */
export interface HandoffNotice {
  jobId: string;
  leaseMs: number;
  slotsLeft: number;
  /** The job's row as a claim returns it; `null` when it is to be read ({@link handoffFetchSql}). */
  job: PgClaimTuple | null;
}

/** Reads a notification on a worker's private channel: every one there is a hand-off to it. */
export function readHanded(payload: string): HandoffNotice {
  const [slotsLeft, leaseMs, jobId, job] = JSON.parse(payload) as HandedPayload;
  return { jobId, leaseMs, slotsLeft, job };
}

/** Whether a notification's payload on the shared channel is a hand-off (to any worker) rather than a queue's wake-up. */
export function isHandoff(payload: string): boolean {
  // Queue names start with a letter or digit (NAME_PATTERN).
  return payload.startsWith('[');
}

/**
 * Reads the hand-offs to `workerId` among the notifications on the shared channel (every listener sees every
 * one), as a version before migration 0017 sends them: a payload for another worker is recognised by its first
 * element without being parsed. They name the job, never its data: it is read ({@link handoffFetchSql}).
 */
export function handoffReader(workerId: string): (payload: string) => HandoffNotice | null {
  // PostgreSQL's json_build_array writes `["<id>", …`, escaping as JSON.stringify does.
  const prefix = `[${JSON.stringify(workerId)},`;
  return (payload) => {
    if (!payload.startsWith(prefix)) return null;
    const [, slotsLeft, leaseMs, jobId] = JSON.parse(payload) as HandoffPayload;
    return { jobId, leaseMs, slotsLeft, job: null };
  };
}

