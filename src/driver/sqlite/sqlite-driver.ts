/**
 * The embedded SQLite driver: one file, any number of processes on one machine. Semantics are those of
 * docs/driver-contract.md; all SQL text lives in the `sqlite-*-sql.ts` modules (`sqlite-sql.ts`,
 * `sqlite-lease-sql.ts`, `sqlite-job-admin-sql.ts`, `sqlite-schedule-sql.ts`, …). Schedule operations are in `sqlite-schedules.ts`, lease locks in `sqlite-locks.ts`,
 * heartbeat/release/rescue/finish/step/checkpoint writes in `sqlite-lease-writes.ts`, operator actions and reads in
 * `sqlite-job-admin.ts`, migrating in `sqlite-migrate.ts`, the insert algorithm in `sqlite-insert.ts` and
 * application transactions in `sqlite-transaction.ts`, and the connection, its statements and write groups in
 * `sqlite-connection.ts`; this class validates its options and delegates to them.
 *
 * How it stays correct with several processes on one file:
 * - WAL mode, so readers never block and there is one writer at a time.
 * - Every write runs in `BEGIN IMMEDIATE`, which takes the write lock (and a current snapshot) up front; a
 *   claim's SELECT and UPDATE therefore see and change the same rows, and no deferred read→write upgrade can
 *   fail with SQLITE_BUSY_SNAPSHOT halfway through.
 * - `busy_timeout` waits for the lock inside SQLite; if SQLITE_BUSY/LOCKED still escapes, the whole
 *   transaction is retried with jittered backoff for up to {@link BUSY_RETRY_BUDGET_MS} (see `busyRetries`).
 * @module
 */
import { watchDataVersion } from './sqlite-wakeup.js';
import { resolveSqliteDriverOptions, type SqliteDriverOptions } from './sqlite-driver-options.js';
import type { AttemptRow, JobRow, QueueActivity, QueueStats } from '../../job/job-record.js';
import type {
  Driver, DriverCapabilities, GuardedWriteResult, JobCheckpointParams, JobClaimParams, JobFinishManyParams, JobHeartbeatParams,
  JobLeaseCheckParams, JobLeaseCheckResult, JobReleaseParams, ListenParams,
  JobGetManyParams, JobInsertManyParams, JobInsertResult, JobLease, JobLeaseResult, JobListParams, JobRescueParams, JobStepRecordParams,
  JobStepRow,
  MigrateResult, MigrationStatus, RescuedJob,
} from '../driver.js';
import type {
  AlertDeadJob, AlertDeadJobListParams, AlertListParams, AlertOpenParams, AlertResolveParams, AlertRow, AlertRunningJob, AlertRunningJobListParams,
} from '../alert-params.js';
import type { AuditAppendParams, AuditEntry, AuditHead, AuditListParams, AuditPruneParams } from '../audit-params.js';
import type { LockAcquireParams, LockCheckParams, LockCheckResult, LockGrant, LockRenewParams, LockRow } from '../lock-params.js';
import type { JobKeyPruneParams, JobKeyPruneResult, JobPruneParams, ScheduleTickPruneParams } from '../retention-params.js';
import type {
  ScheduleAdvanceParams, ScheduleAdvanceResult, ScheduleLastSuccess, ScheduleResumeParams, ScheduleRow, ScheduleSyncParams, ScheduleTickRow, ScheduleTicksAfterParams, ScheduleTicksWrittenParams,
  ScheduleTickWritten, ScheduleTriggerParams, ScheduleTriggerResult,
} from '../schedule-params.js';
import { SqliteConnection, TRANSACTION_HANDLE } from './sqlite-connection.js';
import { isBusyError, resolveNow, toMs, writeWith, type SqliteContext } from './sqlite-exec.js';
import { insertJobs } from './sqlite-insert.js';
import * as LeaseWrites from './sqlite-lease-writes.js';
import * as Admin from './sqlite-job-admin.js';
import * as Alerts from './sqlite-alerts.js';
import * as Audit from './sqlite-audit.js';
import * as Locks from './sqlite-locks.js';
import * as Retention from './sqlite-retention.js';
import * as Migrate from './sqlite-migrate.js';
import { compareClaimOrder, toClaimedJobRow, type ClaimDbRow } from './sqlite-rows.js';
import * as Schedules from './sqlite-schedules.js';
import * as LeaseSQL from './sqlite-lease-sql.js';
import * as SQL from './sqlite-sql.js';

export { BUSY_RETRY_BUDGET_MS } from './sqlite-exec.js';
export type { SqliteDriverOptions } from './sqlite-driver-options.js';

/**
 * Job storage in an SQLite file through better-sqlite3. The connection is opened on first use; statements are
 * prepared once per connection and reused.
 * @example const driver = new SqliteDriver({ filename: './warden.db' }); await driver.migrate();
 */
export class SqliteDriver implements Driver {
  /** For display only. */
  readonly kind = 'sqlite';
  /**
   * No LISTEN/NOTIFY (wake-ups come from watching `PRAGMA data_version`) and one machine only; `tx` is an
   * application's better-sqlite3 Database.
   */
  readonly capabilities: DriverCapabilities = Object.freeze({
    listenNotify: false,
    crossProcessWakeup: true,
    multiHost: false,
    // A worker in another process sees a commit within `sqliteWakeupMs` anyway, and has no connection to be handed
    // jobs on.
    handoff: false,
    transactionHandle: TRANSACTION_HANDLE,
  });

  /** The file's connections, statements and write groups. */
  readonly #conn: SqliteConnection;
  readonly #wakeupMs: number;
  /** What the schedule operations (`sqlite-schedules.ts`) run on. */
  readonly #schedules: Schedules.SqliteScheduleContext;
  /** What the other operations (`sqlite-lease-writes.ts`, `sqlite-job-admin.ts`, `sqlite-locks.ts`, …) run on. */
  readonly #ctx: SqliteContext;
  /** What `migrate` and `migrationStatus` (`sqlite-migrate.ts`) run on. */
  readonly #migrateCtx: Migrate.SqliteMigrateContext;

  /** @throws InvalidOptionError for a missing file name or an out-of-range option. */
  constructor(options: SqliteDriverOptions) {
    const { wakeupMs, ...connection } = resolveSqliteDriverOptions(options);
    this.#wakeupMs = wakeupMs;
    const conn = (this.#conn = new SqliteConnection(connection));
    this.#ctx = conn.context();
    const { stmt, write, read } = this.#ctx;
    this.#schedules = { stmt, write, read, cancelOne: (id, now) => Admin.cancelOne(stmt, id, now) };
    this.#migrateCtx = { stmt, read, connected: () => conn.connected(), writeWithoutForeignKeys: (fn, when) => conn.writeWithoutForeignKeys(fn, when) };
  }

  /**
   * Wakes the caller whenever another connection commits to the file (see `sqlite-wakeup.ts`), so workers in
   * other processes start new jobs within a few milliseconds instead of at their next poll.
   */
  async listen(params: ListenParams): Promise<() => Promise<void>> {
    await this.#conn.connection();
    const stop = watchDataVersion({
      read: () => (this.#conn.stmt(SQL.DATA_VERSION).get() as { data_version: number }).data_version,
      intervalMs: this.#wakeupMs,
      onWake: () => params.onWake(),
      onError: params.onError,
    });
    return async () => stop();
  }

  /** How many times a transaction was retried after SQLITE_BUSY/LOCKED escaped `busy_timeout` (this instance). */
  get busyRetries(): number {
    return this.#conn.busyRetries;
  }

  /**
   * Lets writes called before it still run (a migration included), then closes the file's connections; a write
   * called after it is refused with the closed error. Safe to call twice.
   */
  close(): Promise<void> {
    return this.#conn.close();
  }

  /**
   * SQLITE_BUSY/LOCKED (the lock stayed busy past the retry budget), I/O errors and a full disk may clear by
   * themselves; everything else (constraints, type mismatches, a closed driver, bad input) will not.
   */
  isTransientError(error: unknown): boolean {
    if (isBusyError(error)) return true;
    const code = (error as { code?: unknown } | null)?.code;
    return typeof code === 'string' && (code.startsWith('SQLITE_IOERR') || code === 'SQLITE_FULL');
  }

  async dbNow(): Promise<Date> {
    return this.#ctx.read(() => new Date(resolveNow(this.#ctx.stmt, null)));
  }

  // ------------------------------------------------------------------------------------------ migrations

  /** @throws MigrationIntegrityError when a table rebuild left a reference broken (nothing is applied then). */
  migrate(): Promise<MigrateResult> {
    return Migrate.migrate(this.#migrateCtx);
  }

  /** Applied and pending migrations. Creates nothing, so it is safe against a database never migrated. */
  migrationStatus(): Promise<MigrationStatus> {
    return Migrate.migrationStatus(this.#migrateCtx);
  }

  // ------------------------------------------------------------------------------------------ insert / claim

  /** @throws InvalidTransactionError when `tx` is not a better-sqlite3 Database inside a transaction. */
  async jobInsertMany(params: JobInsertManyParams): Promise<JobInsertResult[]> {
    const { jobs, tx } = params;
    const now = toMs(params.now, 'now');
    if (jobs.length === 0 && tx === undefined) return [];
    return writeWith(this.#ctx, tx, (prepare) => insertJobs(prepare, jobs, now));
  }

  async jobClaim(params: JobClaimParams): Promise<JobRow[]> {
    const { queues, limit, workerId, leaseMs } = params;
    const now = toMs(params.now, 'now');
    if (queues.length === 0 || limit < 1) return [];
    // Whole milliseconds, so the claim time derived from the lease's expiry is exact.
    const bind = { queues: JSON.stringify(queues), limit: Math.trunc(limit), workerId, leaseMs: Math.trunc(leaseMs), now };
    const rows = await this.#conn.write(() => this.#conn.rowView<ClaimDbRow>(LeaseSQL.JOB_CLAIM).all(bind));
    return rows.sort(compareClaimOrder).map((r) => toClaimedJobRow(r, workerId, bind.leaseMs));
  }

  // ------------------------------------------------------------------------------------------ lease writes

  /** Renews each lease still held; the others are stale. */
  jobHeartbeat(params: JobHeartbeatParams): Promise<JobLeaseResult> {
    return LeaseWrites.jobHeartbeat(this.#ctx, params);
  }

  /** Hands back never-started claims (`queued`, the claim's attempt taken back); lost leases are stale. */
  jobRelease(params: JobReleaseParams): Promise<JobLeaseResult> {
    return LeaseWrites.jobRelease(this.#ctx, params);
  }

  /** Which leases of jobs not started yet no longer hold, and which are in a paused queue; one read. */
  jobLeaseCheck(params: JobLeaseCheckParams): Promise<JobLeaseCheckResult> {
    return LeaseWrites.jobLeaseCheck(this.#ctx, params);
  }

  /** The running jobs leased to `workerId`, by id. @throws InvalidOptionError for a limit outside 1..10,000. */
  jobLeasedTo(params: { workerId: string; limit: number }): Promise<JobLease[]> {
    return LeaseWrites.jobLeasedTo(this.#ctx, params);
  }

  /** @throws InvalidTransactionError when `tx` is not a better-sqlite3 Database inside a transaction. */
  jobFinishMany(params: JobFinishManyParams): Promise<JobLeaseResult> {
    return LeaseWrites.jobFinishMany(this.#ctx, params);
  }

  /** @throws InvalidTransactionError when `tx` is not a better-sqlite3 Database inside a transaction. */
  jobStepRecord(params: JobStepRecordParams): Promise<GuardedWriteResult> {
    return LeaseWrites.jobStepRecord(this.#ctx, params);
  }

  /** @throws InvalidTransactionError when `tx` is not a better-sqlite3 Database inside a transaction. */
  jobCheckpoint(params: JobCheckpointParams): Promise<GuardedWriteResult> {
    return LeaseWrites.jobCheckpoint(this.#ctx, params);
  }

  /** Moves running jobs with expired leases to `retrying` (or `dead`), recording a `lost` attempt each. */
  jobRescue(params: JobRescueParams): Promise<RescuedJob[]> {
    return LeaseWrites.jobRescue(this.#ctx, params);
  }

  // ------------------------------------------------------------------------------------------ operator actions

  /** @throws JobNotFoundError, JobStateError (not queued/retrying/running). */
  jobCancel(params: { id: string; now: Date | null }): Promise<JobRow> {
    return Admin.jobCancel(this.#ctx, params);
  }

  /** @throws JobNotFoundError, JobStateError (not dead/retrying), KeyConflictError. */
  jobRetry(params: { id: string; now: Date | null }): Promise<JobRow> {
    return Admin.jobRetry(this.#ctx, params);
  }

  /** @throws JobNotFoundError, JobStateError (running). */
  jobDiscard(params: { id: string }): Promise<JobRow> {
    return Admin.jobDiscard(this.#ctx, params);
  }

  // ------------------------------------------------------------------------------------------ reads

  /** One job, or null (also for an id that is not a decimal id). */
  jobGet(params: { id: string }): Promise<JobRow | null> {
    return Admin.jobGet(this.#ctx, params);
  }

  /** The jobs of up to 1,000 ids that exist, in one statement. @throws InvalidOptionError for a longer list */
  jobGetMany(params: JobGetManyParams): Promise<JobRow[]> {
    return Admin.jobGetMany(this.#ctx, params);
  }

  /** @throws InvalidOptionError when `beforeId` is not a decimal id. */
  jobList(params: JobListParams): Promise<JobRow[]> {
    return Admin.jobList(this.#ctx, params);
  }

  /** A job's finished attempts, oldest first. */
  jobAttemptList(params: { id: string }): Promise<AttemptRow[]> {
    return Admin.jobAttemptList(this.#ctx, params);
  }

  /** A job's recorded steps, oldest first. */
  jobStepList(params: { id: string }): Promise<JobStepRow[]> {
    return LeaseWrites.jobStepList(this.#ctx, params);
  }

  // ------------------------------------------------------------------------------------------ transactions

  /**
   * Runs `fn` in `BEGIN IMMEDIATE … COMMIT` on a second connection to the file (opened on first use), passing
   * that better-sqlite3 Database as the `tx` handle; rolls back and rethrows when `fn` throws. One at a time per
   * driver instance. See `sqlite-transaction.ts`.
   * @throws DatabaseConfigError for an in-memory database; an Error for a nested call.
   */
  transaction<T>(fn: (tx: unknown) => Promise<T>): Promise<T> {
    return this.#conn.transaction(fn);
  }

  /** Every queue with jobs or a pause row, with per-state counts and lag, sorted by name. */
  queueList(): Promise<QueueStats[]> {
    return Admin.queueList(this.#ctx);
  }

  /** Queues with jobs not yet ended (or a pause row), read without touching finished jobs. */
  queueActivity(): Promise<QueueActivity[]> {
    return Admin.queueActivity(this.#ctx);
  }

  /** Stops claims from a queue (persisted; takes effect for every process). */
  queuePause(params: { queue: string }): Promise<void> {
    return Admin.queuePause(this.#ctx, params);
  }

  /** Lets claims from a queue resume. */
  queueResume(params: { queue: string }): Promise<void> {
    return Admin.queueResume(this.#ctx, params);
  }

  // ------------------------------------------------------------------------------------------ schedules

  /** Upserts the code's schedules in one transaction; with `removeMissing`, marks the others removed. */
  scheduleSync(params: ScheduleSyncParams): Promise<void> {
    return Schedules.scheduleSync(this.#schedules, params);
  }

  /** Active, unpaused schedules due at `now`, soonest first. */
  scheduleDue(params: { now: Date | null; limit: number }): Promise<ScheduleRow[]> {
    return Schedules.scheduleDue(this.#schedules, params);
  }

  /** Every schedule not removed, by name, with its newest tick. */
  scheduleList(): Promise<ScheduleRow[]> {
    return Schedules.scheduleList(this.#schedules);
  }

  /** One schedule not removed, with its newest tick; null when missing or removed. */
  scheduleGet(params: { name: string }): Promise<ScheduleRow | null> {
    return Schedules.scheduleGet(this.#schedules, params);
  }

  /** A schedule's ticks, newest first. */
  scheduleTickList(params: { name: string; limit?: number }): Promise<ScheduleTickRow[]> {
    return Schedules.scheduleTickList(this.#schedules, params);
  }

  /** The schedule's newest `fired` tick whose job completed, with its finish time; null when none. */
  scheduleLastSuccess(params: { name: string }): Promise<ScheduleLastSuccess | null> {
    return Schedules.scheduleLastSuccess(this.#schedules, params);
  }

  /** A schedule's `scheduled` ticks with `after < tick_at <= through`, oldest first. */
  scheduleTicksAfter(params: ScheduleTicksAfterParams): Promise<ScheduleTickRow[]> {
    return Schedules.scheduleTicksAfter(this.#schedules, params);
  }

  /** The scheduled ticks among `tickAts` that `firedBy` wrote. */
  scheduleTicksWrittenBy(params: ScheduleTicksWrittenParams): Promise<ScheduleTickWritten[]> {
    return Schedules.scheduleTicksWrittenBy(this.#schedules, params);
  }

  /** @throws ScheduleNotFoundError when the schedule is missing or removed. */
  schedulePause(params: { name: string; now: Date | null }): Promise<ScheduleRow> {
    return Schedules.schedulePause(this.#schedules, params);
  }

  /**
   * Unpauses and sets `next_run_at`, while the stored hash is `expectedHash` (else null).
   * @throws ScheduleNotFoundError when the schedule is missing or removed.
   */
  scheduleResume(params: ScheduleResumeParams): Promise<ScheduleRow | null> {
    return Schedules.scheduleResume(this.#schedules, params);
  }

  /**
   * Compare-and-swap of `next_run_at`, then the ticks and their jobs, in one transaction.
   * @throws InvalidOptionError for an invalid date, or a `fire` tick without a job.
   */
  scheduleAdvance(params: ScheduleAdvanceParams): Promise<ScheduleAdvanceResult> {
    return Schedules.scheduleAdvance(this.#schedules, params);
  }

  /**
   * Enqueues one run now as a `triggered` tick (paused schedules too).
   * @throws ScheduleNotFoundError when the schedule is missing or removed.
   */
  scheduleTrigger(params: ScheduleTriggerParams): Promise<ScheduleTriggerResult> {
    return Schedules.scheduleTrigger(this.#schedules, params);
  }

  // ------------------------------------------------------------------------------------------ retention

  jobPrune(params: JobPruneParams): Promise<number> {
    return Retention.jobPrune(this.#ctx, params);
  }

  jobKeyPrune(params: JobKeyPruneParams): Promise<JobKeyPruneResult> {
    return Retention.jobKeyPrune(this.#ctx, params);
  }

  scheduleTickPrune(params: ScheduleTickPruneParams): Promise<number> {
    return Retention.scheduleTickPrune(this.#ctx, params);
  }

  // ------------------------------------------------------------------------------------------ alerts

  /** Opens an alert unless it is open; the row when this call opened it. @throws InvalidTransactionError */
  alertOpen(params: AlertOpenParams): Promise<AlertRow | null> {
    return Alerts.alertOpen(this.#ctx, params);
  }

  /** Resolves an open alert; the row when this call resolved it. @throws InvalidTransactionError */
  alertResolve(params: AlertResolveParams): Promise<AlertRow | null> {
    return Alerts.alertResolve(this.#ctx, params);
  }

  /** Alerts, most recently changed first. */
  alertList(params: AlertListParams): Promise<AlertRow[]> {
    return Alerts.alertList(this.#ctx, params);
  }

  /** The alert of one key, open or resolved; null when there is none. */
  alertGet(params: { key: string }): Promise<AlertRow | null> {
    return Alerts.alertGet(this.#ctx, params);
  }

  /** A page of the dead jobs, newest id first, each with whether its dead-letter alert exists. @throws InvalidOptionError */
  alertDeadJobList(params: AlertDeadJobListParams): Promise<AlertDeadJob[]> {
    return Alerts.alertDeadJobList(this.#ctx, params);
  }

  /** Running attempts started at or before a time, oldest start first. @throws InvalidOptionError */
  alertRunningJobList(params: AlertRunningJobListParams): Promise<AlertRunningJob[]> {
    return Alerts.alertRunningJobList(this.#ctx, params);
  }

  // ------------------------------------------------------------------------------------------ audit trail

  /** Seals and appends entries after the chain's head in one `BEGIN IMMEDIATE`. */
  auditAppend(params: AuditAppendParams): Promise<AuditEntry[]> {
    return Audit.auditAppend(this.#ctx, params);
  }

  /** A page of an audit chain in seq order. */
  auditList(params: AuditListParams): Promise<AuditEntry[]> {
    return Audit.auditList(this.#ctx, params);
  }

  /** An audit chain's head row, or null. */
  auditHead(params: { chain: string }): Promise<AuditHead | null> {
    return Audit.auditHead(this.#ctx, params);
  }

  /** Deletes an audit chain's entries older than `before`; how many. */
  auditPrune(params: AuditPruneParams): Promise<number> {
    return Audit.auditPrune(this.#ctx, params);
  }

  // ------------------------------------------------------------------------------------------ lease locks

  /** Grants a lease lock if free or expired; null while held. */
  lockAcquire(params: LockAcquireParams): Promise<LockGrant | null> {
    return Locks.lockAcquire(this.#ctx, params);
  }

  /** Extends a lease still held with `token`; null when lost. */
  lockRenew(params: LockRenewParams): Promise<LockGrant | null> {
    return Locks.lockRenew(this.#ctx, params);
  }

  /** Frees a lock held with `token`; whether it did. */
  lockRelease(params: { name: string; token: number }): Promise<boolean> {
    return Locks.lockRelease(this.#ctx, params);
  }

  /**
   * Whether `token` is the live holder; with `tx`, on the application's connection inside its transaction.
   * @throws InvalidTransactionError when `tx` is not a better-sqlite3 Database inside a transaction.
   */
  lockCheck(params: LockCheckParams): Promise<LockCheckResult> {
    return Locks.lockCheck(this.#ctx, params);
  }

  /** Every lock row, by name. */
  lockList(): Promise<LockRow[]> {
    return Locks.lockList(this.#ctx);
  }
}
