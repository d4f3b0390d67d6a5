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
import type { JobStepRow } from '../driver.js';
import type { LockRow } from '../lock-params.js';
import type { ScheduleRow, ScheduleTickRow } from '../schedule-params.js';
import { timestamptzFromJson } from './postgres-timestamps.js';

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
  schedule_name: string | null;
  tick_at: Date | null;
  checkpoint: unknown;
  /** `bigint`, so a decimal string. */
  progress_done: string | null;
  progress_total: string | null;
  checkpoint_at: Date | null;
  /** jsonb, parsed (migration 0007). */
  trace_context?: Record<string, string> | null;
}

/**
 * A claimed job as the claim returns it: a JSON array of `CLAIM_FIELDS` (`postgres-sql.ts`), without the fields
 * the claim sets to values the caller knows. Timestamps are their JSON text, bigints other than `id` JSON numbers.
 */
export type PgClaimTuple = [
  id: string, name: string, queue: string, payload: unknown, priority: number, runAt: string, attempt: number,
  maxAttempts: number, lostCount: number, leaseToken: number, leaseExpiresAt: string, key: string | null,
  lastError: ErrorInfo | null, createdAt: string, finishedAt: string | null, scheduleName: string | null,
  tickAt: string | null, checkpoint: unknown, progressDone: number | null, progressTotal: number | null,
  checkpointAt: string | null, traceContext: Record<string, string> | null,
];

/**
 * Maps a claimed job to a {@link JobRow}, filling in what the claim set: `running`, this worker, and the claim's
 * time (`lease_expires_at - leaseMs`, exact to the millisecond a Date holds, for a whole-millisecond lease).
 */
export function toClaimedJobRow(t: PgClaimTuple, workerId: string, leaseMs: number): JobRow {
  const leaseExpiresAt = timestamptzFromJson(t[10])!;
  const claimedAt = leaseExpiresAt.getTime() - leaseMs;
  return {
    id: t[0],
    name: t[1],
    queue: t[2],
    payload: t[3],
    state: 'running',
    priority: t[4],
    runAt: timestamptzFromJson(t[5])!,
    attempt: t[6],
    maxAttempts: t[7],
    lostCount: t[8],
    leaseToken: t[9],
    leaseWorker: workerId,
    leaseExpiresAt,
    startedAt: new Date(claimedAt),
    key: t[11],
    lastError: t[12],
    createdAt: timestamptzFromJson(t[13])!,
    updatedAt: new Date(claimedAt),
    finishedAt: timestamptzFromJson(t[14]),
    scheduleName: t[15],
    tickAt: timestamptzFromJson(t[16]),
    checkpoint: t[17],
    progress: t[18] === null ? null : { done: t[18], total: t[19] },
    checkpointAt: timestamptzFromJson(t[20]),
    traceContext: t[21],
  };
}

/** A `job_steps` row as `pg` returns it. */
export interface PgStepRecord {
  job_id: string;
  name: string;
  /** Parsed JSON; SQL NULL (the step returned `undefined`) arrives as null too, so it is told apart in SQL. */
  result: unknown;
  /** Whether `result` was SQL NULL rather than JSON `null`. */
  result_missing: boolean;
  attempt: number;
  lease_token: string;
  created_at: Date;
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

/** Maps a `jobs` row to a {@link JobRow} (with the properties in {@link toClaimedJobRow}'s order: one object shape). */
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
    scheduleName: r.schedule_name,
    tickAt: r.tick_at,
    // jsonb arrives parsed; SQL NULL (never checkpointed) and JSON null both read as null.
    checkpoint: r.checkpoint ?? null,
    progress: r.progress_done === null ? null : {
      done: Number(r.progress_done),
      total: r.progress_total === null ? null : Number(r.progress_total),
    },
    checkpointAt: r.checkpoint_at,
    traceContext: r.trace_context ?? null,
  };
}

/** Maps a `job_steps` row to a {@link JobStepRow}; a result stored as SQL NULL is `undefined`. */
export function toStepRow(r: PgStepRecord): JobStepRow {
  return {
    jobId: String(r.job_id),
    name: r.name,
    result: r.result_missing ? undefined : r.result,
    attempt: r.attempt,
    leaseToken: Number(r.lease_token),
    createdAt: r.created_at,
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

/** A `schedule_ticks` row joined with its job's current state (`job_state`), as `pg` returns it. */
export interface PgScheduleTickRecord {
  schedule_name: string;
  tick_at: Date;
  kind: 'scheduled' | 'triggered';
  outcome: 'fired' | 'skipped' | 'missed';
  late: boolean;
  job_id: string | null;
  job_state: JobState | null;
  actor: string | null;
  recorded_at: Date;
}

/**
 * A `schedules` row with its newest tick flattened into `lt_*` columns (all NULL when it has no tick), as the
 * schedule reads in `postgres-schedule-sql.ts` return it.
 */
export interface PgScheduleRecord {
  name: string;
  definition_hash: string;
  spec: unknown;
  paused: boolean;
  next_run_at: Date | null;
  last_tick_at: Date | null;
  created_at: Date;
  updated_at: Date;
  lt_tick_at: Date | null;
  lt_kind: 'scheduled' | 'triggered' | null;
  lt_outcome: 'fired' | 'skipped' | 'missed' | null;
  lt_late: boolean | null;
  lt_job_id: string | null;
  lt_job_state: JobState | null;
  lt_actor: string | null;
  lt_recorded_at: Date | null;
}

/** A `locks` row as `pg` returns it. */
export interface PgLockRecord {
  name: string;
  token: string;
  holder: string | null;
  acquired_at: Date | null;
  expires_at: Date | null;
}

/** Maps a `schedule_ticks` row (with `job_state`) to a {@link ScheduleTickRow}. */
export function toScheduleTickRow(r: PgScheduleTickRecord): ScheduleTickRow {
  return {
    scheduleName: r.schedule_name,
    tickAt: r.tick_at,
    kind: r.kind,
    outcome: r.outcome,
    late: r.late,
    jobId: r.job_id === null ? null : String(r.job_id),
    jobState: r.job_state,
    actor: r.actor,
    recordedAt: r.recorded_at,
  };
}

/** Maps a `schedules` row with its flattened newest tick to a {@link ScheduleRow}. */
export function toScheduleRow(r: PgScheduleRecord): ScheduleRow {
  const lastTick: ScheduleTickRow | null =
    r.lt_tick_at === null || r.lt_kind === null || r.lt_outcome === null || r.lt_recorded_at === null
      ? null
      : toScheduleTickRow({
          schedule_name: r.name,
          tick_at: r.lt_tick_at,
          kind: r.lt_kind,
          outcome: r.lt_outcome,
          late: r.lt_late ?? false,
          job_id: r.lt_job_id,
          job_state: r.lt_job_state,
          actor: r.lt_actor,
          recorded_at: r.lt_recorded_at,
        });
  return {
    name: r.name,
    definitionHash: r.definition_hash,
    spec: r.spec,
    paused: r.paused,
    nextRunAt: r.next_run_at,
    lastTickAt: r.last_tick_at,
    lastTick,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

/** Maps a `locks` row to a {@link LockRow}; the `bigint` token comes back as a number (one per grant). */
export function toLockRow(r: PgLockRecord): LockRow {
  return {
    name: r.name,
    token: Number(r.token),
    holder: r.holder,
    acquiredAt: r.acquired_at,
    expiresAt: r.expires_at,
  };
}

/** The largest `bigint` value. */
const BIGINT_MAX = 9223372036854775807n;

/**
 * Whether `id` can be sent as a `bigint` parameter. Ids come from callers (CLI, dashboards) as strings; a
 * malformed one must mean "no such job", not a SQL cast error. An id is written as the database prints it, without
 * leading zeros (as on SQLite): `0042` names no job, so an id read back always equals the id sent.
 */
export function isJobId(id: unknown): id is string {
  return typeof id === 'string' && /^[1-9][0-9]{0,18}$/.test(id) && BigInt(id) <= BIGINT_MAX;
}

/**
 * Compares two ids numerically, as the database returns them: decimal strings without sign or leading zeros, so the
 * shorter is the smaller and equal lengths compare as text (no BigInt per comparison: a 1,000-row insert sorts
 * with about 10,000 of them).
 */
export function compareIds(a: string, b: string): number {
  if (a.length !== b.length) return a.length - b.length;
  return a < b ? -1 : a > b ? 1 : 0;
}
