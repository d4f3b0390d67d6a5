/**
 * The storage seam. Everything Warden stores or coordinates goes through this interface; the SQLite and
 * PostgreSQL drivers implement it, and `test/conformance` runs one suite against both.
 *
 * Rules every implementation keeps:
 * - Methods are entity-then-verb and take one params object.
 * - Values are always bound parameters. The only identifier interpolated into SQL is the PostgreSQL schema,
 *   validated by `validateSchemaName` first.
 * - `now: Date | null` parameters: `null` means "use the database's clock" (production); a Date is used in
 *   its place (tests with a fake clock). Lease expiry and due times are always computed in SQL from that.
 * - Every write after a claim (heartbeat, finish) is guarded by `id AND lease_token AND state = 'running'`.
 *   A write that matches no row is stale: it is reported back, never applied.
 *
 * This interface is internal: it may change in any release.
 * @module
 */
import type { AttemptRow, JobRow, QueueActivity, QueueStats } from '../job/job-record.js';
import type {
  GuardedWriteResult, JobCheckpointParams, JobClaimParams, JobFinishManyParams, JobHeartbeatParams,
  JobGetManyParams, JobInsertManyParams, JobInsertResult, JobLease, JobLeaseCheckParams, JobLeaseCheckResult, JobLeaseResult,
  JobListParams, JobReleaseParams, JobRescueParams,
  JobStepRecordParams, JobStepRow, ListenParams, RescuedJob, UniqueInsert,
} from './job-params.js';
import type {
  AlertDeadJob, AlertDeadJobListParams, AlertListParams, AlertOpenParams, AlertResolveParams, AlertRow, AlertRunningJob, AlertRunningJobListParams,
} from './alert-params.js';
import type { AuditAppendParams, AuditEntry, AuditHead, AuditListParams, AuditPruneParams } from './audit-params.js';
import type { LockAcquireParams, LockCheckParams, LockCheckResult, LockGrant, LockRenewParams, LockRow } from './lock-params.js';
import type {
  ScheduleAdvanceParams,
  ScheduleAdvanceResult,
  ScheduleLastSuccess,
  ScheduleResumeParams,
  ScheduleRow,
  ScheduleSyncParams,
  ScheduleTickRow,
  ScheduleTicksAfterParams,
  ScheduleTicksWrittenParams,
  ScheduleTickWritten,
  ScheduleTriggerParams,
  ScheduleTriggerResult,
} from './schedule-params.js';
import type { JobKeyPruneParams, JobKeyPruneResult, JobPruneParams, ScheduleTickPruneParams } from './retention-params.js';

// The job types travel with the interface: the drivers and the runtime import them from here.
export type {
  JobInsert, UniqueInsert, JobInsertManyParams, JobInsertResult, JobClaimParams, ListenParams, JobLease,
  JobHeartbeatParams, JobReleaseParams, JobLeaseCheckParams, JobLeaseCheckResult, JobLeaseResult, JobFinish,
  JobFinishManyParams, JobStepRecordParams,
  JobStepRow, JobCheckpointParams, GuardedWriteResult, JobRescueParams, RescuedJob, JobListParams, JobGetManyParams,
} from './job-params.js';

/** What differs between databases, so core code never checks a driver's name. */
export interface DriverCapabilities {
  /** Cross-process wake-ups through LISTEN/NOTIFY (PostgreSQL). */
  readonly listenNotify: boolean;
  /**
   * `listen` wakes workers when another process commits: PostgreSQL through LISTEN/NOTIFY (per queue), SQLite by
   * watching `PRAGMA data_version` every few milliseconds (any commit; queue unknown).
   */
  readonly crossProcessWakeup: boolean;
  /** Several hosts may share the database (PostgreSQL); SQLite is one machine, many processes. */
  readonly multiHost: boolean;
  /**
   * An enqueue can hand a due job straight to an idle worker (PostgreSQL): `jobClaim`'s `handoff` registers the
   * worker, `listen`'s `handoff` receives the jobs, `handoffWithdraw` ends the registration.
   */
  readonly handoff: boolean;
  /** What `tx` must be for transactional enqueue, in words for error messages. */
  readonly transactionHandle: string;
}

export interface MigrateResult {
  /** Migrations applied by this call, e.g. `["0001_initial"]`. */
  applied: string[];
  /** All migrations now applied. */
  current: string[];
}

export interface MigrationStatus {
  applied: string[];
  pending: string[];
}

/** The storage seam. See the module comment for the rules. */
export interface Driver {
  /** `"sqlite"` or `"postgres"`; for display only, never for branching. */
  readonly kind: string;
  readonly capabilities: DriverCapabilities;

  /**
   * Opens an alert: inserts its key, or opens a resolved key again as a new episode. Returns the row only when
   * this call opened it (an open key is left alone and returns null), so of many instances evaluating one rule
   * exactly one notifies. See {@link AlertOpenParams.since} for the guard against a stale evaluation.
   */
  alertOpen(params: AlertOpenParams): Promise<AlertRow | null>;
  /** Resolves an open alert; the row only when this call resolved it, so exactly one instance sends the notice. */
  alertResolve(params: AlertResolveParams): Promise<AlertRow | null>;
  /** Alerts, most recently changed first. */
  alertList(params: AlertListParams): Promise<AlertRow[]>;
  /** The alert of one key, open or resolved; null when there is none. */
  alertGet(params: { key: string }): Promise<AlertRow | null>;
  /**
   * A page of the dead jobs, newest id first, each with whether its dead-letter alert (`deadLetterKey`) exists in any
   * state: the monitor opens the missing ones. A range of the dead jobs' index, so a page costs its rows.
   */
  alertDeadJobList(params: AlertDeadJobListParams): Promise<AlertDeadJob[]>;
  /**
   * Running attempts started at or before a time, oldest start first, paged by (start, id): the run-too-long rule's
   * read. Through the index of the running jobs, so its cost is the jobs running, not the jobs kept.
   */
  alertRunningJobList(params: AlertRunningJobListParams): Promise<AlertRunningJob[]>;

  /**
   * Appends entries to an audit chain in one transaction, serialized per chain across processes (PostgreSQL: the
   * chain's `audit_heads` row locked `FOR UPDATE`; SQLite: `BEGIN IMMEDIATE`). Reads the time once, after taking
   * the lock (`now`, or the database clock, never before the head's time), and seals the batch onto the head with
   * `sealBatch` (src/audit/audit-hash.ts). Returns the stored entries with their seq, time and hashes. When one of
   * the batches `retryOf` names (earlier attempts in doubt, all sealed at one first seq) is in the chain, which is
   * checked holding the head, nothing is written and that batch is returned as stored.
   * @throws AuditAppendUnconfirmedError when it fails after sending a sealed batch (the batch may have been
   * written: retry naming it in `retryOf`, with every earlier attempt at that seq still in doubt); any other error
   * means nothing was written.
   */
  auditAppend(params: AuditAppendParams): Promise<AuditEntry[]>;
  /** A page of an audit chain in seq order (for verify and export). */
  auditList(params: AuditListParams): Promise<AuditEntry[]>;
  /** An audit chain's head row (last seq and hash, what was pruned); null for a chain never appended to. */
  auditHead(params: { chain: string }): Promise<AuditHead | null>;
  /** Deletes an audit chain's entries with `at < before`, recording the last one's seq and hash in the head; the count deleted. */
  auditPrune(params: AuditPruneParams): Promise<number>;

  /** Closes connections. Safe to call twice. */
  close(): Promise<void>;

  /**
   * Whether an error thrown by this driver may go away by itself (connection lost, server restarting, lock
   * busy), as opposed to the database refusing the data for good (invalid input, constraint violation).
   */
  isTransientError(error: unknown): boolean;

  /** The database's current time. */
  dbNow(): Promise<Date>;

  /** Claims up to `limit` due jobs: `attempt + 1`, `lease_token + 1`, state `running`, lease set. */
  jobClaim(params: JobClaimParams): Promise<JobRow[]>;
  /** Cancels a queued, retrying or running job. A running attempt's later writes become stale. */
  jobCancel(params: { id: string; now: Date | null }): Promise<JobRow>;
  /** Deletes a job that is not running, with its attempts. */
  jobDiscard(params: { id: string }): Promise<JobRow>;
  /** Applies attempt endings, each guarded by its lease; records an attempt row for each applied one. */
  jobFinishMany(params: JobFinishManyParams): Promise<JobLeaseResult>;
  jobGet(params: { id: string }): Promise<JobRow | null>;
  /**
   * The jobs of up to 1,000 ids (`JOB_GET_MANY_MAX_IDS`) in one statement, each by its primary key: the rows of
   * those that exist, each once, in no particular order. An id `jobGet` would answer null for (unknown, or not a job
   * id) has no row. For a caller with many jobs to look at (the alert monitor's resolution checks), one round trip
   * instead of one per job.
   * @throws InvalidOptionError when `ids` is not an array of at most 1,000 elements (a longer list is refused, never
   * cut short: split it).
   */
  jobGetMany(params: JobGetManyParams): Promise<JobRow[]>;
  /**
   * Renews leases: `lease_expires_at = now + leaseMs` for each lease still held. On PostgreSQL a held lease whose
   * row another transaction holds locked is skipped: neither applied nor stale, renewed at the next beat.
   */
  jobHeartbeat(params: JobHeartbeatParams): Promise<JobLeaseResult>;
  /**
   * Looks up leases of claimed jobs not started yet, in one statement that writes nothing: which are no longer held
   * (`stale`: not `running` under that token) and which are held in a paused queue (`paused`). A worker asks it
   * before starting a job that has waited in its buffer, so that a cancel or pause committed meanwhile is honoured.
   */
  jobLeaseCheck(params: JobLeaseCheckParams): Promise<JobLeaseCheckResult>;
  /** Inserts jobs in one transaction; deduplicates keyed jobs through `job_keys` (see {@link UniqueInsert}). */
  jobInsertMany(params: JobInsertManyParams): Promise<JobInsertResult[]>;
  jobList(params: JobListParams): Promise<JobRow[]>;
  /** Finished attempts of a job, oldest first. */
  jobAttemptList(params: { id: string }): Promise<AttemptRow[]>;
  /**
   * Saves a job's checkpoint and progress (`checkpoint`, `progress_done`, `progress_total`, `checkpoint_at = now`),
   * guarded by (id, lease token, running). Checkpoints survive retries, rescue and operator retry.
   */
  jobCheckpoint(params: JobCheckpointParams): Promise<GuardedWriteResult>;
  /**
   * Hands back claimed jobs that never started (a worker's prefetch buffer at shutdown), each guarded by its
   * lease: `queued`, `attempt - 1` (the claim's attempt is taken back), lease cleared, `lease_token` kept. No
   * attempt row. PostgreSQL notifies their queues.
   */
  jobRelease(params: JobReleaseParams): Promise<JobLeaseResult>;
  /**
   * The running jobs leased to `workerId`, by id, at most `limit` (1..10,000). A worker whose claim failed asks it:
   * a claim that committed with its reply lost left jobs leased to it that it never saw, which it hands back
   * (`jobRelease`) instead of leaving them to expire.
   */
  jobLeasedTo(params: { workerId: string; limit: number }): Promise<JobLease[]>;
  /** Moves running jobs whose lease expired back to `retrying` (or `dead`), recording a `lost` attempt. */
  jobRescue(params: JobRescueParams): Promise<RescuedJob[]>;
  /** Operator retry of a `dead` or `retrying` job: due now, with at least one more attempt allowed. */
  jobRetry(params: { id: string; now: Date | null }): Promise<JobRow>;
  /** A job's recorded steps, oldest first. */
  jobStepList(params: { id: string }): Promise<JobStepRow[]>;
  /**
   * Records a step's result, guarded by (id, lease token, running): inserted only while the lease is held
   * (PostgreSQL locks the job row `FOR SHARE` so a concurrent rescue cannot slip between check and insert).
   * The runtime never records one name twice; if it happened, the `(job_id, name)` primary key throws.
   */
  jobStepRecord(params: JobStepRecordParams): Promise<GuardedWriteResult>;
  /**
   * Deletes up to `limit` jobs in a final state that finished `olderThanMs` before `now`, with their attempts and
   * steps, and the `job_keys` rows they still hold. A schedule's newest completed job is kept (it is the
   * schedule's last success). Rows locked by another transaction (an operator retry) are skipped. Returns how
   * many jobs were deleted; callers loop until fewer than `limit` come back. Each name's old jobs are one range of
   * an index led by `(state, name)`, so a call reads about the rows it deletes, however many jobs of other names
   * (kept longer, or forever) there are.
   */
  jobPrune(params: JobPruneParams): Promise<number>;
  /**
   * Looks at up to `limit` `job_keys` rows in key order after `afterKey` (null: from the start) and deletes those
   * whose holder no longer exists (a discarded job); a row whose holder changed meanwhile is left alone. Returns
   * how many were deleted and the last key looked at, or null when the end of the keys was reached, so a sweep of
   * every key is a series of short statements.
   */
  jobKeyPrune(params: JobKeyPruneParams): Promise<JobKeyPruneResult>;

  /**
   * Runs `fn` in a new transaction on a connection of its own and commits when it resolves (rolls back when it
   * throws). The handle passed to `fn` is the same kind an application passes as `tx` (a `pg` client; a
   * better-sqlite3 `Database` on the same file), so application writes, enqueues and the `tx` parameter of the
   * job writes above all share it. SQLite takes the write lock (`BEGIN IMMEDIATE`) for the duration; callers in
   * one process are serialized.
   */
  transaction<T>(fn: (tx: unknown) => Promise<T>): Promise<T>;

  /**
   * Subscribes to wake-ups from other processes: "jobs may be due in queue X" (PostgreSQL, LISTEN/NOTIFY) or "some
   * other connection committed" (SQLite, `queue` undefined). Only when `capabilities.crossProcessWakeup`. Returns
   * an unsubscribe function. PostgreSQL reconnects by itself after connection loss and then calls `onReconnect`,
   * since wake-ups sent meanwhile were missed. Once unsubscribe is called no callback follows: a job handed to the
   * worker and not yet passed on (or its failed read) is not reported, and is left leased to it for `jobLeasedTo`.
   */
  listen?(params: ListenParams): Promise<() => Promise<void>>;
  /**
   * Ends `workerId`'s hand-off registration (see {@link JobClaimParams.handoff}), waiting for an enqueue handing it
   * a job right now to commit: afterwards no job is handed to it, and those handed before are visible to
   * `jobLeasedTo`. Only with `capabilities.handoff`.
   */
  handoffWithdraw?(params: { workerId: string }): Promise<void>;
  /**
   * Opens a connection the worker's claims run on, ahead of the first claim, so a starting worker pays for it
   * while it does its other start-up work. Optional (PostgreSQL); never rejects: the first claim reports a failure.
   */
  workerConnectionsWarm?(): Promise<void>;

  /** Applies pending migrations under a lock; concurrent callers apply each exactly once. */
  migrate(): Promise<MigrateResult>;
  migrationStatus(): Promise<MigrationStatus>;

  /** Takes the lock if free or expired: `token + 1` (1 for a new name), holder, `expires_at = now + ttlMs`. Null if held. */
  lockAcquire(params: LockAcquireParams): Promise<LockGrant | null>;
  /** Whether `token` is the newest grant and still unexpired. With `tx`, checks inside that transaction and holds the lock row until it ends. */
  lockCheck(params: LockCheckParams): Promise<LockCheckResult>;
  lockList(): Promise<LockRow[]>;
  /** Frees the lock if `token` still holds it (the token is kept, so the next grant is higher). */
  lockRelease(params: { name: string; token: number }): Promise<boolean>;
  /** Extends an unexpired lease held with `token`; null when it was lost (expired or taken over). */
  lockRenew(params: LockRenewParams): Promise<LockGrant | null>;

  /**
   * Every queue with jobs or a pause row: pause flag, a count per state, and lag, sorted by name (bytewise). Reads
   * every job (finished ones included), so its cost grows with retention: about 120 ms at 1,000,000 kept on PostgreSQL.
   */
  queueList(): Promise<QueueStats[]>;
  /**
   * Every queue with jobs not yet ended or a pause row: pause flag, waiting and running counts, and lag, sorted as
   * {@link Driver.queueList}. Reads only the jobs not yet ended, through the indexes that hold just them, so finished
   * jobs kept cost it nothing: what periodic checks (alerts, metrics) read.
   */
  queueActivity(): Promise<QueueActivity[]>;
  queuePause(params: { queue: string }): Promise<void>;
  queueResume(params: { queue: string }): Promise<void>;

  /**
   * Handles due ticks of one schedule atomically: compare-and-swap of `next_run_at` (with the definition hash),
   * then per tick a `schedule_ticks` row (its primary key forbids a second one) and, for fired ticks, the job.
   * Nothing is written when the swap fails: another instance handled these ticks.
   */
  scheduleAdvance(params: ScheduleAdvanceParams): Promise<ScheduleAdvanceResult>;
  /** Active, unpaused schedules whose `next_run_at <= now`, soonest first. */
  scheduleDue(params: { now: Date | null; limit: number }): Promise<ScheduleRow[]>;
  /** Every schedule not removed, by name, with its latest tick. */
  scheduleList(): Promise<ScheduleRow[]>;
  /** The schedule of that name with its latest tick, as `scheduleList` lists it; null when missing or removed. */
  scheduleGet(params: { name: string }): Promise<ScheduleRow | null>;
  /** @throws ScheduleNotFoundError */
  schedulePause(params: { name: string; now: Date | null }): Promise<ScheduleRow>;
  /**
   * Unpauses; a schedule that was paused gets `next_run_at` = `nextRunAt` (ticks during the pause are not misfires),
   * one that was not keeps its own, so a tick already due still fires. Applies only while the stored definition hash
   * is `expectedHash`: otherwise nothing is written and the answer is null (read it again and recompute).
   * @throws ScheduleNotFoundError when the schedule is missing or removed.
   */
  scheduleResume(params: ScheduleResumeParams): Promise<ScheduleRow | null>;
  /** Upserts the code's schedules; see {@link ScheduleSyncParams}. */
  scheduleSync(params: ScheduleSyncParams): Promise<void>;
  /**
   * Tick history of a schedule, newest first: `limit` (default 100) whole, clamped to 1..1,000, as `tickListLimit`
   * reads it on both drivers. @throws InvalidOptionError for a `limit` that is not a whole number.
   */
  scheduleTickList(params: { name: string; limit?: number }): Promise<ScheduleTickRow[]>;
  /**
   * The schedule's newest success: its newest `fired` tick (scheduled or triggered, by `tick_at`, then `kind`) whose job
   * exists and is `completed`, with that job's `finished_at`; null when there is none. Walks the ticks newest first
   * and stops at the first such one, so it costs the ticks since the last success, however many jobs are kept.
   */
  scheduleLastSuccess(params: { name: string }): Promise<ScheduleLastSuccess | null>;
  /**
   * The schedule's `scheduled` ticks with `after < tick_at <= through` (`after` null: no lower bound), oldest first,
   * at most `limit` (as `tickListLimit` reads it), with each job's current state. A range of the primary key
   * `(schedule_name, tick_at, kind)` walked forward, each tick's job read by its primary key: its cost is the rows
   * returned, however many ticks and jobs are kept. The missed-run alert reads the ticks after the last success with it.
   * @throws InvalidOptionError for a `limit` that is not a whole number.
   */
  scheduleTicksAfter(params: ScheduleTicksAfterParams): Promise<ScheduleTickRow[]>;
  /**
   * The scheduled ticks among `tickAts` that scheduler instance `firedBy` wrote, after any advance of that schedule
   * still in flight has ended (PostgreSQL waits on the schedule row). For a scheduler whose advance failed after its
   * commit was sent: the ticks it finds were its own, committed, and their events are still to be emitted.
   */
  scheduleTicksWrittenBy(params: ScheduleTicksWrittenParams): Promise<ScheduleTickWritten[]>;
  /** Enqueues one run now, recorded as a `triggered` tick with its actor. @throws ScheduleNotFoundError */
  scheduleTrigger(params: ScheduleTriggerParams): Promise<ScheduleTriggerResult>;
  /**
   * Deletes up to `limit` schedule ticks recorded `olderThanMs` before `now`, never a schedule's newest tick (the
   * scheduler and the schedule list read it), nor, for a schedule with a row in `schedules`, the ticks the
   * missed-run check and the last-success reads may need however old they are: those from the tick of its newest
   * completed job (the one `jobPrune` keeps) through the `keepAfterSuccess`-th `scheduled` tick after it (all of
   * them after it when fewer). Returns how many were deleted.
   */
  scheduleTickPrune(params: ScheduleTickPruneParams): Promise<number>;
}
