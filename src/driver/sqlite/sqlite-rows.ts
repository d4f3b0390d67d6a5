/**
 * Raw SQLite row shapes and their conversion to the driver-neutral `JobRow` / `AttemptRow` / `QueueStats`.
 * SQLite stores times as integer ms and JSON as text; integers may arrive as `bigint` when the connection
 * (e.g. an application's own `tx` connection) has safe integers turned on, so every integer goes through
 * {@link int}.
 * @module
 */
import type { AttemptOutcome, AttemptRow, ErrorInfo, JobProgress, JobRow, JobState, QueueActivity, QueueStats } from '../../job/job-record.js';
import type { JobStepRow } from '../driver.js';
import type { LockCheckResult, LockGrant, LockRow } from '../lock-params.js';
import type { ScheduleRow, ScheduleTickRow } from '../schedule-params.js';

/** An integer column as better-sqlite3 returns it. */
export type DbInt = number | bigint;

/** A `jobs` row exactly as stored. */
export interface JobDbRow {
  id: DbInt;
  name: string;
  queue: string;
  payload: string;
  state: string;
  priority: DbInt;
  run_at: DbInt;
  attempt: DbInt;
  max_attempts: DbInt;
  lost_count: DbInt;
  lease_token: DbInt;
  lease_worker: string | null;
  lease_expires_at: DbInt | null;
  started_at: DbInt | null;
  key: string | null;
  last_error: string | null;
  created_at: DbInt;
  updated_at: DbInt;
  finished_at: DbInt | null;
  schedule_name: string | null;
  tick_at: DbInt | null;
  checkpoint: string | null;
  progress_done: DbInt | null;
  progress_total: DbInt | null;
  checkpoint_at: DbInt | null;
  /** JSON text (migration 0007); absent from rows read before it. */
  trace_context?: string | null;
}

/** A `job_steps` row exactly as stored. */
export interface StepDbRow {
  job_id: DbInt;
  name: string;
  result: string | null;
  attempt: DbInt;
  lease_token: DbInt;
  created_at: DbInt;
}

/** A `job_attempts` row exactly as stored. */
export interface AttemptDbRow {
  job_id: DbInt;
  attempt: DbInt;
  lease_token: DbInt;
  worker_id: string | null;
  started_at: DbInt | null;
  finished_at: DbInt;
  outcome: string;
  error: string | null;
}

/** A row of `QUEUE_LIST`. */
export interface QueueDbRow {
  name: string;
  paused: DbInt;
  queued: DbInt;
  retrying: DbInt;
  running: DbInt;
  completed: DbInt;
  dead: DbInt;
  cancelled: DbInt;
  lag_ms: DbInt;
}

/** A row of `QUEUE_ACTIVITY`. */
export type QueueActivityDbRow = Pick<QueueDbRow, 'name' | 'paused' | 'queued' | 'retrying' | 'running' | 'lag_ms'>;

/** A row returned by `JOB_RESCUE`. */
export interface RescueDbRow {
  id: DbInt;
  name: string;
  queue: string;
  attempt: DbInt;
  lease_token: DbInt;
  state: 'retrying' | 'dead';
}

/** A row of `SCHEDULE_TICK_LIST` / `SCHEDULE_TICK_GET`: a `schedule_ticks` row plus its job's current state. */
export interface ScheduleTickDbRow {
  schedule_name: string;
  tick_at: DbInt;
  kind: string;
  outcome: string;
  late: DbInt;
  job_id: DbInt | null;
  actor: string | null;
  recorded_at: DbInt;
  job_state: string | null;
}

/** A row of the schedule reads (`SCHEDULE_LIST`, `SCHEDULE_DUE`, `SCHEDULE_GET_ACTIVE`): the schedule and its newest tick (`t_*`). */
export interface ScheduleDbRow {
  name: string;
  definition_hash: string;
  spec: string;
  paused: DbInt;
  next_run_at: DbInt | null;
  last_tick_at: DbInt | null;
  created_at: DbInt;
  updated_at: DbInt;
  t_tick_at: DbInt | null;
  t_kind: string | null;
  t_outcome: string | null;
  t_late: DbInt | null;
  t_job_id: DbInt | null;
  t_actor: string | null;
  t_recorded_at: DbInt | null;
  t_job_state: string | null;
}

/** A `locks` row exactly as stored. */
export interface LockDbRow {
  name: string;
  token: DbInt;
  holder: string | null;
  acquired_at: DbInt | null;
  expires_at: DbInt | null;
}

/** A row returned by `LOCK_ACQUIRE` / `LOCK_RENEW`. */
export interface LockGrantDbRow {
  token: DbInt;
  expires_at: DbInt;
}

/** A row of `LOCK_CHECK`. */
export interface LockCheckDbRow {
  token: DbInt;
  held: DbInt;
}

/** An integer column as a JS number (ids are handled by {@link jobId}, which keeps full precision). */
export function int(value: DbInt): number {
  return typeof value === 'bigint' ? Number(value) : value;
}

/** A stored id as the decimal string rows carry. */
export function jobId(value: DbInt): string {
  return String(value);
}

/** Integer ms to a Date (a conversion of a stored value, not a clock read). */
function date(value: DbInt): Date {
  return new Date(int(value));
}

function dateOrNull(value: DbInt | null): Date | null {
  return value === null ? null : date(value);
}

function errorOrNull(text: string | null): ErrorInfo | null {
  return text === null ? null : (JSON.parse(text) as ErrorInfo);
}

/** The columns of a job row that are NULL for nearly every claimed job (`CLAIM_RARE_COLUMNS` in sqlite-lease-sql.ts). */
type RareColumns = Pick<JobDbRow, 'last_error' | 'finished_at' | 'checkpoint' | 'progress_done' | 'progress_total' | 'checkpoint_at'>;

/** A job row without the four fields a claim sets to values its caller knows, nor the rare columns. */
type JobDbRowCommon = Omit<JobDbRow, 'state' | 'lease_worker' | 'started_at' | 'updated_at' | keyof RareColumns>;

/**
 * A claimed row as `JOB_CLAIM` returns it (`CLAIM_COLUMNS`): without the fields the claim sets to known values,
 * and with the rare columns packed into `rare` (NULL, or a JSON array of them in `CLAIM_RARE_COLUMNS` order).
 */
export type ClaimDbRow = JobDbRowCommon & { lease_expires_at: DbInt; rare: string | null };

/** The rare columns of a claimed row whose `rare` is NULL. Shared: read only. */
const NO_RARE: RareColumns = { last_error: null, finished_at: null, checkpoint: null, progress_done: null, progress_total: null, checkpoint_at: null };

/** A stored job row to a {@link JobRow}. */
export function toJobRow(r: JobDbRow): JobRow {
  return jobRowOf(r, r, r.state as JobState, r.lease_worker, dateOrNull(r.started_at), date(r.updated_at));
}

/**
 * A claimed row to a {@link JobRow}, filling in what the claim set: `running`, this worker, and the claim's time
 * (`lease_expires_at - leaseMs`, exact: the claim wrote both from one `now`, in whole milliseconds).
 */
export function toClaimedJobRow(r: ClaimDbRow, workerId: string, leaseMs: number): JobRow {
  const claimedAt = int(r.lease_expires_at) - leaseMs;
  return jobRowOf(r, r.rare === null ? NO_RARE : unpackRare(r.rare), 'running', workerId, new Date(claimedAt), new Date(claimedAt));
}

/** The rare columns from a claimed row's `rare` array (`json_array` of them in `CLAIM_RARE_COLUMNS` order). */
function unpackRare(text: string): RareColumns {
  const [last_error, finished_at, checkpoint, progress_done, progress_total, checkpoint_at] = JSON.parse(text) as [
    string | null, number | null, string | null, number | null, number | null, number | null,
  ];
  return { last_error, finished_at, checkpoint, progress_done, progress_total, checkpoint_at };
}

/** The {@link JobRow} of `r` and its rare columns `x`, with the four fields a claim sets given apart. */
function jobRowOf(r: JobDbRowCommon, x: RareColumns, state: JobState, leaseWorker: string | null, startedAt: Date | null, updatedAt: Date): JobRow {
  return {
    id: jobId(r.id),
    name: r.name,
    queue: r.queue,
    payload: JSON.parse(r.payload) as unknown,
    state,
    priority: int(r.priority),
    runAt: date(r.run_at),
    attempt: int(r.attempt),
    maxAttempts: int(r.max_attempts),
    lostCount: int(r.lost_count),
    leaseToken: int(r.lease_token),
    leaseWorker,
    leaseExpiresAt: dateOrNull(r.lease_expires_at),
    startedAt,
    key: r.key,
    lastError: errorOrNull(x.last_error),
    createdAt: date(r.created_at),
    updatedAt,
    finishedAt: dateOrNull(x.finished_at),
    scheduleName: r.schedule_name ?? null,
    tickAt: dateOrNull(r.tick_at ?? null),
    checkpoint: x.checkpoint == null ? null : (JSON.parse(x.checkpoint) as unknown),
    progress: progressOrNull(x),
    checkpointAt: dateOrNull(x.checkpoint_at ?? null),
    traceContext: r.trace_context == null ? null : (JSON.parse(r.trace_context) as Record<string, string>),
  };
}

/** The progress saved with the last checkpoint; null when none was saved (`progress_done IS NULL`). */
function progressOrNull(r: Pick<JobDbRow, 'progress_done' | 'progress_total'>): JobProgress | null {
  if (r.progress_done == null) return null;
  return { done: int(r.progress_done), total: r.progress_total == null ? null : int(r.progress_total) };
}

/** A stored step row to a {@link JobStepRow}; a NULL result (the step returned `undefined`) stays `undefined`. */
export function toStepRow(r: StepDbRow): JobStepRow {
  return {
    jobId: jobId(r.job_id),
    name: r.name,
    result: r.result === null ? undefined : (JSON.parse(r.result) as unknown),
    attempt: int(r.attempt),
    leaseToken: int(r.lease_token),
    createdAt: date(r.created_at),
  };
}

/** A stored attempt row to an {@link AttemptRow}. */
export function toAttemptRow(r: AttemptDbRow): AttemptRow {
  return {
    jobId: jobId(r.job_id),
    attempt: int(r.attempt),
    leaseToken: int(r.lease_token),
    workerId: r.worker_id,
    startedAt: dateOrNull(r.started_at),
    finishedAt: date(r.finished_at),
    outcome: r.outcome as AttemptOutcome,
    error: errorOrNull(r.error),
  };
}

/** A `QUEUE_LIST` row to {@link QueueStats}. */
export function toQueueStats(r: QueueDbRow): QueueStats {
  return {
    queue: r.name,
    paused: int(r.paused) !== 0,
    counts: {
      queued: int(r.queued),
      retrying: int(r.retrying),
      running: int(r.running),
      completed: int(r.completed),
      dead: int(r.dead),
      cancelled: int(r.cancelled),
    },
    lagMs: int(r.lag_ms),
  };
}

/** A `QUEUE_ACTIVITY` row to {@link QueueActivity}. */
export function toQueueActivity(r: QueueActivityDbRow): QueueActivity {
  return { queue: r.name, paused: int(r.paused) !== 0, counts: { queued: int(r.queued), retrying: int(r.retrying), running: int(r.running) }, lagMs: int(r.lag_ms) };
}

/** A stored tick (with its job's state) to a {@link ScheduleTickRow}. */
export function toScheduleTickRow(r: ScheduleTickDbRow): ScheduleTickRow {
  return {
    scheduleName: r.schedule_name,
    tickAt: date(r.tick_at),
    kind: r.kind as ScheduleTickRow['kind'],
    outcome: r.outcome as ScheduleTickRow['outcome'],
    late: int(r.late) !== 0,
    jobId: r.job_id === null ? null : jobId(r.job_id),
    jobState: r.job_state as JobState | null,
    actor: r.actor,
    recordedAt: date(r.recorded_at),
  };
}

/** A schedule read row to a {@link ScheduleRow}; `spec` is parsed, `lastTick` is null when no tick was recorded. */
export function toScheduleRow(r: ScheduleDbRow): ScheduleRow {
  const lastTick =
    r.t_tick_at === null
      ? null
      : toScheduleTickRow({
          schedule_name: r.name,
          tick_at: r.t_tick_at,
          kind: r.t_kind ?? 'scheduled',
          outcome: r.t_outcome ?? 'fired',
          late: r.t_late ?? 0,
          job_id: r.t_job_id,
          actor: r.t_actor,
          recorded_at: r.t_recorded_at ?? r.t_tick_at,
          job_state: r.t_job_state,
        });
  return {
    name: r.name,
    definitionHash: r.definition_hash,
    spec: JSON.parse(r.spec) as unknown,
    paused: int(r.paused) !== 0,
    nextRunAt: dateOrNull(r.next_run_at),
    lastTickAt: dateOrNull(r.last_tick_at),
    lastTick,
    createdAt: date(r.created_at),
    updatedAt: date(r.updated_at),
  };
}

/** A stored lock row to a {@link LockRow}. */
export function toLockRow(r: LockDbRow): LockRow {
  return {
    name: r.name,
    token: int(r.token),
    holder: r.holder,
    acquiredAt: dateOrNull(r.acquired_at),
    expiresAt: dateOrNull(r.expires_at),
  };
}

/** A granted or renewed lease to a {@link LockGrant}. */
export function toLockGrant(r: LockGrantDbRow): LockGrant {
  return { token: int(r.token), expiresAt: date(r.expires_at) };
}

/** A `LOCK_CHECK` row (or none: never granted) to a {@link LockCheckResult}. */
export function toLockCheckResult(r: LockCheckDbRow | undefined): LockCheckResult {
  return r === undefined ? { held: false, currentToken: null } : { held: int(r.held) === 1, currentToken: int(r.token) };
}

/** Claim order: `priority, run_at, id`, the order the claim's inner SELECT used. */
export function compareClaimOrder(a: ClaimDbRow, b: ClaimDbRow): number {
  return int(a.priority) - int(b.priority) || int(a.run_at) - int(b.run_at) || int(a.id) - int(b.id);
}

/**
 * A job id string as the integer to bind, or `null` when it cannot name a row (not a decimal id), so callers
 * treat it as "not found" / "stale" instead of letting SQLite compare text to an integer column.
 */
export function parseJobId(id: string): number | null {
  if (typeof id !== 'string' || !/^[1-9][0-9]{0,15}$/.test(id)) return null;
  const n = Number(id);
  return Number.isSafeInteger(n) ? n : null;
}
