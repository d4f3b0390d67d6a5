/**
 * The embedded SQLite driver: one file, any number of processes on one machine. Semantics are those of
 * docs/driver-contract.md; all SQL text lives in `sqlite-sql.ts`.
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
import Database from 'better-sqlite3';
import {
  DatabaseConfigError, InvalidOptionError, InvalidTransactionError, JobNotFoundError, JobStateError, KeyConflictError, ScheduleNotFoundError,
} from '../../errors.js';
import type { AttemptRow, ErrorInfo, JobRow, QueueStats } from '../../job/job-record.js';
import type {
  Driver, DriverCapabilities, JobClaimParams, JobFinishManyParams, JobHeartbeatParams, JobInsertManyParams, JobInsertResult,
  JobLeaseResult, JobListParams, JobRescueParams, MigrateResult, MigrationStatus, RescuedJob,
} from '../driver.js';
import type { LockAcquireParams, LockCheckParams, LockCheckResult, LockGrant, LockRenewParams, LockRow } from '../lock-params.js';
import type {
  ScheduleAdvanceParams, ScheduleAdvanceResult, ScheduleRow, ScheduleSyncParams, ScheduleTickResult, ScheduleTickRow,
  ScheduleTickWrite, ScheduleTriggerParams,
} from '../schedule-params.js';
import { cachedStatement, insertJobs, isSqliteTransaction, resolveNow, toMs, type Prepare, type Statement } from './sqlite-exec.js';
import {
  compareClaimOrder, int, jobId, parseJobId, toAttemptRow, toJobRow, toLockCheckResult, toLockGrant, toLockRow, toQueueStats,
  toScheduleRow, toScheduleTickRow,
  type AttemptDbRow, type DbInt, type JobDbRow, type LockCheckDbRow, type LockDbRow, type LockGrantDbRow, type QueueDbRow,
  type RescueDbRow, type ScheduleDbRow, type ScheduleTickDbRow,
} from './sqlite-rows.js';
import { SQLITE_MIGRATIONS } from './sqlite-migrations.js';
import * as SQL from './sqlite-sql.js';

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
}

/** Total time a transaction keeps being retried on SQLITE_BUSY/LOCKED before the error is surfaced. */
export const BUSY_RETRY_BUDGET_MS = 10_000;
/** Backoff cap of the first retry; doubles per retry up to BUSY_BACKOFF_MAX_MS; the delay is jittered in [cap/2, cap]. */
const BUSY_BACKOFF_BASE_MS = 2;
const BUSY_BACKOFF_MAX_MS = 100;
/** Larger than any id, bound as `@beforeId` when not paging so one statement text serves both cases. */
const NO_BEFORE_ID = 9223372036854775807n;
/** `scheduleTickList` limit: default and upper bound. */
const TICK_LIST_DEFAULT_LIMIT = 100;
const TICK_LIST_MAX_LIMIT = 1000;

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
  /** No LISTEN/NOTIFY (workers poll) and one machine only; `tx` is an application's better-sqlite3 Database. */
  readonly capabilities: DriverCapabilities = Object.freeze({
    listenNotify: false,
    multiHost: false,
    transactionHandle: 'a better-sqlite3 Database on the same file with an open transaction',
  });

  readonly #filename: string;
  readonly #busyTimeoutMs: number;
  readonly #synchronous: 'normal' | 'full';
  #db: Database.Database | undefined;
  #opening: Promise<Database.Database> | undefined;
  #closed = false;
  /** `db.transaction` wrapper created once; `.immediate(fn)` runs `fn` inside `BEGIN IMMEDIATE … COMMIT`. */
  #inTransaction: Database.Transaction<(fn: () => unknown) => unknown> | undefined;
  readonly #statements = new Map<string, Statement>();
  /** Statements prepared on applications' `tx` connections, dropped with the connection. */
  readonly #txStatements = new WeakMap<Database.Database, Map<string, Statement>>();
  #busyRetries = 0;

  /** @throws InvalidOptionError for a missing file name or an out-of-range option. */
  constructor(options: SqliteDriverOptions) {
    const { filename, busyTimeoutMs = 20, synchronous = 'normal' } = options ?? ({} as SqliteDriverOptions);
    if (typeof filename !== 'string' || filename.length === 0) {
      throw new InvalidOptionError('filename', filename, 'a non-empty SQLite file path');
    }
    if (!Number.isInteger(busyTimeoutMs) || busyTimeoutMs < 0 || busyTimeoutMs > 2 ** 31 - 1) {
      throw new InvalidOptionError('busyTimeoutMs', busyTimeoutMs, 'an integer number of milliseconds >= 0');
    }
    if (synchronous !== 'normal' && synchronous !== 'full') {
      throw new InvalidOptionError('synchronous', synchronous, '"normal" or "full"');
    }
    this.#filename = filename;
    this.#busyTimeoutMs = busyTimeoutMs;
    this.#synchronous = synchronous;
  }

  /** How many times a transaction was retried after SQLITE_BUSY/LOCKED escaped `busy_timeout` (this instance). */
  get busyRetries(): number {
    return this.#busyRetries;
  }

  async close(): Promise<void> {
    this.#closed = true;
    // An open in flight sees #closed and closes its own connection; wait so nothing outlives close().
    await this.#opening?.catch(() => undefined);
    this.#db?.close();
    this.#db = undefined;
    this.#inTransaction = undefined;
    this.#statements.clear();
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

  async migrate(): Promise<MigrateResult> {
    return this.#write(() => {
      const db = this.#connected();
      db.exec(SQL.MIGRATIONS_TABLE_CREATE);
      const done = new Set(this.#appliedMigrations());
      const applied: string[] = [];
      for (const migration of SQLITE_MIGRATIONS) {
        if (done.has(migration.name)) continue;
        db.exec(migration.sql);
        this.#stmt(SQL.MIGRATION_RECORD).run({ name: migration.name, now: null });
        applied.push(migration.name);
      }
      return { applied, current: this.#appliedMigrations() };
    });
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
    if (tx !== undefined) {
      // The application owns that transaction: run on its connection, never BEGIN/COMMIT, and no busy retry
      // (a partial retry of someone else's transaction would be wrong; SQLITE_BUSY is theirs to handle).
      return insertJobs(this.#txPrepare(tx), jobs, now);
    }
    if (jobs.length === 0) return [];
    return this.#write(() => insertJobs(this.#stmt, jobs, now));
  }

  async jobClaim(params: JobClaimParams): Promise<JobRow[]> {
    const { queues, limit, workerId, leaseMs } = params;
    const now = toMs(params.now, 'now');
    if (queues.length === 0 || limit < 1) return [];
    const bind = { queues: JSON.stringify(queues), limit: Math.trunc(limit), workerId, leaseMs: Math.trunc(leaseMs), now };
    const rows = await this.#write(() => this.#stmt(SQL.JOB_CLAIM).all(bind) as JobDbRow[]);
    return rows.sort(compareClaimOrder).map(toJobRow);
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

  async jobFinishMany(params: JobFinishManyParams): Promise<JobLeaseResult> {
    const nowParam = toMs(params.now, 'now');
    if (params.items.length === 0) return { applied: [], stale: [] };
    return this.#write(() => {
      const now = resolveNow(this.#stmt, nowParam);
      const result: JobLeaseResult = { applied: [], stale: [] };
      for (const item of params.items) {
        const id = parseJobId(item.id);
        const error = item.error === null ? null : JSON.stringify(item.error);
        const lease = { id, leaseToken: item.leaseToken, now };
        // The attempt row first: it copies attempt/worker/started_at that the job update then clears.
        // Its `changes` is the lease check; both statements carry the same guard inside one transaction.
        const held = id !== null && this.#stmt(SQL.ATTEMPT_INSERT_FROM_LEASE).run({ ...lease, outcome: item.outcome, error }).changes > 0;
        if (held) {
          this.#stmt(SQL.JOB_FINISH).run({ ...lease, state: item.state, retryDelayMs: Math.trunc(item.retryDelayMs), error });
        }
        (held ? result.applied : result.stale).push(item.id);
      }
      return result;
    });
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
      let row: JobDbRow | undefined;
      try {
        row = this.#stmt(SQL.JOB_RETRY).get({ id, now }) as JobDbRow | undefined;
      } catch (error) {
        if ((error as { code?: unknown }).code !== 'SQLITE_CONSTRAINT_UNIQUE') throw error;
        // Only jobs_key_active_idx can fail here: the job became active while another active job has its key.
        const key = (this.#stmt(SQL.JOB_GET).get({ id }) as JobDbRow | undefined)?.key ?? '';
        const other = this.#stmt(SQL.JOB_ACTIVE_ID_BY_KEY).get({ key, id }) as { id: DbInt } | undefined;
        throw new KeyConflictError(key, other ? jobId(other.id) : null, { cause: error });
      }
      if (row) return toJobRow(row);
      throw this.#stateError(params.id, 'retry', ['dead', 'retrying']);
    });
  }

  /** @throws JobNotFoundError, JobStateError (running). */
  async jobDiscard(params: { id: string }): Promise<JobRow> {
    const id = parseJobId(params.id);
    if (id === null) throw new JobNotFoundError(params.id);
    return this.#write(() => {
      // Attempts go first; if the job turns out to be running or missing, the throw rolls this back.
      this.#stmt(SQL.ATTEMPT_DELETE_BY_JOB).run({ id });
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
    const sql = SQL.jobListSql({ state: state !== undefined, queue: queue !== undefined, name: name !== undefined });
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

  async scheduleSync(params: ScheduleSyncParams): Promise<void> {
    const { removeMissing } = params;
    const nowParam = toMs(params.now, 'now');
    const items = params.schedules.map((item, i) => ({
      name: item.name,
      definitionHash: item.definitionHash,
      spec: item.specJson,
      firstRunAt: toMs(item.firstRunAt, `schedules[${i}].firstRunAt`),
    }));
    if (items.length === 0 && !removeMissing) return;
    await this.#write(() => {
      const now = resolveNow(this.#stmt, nowParam);
      for (const item of items) this.#stmt(SQL.SCHEDULE_UPSERT).run({ ...item, now });
      if (removeMissing) this.#stmt(SQL.SCHEDULE_REMOVE_MISSING).run({ names: JSON.stringify(items.map((i) => i.name)), now });
    });
  }

  async scheduleDue(params: { now: Date | null; limit: number }): Promise<ScheduleRow[]> {
    const now = toMs(params.now, 'now');
    if (!(params.limit >= 1)) return [];
    const rows = await this.#read(() => this.#stmt(SQL.SCHEDULE_DUE).all({ limit: Math.trunc(params.limit), now }) as ScheduleDbRow[]);
    return rows.map(toScheduleRow);
  }

  async scheduleList(): Promise<ScheduleRow[]> {
    const rows = await this.#read(() => this.#stmt(SQL.SCHEDULE_LIST).all() as ScheduleDbRow[]);
    return rows.map(toScheduleRow);
  }

  async scheduleTickList(params: { name: string; limit?: number }): Promise<ScheduleTickRow[]> {
    const requested = Math.trunc(params.limit ?? TICK_LIST_DEFAULT_LIMIT);
    const limit = Number.isNaN(requested) ? TICK_LIST_DEFAULT_LIMIT : Math.min(TICK_LIST_MAX_LIMIT, Math.max(1, requested));
    const rows = await this.#read(() => this.#stmt(SQL.SCHEDULE_TICK_LIST).all({ name: params.name, limit }) as ScheduleTickDbRow[]);
    return rows.map(toScheduleTickRow);
  }

  /** @throws ScheduleNotFoundError when the schedule is missing or removed. */
  async schedulePause(params: { name: string; now: Date | null }): Promise<ScheduleRow> {
    return this.#setSchedulePaused(params.name, true, null, toMs(params.now, 'now'));
  }

  /** @throws ScheduleNotFoundError when the schedule is missing or removed. */
  async scheduleResume(params: { name: string; nextRunAt: Date | null; now: Date | null }): Promise<ScheduleRow> {
    return this.#setSchedulePaused(params.name, false, toMs(params.nextRunAt, 'nextRunAt'), toMs(params.now, 'now'));
  }

  /** Pause (`next_run_at` kept) or resume (`next_run_at = nextRunAt`), then the updated row, in one transaction. */
  async #setSchedulePaused(name: string, paused: boolean, nextRunAt: number | null, now: number | null): Promise<ScheduleRow> {
    return this.#write(() => {
      const bind = { name, paused: paused ? 1 : 0, setNextRunAt: paused ? 0 : 1, nextRunAt, now };
      if (this.#stmt(SQL.SCHEDULE_SET_PAUSED).get(bind) === undefined) throw new ScheduleNotFoundError(name);
      return toScheduleRow(this.#stmt(SQL.SCHEDULE_GET_ACTIVE).get({ name }) as ScheduleDbRow);
    });
  }

  /**
   * One transaction: the compare-and-swap of `next_run_at` (nothing is written when it fails), then each tick in
   * order (see `#writeTick`).
   * @throws InvalidOptionError for an invalid date, or a `fire` tick without a job.
   */
  async scheduleAdvance(params: ScheduleAdvanceParams): Promise<ScheduleAdvanceResult> {
    const { name, definitionHash } = params;
    const nowParam = toMs(params.now, 'now');
    const expectedNextRunAt = toMs(params.expectedNextRunAt, 'expectedNextRunAt');
    if (expectedNextRunAt === null) throw new InvalidOptionError('expectedNextRunAt', params.expectedNextRunAt, 'a valid Date');
    const nextRunAt = toMs(params.nextRunAt, 'nextRunAt');
    const ticks = params.ticks.map((tick, i): PlannedTickWrite => {
      const tickAtMs = toMs(tick.tickAt, `ticks[${i}].tickAt`);
      if (tickAtMs === null) throw new InvalidOptionError(`ticks[${i}].tickAt`, tick.tickAt, 'a valid Date');
      if (tick.action === 'fire' && !tick.job) throw new InvalidOptionError(`ticks[${i}].job`, tick.job, 'the job to enqueue for a fire tick');
      return { ...tick, tickAtMs };
    });
    const newestTickAt = ticks.reduce<number | null>((max, t) => (max === null || t.tickAtMs > max ? t.tickAtMs : max), null);
    return this.#write(() => {
      const now = resolveNow(this.#stmt, nowParam);
      const swap = { name, definitionHash, expectedNextRunAt, nextRunAt, newestTickAt, now };
      if (this.#stmt(SQL.SCHEDULE_ADVANCE).run(swap).changes === 0) return { advanced: false, ticks: [] };
      return { advanced: true, ticks: ticks.map((tick) => this.#writeTick(name, tick, now)) };
    });
  }

  /**
   * One tick of a successful advance, inside its transaction. The tick row goes in first (`ON CONFLICT DO
   * NOTHING`, with a provisional outcome that is set for good below, before the transaction commits): if it
   * already existed, the tick was handled before and is reported with its stored outcome, and nothing else is
   * written. Otherwise: `missed` is done; `fire` cancels the schedule's active jobs when `cancelActive`, is
   * `skipped` when an active job of the schedule is in a `blockIfActiveIn` state, and else inserts the job through
   * the normal insert path (`skipped`, with that job's id, when its key is held by an active job; else `fired`).
   */
  #writeTick(name: string, tick: PlannedTickWrite, now: number): ScheduleTickResult {
    const tickRow = { name, tickAt: tick.tickAtMs, kind: 'scheduled' };
    const base = { tickAt: tick.tickAt, late: tick.late, jobId: null, cancelledJobIds: [] as string[], queue: null, alreadyHandled: false };
    const provisional = tick.action === 'missed' ? 'missed' : 'skipped';
    const fresh = this.#stmt(SQL.SCHEDULE_TICK_INSERT).get({ ...tickRow, outcome: provisional, late: tick.late ? 1 : 0, jobId: null, actor: null, now });
    if (fresh === undefined) {
      const stored = toScheduleTickRow(this.#stmt(SQL.SCHEDULE_TICK_GET).get(tickRow) as ScheduleTickDbRow);
      return { ...base, outcome: stored.outcome, late: stored.late, jobId: stored.jobId, alreadyHandled: true };
    }
    if (tick.action === 'missed' || !tick.job) return { ...base, outcome: 'missed' };

    const cancelledJobIds: string[] = [];
    if (tick.cancelActive) {
      for (const { id } of this.#stmt(SQL.JOB_SCHEDULE_ACTIVE_IDS).all({ name }) as { id: DbInt }[]) {
        if (this.#cancelOne(id, now)) cancelledJobIds.push(jobId(id));
      }
    }
    const blocked =
      tick.blockIfActiveIn.length > 0 &&
      this.#stmt(SQL.JOB_SCHEDULE_BLOCKING).get({ name, states: JSON.stringify(tick.blockIfActiveIn) }) !== undefined;
    if (blocked) {
      this.#stmt(SQL.SCHEDULE_TICK_SET_OUTCOME).run({ ...tickRow, outcome: 'skipped', jobId: null });
      return { ...base, outcome: 'skipped', cancelledJobIds };
    }
    const [result] = insertJobs(this.#stmt, [{ ...tick.job, scheduleName: name, tickAt: tick.tickAt }], now);
    if (!result) throw new Error(`Expected one insert result for schedule ${JSON.stringify(name)}, got none`);
    const outcome = result.duplicate ? 'skipped' : 'fired';
    this.#stmt(SQL.SCHEDULE_TICK_SET_OUTCOME).run({ ...tickRow, outcome, jobId: BigInt(result.job.id) });
    return { ...base, outcome, jobId: result.job.id, cancelledJobIds, queue: result.duplicate ? null : result.job.queue };
  }

  /**
   * One transaction: the schedule must be active (paused is fine); the tick row (`triggered`, at `now`, or the
   * next free millisecond when another trigger took that one) goes in first and the job after it. A job deduplicated on its key records outcome `skipped` with
   * the active job's id, which is returned.
   * @throws ScheduleNotFoundError when the schedule is missing or removed.
   */
  async scheduleTrigger(params: ScheduleTriggerParams): Promise<{ jobId: string; tickAt: Date }> {
    const { name, job, actor } = params;
    const nowParam = toMs(params.now, 'now');
    return this.#write(() => {
      const now = resolveNow(this.#stmt, nowParam);
      if (this.#stmt(SQL.SCHEDULE_EXISTS_ACTIVE).get({ name }) === undefined) throw new ScheduleNotFoundError(name);
      // Two triggers in the same millisecond are two runs: the later one takes the next free millisecond,
      // as on PostgreSQL, because the tick row's primary key includes the time.
      let tickAtMs = now;
      while (this.#stmt(SQL.SCHEDULE_TICK_INSERT).get({ name, tickAt: tickAtMs, kind: 'triggered', outcome: 'fired', late: 0, jobId: null, actor, now }) === undefined) tickAtMs++;
      const tickAt = new Date(tickAtMs);
      const tickRow = { name, tickAt: tickAtMs, kind: 'triggered' };
      const [result] = insertJobs(this.#stmt, [{ ...job, scheduleName: name, tickAt }], now);
      if (!result) throw new Error(`Expected one insert result for schedule ${JSON.stringify(name)}, got none`);
      const outcome = result.duplicate ? 'skipped' : 'fired';
      this.#stmt(SQL.SCHEDULE_TICK_SET_OUTCOME).run({ ...tickRow, outcome, jobId: BigInt(result.job.id) });
      return { jobId: result.job.id, tickAt };
    });
  }

  // ------------------------------------------------------------------------------------------ lease locks

  async lockAcquire(params: LockAcquireParams): Promise<LockGrant | null> {
    const bind = { name: params.name, holder: params.holder, ttlMs: Math.trunc(params.ttlMs), now: toMs(params.now, 'now') };
    const row = await this.#write(() => this.#stmt(SQL.LOCK_ACQUIRE).get(bind) as LockGrantDbRow | undefined);
    return row ? toLockGrant(row) : null;
  }

  async lockRenew(params: LockRenewParams): Promise<LockGrant | null> {
    const bind = { name: params.name, token: params.token, ttlMs: Math.trunc(params.ttlMs), now: toMs(params.now, 'now') };
    const row = await this.#write(() => this.#stmt(SQL.LOCK_RENEW).get(bind) as LockGrantDbRow | undefined);
    return row ? toLockGrant(row) : null;
  }

  async lockRelease(params: { name: string; token: number }): Promise<boolean> {
    const bind = { name: params.name, token: params.token };
    return this.#write(() => this.#stmt(SQL.LOCK_RELEASE).run(bind).changes > 0);
  }

  /**
   * With `tx`, runs on the application's connection inside its transaction (no busy retry, as for
   * `jobInsertMany`); nothing more is needed: that transaction's write lock already excludes every other writer.
   * @throws InvalidTransactionError when `tx` is not a better-sqlite3 Database inside a transaction.
   */
  async lockCheck(params: LockCheckParams): Promise<LockCheckResult> {
    const { tx } = params;
    const bind = { name: params.name, token: params.token, now: toMs(params.now, 'now') };
    if (tx !== undefined) {
      return toLockCheckResult(this.#txPrepare(tx)(SQL.LOCK_CHECK).get(bind) as LockCheckDbRow | undefined);
    }
    return toLockCheckResult(await this.#read(() => this.#stmt(SQL.LOCK_CHECK).get(bind) as LockCheckDbRow | undefined));
  }

  async lockList(): Promise<LockRow[]> {
    const rows = await this.#read(() => this.#stmt(SQL.LOCK_LIST).all() as LockDbRow[]);
    return rows.map(toLockRow);
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

  /** Runs `fn` in one `BEGIN IMMEDIATE` transaction, retried as a whole on SQLITE_BUSY/LOCKED. */
  async #write<T>(fn: () => T): Promise<T> {
    await this.#connection();
    return this.#retryBusy(() => {
      const inTransaction = this.#inTransaction;
      if (!inTransaction) throw closedError();
      return inTransaction.immediate(fn) as T;
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
    let db: Database.Database;
    try {
      // `timeout` is better-sqlite3's busy_timeout, set before any statement so the PRAGMAs below wait too.
      db = new Database(this.#filename, { timeout: this.#busyTimeoutMs });
    } catch (error) {
      throw new DatabaseConfigError(`Expected an SQLite database file that can be opened at ${JSON.stringify(this.#filename)}, got ${(error as Error).message}`, { cause: error });
    }
    try {
      await this.#retryBusy(() => {
        db.exec(SQL.PRAGMA_FOREIGN_KEYS_ON);
        db.exec(this.#synchronous === 'full' ? SQL.PRAGMA_SYNCHRONOUS_FULL : SQL.PRAGMA_SYNCHRONOUS_NORMAL);
        // Switching to WAL needs a lock; concurrent first opens of a fresh file may see SQLITE_BUSY here.
        db.exec(SQL.PRAGMA_JOURNAL_MODE_WAL);
      });
      if (this.#closed) throw closedError();
    } catch (error) {
      db.close();
      throw error;
    }
    this.#db = db;
    this.#inTransaction = db.transaction((fn: () => unknown) => fn());
    return db;
  }

  /**
   * Runs `op` until it does not fail with SQLITE_BUSY/LOCKED, sleeping a jittered, growing delay between
   * tries, for at most {@link BUSY_RETRY_BUDGET_MS} in total; then the last error is thrown. `op` must be a
   * whole transaction (or a single statement) so a retry never repeats half of one.
   */
  async #retryBusy<T>(op: () => T): Promise<T> {
    const started = performance.now();
    for (let retry = 1; ; retry++) {
      try {
        return op();
      } catch (error) {
        if (!isBusyError(error) || performance.now() - started >= BUSY_RETRY_BUDGET_MS) throw error;
        this.#busyRetries++;
        const cap = Math.min(BUSY_BACKOFF_MAX_MS, BUSY_BACKOFF_BASE_MS * 2 ** Math.min(retry - 1, 16));
        await sleep(cap / 2 + Math.random() * (cap / 2));
      }
    }
  }
}

/** SQLITE_BUSY and SQLITE_LOCKED with their extended codes (e.g. SQLITE_BUSY_SNAPSHOT, SQLITE_LOCKED_SHAREDCACHE). */
function isBusyError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED'));
}

/** A tick to write, with its time as bindable ms. */
type PlannedTickWrite = ScheduleTickWrite & { tickAtMs: number };

function closedError(): Error {
  return new Error('Expected an open SqliteDriver, got one that was closed');
}

/** Infrastructure delay for busy backoff (not business time, so not the injectable clock). */
function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
