/**
 * The PostgreSQL implementation of {@link Driver}: many processes on many hosts share one database.
 * Semantics are those of docs/driver-contract.md; every SQL text lives in `postgres-sql.ts` and its sibling
 * `postgres-*-sql.ts` modules.
 * @module
 */
import pg from 'pg';
import { InvalidOptionError, InvalidTransactionError, JobNotFoundError, JobStateError } from '../../errors.js';
import type { AttemptRow, JobRow, JobState, QueueStats } from '../../job/job-record.js';
import { validateSchemaName } from '../../validation/names.js';
import type { AlertListParams, AlertOpenParams, AlertResolveParams, AlertRow } from '../alert-params.js';
import type { AuditAppendParams, AuditEntry, AuditHead, AuditListParams, AuditPruneParams } from '../audit-params.js';
import type { LockAcquireParams, LockCheckParams, LockCheckResult, LockGrant, LockRenewParams, LockRow } from '../lock-params.js';
import { isPlainCompletion } from '../plain-completion.js';
import type { JobKeyPruneParams, JobKeyPruneResult, JobPruneParams, ScheduleTickPruneParams } from '../retention-params.js';
import type {
  ScheduleAdvanceParams,
  ScheduleAdvanceResult,
  ScheduleRow,
  ScheduleSyncParams,
  ScheduleTickRow,
  ScheduleTriggerParams,
} from '../schedule-params.js';
import type {
  Driver,
  DriverCapabilities,
  GuardedWriteResult,
  JobCheckpointParams,
  JobClaimParams,
  JobFinishManyParams,
  JobHeartbeatParams,
  JobInsertManyParams,
  JobInsertResult,
  JobLeaseResult,
  JobListParams,
  JobReleaseParams,
  JobRescueParams,
  JobStepRecordParams,
  JobStepRow,
  MigrateResult,
  MigrationStatus,
  RescuedJob,
} from '../driver.js';
import { findAllDuplicates, insertJobs, insertUnkeyedJobs, type PostgresInsertStatements, type Run } from './postgres-insert.js';
import * as Keys from './postgres-keys.js';
import { buildPostgresKeyStatements } from './postgres-keys-sql.js';
import { postgresListen } from './postgres-listen.js';
import { buildPostgresAlertStatements } from './postgres-alert-sql.js';
import * as Alerts from './postgres-alerts.js';
import * as Audit from './postgres-audit.js';
import { buildPostgresAuditStatements } from './postgres-audit-sql.js';
import { buildPostgresLockStatements } from './postgres-lock-sql.js';
import * as Locks from './postgres-locks.js';
import * as Retention from './postgres-retention.js';
import { POSTGRES_MIGRATIONS } from './postgres-migrations.js';
import { boolArrayParam, floatArrayParam, idArrayParam, intArrayParam, nullableTextArrayParam, wordArrayParam } from './postgres-array-params.js';
import { isJobId, toAttemptRow, toClaimedJobRow, toJobRow, type PgAttemptRecord, type PgClaimRecord, type PgJobRecord } from './postgres-rows.js';
import { scheduleAdvance } from './postgres-schedule-advance.js';
import { buildPostgresScheduleStatements } from './postgres-schedule-sql.js';
import * as Schedules from './postgres-schedules.js';
import * as SQL from './postgres-sql.js';
import * as Steps from './postgres-steps.js';
import { WorkerPool } from './postgres-worker-pool.js';
import { FAST_TYPES } from './postgres-timestamps.js';
import { buildPostgresStepStatements } from './postgres-steps-sql.js';
import { CANCELLED_ERROR, LEASE_EXPIRED_ERROR } from './postgres-stored-errors.js';
import { isPgClient, withClientTransaction, withTransaction } from './postgres-transaction.js';

/** Options of {@link PostgresDriver}. */
export interface PostgresDriverOptions {
  /** e.g. `postgres://user:pass@host:5432/db`. */
  connectionString: string;
  /** Schema holding Warden's tables; must match `SCHEMA_PATTERN`. @default "warden" */
  schema?: string;
  /** Maximum pooled connections. @default 10 */
  poolSize?: number;
  /** How long to wait for a new connection before failing, so an unreachable host errors instead of hanging. @default 10000 */
  connectTimeoutMs?: number;
  /**
   * Prepare the hot statements once per connection (named statements) rather than parse and plan them on each
   * call. Off for poolers that cannot keep prepared statements per client. @default true
   */
  preparedStatements?: boolean;
  /** Receives errors of idle pooled connections, which must never crash the process. */
  onError?: (error: unknown) => void;
}

/**
 * The statements run once or more per job, prepared once per connection: parsing them costs as much as running
 * them for a small batch. Each returns a fixed column list (see `JOB_COLUMNS`), so a migration adding a column
 * while this process runs cannot invalidate them. Prepared is not planned: PostgreSQL still re-plans a prepared
 * statement while it judges custom plans cheaper, so the worker's three run on the generic-plan worker pool.
 */
const HOT_STATEMENTS = ['jobClaim', 'jobFinishMany', 'jobHeartbeat', 'jobInsertNotify', 'jobInsertOneNotify', 'jobCompleteMany'] as const satisfies readonly (keyof SQL.PostgresStatements)[];

/** States a job can be cancelled from. */
const CANCELLABLE: readonly JobState[] = ['queued', 'retrying', 'running'];
/** States a job can be retried from. */
const RETRYABLE: readonly JobState[] = ['dead', 'retrying'];
/** States a job can be discarded from. */
const DISCARDABLE: readonly JobState[] = ['queued', 'retrying', 'completed', 'dead', 'cancelled'];

/** PostgreSQL identifiers (and NOTIFY channels) are at most 63 bytes; LISTEN would truncate silently. */
const MAX_CHANNEL_LENGTH = 63;

/**
 * A {@link Driver} over a `pg.Pool`.
 * @example new PostgresDriver({ connectionString: 'postgres://localhost/app', schema: 'warden' })
 */
export class PostgresDriver implements Driver {
  /** Always `"postgres"`. */
  readonly kind = 'postgres';
  /** LISTEN/NOTIFY wake-ups, many hosts, and `tx` as a `pg` client. */
  readonly capabilities: DriverCapabilities = {
    listenNotify: true,
    crossProcessWakeup: true,
    multiHost: true,
    transactionHandle: 'a pg Client or PoolClient with an open transaction',
  };
  /** The (validated, unquoted) schema holding Warden's tables. */
  readonly schema: string;

  readonly #pool: pg.Pool;
  /**
   * Where the worker's claim, endings and heartbeats run: with prepared statements, a second small pool whose
   * sessions plan them generically (`postgres-worker-pool.ts`); without, the main pool.
   */
  readonly #workerPool: WorkerPool | null;
  readonly #connectionString: string;
  readonly #onError: (error: unknown) => void;
  readonly #sql: SQL.PostgresStatements;
  /** NOTIFY/LISTEN channel: `<schema>_jobs`. */
  readonly #channel: string;
  readonly #unsubscribes = new Set<() => Promise<void>>();
  /** What the schedule operations (`postgres-schedules.ts`, `postgres-schedule-advance.ts`) run on. */
  readonly #schedules: Schedules.PostgresScheduleContext;
  /** What the lease-lock operations (`postgres-locks.ts`) run on. */
  readonly #locks: Locks.PostgresLockContext;
  /** The statements of every enqueue path (`postgres-insert.ts`). */
  readonly #insertSql: PostgresInsertStatements;
  /** What operator retry's key handling (`postgres-keys.ts`) runs on. */
  readonly #keys: Keys.PostgresKeyContext;
  /** What the step and checkpoint operations (`postgres-steps.ts`) run on. */
  readonly #steps: Steps.PostgresStepContext;
  /** What the alert operations (`postgres-alerts.ts`) run on. */
  readonly #alerts: Alerts.PostgresAlertContext;
  /** What the audit-trail operations (`postgres-audit.ts`) run on. */
  readonly #audit: Audit.PostgresAuditContext;
  #closing: Promise<void> | null = null;
  /** Statement text → prepared statement name, for the statements {@link HOT_STATEMENTS} names. */
  readonly #names = new Map<string, string>();

  /** @throws InvalidNameError for a bad schema name, InvalidOptionError for a bad pool size; before any SQL. */
  constructor(options: PostgresDriverOptions) {
    this.schema = validateSchemaName(options.schema ?? 'warden');
    const poolSize = options.poolSize ?? 10;
    if (!Number.isInteger(poolSize) || poolSize < 1) {
      throw new InvalidOptionError('poolSize', poolSize, 'a positive integer');
    }
    this.#connectionString = options.connectionString;
    this.#onError = options.onError ?? (() => {});
    this.#sql = SQL.buildPostgresStatements(this.schema);
    const prepared = options.preparedStatements ?? true;
    if (typeof prepared !== 'boolean') throw new InvalidOptionError('preparedStatements', prepared, 'true or false');
    // Names are per connection, and every connection of this pool belongs to this driver: short ones suffice
    // (PostgreSQL truncates names past 63 bytes, so names built from the schema could collide).
    if (prepared) HOT_STATEMENTS.forEach((key, i) => this.#names.set(this.#sql[key], `warden_${i}`));
    this.#channel = `${this.schema}_jobs`.slice(0, MAX_CHANNEL_LENGTH);
    const connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
    if (!Number.isInteger(connectTimeoutMs) || connectTimeoutMs < 1) {
      throw new InvalidOptionError('connectTimeoutMs', connectTimeoutMs, 'a positive integer number of milliseconds');
    }
    this.#pool = new pg.Pool({ connectionString: options.connectionString, max: poolSize, connectionTimeoutMillis: connectTimeoutMs });
    // Without a listener, an idle client's error (server restart, network drop) is an uncaught 'error' event.
    this.#pool.on('error', (error) => this.#report(error));
    // Behind a pooler that cannot keep prepared statements (the reason to turn them off), a session setting
    // cannot be kept either, so there is no worker pool then.
    this.#workerPool = prepared
      ? new WorkerPool({ connectionString: options.connectionString, poolSize, connectTimeoutMs, report: (error) => this.#report(error) })
      : null;
    const keySql = buildPostgresKeyStatements(this.schema);
    this.#insertSql = { jobInsertNotify: this.#sql.jobInsertNotify, jobInsertOneNotify: this.#sql.jobInsertOneNotify, keyLock: keySql.keyLock, jobInsertRound: keySql.jobInsertRound, keyDuplicates: keySql.keyDuplicates };
    this.#schedules = {
      pool: this.#pool,
      schema: this.schema,
      jobSql: this.#insertSql,
      sql: buildPostgresScheduleStatements(this.schema),
      channel: this.#channel,
    };
    const transactionHandle = this.capabilities.transactionHandle;
    this.#locks = { run: this.#run, sql: buildPostgresLockStatements(this.schema), transactionHandle };
    this.#keys = { pool: this.#pool, run: this.#run, sql: this.#sql, keySql };
    this.#steps = { run: this.#run, sql: buildPostgresStepStatements(this.schema), transactionHandle, channel: this.#channel };
    this.#alerts = { run: this.#run, sql: buildPostgresAlertStatements(this.schema), transactionHandle };
    this.#audit = { pool: this.#pool, run: this.#run, sql: buildPostgresAuditStatements(this.schema) };
  }

  /** Stops every listener and closes the pool. Safe to call twice (both calls wait for the same close). */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      await Promise.all([...this.#unsubscribes].map((unsubscribe) => unsubscribe()));
      await Promise.all([this.#pool.end(), this.#workerPool?.end()]);
    })();
    return this.#closing;
  }

  /** The database's wall-clock time (not the transaction start). */
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

  async dbNow(): Promise<Date> {
    const { rows } = await this.#run<{ now: Date }>(SQL.DB_NOW_SQL);
    return rows[0]!.now;
  }

  /** Applies pending migrations in one transaction under an advisory lock keyed by the schema name. */
  async migrate(): Promise<MigrateResult> {
    return withTransaction(this.#pool, async (run) => {
      // Lock first: it serializes everything below, including creating the schema.
      await run(SQL.MIGRATE_LOCK_SQL, [this.schema]);
      // CREATE SCHEMA needs the CREATE privilege on the database even when the schema exists, so skip it
      // when it is there (safe: no one else can create it while we hold the lock).
      const exists = await run(SQL.SCHEMA_EXISTS_SQL, [this.schema]);
      if (exists.rowCount === 0) await run(this.#sql.schemaCreate);
      await run(this.#sql.migrationTableCreate);
      const done = new Set((await run<{ name: string }>(this.#sql.migrationList)).rows.map((r) => r.name));
      const applied: string[] = [];
      for (const migration of POSTGRES_MIGRATIONS) {
        if (done.has(migration.name)) continue;
        await run(migration.sql.replaceAll('{{schema}}', this.#sql.quotedSchema));
        await run(this.#sql.migrationRecord, [migration.name]);
        done.add(migration.name);
        applied.push(migration.name);
      }
      return { applied, current: [...done].sort() };
    });
  }

  /** Applied and pending migrations. Creates nothing, so it is safe against a database never migrated. */
  async migrationStatus(): Promise<MigrationStatus> {
    const all = POSTGRES_MIGRATIONS.map((m) => m.name);
    const { rows } = await this.#run<{ exists: boolean }>(SQL.MIGRATION_TABLE_EXISTS_SQL, [`${this.#sql.quotedSchema}.migrations`]);
    if (!rows[0]?.exists) return { applied: [], pending: all };
    const applied = (await this.#run<{ name: string }>(this.#sql.migrationList)).rows.map((r) => r.name);
    const done = new Set(applied);
    return { applied, pending: all.filter((name) => !done.has(name)) };
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
      const run: Run = (text, values) => tx.query(text, values);
      return insertJobs(run, this.#insertSql, this.#channel, jobs, now);
    }
    if (jobs.length === 0) return [];
    if (jobs.every((j) => j.key === null)) return insertUnkeyedJobs(this.#run, this.#sql, this.#channel, jobs, now);
    const duplicates = await findAllDuplicates(this.#run, this.#insertSql, jobs, now);
    if (duplicates) return duplicates;
    return withTransaction(this.#pool, (run) => insertJobs(run, this.#insertSql, this.#channel, jobs, now));
  }

  /** Claims due jobs in one statement; returned in claim order (`priority, run_at, id`). */
  async jobClaim(params: JobClaimParams): Promise<JobRow[]> {
    if (params.limit < 1 || params.queues.length === 0) return [];
    // Distinct: each queue's index range is read (and its rows locked) once.
    // Whole milliseconds, so the claim time derived from the lease's expiry is exact.
    const leaseMs = Math.trunc(params.leaseMs);
    const { rows } = await this.#runWorker<PgClaimRecord>(this.#sql.jobClaim, [
      [...new Set(params.queues)], params.limit, params.workerId, leaseMs, params.now,
    ]);
    return rows.map((r) => toClaimedJobRow(r, params.workerId, leaseMs));
  }

  /** Extends each lease still held; the others are reported stale. */
  async jobHeartbeat(params: JobHeartbeatParams): Promise<JobLeaseResult> {
    const leases = params.leases.filter((l) => isJobId(l.id));
    if (leases.length === 0) return { applied: [], stale: params.leases.map((l) => l.id) };
    const { rows } = await this.#runWorker<{ id: string; lease_token: string }>(this.#sql.jobHeartbeat, [
      idArrayParam(leases.map((l) => l.id)), intArrayParam(leases.map((l) => l.leaseToken)), params.leaseMs, params.now,
    ]);
    return splitLeases(params.leases, rows);
  }

  /**
   * Ends attempts in one statement (on the caller's transaction with `tx`); a lease no longer held is stale and
   * changes nothing. @throws InvalidTransactionError when `tx` is not a pg client.
   */
  async jobFinishMany(params: JobFinishManyParams): Promise<JobLeaseResult> {
    const run = params.tx === undefined ? this.#runWorker : Steps.runOn(this.#steps, params.tx);
    // One statement cannot update a row twice, so only the first item per job is sent; a repeat would be
    // stale anyway (the first moves the job out of `running`).
    const seen = new Set<string>();
    const items = params.items.filter((item) => isJobId(item.id) && !seen.has(item.id) && seen.add(item.id));
    if (items.length === 0) return { applied: [], stale: params.items.map((i) => i.id) };
    const ids = idArrayParam(items.map((i) => i.id));
    const leaseTokens = intArrayParam(items.map((i) => i.leaseToken));
    // A batch that only completes jobs (nearly every batch of a drain) has no attempt row to write: the shorter
    // statement skips capturing each row first.
    const { rows } = items.every(isPlainCompletion)
      ? await run<{ id: string; lease_token: string }>(this.#sql.jobCompleteMany, [ids, leaseTokens, params.now])
      : await run<{ id: string; lease_token: string }>(this.#sql.jobFinishMany, [
        ids,
        leaseTokens,
        wordArrayParam(items.map((i) => i.outcome)),
        wordArrayParam(items.map((i) => i.state)),
        floatArrayParam(items.map((i) => i.retryDelayMs)),
        nullableTextArrayParam(items.map((i) => (i.error === null ? null : JSON.stringify(i.error)))),
        params.now,
        boolArrayParam(items.map((i) => i.extendAttempts ?? false)),
      ]);
    // Count a job applied once: a repeated item for the same lease was not applied a second time.
    const tokens = appliedTokens(rows);
    const result: JobLeaseResult = { applied: [], stale: [] };
    for (const item of params.items) {
      if (tokens.get(item.id) === item.leaseToken) {
        tokens.delete(item.id);
        result.applied.push(item.id);
      } else {
        result.stale.push(item.id);
      }
    }
    return result;
  }

  /** Hands back never-started claims (`queued`, attempt taken back) and wakes their queues; lost leases are stale. */
  jobRelease(params: JobReleaseParams): Promise<JobLeaseResult> {
    return Steps.jobRelease(this.#steps, params);
  }

  /** Moves running jobs with expired leases to `retrying` (or `dead`), recording a `lost` attempt each. */
  async jobRescue(params: JobRescueParams): Promise<RescuedJob[]> {
    if (params.limit < 1) return [];
    type Rescued = { id: string; name: string; queue: string; attempt: number; lease_token: string; state: 'retrying' | 'dead' };
    const { rows } = await this.#run<Rescued>(this.#sql.jobRescue, [
      params.maxLost, params.limit, JSON.stringify(LEASE_EXPIRED_ERROR), params.now,
    ]);
    return rows.map((r) => ({
      id: String(r.id), name: r.name, queue: r.queue, attempt: r.attempt, leaseToken: Number(r.lease_token), state: r.state,
    }));
  }

  /**
   * Cancels a queued, retrying or running job.
   * @throws JobNotFoundError, or JobStateError when it already finished.
   */
  async jobCancel(params: { id: string; now: Date | null }): Promise<JobRow> {
    const { id } = params;
    if (!isJobId(id)) throw new JobNotFoundError(id);
    const { rows } = await this.#run<PgJobRecord>(this.#sql.jobCancel, [id, JSON.stringify(CANCELLED_ERROR), params.now]);
    if (rows[0]) return toJobRow(rows[0]);
    throw await this.#stateError(id, 'cancel', CANCELLABLE);
  }

  /**
   * Operator retry of a `dead` or `retrying` job: `queued`, due now, with at least one more attempt; a keyed job
   * becomes its key's holder. Checkpoint and steps are kept.
   * @throws JobNotFoundError, JobStateError, or KeyConflictError when another active job holds its key.
   */
  async jobRetry(params: { id: string; now: Date | null }): Promise<JobRow> {
    const { id } = params;
    if (!isJobId(id)) throw new JobNotFoundError(id);
    const row = await Keys.jobRetry(this.#keys, id, params.now);
    if (row) return toJobRow(row);
    throw await this.#stateError(id, 'retry', RETRYABLE);
  }

  /**
   * Deletes a job that is not running, with its attempts, and returns it.
   * @throws JobNotFoundError, or JobStateError when it is running.
   */
  async jobDiscard(params: { id: string }): Promise<JobRow> {
    const { id } = params;
    if (!isJobId(id)) throw new JobNotFoundError(id);
    const { rows } = await this.#run<PgJobRecord>(this.#sql.jobDiscard, [id]);
    if (rows[0]) return toJobRow(rows[0]);
    throw await this.#stateError(id, 'discard', DISCARDABLE);
  }

  /** One job, or null (also for an id that is not a decimal bigint). */
  async jobGet(params: { id: string }): Promise<JobRow | null> {
    if (!isJobId(params.id)) return null;
    const { rows } = await this.#run<PgJobRecord>(this.#sql.jobGet, [params.id]);
    return rows[0] ? toJobRow(rows[0]) : null;
  }

  /** Jobs newest first, filtered; `limit` defaults to 50 and is clamped to 1..1000. */
  async jobList(params: JobListParams): Promise<JobRow[]> {
    const raw = params.limit ?? 50;
    const limit = Number.isFinite(raw) ? Math.min(1000, Math.max(1, Math.trunc(raw))) : 50;
    let beforeId: string | null = null;
    if (params.beforeId !== undefined) {
      // Ids are positive bigints: a non-numeric cursor pages past nothing; one beyond bigint pages past none.
      if (!/^[0-9]+$/.test(params.beforeId)) return [];
      beforeId = isJobId(params.beforeId) ? params.beforeId : null;
    }
    const { rows } = await this.#run<PgJobRecord>(this.#sql.jobList, [
      params.state ?? null, params.queue ?? null, params.name ?? null, beforeId, limit,
    ]);
    return rows.map(toJobRow);
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
    return withClientTransaction(this.#pool, fn);
  }

  /** A job's finished attempts, oldest first. */
  async jobAttemptList(params: { id: string }): Promise<AttemptRow[]> {
    if (!isJobId(params.id)) return [];
    const { rows } = await this.#run<PgAttemptRecord>(this.#sql.jobAttemptList, [params.id]);
    return rows.map(toAttemptRow);
  }

  /** Every queue with jobs or a pause row, with per-state counts and lag, sorted by name. */
  async queueList(): Promise<QueueStats[]> {
    type Row = { queue: string; paused: boolean; lag_ms: number } & Record<JobState, number>;
    const { rows } = await this.#run<Row>(this.#sql.queueList);
    return rows.map((r) => ({
      queue: r.queue,
      paused: r.paused,
      counts: {
        queued: r.queued, retrying: r.retrying, running: r.running,
        completed: r.completed, dead: r.dead, cancelled: r.cancelled,
      },
      lagMs: r.lag_ms,
    }));
  }

  /** Stops claims from a queue (persisted; takes effect for every process). */
  async queuePause(params: { queue: string }): Promise<void> {
    await this.#run(this.#sql.queueSetPaused, [params.queue, true]);
  }

  /** Lets claims from a queue resume. */
  async queueResume(params: { queue: string }): Promise<void> {
    await this.#run(this.#sql.queueSetPaused, [params.queue, false]);
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
  scheduleTrigger(params: ScheduleTriggerParams): Promise<{ jobId: string; tickAt: Date }> {
    return Schedules.scheduleTrigger(this.#schedules, params);
  }

  // ------------------------------------------------------------------------------------------ retention

  jobPrune(params: JobPruneParams): Promise<number> {
    return Retention.jobPrune(this.#run, this.schema, params);
  }

  jobKeyPrune(params: JobKeyPruneParams): Promise<JobKeyPruneResult> {
    return Retention.jobKeyPrune(this.#run, this.schema, params);
  }

  scheduleTickPrune(params: ScheduleTickPruneParams): Promise<number> {
    return Retention.scheduleTickPrune(this.#run, this.schema, params);
  }

  /** @throws ScheduleNotFoundError */
  schedulePause(params: { name: string; now: Date | null }): Promise<ScheduleRow> {
    return Schedules.schedulePause(this.#schedules, params);
  }

  /** Unpauses and sets `next_run_at`. @throws ScheduleNotFoundError */
  scheduleResume(params: { name: string; nextRunAt: Date | null; now: Date | null }): Promise<ScheduleRow> {
    return Schedules.scheduleResume(this.#schedules, params);
  }

  /** Every schedule not removed, by name, with its newest tick. */
  scheduleList(): Promise<ScheduleRow[]> {
    return Schedules.scheduleList(this.#schedules);
  }

  /** A schedule's ticks, newest first. */
  scheduleTickList(params: { name: string; limit?: number }): Promise<ScheduleTickRow[]> {
    return Schedules.scheduleTickList(this.#schedules, params);
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
  async listen(params: {
    onWake: (queue: string) => void;
    onReconnect: () => void;
    onError: (error: unknown) => void;
  }): Promise<() => Promise<void>> {
    const stop = await postgresListen({ connectionString: this.#connectionString, channel: this.#channel, ...params });
    const unsubscribe = async (): Promise<void> => {
      this.#unsubscribes.delete(unsubscribe);
      await stop();
    };
    // Closed while connecting: don't leave a connection behind that close() can no longer see.
    if (this.#closing) {
      await stop();
      return unsubscribe;
    }
    this.#unsubscribes.add(unsubscribe);
    return unsubscribe;
  }

  /** Runs one statement on any pooled connection. */
  #run: Run = (text, values) => this.#pool.query(this.#config(text, values));

  /** Runs one of the worker's statements (claim, endings, heartbeat) on the worker pool. */
  #runWorker: Run = (text, values) => {
    const config = this.#config(text, values);
    return this.#workerPool ? this.#workerPool.query(config) : this.#pool.query(config);
  };

  /** A statement's query config: prepared under its short name when it is a hot statement. */
  #config(text: string, values: unknown[] | undefined): pg.QueryConfig {
    const name = this.#names.get(text);
    return name === undefined ? { text, values, types: FAST_TYPES } : { name, text, values, types: FAST_TYPES };
  }

  /** Builds the error for an operator action that matched no row: not found, or in the wrong state. */
  async #stateError(id: string, action: string, allowed: readonly JobState[]): Promise<Error> {
    const job = await this.jobGet({ id });
    if (!job) return new JobNotFoundError(id);
    return new JobStateError(id, action, allowed, job.state);
  }

  /** Hands an error to `onError`, which must not be able to throw into a pg event handler. */
  #report(error: unknown): void {
    try {
      this.#onError(error);
    } catch {
      // Ignored: an idle connection error must never crash the process.
    }
  }
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

/** Splits requested leases into applied (returned by the UPDATE) and stale, in request order. */
function splitLeases(leases: readonly { id: string; leaseToken: number }[], rows: { id: string; lease_token: string }[]): JobLeaseResult {
  const tokens = appliedTokens(rows);
  const result: JobLeaseResult = { applied: [], stale: [] };
  for (const lease of leases) (tokens.get(lease.id) === lease.leaseToken ? result.applied : result.stale).push(lease.id);
  return result;
}
