/**
 * The PostgreSQL implementation of {@link Driver}: many processes on many hosts share one database.
 * Semantics are those of docs/driver-contract.md; every SQL text lives in `postgres-sql.ts` and its sibling
 * `postgres-*-sql.ts` modules. Operator actions and reads are in `postgres-job-admin.ts`, heartbeats, endings and
 * rescue in `postgres-lease-writes.ts`, migrating in `postgres-migrate.ts`, and the other operations in the
 * `postgres-*.ts` module named after them, and the pools in `postgres-connection.ts`; this class delegates to them
 * with a context each.
 * @module
 */
import { InvalidTransactionError } from '../../errors.js';
import type { AttemptRow, JobRow, QueueActivity, QueueStats } from '../../job/job-record.js';
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
import type {
  Driver, DriverCapabilities, GuardedWriteResult, JobCheckpointParams, JobClaimParams, JobFinishManyParams,
  JobGetManyParams, JobHeartbeatParams, JobInsertManyParams, JobInsertResult, JobLease, JobLeaseResult, JobListParams, JobReleaseParams,
  JobLeaseCheckParams, JobLeaseCheckResult, JobRescueParams, JobStepRecordParams, JobStepRow, ListenParams, MigrateResult,
  MigrationStatus, RescuedJob,
} from '../driver.js';
import { HandoffKeys, handoffFetchSql, handoffWithdrawSql } from './postgres-handoff.js';
import { findAllDuplicates, insertJobs, insertUnkeyedJobs, type PostgresInsertStatements } from './postgres-insert.js';
import * as JobAdmin from './postgres-job-admin.js';
import { buildPostgresKeyStatements } from './postgres-keys-sql.js';
import { buildPostgresAlertStatements } from './postgres-alert-sql.js';
import * as Alerts from './postgres-alerts.js';
import * as Audit from './postgres-audit.js';
import { buildPostgresAuditStatements } from './postgres-audit-sql.js';
import { buildPostgresLockStatements } from './postgres-lock-sql.js';
import * as LeaseWrites from './postgres-lease-writes.js';
import * as Locks from './postgres-locks.js';
import * as Retention from './postgres-retention.js';
import * as Migrate from './postgres-migrate.js';
import { toClaimedJobRow, type PgClaimTuple } from './postgres-rows.js';
import { scheduleAdvance } from './postgres-schedule-advance.js';
import { buildPostgresScheduleStatements } from './postgres-schedule-sql.js';
import * as Schedules from './postgres-schedules.js';
import * as SQL from './postgres-sql.js';
import { buildPostgresStatements, type PostgresStatements } from './postgres-statements.js';
import * as Steps from './postgres-steps.js';
import { PostgresConnection } from './postgres-connection.js';
import { resolvePostgresDriverOptions, type PostgresDriverOptions } from './postgres-driver-options.js';
import { buildPostgresStepStatements } from './postgres-steps-sql.js';
import { isPgClient, withClientTransaction } from './postgres-transaction.js';

export type { PostgresDriverOptions } from './postgres-driver-options.js';

/** PostgreSQL identifiers (and NOTIFY channels) are at most 63 bytes; LISTEN would truncate silently. */
const MAX_CHANNEL_LENGTH = 63;

/**
 * A {@link Driver} over a `pg.Pool`.
 * @example new PostgresDriver({ connectionString: 'postgres://localhost/app', schema: 'warden' })
 */
export class PostgresDriver implements Driver {
  /** Always `"postgres"`. */
  readonly kind = 'postgres';
  /** LISTEN/NOTIFY wake-ups, many hosts, hand-off unless turned off, and `tx` as a `pg` client. */
  readonly capabilities: DriverCapabilities;
  /** The (validated, unquoted) schema holding Warden's tables. */
  readonly schema: string;

  /** The pools, and which statements are prepared. */
  readonly #conn: PostgresConnection;
  readonly #sql: PostgresStatements;
  /** NOTIFY/LISTEN channel: `<schema>_jobs`. */
  readonly #channel: string;
  /** Withdraws a worker's hand-off registration, and reads a handed job (`postgres-handoff.ts`). */
  readonly #handoffSql: { withdraw: string; fetch: string; fetchName: string | null };
  /** Each worker's hand-off lock key and private channel. */
  readonly #handoffKeys: HandoffKeys;
  /** What `migrate` and `migrationStatus` (`postgres-migrate.ts`) run on. */
  readonly #migrations: Migrate.PostgresMigrateContext;
  /** What the schedule operations (`postgres-schedules.ts`, `postgres-schedule-advance.ts`) run on. */
  readonly #schedules: Schedules.PostgresScheduleContext;
  /** What the lease-lock operations (`postgres-locks.ts`) run on. */
  readonly #locks: Locks.PostgresLockContext;
  /** The statements of every enqueue path (`postgres-insert.ts`). */
  readonly #insertSql: PostgresInsertStatements;
  /** What the operator actions and reads (`postgres-job-admin.ts`) run on. */
  readonly #admin: JobAdmin.PostgresJobAdminContext;
  /** What the worker's heartbeats, endings and the rescue (`postgres-lease-writes.ts`) run on. */
  readonly #leaseWrites: LeaseWrites.PostgresLeaseWriteContext;
  /** What the step and checkpoint operations (`postgres-steps.ts`) run on. */
  readonly #steps: Steps.PostgresStepContext;
  /** What the alert operations (`postgres-alerts.ts`) run on. */
  readonly #alerts: Alerts.PostgresAlertContext;
  /** What the audit-trail operations (`postgres-audit.ts`) run on. */
  readonly #audit: Audit.PostgresAuditContext;

  /** @throws InvalidNameError for a bad schema name, InvalidOptionError for a bad pool size; before any SQL. */
  constructor(options: PostgresDriverOptions) {
    const resolved = resolvePostgresDriverOptions(options);
    this.capabilities = Object.freeze({
      listenNotify: true,
      crossProcessWakeup: true,
      multiHost: true,
      handoff: resolved.handoff,
      transactionHandle: 'a pg Client or PoolClient with an open transaction',
    });
    this.schema = resolved.schema;
    this.#sql = buildPostgresStatements(this.schema);
    this.#handoffKeys = new HandoffKeys(this.schema);
    this.#handoffSql = {
      withdraw: handoffWithdrawSql(this.#sql.quotedSchema),
      fetch: handoffFetchSql(this.#sql.quotedSchema),
      fetchName: resolved.preparedStatements ? 'warden_handoff' : null,
    };
    this.#channel = `${this.schema}_jobs`.slice(0, MAX_CHANNEL_LENGTH);
    const keySql = buildPostgresKeyStatements(this.schema);
    const auditSql = buildPostgresAuditStatements(this.schema);
    this.#conn = new PostgresConnection({ ...resolved, sql: this.#sql, keySql, auditSql });
    const { pool, run, runWorker } = this.#conn;
    this.#insertSql = { jobInsertNotify: this.#sql.jobInsertNotify, jobInsertOneNotify: this.#sql.jobInsertOneNotify, keyLock: keySql.keyLock, jobInsertRound: keySql.jobInsertRound, keyDuplicates: keySql.keyDuplicates };
    this.#migrations = { pool, run, schema: this.schema, sql: this.#sql };
    this.#schedules = {
      pool,
      schema: this.schema,
      jobSql: this.#insertSql,
      sql: buildPostgresScheduleStatements(this.schema),
      channel: this.#channel,
    };
    const transactionHandle = this.capabilities.transactionHandle;
    this.#locks = { run, sql: buildPostgresLockStatements(this.schema), transactionHandle };
    this.#admin = { run, sql: this.#sql, keys: { pool, run, sql: this.#sql, keySql } };
    this.#leaseWrites = {
      run, runWorker, sql: this.#sql, transactionHandle,
      inTransaction: (begin, fn) => this.#conn.workerTransaction(begin, fn),
    };
    this.#steps = { run, sql: buildPostgresStepStatements(this.schema), transactionHandle, channel: this.#channel };
    this.#alerts = { run, sql: buildPostgresAlertStatements(this.schema), transactionHandle };
    this.#audit = { pool, run, sql: auditSql };
  }

  /** Stops every listener and closes the pools. Safe to call twice (both calls wait for the same close). */
  close(): Promise<void> {
    return this.#conn.end();
  }

  /**
   * Connection-level failures (no SQLSTATE: refused, reset, terminated), connection exceptions (class 08),
   * insufficient resources (53), operator intervention such as a restarting server (57P01-57P03) and
   * serialization failures or deadlocks (40001, 40P01) may pass; any other SQLSTATE is the database refusing
   * the data for good.
   */
  isTransientError(error: unknown): boolean {
    const code = (error as { code?: unknown } | null)?.code;
    if (typeof code !== 'string' || !/^[0-9A-Z]{5}$/.test(code)) return true;
    return code.startsWith('08') || code.startsWith('53') || ['57P01', '57P02', '57P03', '40001', '40P01'].includes(code);
  }

  /** The database's wall-clock time (not the transaction start). */
  async dbNow(): Promise<Date> {
    const { rows } = await this.#conn.run<{ now: Date }>(SQL.DB_NOW_SQL);
    return rows[0]!.now;
  }

  /** Applies pending migrations in one transaction under an advisory lock keyed by the schema name. */
  migrate(): Promise<MigrateResult> {
    return Migrate.migrate(this.#migrations);
  }

  /** Applied and pending migrations. Creates nothing, so it is safe against a database never migrated. */
  migrationStatus(): Promise<MigrationStatus> {
    return Migrate.migrationStatus(this.#migrations);
  }

  /**
   * Inserts jobs in one transaction (the caller's `tx` when given), deduplicating each `key` against its holder
   * under the key's `job_keys` row lock (see `insertJobs`), and wakes listeners of each queue that got a new (or
   * replaced, due) job when that transaction commits. A batch without keys outside `tx` is one autocommit statement.
   * @throws InvalidTransactionError when `tx` is not a pg client.
   */
  async jobInsertMany(params: JobInsertManyParams): Promise<JobInsertResult[]> {
    const { jobs, now, tx } = params;
    if (tx !== undefined) {
      if (!isPgClient(tx)) throw new InvalidTransactionError(this.capabilities.transactionHandle, tx);
      if (jobs.length === 0) return [];
      // The caller owns the transaction: no BEGIN/COMMIT here, and a failure is theirs to roll back.
      // Only keyed statements are planned generically: an unkeyed batch skips the setting's two extra round trips.
      if (jobs.every((j) => j.key === null)) return insertUnkeyedJobs((text, values) => tx.query(text, values), this.#sql, this.#channel, jobs, now, false);
      return this.#conn.callerTransaction(tx, (run) => insertJobs(run, this.#insertSql, this.#channel, jobs, now));
    }
    if (jobs.length === 0) return [];
    if (jobs.every((j) => j.key === null)) return insertUnkeyedJobs(this.#conn.run, this.#sql, this.#channel, jobs, now, true);
    const duplicates = await findAllDuplicates(this.#conn.run, this.#insertSql, jobs, now);
    if (duplicates) return duplicates;
    return this.#conn.genericTransaction((run) => insertJobs(run, this.#insertSql, this.#channel, jobs, now));
  }

  /** Claims due jobs in one statement; returned in claim order (`priority, run_at, id`). */
  async jobClaim(params: JobClaimParams): Promise<JobRow[]> {
    if (params.limit < 1 || params.queues.length === 0) return [];
    // Distinct: each queue's index range is read (and its rows locked) once.
    // Whole milliseconds, so the claim time derived from the lease's expiry is exact.
    const leaseMs = Math.trunc(params.leaseMs);
    const { handoff } = params;
    const values: unknown[] = [[...new Set(params.queues)], params.limit, params.workerId, leaseMs, params.now];
    if (handoff) {
      const { lockKey, channel } = this.#handoffKeys.of(params.workerId);
      values.push(Math.max(0, Math.trunc(handoff.slots)), handoff.expiresInMs, lockKey, handoff.received, channel);
    }
    const { rows } = await this.#conn.runWorker<{ job: PgClaimTuple }>(handoff ? this.#sql.jobClaimHandoff : this.#sql.jobClaim, values);
    return rows.map((r) => toClaimedJobRow(r.job, params.workerId, leaseMs));
  }

  /** Extends each lease still held; the others are reported stale. */
  jobHeartbeat(params: JobHeartbeatParams): Promise<JobLeaseResult> {
    return LeaseWrites.jobHeartbeat(this.#leaseWrites, params);
  }

  /** Which leases of jobs not started yet no longer hold, and which are in a paused queue; one statement. */
  jobLeaseCheck(params: JobLeaseCheckParams): Promise<JobLeaseCheckResult> {
    return LeaseWrites.jobLeaseCheck(this.#leaseWrites, params);
  }

  /** Ends attempts in one statement; a lease no longer held is stale. @throws InvalidTransactionError */
  jobFinishMany(params: JobFinishManyParams): Promise<JobLeaseResult> {
    return LeaseWrites.jobFinishMany(this.#leaseWrites, params);
  }

  /** Hands back never-started claims (`queued`, attempt taken back) and wakes their queues; lost leases are stale. */
  jobRelease(params: JobReleaseParams): Promise<JobLeaseResult> {
    return Steps.jobRelease(this.#steps, params);
  }

  /** The running jobs leased to `workerId`, by id. @throws InvalidOptionError for a limit outside 1..10,000. */
  jobLeasedTo(params: { workerId: string; limit: number }): Promise<JobLease[]> {
    return Steps.jobLeasedTo(this.#steps, params);
  }

  /** Moves running jobs with expired leases to `retrying` (or `dead`), recording a `lost` attempt each. */
  jobRescue(params: JobRescueParams): Promise<RescuedJob[]> {
    return LeaseWrites.jobRescue(this.#leaseWrites, params);
  }

  /** Cancels a queued, retrying or running job. @throws JobNotFoundError, JobStateError */
  jobCancel(params: { id: string; now: Date | null }): Promise<JobRow> {
    return JobAdmin.jobCancel(this.#admin, params);
  }

  /** Operator retry of a `dead` or `retrying` job. @throws JobNotFoundError, JobStateError, KeyConflictError */
  jobRetry(params: { id: string; now: Date | null }): Promise<JobRow> {
    return JobAdmin.jobRetry(this.#admin, params);
  }

  /** Deletes a job that is not running, with its attempts, and returns it. @throws JobNotFoundError, JobStateError */
  jobDiscard(params: { id: string }): Promise<JobRow> {
    return JobAdmin.jobDiscard(this.#admin, params);
  }

  /** One job, or null (also for an id that is not a decimal bigint). */
  jobGet(params: { id: string }): Promise<JobRow | null> {
    return JobAdmin.jobGet(this.#admin, params);
  }

  /** The jobs of up to 1,000 ids that exist, in one statement. @throws InvalidOptionError for a longer list */
  jobGetMany(params: JobGetManyParams): Promise<JobRow[]> {
    return JobAdmin.jobGetMany(this.#admin, params);
  }

  /** Jobs newest first, filtered; `limit` defaults to 50 and is clamped to 1..1000. */
  jobList(params: JobListParams): Promise<JobRow[]> {
    return JobAdmin.jobList(this.#admin, params);
  }

  /** Saves a checkpoint while the lease is held; 'stale' otherwise. @throws InvalidTransactionError */
  jobCheckpoint(params: JobCheckpointParams): Promise<GuardedWriteResult> {
    return Steps.jobCheckpoint(this.#steps, params);
  }

  /** A job's recorded steps, oldest first. */
  jobStepList(params: { id: string }): Promise<JobStepRow[]> {
    return Steps.jobStepList(this.#steps, params);
  }

  /** Records a step's result while the lease is held (job row `FOR SHARE`); 'stale' otherwise. @throws InvalidTransactionError */
  jobStepRecord(params: JobStepRecordParams): Promise<GuardedWriteResult> {
    return Steps.jobStepRecord(this.#steps, params);
  }

  /**
   * Runs `fn` between BEGIN and COMMIT on a pooled client of its own, which `fn` receives (and may pass as `tx`);
   * rolls back and rethrows when `fn` throws. The client goes back to the pool either way (dropped if broken).
   */
  transaction<T>(fn: (tx: unknown) => Promise<T>): Promise<T> {
    return withClientTransaction(this.#conn.pool, fn);
  }

  /** A job's finished attempts, oldest first. */
  jobAttemptList(params: { id: string }): Promise<AttemptRow[]> {
    return JobAdmin.jobAttemptList(this.#admin, params);
  }

  /** Every queue with jobs or a pause row, with per-state counts and lag, sorted by name. */
  queueList(): Promise<QueueStats[]> {
    return JobAdmin.queueList(this.#admin);
  }

  /** Queues with jobs not yet ended (or a pause row), read without touching finished jobs. */
  queueActivity(): Promise<QueueActivity[]> {
    return JobAdmin.queueActivity(this.#admin);
  }

  /** Stops claims from a queue (persisted; takes effect for every process). */
  queuePause(params: { queue: string }): Promise<void> {
    return JobAdmin.queuePause(this.#admin, params);
  }

  /** Lets claims from a queue resume. */
  queueResume(params: { queue: string }): Promise<void> {
    return JobAdmin.queueResume(this.#admin, params);
  }

  /** Upserts the code's schedules in one transaction (concurrent syncs queue on an advisory lock). */
  scheduleSync(params: ScheduleSyncParams): Promise<void> {
    return Schedules.scheduleSync(this.#schedules, params);
  }

  /** Active, unpaused schedules due at `now`, soonest first. */
  scheduleDue(params: { now: Date | null; limit: number }): Promise<ScheduleRow[]> {
    return Schedules.scheduleDue(this.#schedules, params);
  }

  /** Compare-and-swap of `next_run_at`, then the ticks and their jobs, in one transaction. */
  scheduleAdvance(params: ScheduleAdvanceParams): Promise<ScheduleAdvanceResult> {
    return scheduleAdvance(this.#schedules, params);
  }

  /** Enqueues one run now as a `triggered` tick. @throws ScheduleNotFoundError */
  scheduleTrigger(params: ScheduleTriggerParams): Promise<ScheduleTriggerResult> {
    return Schedules.scheduleTrigger(this.#schedules, params);
  }

  // ------------------------------------------------------------------------------------------ retention

  jobPrune(params: JobPruneParams): Promise<number> {
    return Retention.jobPrune(this.#conn.run, this.schema, params);
  }

  jobKeyPrune(params: JobKeyPruneParams): Promise<JobKeyPruneResult> {
    return Retention.jobKeyPrune(this.#conn.run, this.schema, params);
  }

  scheduleTickPrune(params: ScheduleTickPruneParams): Promise<number> {
    return Retention.scheduleTickPrune(this.#conn.run, this.schema, params);
  }

  /** @throws ScheduleNotFoundError */
  schedulePause(params: { name: string; now: Date | null }): Promise<ScheduleRow> {
    return Schedules.schedulePause(this.#schedules, params);
  }

  /** Unpauses and sets `next_run_at`, while the stored hash is `expectedHash` (else null). @throws ScheduleNotFoundError */
  scheduleResume(params: ScheduleResumeParams): Promise<ScheduleRow | null> {
    return Schedules.scheduleResume(this.#schedules, params);
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

  /** The scheduled ticks among `tickAts` that `firedBy` wrote, once no advance of the schedule is in flight. */
  scheduleTicksWrittenBy(params: ScheduleTicksWrittenParams): Promise<ScheduleTickWritten[]> {
    return Schedules.scheduleTicksWrittenBy(this.#schedules, params);
  }

  /** Opens an alert unless it is open; the row when this call opened it. @throws InvalidTransactionError */
  alertOpen(params: AlertOpenParams): Promise<AlertRow | null> {
    return Alerts.alertOpen(this.#alerts, params);
  }

  /** Resolves an open alert; the row when this call resolved it. @throws InvalidTransactionError */
  alertResolve(params: AlertResolveParams): Promise<AlertRow | null> {
    return Alerts.alertResolve(this.#alerts, params);
  }

  /** Alerts, most recently changed first. */
  alertList(params: AlertListParams): Promise<AlertRow[]> {
    return Alerts.alertList(this.#alerts, params);
  }

  /** The alert of one key, open or resolved; null when there is none. */
  alertGet(params: { key: string }): Promise<AlertRow | null> {
    return Alerts.alertGet(this.#alerts, params);
  }

  /** A page of the dead jobs, newest id first, each with whether its dead-letter alert exists. @throws InvalidOptionError */
  alertDeadJobList(params: AlertDeadJobListParams): Promise<AlertDeadJob[]> {
    return Alerts.alertDeadJobList(this.#alerts, params);
  }

  /** Running attempts started at or before a time, oldest start first. @throws InvalidOptionError */
  alertRunningJobList(params: AlertRunningJobListParams): Promise<AlertRunningJob[]> {
    return Alerts.alertRunningJobList(this.#alerts, params);
  }

  /** Seals and appends entries after the chain's head, holding the head row's lock. */
  auditAppend(params: AuditAppendParams): Promise<AuditEntry[]> {
    return Audit.auditAppend(this.#audit, params);
  }

  /** A page of an audit chain in seq order. */
  auditList(params: AuditListParams): Promise<AuditEntry[]> {
    return Audit.auditList(this.#audit, params);
  }

  /** An audit chain's head row, or null. */
  auditHead(params: { chain: string }): Promise<AuditHead | null> {
    return Audit.auditHead(this.#audit, params);
  }

  /** Deletes an audit chain's entries older than `before`; how many. */
  auditPrune(params: AuditPruneParams): Promise<number> {
    return Audit.auditPrune(this.#audit, params);
  }

  /** Grants a lease lock if free or expired; null while held. */
  lockAcquire(params: LockAcquireParams): Promise<LockGrant | null> {
    return Locks.lockAcquire(this.#locks, params);
  }

  /** Extends a lease still held with `token`; null when lost. */
  lockRenew(params: LockRenewParams): Promise<LockGrant | null> {
    return Locks.lockRenew(this.#locks, params);
  }

  /** Frees a lock held with `token`; whether it did. */
  lockRelease(params: { name: string; token: number }): Promise<boolean> {
    return Locks.lockRelease(this.#locks, params);
  }

  /** Whether `token` is the live holder; with `tx`, `FOR SHARE` on that transaction. @throws InvalidTransactionError */
  lockCheck(params: LockCheckParams): Promise<LockCheckResult> {
    return Locks.lockCheck(this.#locks, params);
  }

  /** Every lock row, by name. */
  lockList(): Promise<LockRow[]> {
    return Locks.lockList(this.#locks);
  }

  /**
   * Subscribes to wake-ups on `<schema>_jobs` through a dedicated connection that reconnects by itself.
   * @returns An unsubscribe function (also called by {@link close}).
   */
  listen(params: ListenParams): Promise<() => Promise<void>> {
    const { onWake, onReconnect, onError, handoff } = params;
    return this.#conn.listen(this.#channel, {
      onWake,
      onReconnect,
      onError,
      ...(handoff ? { handoff: { ...handoff, ...this.#handoffKeys.of(handoff.workerId), fetchSql: this.#handoffSql.fetch, ...(this.#handoffSql.fetchName ? { fetchName: this.#handoffSql.fetchName } : {}) } } : {}),
    });
  }

  /** Opens a worker-pool connection ahead of the first claim. Never rejects. */
  workerConnectionsWarm(): Promise<void> {
    return this.#conn.warmWorker();
  }

  /** Ends `workerId`'s hand-off registration once no enqueue is handing it a job. */
  async handoffWithdraw(params: { workerId: string }): Promise<void> {
    await this.#conn.run(this.#handoffSql.withdraw, [params.workerId]);
  }
}
