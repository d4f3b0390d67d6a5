/**
 * The embedded SQLite driver: one file, any number of processes on one machine. Semantics are those of
 * docs/driver-contract.md; all SQL text lives in `sqlite-sql.ts`, `sqlite-schedule-sql.ts`, `sqlite-lock-sql.ts`
 * and `sqlite-step-sql.ts`. Schedule operations are in `sqlite-schedules.ts`, lease locks in `sqlite-locks.ts`,
 * finish/step/checkpoint writes in `sqlite-lease-writes.ts`, the insert algorithm in `sqlite-insert.ts` and
 * application transactions in `sqlite-transaction.ts`; this class delegates to them with a context of its
 * statement cache and transaction runners.
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
import type Database from 'better-sqlite3';
import { DEFAULT_SQLITE_WAKEUP_MS, watchDataVersion } from './sqlite-wakeup.js';
import { InvalidOptionError, InvalidTransactionError, JobNotFoundError, JobStateError, MigrationIntegrityError, type ForeignKeyViolation } from '../../errors.js';
import type { AttemptRow, ErrorInfo, JobRow, QueueStats } from '../../job/job-record.js';
import type {
  Driver, DriverCapabilities, GuardedWriteResult, JobCheckpointParams, JobClaimParams, JobFinishManyParams, JobHeartbeatParams,
  JobReleaseParams,
  JobInsertManyParams, JobInsertResult, JobLeaseResult, JobListParams, JobRescueParams, JobStepRecordParams, JobStepRow,
  MigrateResult, MigrationStatus, RescuedJob,
} from '../driver.js';
import type { AlertListParams, AlertOpenParams, AlertResolveParams, AlertRow } from '../alert-params.js';
import type { AuditAppendParams, AuditEntry, AuditHead, AuditListParams, AuditPruneParams } from '../audit-params.js';
import type { LockAcquireParams, LockCheckParams, LockCheckResult, LockGrant, LockRenewParams, LockRow } from '../lock-params.js';
import type { JobKeyPruneParams, JobKeyPruneResult, JobPruneParams, ScheduleTickPruneParams } from '../retention-params.js';
import type {
  ScheduleAdvanceParams, ScheduleAdvanceResult, ScheduleRow, ScheduleSyncParams, ScheduleTickRow, ScheduleTriggerParams,
} from '../schedule-params.js';
import {
  cachedStatement, closedError, isBusyError, isSqliteTransaction, openConnection, resolveNow, retryBusy, rowViewStatement, toMs, writeWith,
  type Prepare, type RowViewStatement, type SqliteContext, type Statement,
} from './sqlite-exec.js';
import { insertJobs, takeKeyForRetry } from './sqlite-insert.js';
import * as LeaseWrites from './sqlite-lease-writes.js';
import * as Alerts from './sqlite-alerts.js';
import * as Audit from './sqlite-audit.js';
import * as Locks from './sqlite-locks.js';
import * as Retention from './sqlite-retention.js';
import { SQLITE_MIGRATIONS } from './sqlite-migrations.js';
import {
  compareClaimOrder, int, jobId, parseJobId, toAttemptRow, toClaimedJobRow, toJobRow, toQueueStats,
  type AttemptDbRow, type ClaimDbRow, type DbInt, type JobDbRow, type QueueDbRow, type RescueDbRow,
} from './sqlite-rows.js';
import * as Schedules from './sqlite-schedules.js';
import * as SQL from './sqlite-sql.js';
import { SqliteTransactionRunner } from './sqlite-transaction.js';
import { SqliteWriteBatcher } from './sqlite-write-batcher.js';

export { BUSY_RETRY_BUDGET_MS } from './sqlite-exec.js';

/** Options of {@link SqliteDriver}. */
export interface SqliteDriverOptions {
  /** Path of the database file (created if missing), or `":memory:"`. */
  filename: string;
  /**
   * How long SQLite itself waits for the write lock before reporting SQLITE_BUSY, after which the driver retries
   * asynchronously. Short, because better-sqlite3 waits synchronously: a long wait would freeze the event loop,
   * and deadlock a process whose own application transaction holds the lock. @default 20
   */
  busyTimeoutMs?: number;
  /** `PRAGMA synchronous`: `normal` is safe in WAL mode against process crashes; `full` also against power loss. @default 'normal' */
  synchronous?: 'normal' | 'full';
  /** How often a listening worker reads `PRAGMA data_version` to notice other processes' commits. @default 5 */
  wakeupMs?: number;
}

/** Larger than any id, bound as `@beforeId` when not paging so one statement text serves both cases. */
const NO_BEFORE_ID = 9223372036854775807n;

const LEASE_EXPIRED_ERROR_JSON = JSON.stringify({
  name: 'LeaseExpiredError',
  message: 'Expected a heartbeat before the lease expired, got none: the worker died, stalled or lost the database',
} satisfies ErrorInfo);
const CANCELLED_ERROR_JSON = JSON.stringify({ name: 'CancelledError', message: 'Cancelled by an operator' } satisfies ErrorInfo);

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
    transactionHandle: 'a better-sqlite3 Database on the same file with an open transaction',
  });

  readonly #connectionOptions: { filename: string; busyTimeoutMs: number; synchronous: 'normal' | 'full' };
  #db: Database.Database | undefined;
  #opening: Promise<Database.Database> | undefined;
  #closed = false;
  /** `db.transaction` wrapper created once; `.immediate(fn)` runs `fn` inside `BEGIN IMMEDIATE … COMMIT`. */
  #inTransaction: Database.Transaction<(fn: () => unknown) => unknown> | undefined;
  readonly #statements = new Map<string, Statement>();
  /** The claim, prepared on the current connection to return rows as views (`rowViewStatement`). */
  #claimStatement: RowViewStatement<ClaimDbRow> | null = null;
  /** Statements prepared on applications' `tx` connections, dropped with the connection. */
  readonly #txStatements = new WeakMap<Database.Database, Map<string, Statement>>();
  #busyRetries = 0;
  readonly #wakeupMs: number;
  /** What the schedule operations (`sqlite-schedules.ts`) run on. */
  readonly #schedules: Schedules.SqliteScheduleContext;
  /** What the lease-lock and lease-write operations (`sqlite-locks.ts`, `sqlite-lease-writes.ts`) run on. */
  readonly #ctx: SqliteContext;
  /** `transaction()`'s own connection and mutex. */
  readonly #transactions: SqliteTransactionRunner;
  /** The driver's own writes, grouped per turn of the event loop into one transaction. */
  readonly #writes: SqliteWriteBatcher;

  /** @throws InvalidOptionError for a missing file name or an out-of-range option. */
  constructor(options: SqliteDriverOptions) {
    const { filename, busyTimeoutMs = 20, synchronous = 'normal', wakeupMs = DEFAULT_SQLITE_WAKEUP_MS } = options ?? ({} as SqliteDriverOptions);
    if (!Number.isInteger(wakeupMs) || wakeupMs < 1 || wakeupMs > 60_000) {
      throw new InvalidOptionError('wakeupMs', wakeupMs, 'an integer number of milliseconds from 1 to 60000');
    }
    this.#wakeupMs = wakeupMs;
    if (typeof filename !== 'string' || filename.length === 0) {
      throw new InvalidOptionError('filename', filename, 'a non-empty SQLite file path');
    }
    if (!Number.isInteger(busyTimeoutMs) || busyTimeoutMs < 0 || busyTimeoutMs > 2 ** 31 - 1) {
      throw new InvalidOptionError('busyTimeoutMs', busyTimeoutMs, 'an integer number of milliseconds >= 0');
    }
    if (synchronous !== 'normal' && synchronous !== 'full') {
      throw new InvalidOptionError('synchronous', synchronous, '"normal" or "full"');
    }
    this.#connectionOptions = { filename, busyTimeoutMs, synchronous };
    const write = <T>(fn: () => T): Promise<T> => this.#write(fn);
    const read = <T>(fn: () => T): Promise<T> => this.#read(fn);
    this.#schedules = { stmt: this.#stmt, write, read, cancelOne: (id, now) => this.#cancelOne(id, now) };
    this.#ctx = { stmt: this.#stmt, write, read, txPrepare: (tx) => this.#txPrepare(tx) };
    this.#transactions = new SqliteTransactionRunner(this.#connectionOptions, this.#countBusyRetry);
    this.#writes = new SqliteWriteBatcher({
      connect: () => this.#connection(),
      transaction: () => {
        if (!this.#inTransaction) throw closedError();
        return this.#inTransaction;
      },
      retryBusy: (op) => retryBusy(op, this.#countBusyRetry, { hopAfter: false }),
    });
  }

  /**
   * Wakes the caller whenever another connection commits to the file (see `sqlite-wakeup.ts`), so workers in
   * other processes start new jobs within a few milliseconds instead of at their next poll.
   */
  async listen(params: { onWake: (queue?: string) => void; onReconnect: () => void; onError: (error: unknown) => void }): Promise<() => Promise<void>> {
    await this.#connection();
    const stop = watchDataVersion({
      read: () => (this.#stmt('PRAGMA data_version').get() as { data_version: number }).data_version,
      intervalMs: this.#wakeupMs,
      onWake: () => params.onWake(),
      onError: params.onError,
    });
    return async () => stop();
  }

  /** How many times a transaction was retried after SQLITE_BUSY/LOCKED escaped `busy_timeout` (this instance). */
  get busyRetries(): number {
    return this.#busyRetries;
  }

  async close(): Promise<void> {
    this.#closed = true;
    // Writes called before close() still run (on a connection already open).
    await this.#writes.drained();
    // First: the transaction in progress may still use the main connection.
    await this.#transactions.close();
    // An open in flight sees #closed and closes its own connection; wait so nothing outlives close().
    await this.#opening?.catch(() => undefined);
    this.#db?.close();
    this.#db = undefined;
    this.#inTransaction = undefined;
    this.#statements.clear();
    this.#claimStatement = null;
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
    return this.#read(() => new Date(resolveNow(this.#stmt, null)));
  }

  // ------------------------------------------------------------------------------------------ migrations

  /** @throws MigrationIntegrityError when a table rebuild left a reference broken (nothing is applied then). */
  async migrate(): Promise<MigrateResult> {
    // A table rebuild needs foreign keys off, which SQLite ignores inside a transaction: whether one is pending is
    // read first; the write re-reads what is applied under its lock, so a concurrent migrate changes nothing here.
    const { pending } = await this.migrationStatus();
    const rebuilds = SQLITE_MIGRATIONS.some((m) => m.rebuildsTables === true && pending.includes(m.name));
    const apply = (): MigrateResult => {
      const db = this.#connected();
      db.exec(SQL.MIGRATIONS_TABLE_CREATE);
      const done = new Set(this.#appliedMigrations());
      const applied: string[] = [];
      for (const migration of SQLITE_MIGRATIONS) {
        if (done.has(migration.name)) continue;
        db.exec(migration.sql);
        if (migration.rebuildsTables === true) {
          const violations = db.prepare(SQL.FOREIGN_KEY_CHECK).all() as ForeignKeyViolation[];
          if (violations.length > 0) throw new MigrationIntegrityError(migration.name, violations);
        }
        this.#stmt(SQL.MIGRATION_RECORD).run({ name: migration.name, now: null });
        applied.push(migration.name);
      }
      return { applied, current: this.#appliedMigrations() };
    };
    return rebuilds ? this.#writeWithoutForeignKeys(apply) : this.#write(apply);
  }

  async migrationStatus(): Promise<MigrationStatus> {
    return this.#read(() => {
      const applied = this.#stmt(SQL.MIGRATIONS_TABLE_EXISTS).get() === undefined ? [] : this.#appliedMigrations();
      const done = new Set(applied);
      return { applied, pending: SQLITE_MIGRATIONS.map((m) => m.name).filter((name) => !done.has(name)) };
    });
  }

  #appliedMigrations(): string[] {
    return (this.#stmt(SQL.MIGRATIONS_APPLIED).all() as { name: string }[]).map((r) => r.name);
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
    const rows = await this.#write(() => (this.#claimStatement ??= rowViewStatement<ClaimDbRow>(this.#connected(), SQL.JOB_CLAIM)).all(bind));
    return rows.sort(compareClaimOrder).map((r) => toClaimedJobRow(r, workerId, bind.leaseMs));
  }

  // ------------------------------------------------------------------------------------------ lease writes

  async jobHeartbeat(params: JobHeartbeatParams): Promise<JobLeaseResult> {
    const leaseMs = Math.trunc(params.leaseMs);
    const nowParam = toMs(params.now, 'now');
    if (params.leases.length === 0) return { applied: [], stale: [] };
    return this.#write(() => {
      const now = resolveNow(this.#stmt, nowParam);
      const result: JobLeaseResult = { applied: [], stale: [] };
      for (const lease of params.leases) {
        const id = parseJobId(lease.id);
        const held = id !== null && this.#stmt(SQL.JOB_HEARTBEAT).run({ id, leaseToken: lease.leaseToken, leaseMs, now }).changes > 0;
        (held ? result.applied : result.stale).push(lease.id);
      }
      return result;
    });
  }

  async jobRelease(params: JobReleaseParams): Promise<JobLeaseResult> {
    const nowParam = toMs(params.now, 'now');
    if (params.leases.length === 0) return { applied: [], stale: [] };
    return this.#write(() => {
      const now = resolveNow(this.#stmt, nowParam);
      const result: JobLeaseResult = { applied: [], stale: [] };
      for (const lease of params.leases) {
        const id = parseJobId(lease.id);
        const held = id !== null && this.#stmt(SQL.JOB_RELEASE).run({ id, leaseToken: lease.leaseToken, now }).changes > 0;
        (held ? result.applied : result.stale).push(lease.id);
      }
      return result;
    });
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

  async jobRescue(params: JobRescueParams): Promise<RescuedJob[]> {
    const nowParam = toMs(params.now, 'now');
    if (params.limit < 1) return [];
    return this.#write(() => {
      const now = resolveNow(this.#stmt, nowParam);
      const candidates = this.#stmt(SQL.JOB_RESCUE_CANDIDATES).all({ limit: Math.trunc(params.limit), now }) as { id: DbInt; lease_token: DbInt }[];
      const rescued: RescuedJob[] = [];
      for (const c of candidates) {
        const lease = { id: c.id, leaseToken: c.lease_token, now, error: LEASE_EXPIRED_ERROR_JSON };
        if (this.#stmt(SQL.ATTEMPT_INSERT_FROM_LEASE).run({ ...lease, outcome: 'lost' }).changes === 0) continue;
        const r = this.#stmt(SQL.JOB_RESCUE).get({ ...lease, maxLost: params.maxLost }) as RescueDbRow | undefined;
        if (r) rescued.push({ id: jobId(r.id), name: r.name, queue: r.queue, attempt: int(r.attempt), leaseToken: int(r.lease_token), state: r.state });
      }
      return rescued;
    });
  }

  // ------------------------------------------------------------------------------------------ operator actions

  /** @throws JobNotFoundError, JobStateError (not queued/retrying/running). */
  async jobCancel(params: { id: string; now: Date | null }): Promise<JobRow> {
    const id = parseJobId(params.id);
    const nowParam = toMs(params.now, 'now');
    if (id === null) throw new JobNotFoundError(params.id);
    return this.#write(() => {
      const row = this.#cancelOne(id, resolveNow(this.#stmt, nowParam));
      if (row) return toJobRow(row);
      // Throwing rolls back the attempt row #cancelOne may have written.
      throw this.#stateError(params.id, 'cancel', ['queued', 'retrying', 'running']);
    });
  }

  /**
   * Cancels one active job inside the caller's write transaction; the job row, or undefined when it was not
   * active (then the caller must throw, so the transaction rolls back). BEGIN IMMEDIATE holds the write lock, so
   * the attempt insert (running jobs only) and the guarded update see the same row. Shared by `jobCancel` and
   * overlap `replace` in `scheduleAdvance`.
   */
  #cancelOne(id: DbInt, now: number): JobDbRow | undefined {
    this.#stmt(SQL.ATTEMPT_INSERT_CANCELLED).run({ id, error: CANCELLED_ERROR_JSON, now });
    return this.#stmt(SQL.JOB_CANCEL).get({ id, error: CANCELLED_ERROR_JSON, now }) as JobDbRow | undefined;
  }

  /** @throws JobNotFoundError, JobStateError (not dead/retrying), KeyConflictError. */
  async jobRetry(params: { id: string; now: Date | null }): Promise<JobRow> {
    const id = parseJobId(params.id);
    const now = toMs(params.now, 'now');
    if (id === null) throw new JobNotFoundError(params.id);
    return this.#write(() => {
      const row = this.#stmt(SQL.JOB_RETRY).get({ id, now }) as JobDbRow | undefined;
      if (!row) throw this.#stateError(params.id, 'retry', ['dead', 'retrying']);
      // A throw here (another active job holds the key) rolls the retry back.
      if (row.key !== null) takeKeyForRetry(this.#stmt, row.id, row.key);
      return toJobRow(row);
    });
  }

  /** @throws JobNotFoundError, JobStateError (running). */
  async jobDiscard(params: { id: string }): Promise<JobRow> {
    const id = parseJobId(params.id);
    if (id === null) throw new JobNotFoundError(params.id);
    return this.#write(() => {
      // Attempts and steps go first; if the job turns out to be running or missing, the throw rolls this back.
      // Explicit, not ON DELETE CASCADE, so it holds even on a connection opened without foreign keys.
      this.#stmt(SQL.ATTEMPT_DELETE_BY_JOB).run({ id });
      this.#stmt(SQL.STEP_DELETE_BY_JOB).run({ id });
      const row = this.#stmt(SQL.JOB_DELETE).get({ id }) as JobDbRow | undefined;
      if (row) return toJobRow(row);
      throw this.#stateError(params.id, 'discard', ['queued', 'retrying', 'completed', 'dead', 'cancelled']);
    });
  }

  /** After a guarded write matched nothing: why. Runs inside the same transaction. */
  #stateError(id: string, action: string, allowed: string[]): Error {
    const row = this.#stmt(SQL.JOB_GET).get({ id: parseJobId(id) }) as JobDbRow | undefined;
    return row ? new JobStateError(id, action, allowed, row.state) : new JobNotFoundError(id);
  }

  // ------------------------------------------------------------------------------------------ reads

  async jobGet(params: { id: string }): Promise<JobRow | null> {
    const id = parseJobId(params.id);
    if (id === null) return null;
    const row = await this.#read(() => this.#stmt(SQL.JOB_GET).get({ id }) as JobDbRow | undefined);
    return row ? toJobRow(row) : null;
  }

  /** @throws InvalidOptionError when `beforeId` is not a decimal id. */
  async jobList(params: JobListParams): Promise<JobRow[]> {
    const { state, queue, name, beforeId } = params;
    const requested = Math.trunc(params.limit ?? 50);
    const limit = Number.isNaN(requested) ? 50 : Math.min(1000, Math.max(1, requested));
    if (beforeId !== undefined && (typeof beforeId !== 'string' || !/^[0-9]{1,19}$/.test(beforeId))) {
      throw new InvalidOptionError('beforeId', beforeId, 'a job id (a decimal string)');
    }
    const sql = SQL.jobListSql({ state: SQL.jobListStateFilter(state), queue: queue !== undefined, name: name !== undefined });
    const bind: Record<string, unknown> = { beforeId: beforeId === undefined ? NO_BEFORE_ID : BigInt(beforeId), limit };
    if (state !== undefined) bind.state = state;
    if (queue !== undefined) bind.queue = queue;
    if (name !== undefined) bind.name = name;
    const rows = await this.#read(() => this.#stmt(sql).all(bind) as JobDbRow[]);
    return rows.map(toJobRow);
  }

  async jobAttemptList(params: { id: string }): Promise<AttemptRow[]> {
    const id = parseJobId(params.id);
    if (id === null) return [];
    const rows = await this.#read(() => this.#stmt(SQL.ATTEMPT_LIST).all({ id }) as AttemptDbRow[]);
    return rows.map(toAttemptRow);
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
    if (this.#closed) return Promise.reject(closedError());
    return this.#transactions.run(fn);
  }

  async queueList(): Promise<QueueStats[]> {
    const rows = await this.#read(() => this.#stmt(SQL.QUEUE_LIST).all({ now: null }) as QueueDbRow[]);
    return rows.map(toQueueStats);
  }

  async queuePause(params: { queue: string }): Promise<void> {
    await this.#write(() => this.#stmt(SQL.QUEUE_SET_PAUSED).run({ queue: params.queue, paused: 1, now: null }));
  }

  async queueResume(params: { queue: string }): Promise<void> {
    await this.#write(() => this.#stmt(SQL.QUEUE_SET_PAUSED).run({ queue: params.queue, paused: 0, now: null }));
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

  /** A schedule's ticks, newest first. */
  scheduleTickList(params: { name: string; limit?: number }): Promise<ScheduleTickRow[]> {
    return Schedules.scheduleTickList(this.#schedules, params);
  }

  /** @throws ScheduleNotFoundError when the schedule is missing or removed. */
  schedulePause(params: { name: string; now: Date | null }): Promise<ScheduleRow> {
    return Schedules.schedulePause(this.#schedules, params);
  }

  /** Unpauses and sets `next_run_at`. @throws ScheduleNotFoundError when the schedule is missing or removed. */
  scheduleResume(params: { name: string; nextRunAt: Date | null; now: Date | null }): Promise<ScheduleRow> {
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
  scheduleTrigger(params: ScheduleTriggerParams): Promise<{ jobId: string; tickAt: Date }> {
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

  // ------------------------------------------------------------------------------------------ plumbing

  /**
   * Statement preparation on an application's `tx` connection (cached per connection).
   * @throws InvalidTransactionError when `tx` is not a better-sqlite3 Database inside a transaction.
   */
  #txPrepare(tx: unknown): Prepare {
    if (!isSqliteTransaction(tx)) throw new InvalidTransactionError(this.capabilities.transactionHandle, tx);
    let cache = this.#txStatements.get(tx);
    if (!cache) this.#txStatements.set(tx, (cache = new Map()));
    const txCache = cache;
    return (sql) => cachedStatement(txCache, tx, sql);
  }

  /** The cached prepared statement for `sql` on the driver's own connection. An arrow so it can be passed on. */
  readonly #stmt: Prepare = (sql) => cachedStatement(this.#statements, this.#connected(), sql);

  #connected(): Database.Database {
    if (!this.#db) throw closedError();
    return this.#db;
  }

  /**
   * Runs `fn` in a `BEGIN IMMEDIATE` transaction, retried as a whole on SQLITE_BUSY/LOCKED, shared with the other
   * writes called in this turn of the event loop, each in a savepoint of its own (`SqliteWriteBatcher`).
   */
  #write<T>(fn: () => T): Promise<T> {
    return this.#writes.write(fn);
  }

  /**
   * {@link #write} with foreign keys off for the transaction (a table rebuild). Switching them off and back on
   * happens in the same synchronous step as the transaction, so no other statement of this connection runs
   * without them; other connections keep theirs.
   */
  async #writeWithoutForeignKeys<T>(fn: () => T): Promise<T> {
    await this.#connection();
    return this.#retryBusy(() => {
      const inTransaction = this.#inTransaction;
      if (!inTransaction) throw closedError();
      const db = this.#connected();
      db.exec(SQL.PRAGMA_FOREIGN_KEYS_OFF);
      try {
        return inTransaction.immediate(fn) as T;
      } finally {
        db.exec(SQL.PRAGMA_FOREIGN_KEYS_ON);
      }
    });
  }

  /** Runs a single read statement (its own implicit transaction, a consistent snapshot in WAL mode). */
  async #read<T>(fn: () => T): Promise<T> {
    await this.#connection();
    return this.#retryBusy(fn);
  }

  async #connection(): Promise<Database.Database> {
    if (this.#db) return this.#db;
    if (this.#closed) throw closedError();
    this.#opening ??= this.#open().finally(() => {
      this.#opening = undefined;
    });
    return this.#opening;
  }

  async #open(): Promise<Database.Database> {
    const db = await openConnection(this.#connectionOptions, this.#countBusyRetry);
    if (this.#closed) {
      db.close();
      throw closedError();
    }
    this.#db = db;
    this.#inTransaction = db.transaction((fn: () => unknown) => fn());
    return db;
  }

  /** Retries `op` on SQLITE_BUSY/LOCKED (see `retryBusy` in `sqlite-exec.ts`), counting each retry. */
  #retryBusy<T>(op: () => T): Promise<T> {
    return retryBusy(op, this.#countBusyRetry);
  }

  readonly #countBusyRetry = (): void => {
    this.#busyRetries++;
  };
}
