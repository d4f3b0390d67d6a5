/**
 * The SQL statements of the SQLite driver's connection, migrations and job inserts, and the shared fragments
 * (docs/driver-contract.md, "SQL in one place"). Claims and the writes that hold a lease live in
 * `sqlite-lease-sql.ts`, operator actions and job and queue reads in `sqlite-job-admin-sql.ts`, schedule statements
 * in `sqlite-schedule-sql.ts`, lease-lock statements in `sqlite-lock-sql.ts`, retention deletes in
 * `sqlite-retention-sql.ts`, and step/checkpoint statements in `sqlite-step-sql.ts`; they follow the conventions
 * below and reuse {@link NOW}, {@link ACTIVE_STATES_SQL} and {@link ACTIVE_STATES_TERM}.
 *
 * Conventions:
 * - Values are always named parameters (`@name`); nothing is ever interpolated. The only `${…}` in this file
 *   splices in constant fragments ({@link NOW}, the state lists and terms built from constants here).
 * - Time: every time-dependent statement takes `@now`, integer milliseconds since the epoch or `NULL`. `NULL`
 *   means the database clock. SQLite keeps the clock fixed for the duration of one `sqlite3_step()`, so all
 *   uses of {@link NOW} inside one statement agree; multi-statement transactions resolve `@now` once with
 *   {@link NOW_SELECT} and pass the result to each statement so attempt and job rows carry the same time.
 * - Queue lists and id lists are passed as JSON array text and read with `json_each`, so one prepared
 *   statement serves any list length.
 * @module
 */
import { ACTIVE_STATES } from '../../job/job-record.js';

/**
 * The current time in integer ms: `@now` when bound to a number, else the database clock. A fragment, not a
 * statement.
 */
export const NOW = `coalesce(@now, CAST(unixepoch('subsec') * 1000 AS INTEGER))`;

/** The states in which a job may still run (a keyed insert's default duplicate states). */
export const ACTIVE_STATES_SQL = `(${ACTIVE_STATES.map((state) => `'${state}'`).join(',')})`;

/**
 * `state` is one of `states`, written as a chain of OR rather than an IN list: the form the partial indexes of
 * migration 0010 have (in a constraint or index condition an IN list of more than two constants costs a
 * temporary table per row). A query must repeat an index's term in this form for SQLite to use the index.
 */
export function stateIsOneOf(states: readonly string[]): string {
  return `(${states.map((state) => `state = '${state}'`).join(' OR ')})`;
}

/** `jobs_schedule_active_idx`'s state term (migration 0010): the job may still run ({@link ACTIVE_STATES}). */
export const ACTIVE_STATES_TERM = stateIsOneOf(ACTIVE_STATES);

// ---------------------------------------------------------------------------------------------- connection

/** Switches the file to write-ahead logging so readers never block the single writer. Needs a brief lock. */
export const PRAGMA_JOURNAL_MODE_WAL = `PRAGMA journal_mode = WAL`;

/** `synchronous = NORMAL`: in WAL mode durable across application crashes, may lose the last commits on power loss. */
export const PRAGMA_SYNCHRONOUS_NORMAL = `PRAGMA synchronous = NORMAL`;

/** `synchronous = FULL`: fsync on every commit; durable across power loss, slower. */
export const PRAGMA_SYNCHRONOUS_FULL = `PRAGMA synchronous = FULL`;

/** Enforces job_attempts/job_steps -> jobs references (off by default in SQLite, per connection). */
export const PRAGMA_FOREIGN_KEYS_ON = `PRAGMA foreign_keys = ON`;

/** Lifts the references for a table rebuild (a migration); a no-op inside a transaction, so set before one. */
export const PRAGMA_FOREIGN_KEYS_OFF = `PRAGMA foreign_keys = OFF`;

/** Rows whose reference finds no parent: `table, rowid, parent, fkid` each. Checked before a rebuild commits. */
export const FOREIGN_KEY_CHECK = `PRAGMA foreign_key_check`;

/**
 * A counter that changes whenever another connection commits to the file (`data_version`); read by the wake-up
 * watch (`sqlite-wakeup.ts`). Costs no I/O: it is kept in shared memory with the WAL index.
 */
export const DATA_VERSION = `PRAGMA data_version`;

/**
 * Opens a `Driver.transaction`: takes the write lock up front, like every driver write, so the application's
 * reads and writes inside it see one snapshot and never fail halfway on a deferred lock upgrade.
 */
export const TX_BEGIN_IMMEDIATE = `BEGIN IMMEDIATE`;

/** Commits a `Driver.transaction`. */
export const TX_COMMIT = `COMMIT`;

/** Rolls back a `Driver.transaction` whose function threw. */
export const TX_ROLLBACK = `ROLLBACK`;

// ---------------------------------------------------------------------------------------------- time

/** Resolves `@now` (or the database clock) to integer ms, once per transaction. Also backs `dbNow()`. */
export const NOW_SELECT = `SELECT ${NOW} AS now`;

// ---------------------------------------------------------------------------------------------- migrations

/** Creates the migrations ledger when missing. Runs inside `migrate()`'s `BEGIN IMMEDIATE`. */
export const MIGRATIONS_TABLE_CREATE = `CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied_at INTEGER NOT NULL)`;

/** Whether the ledger exists, so `migrationStatus()` can answer without creating anything. Returns a row or none. */
export const MIGRATIONS_TABLE_EXISTS = `SELECT 1 AS present FROM sqlite_master WHERE type = 'table' AND name = 'migrations'`;

/** Names of applied migrations, in apply order (names sort in apply order). */
export const MIGRATIONS_APPLIED = `SELECT name FROM migrations ORDER BY name`;

/** Records one applied migration. Params: `@name`, `@now`. */
export const MIGRATION_RECORD = `INSERT INTO migrations (name, applied_at) VALUES (@name, ${NOW})`;

// ---------------------------------------------------------------------------------------------- insert

/**
 * Inserts one queued job; its id is the statement's `lastInsertRowid`, and the rest of its row is its own values
 * (`insertedJobRow`), so nothing is read back. Deduplication happened before, through `job_keys` (see
 * {@link JOB_KEY_HOLDER}). Params: `@name, @queue, @payload, @priority, @runAt` (ms or NULL), `@delayMs,
 * @maxAttempts, @key, @scheduleName` (or NULL), `@tickAt` (ms or NULL), `@now`.
 */
export const JOB_INSERT = `
INSERT INTO jobs (name, queue, payload, state, priority, run_at, max_attempts, key, schedule_name, tick_at, trace_context, created_at, updated_at)
VALUES (@name, @queue, @payload, 'queued', @priority, coalesce(@runAt, ${NOW} + @delayMs), @maxAttempts, @key, @scheduleName, @tickAt, @traceContext, ${NOW}, ${NOW})`;

/**
 * The job currently holding a dedup key, or no row when the key is new or its holder was discarded. Runs inside
 * the insert's write transaction, which no other writer can enter, so the holder cannot change before the insert
 * (or the replace) and the `job_keys` update that follow. Params: `@key`.
 */
export const JOB_KEY_HOLDER = `
SELECT j.* FROM job_keys k JOIN jobs j ON j.id = k.job_id
WHERE k.key = @key`;

/** Makes `@jobId` the holder of `@key`, creating the key's row when new. Params: `@key, @jobId`. */
export const JOB_KEY_SET = `
INSERT INTO job_keys (key, job_id) VALUES (@key, @jobId)
ON CONFLICT (key) DO UPDATE SET job_id = excluded.job_id`;

/**
 * Debounce (`unique.replace`): a waiting holder takes the new insert's payload and due time. Priority, queue,
 * attempts, steps and checkpoint stay. No row when the job is not waiting. Params: `@id, @payload, @runAt` (ms or
 * NULL), `@delayMs, @now`.
 */
export const JOB_REPLACE = `
UPDATE jobs
SET payload = @payload,
    run_at = coalesce(@runAt, ${NOW} + @delayMs),
    updated_at = ${NOW}
WHERE id = @id AND state IN ('queued','retrying')
RETURNING *`;
