/**
 * Converts PostgreSQL result rows into the driver's row types, and job ids into safe `bigint` parameters.
 *
 * With `pg`'s default type parsers `bigint` arrives as a decimal string (it may not fit a JS number),
 * `timestamptz` as a `Date` and `jsonb` already parsed. Lease tokens are `bigint` in SQL but counted one per
 * claim, so they stay far below 2^53 and are returned as numbers. The global parsers are deliberately left
 * alone: changing them would affect every other `pg` user in the process.
 * @module
 */
import type { AttemptOutcome, AttemptRow, ErrorInfo, JobRow, JobState } from '../../job/job-record.js';

/** A `jobs` row as `pg` returns it for `SELECT *` / `RETURNING *`. */
export interface PgJobRecord {
  id: string;
  name: string;
  queue: string;
  payload: unknown;
  state: JobState;
  priority: number;
  run_at: Date;
  attempt: number;
  max_attempts: number;
  lost_count: number;
  lease_token: string;
  lease_worker: string | null;
  lease_expires_at: Date | null;
  started_at: Date | null;
  key: string | null;
  last_error: ErrorInfo | null;
  created_at: Date;
  updated_at: Date;
  finished_at: Date | null;
}

/** A `job_attempts` row as `pg` returns it. */
export interface PgAttemptRecord {
  job_id: string;
  attempt: number;
  lease_token: string;
  worker_id: string | null;
  started_at: Date | null;
  finished_at: Date;
  outcome: AttemptOutcome;
  error: ErrorInfo | null;
}

/** Maps a `jobs` row to a {@link JobRow}. */
export function toJobRow(r: PgJobRecord): JobRow {
  return {
    id: String(r.id),
    name: r.name,
    queue: r.queue,
    payload: r.payload,
    state: r.state,
    priority: r.priority,
    runAt: r.run_at,
    attempt: r.attempt,
    maxAttempts: r.max_attempts,
    lostCount: r.lost_count,
    leaseToken: Number(r.lease_token),
    leaseWorker: r.lease_worker,
    leaseExpiresAt: r.lease_expires_at,
    startedAt: r.started_at,
    key: r.key,
    lastError: r.last_error,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    finishedAt: r.finished_at,
  };
}

/** Maps a `job_attempts` row to an {@link AttemptRow}. */
export function toAttemptRow(r: PgAttemptRecord): AttemptRow {
  return {
    jobId: String(r.job_id),
    attempt: r.attempt,
    leaseToken: Number(r.lease_token),
    workerId: r.worker_id,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    outcome: r.outcome,
    error: r.error,
  };
}

/** The largest `bigint` value. */
const BIGINT_MAX = 9223372036854775807n;

/**
 * Whether `id` can be sent as a `bigint` parameter. Ids come from callers (CLI, dashboards) as strings; a
 * malformed one must mean "no such job", not a SQL cast error.
 */
export function isJobId(id: unknown): id is string {
  return typeof id === 'string' && /^[0-9]{1,19}$/.test(id) && BigInt(id) <= BIGINT_MAX;
}

/** Compares two decimal id strings numerically (without converting to lossy numbers). */
export function compareIds(a: string, b: string): number {
  const x = BigInt(a);
  const y = BigInt(b);
  return x < y ? -1 : x > y ? 1 : 0;
}
