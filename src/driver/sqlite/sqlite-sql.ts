/**
 * The SQL statements of the SQLite driver's connection, migrations, jobs and queues (docs/driver-contract.md, "SQL
 * in one place"). Schedule statements live in `sqlite-schedule-sql.ts`, lease-lock statements in
 * `sqlite-lock-sql.ts`, and step/checkpoint statements in `sqlite-step-sql.ts`; they follow the conventions below
 * and reuse {@link NOW}, {@link ACTIVE_STATES_SQL} and {@link ACTIVE_STATES_TERM}.
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

/**
 * A key's holder id and that job's state (NULL when it was discarded), or no row for a key never used. For
 * operator retry's conflict check. Params: `@key`.
 */
export const JOB_KEY_HOLDER_STATE = `
SELECT k.job_id AS job_id, j.state AS state FROM job_keys k LEFT JOIN jobs j ON j.id = k.job_id
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

// ---------------------------------------------------------------------------------------------- claim / lease

/** The job columns that are NULL for nearly every claimed job, packed into {@link CLAIM_COLUMNS}' `rare`, in this order. */
export const CLAIM_RARE_COLUMNS = ['last_error', 'finished_at', 'checkpoint', 'progress_done', 'progress_total', 'checkpoint_at'] as const;
const CLAIM_RARE_LIST = CLAIM_RARE_COLUMNS.join(', ');

/**
 * The columns {@link JOB_CLAIM} returns: a job row without `state`, `lease_worker`, `started_at` and `updated_at`,
 * which the claim sets to values the caller knows (`toClaimedJobRow`); `started_at` = `updated_at` =
 * `lease_expires_at - @leaseMs`, all three written from one `now` (SQLite fixes the clock for a statement's step).
 * The six columns that are NULL for nearly every claimed job (`last_error` after a failure, `finished_at`, and the
 * checkpoint and progress of an iteration) come back as one column, `rare`: NULL when all six are, else a JSON array
 * of them in {@link CLAIM_RARE_COLUMNS} order (text values as JSON strings, so a stored error or checkpoint comes
 * back as the exact text). Each returned column costs every claimed row whatever its value: 17 columns instead of
 * 22 took the claim statement from 9.0 to 8.2 µs a job (medians of 5 interleaved runs, 20,000 jobs, batches of 500).
 */
export const CLAIM_COLUMNS =
  'id, name, queue, payload, priority, run_at, attempt, max_attempts, lost_count, lease_token, lease_expires_at, key, ' +
  'created_at, schedule_name, tick_at, trace_context, ' +
  `CASE WHEN coalesce(${CLAIM_RARE_LIST}) IS NULL THEN NULL ELSE json_array(${CLAIM_RARE_LIST}) END AS rare`;

/**
 * Claims up to `@limit` due jobs of the queues in `@queues` (JSON array), skipping paused queues, in
 * `priority, run_at, id` order. Runs inside `BEGIN IMMEDIATE`, which makes the inner SELECT and the UPDATE
 * one atomic step across processes, so the outer UPDATE needs no second state check (PostgreSQL's does).
 * `INDEXED BY jobs_claim_idx`: without ANALYZE statistics the planner preferred a state index (the
 * `jobs_state_id_idx` of migrations before 0009) and scanned every waiting job of every queue; the partial claim index only holds waiting jobs and is searched per
 * queue (a statement that could not use it would fail to prepare, rather than silently scan). RETURNING
 * order is unspecified, so the caller sorts. It returns {@link CLAIM_COLUMNS}, not `*`: what the claim itself set
 * (state, worker, start and update time) the driver fills in, and the rarely set columns come packed in one, since
 * each column read costs. Params: `@queues, @limit, @workerId, @leaseMs, @now`.
 */
export const JOB_CLAIM = `
UPDATE jobs
SET state = 'running',
    attempt = attempt + 1,
    lease_token = lease_token + 1,
    lease_worker = @workerId,
    lease_expires_at = ${NOW} + @leaseMs,
    started_at = ${NOW},
    updated_at = ${NOW}
WHERE id IN (
    SELECT id FROM jobs INDEXED BY jobs_claim_idx
    WHERE state IN ('queued','retrying')
      AND run_at <= ${NOW}
      AND queue IN (SELECT value FROM json_each(@queues))
      AND queue NOT IN (SELECT name FROM queues WHERE paused = 1)
    ORDER BY priority, run_at, id
    LIMIT @limit)
RETURNING ${CLAIM_COLUMNS}`;

/** Renews one lease if it still holds. `changes` = 1 when applied. Params: `@id, @leaseToken, @leaseMs, @now`. */
export const JOB_HEARTBEAT = `
UPDATE jobs SET lease_expires_at = ${NOW} + @leaseMs
WHERE id = @id AND lease_token = @leaseToken AND state = 'running'`;

/**
 * Hands back a claimed job that never started (a worker's prefetch buffer on shutdown): the claim's attempt is
 * taken back, the lease token stays raised. Params: `@id, @leaseToken, @now`.
 */
export const JOB_RELEASE = `
UPDATE jobs SET state = 'queued', attempt = attempt - 1, lease_worker = NULL, lease_expires_at = NULL,
  started_at = CASE WHEN attempt = 1 THEN NULL ELSE started_at END, updated_at = ${NOW}
WHERE id = @id AND lease_token = @leaseToken AND state = 'running'`;

/** The running jobs leased to a worker, by id, at most `@limit`. Params: `@workerId, @limit`. */
export const JOB_LEASED_TO = `
SELECT id, lease_token FROM jobs WHERE state = 'running' AND lease_worker = @workerId ORDER BY id LIMIT @limit`;

// ---------------------------------------------------------------------------------------------- finish / rescue

/**
 * Records the attempt of a lease that still holds, copying attempt, token, worker and start time from the job
 * before the rescue update clears them. `changes` = 0 means the lease is stale. Rescue's; endings use the batch
 * form {@link ATTEMPT_INSERT_FROM_LEASES}.
 * Params: `@id, @leaseToken, @outcome, @error` (JSON or NULL), `@now`.
 */
export const ATTEMPT_INSERT_FROM_LEASE = `
INSERT INTO job_attempts (job_id, attempt, lease_token, worker_id, started_at, finished_at, outcome, error)
SELECT id, attempt, lease_token, lease_worker, started_at, ${NOW}, @outcome, @error
FROM jobs WHERE id = @id AND lease_token = @leaseToken AND state = 'running'`;

/**
 * A batch of endings as one JSON array `@items` of `[id, leaseToken, outcome, state, retryDelayMs, error, extend]`
 * (`error`: JSON text or null; `extend`: 0 or 1), ids distinct. Two statements per batch instead of two per job:
 * each statement call costs more than the row work for a no-op job. Same guard as
 * {@link ATTEMPT_INSERT_FROM_LEASE}; run before {@link JOB_FINISH_MANY}, in one transaction, since the job update
 * clears the worker the attempt row copies. An attempt that completes its job (outcome and state `completed`) gets
 * no row: {@link JOB_FINISH_MANY} keeps it on the job row (migration 0011), and {@link ATTEMPT_LIST} reads it from
 * there. Only a final state may hold it there, which nothing overwrites.
 * The batch is the outer loop and each job is found by rowid: `CROSS JOIN` fixes the order and `NOT INDEXED`
 * (rowid lookups stay allowed) keeps the planner from walking every running job through an index on state
 * (`jobs_lease_idx`, or the `jobs_state_id_idx` of migrations before 0009) and scanning the batch for each,
 * which made a batch of 500 cost 50 times more. `jsonb_each`, not `json_each`: the array is parsed once into
 * SQLite's binary JSON, so each `->>` reads binary instead of re-parsing the item's text (a batch's reads
 * 3.6 → 2.2 µs a row).
 */
export const ATTEMPT_INSERT_FROM_LEASES = `
INSERT INTO job_attempts (job_id, attempt, lease_token, worker_id, started_at, finished_at, outcome, error)
SELECT j.id, j.attempt, j.lease_token, j.lease_worker, j.started_at, @now, i.value ->> 2, i.value ->> 5
FROM jsonb_each(@items) AS i CROSS JOIN jobs AS j NOT INDEXED ON j.id = i.value ->> 0
WHERE j.lease_token = i.value ->> 1 AND j.state = 'running'
  AND NOT (i.value ->> 2 = 'completed' AND i.value ->> 3 = 'completed')`;

/**
 * The job updates of {@link ATTEMPT_INSERT_FROM_LEASES}'s batch, each under its lease: to its state;
 * `completed`/`dead` get `finished_at`, `retrying`/`queued` become due at `now + retryDelayMs`; lease fields are
 * cleared (`lease_token` stays as the fence); `extend` (0 or 1) is added to `max_attempts`, so a yielded attempt
 * does not use up the budget. An attempt that completes its job is recorded here: `completed_by` takes the
 * worker (SET reads the row as it was, before `lease_worker` is cleared), and `attempt`, `lease_token`,
 * `started_at` and `finished_at` are that attempt's. `jsonb_each` as there. Returns the ids applied.
 */
export const JOB_FINISH_MANY = `
UPDATE jobs NOT INDEXED
SET state = i.value ->> 3,
    completed_by = CASE WHEN i.value ->> 2 = 'completed' AND i.value ->> 3 = 'completed' THEN lease_worker ELSE completed_by END,
    last_error = i.value ->> 5,
    max_attempts = max_attempts + (i.value ->> 6),
    lease_worker = NULL,
    lease_expires_at = NULL,
    finished_at = CASE WHEN i.value ->> 3 IN ('completed','dead') THEN @now ELSE NULL END,
    run_at = CASE WHEN i.value ->> 3 IN ('retrying','queued') THEN @now + (i.value ->> 4) ELSE run_at END,
    updated_at = @now
FROM jsonb_each(@items) AS i
WHERE jobs.id = i.value ->> 0 AND jobs.lease_token = i.value ->> 1 AND jobs.state = 'running'
RETURNING jobs.id`;

/**
 * {@link JOB_FINISH_MANY} for a batch whose every item completes its job with no error and no extra attempt
 * (`isPlainCompletion`): `@items` is a JSON array of `[id, leaseToken]` only, and there is no attempt row to write
 * first ({@link ATTEMPT_INSERT_FROM_LEASES} would insert none). The same guard, the same row written (`completed_by`
 * takes the worker as there), two `->>` reads a job instead of twelve: endings 4.2–4.8 → 3.0–3.5 µs a job in the
 * driver-only loop. Returns nothing: its `changes` counts the jobs completed (the ids are distinct, and each row
 * changes at most once), which is every job of a batch whose leases all hold; see {@link JOB_COMPLETE_MANY}.
 */
export const JOB_COMPLETE_MANY_COUNTED = `
UPDATE jobs NOT INDEXED
SET state = 'completed',
    completed_by = lease_worker,
    last_error = NULL,
    lease_worker = NULL,
    lease_expires_at = NULL,
    finished_at = @now,
    updated_at = @now
FROM jsonb_each(@items) AS i
WHERE jobs.id = i.value ->> 0 AND jobs.lease_token = i.value ->> 1 AND jobs.state = 'running'`;

/**
 * {@link JOB_COMPLETE_MANY_COUNTED} returning the ids it completed: run when the counted statement completed fewer
 * jobs than it was sent, after undoing it (`ROLLBACK TO` {@link COMPLETE_SAVEPOINT}), to learn which. Returning the
 * ids on every batch cost 0.4–0.6 µs a job of a 2.2–2.8 µs completion (sqlite-costs runs, 20,000 jobs, batches of
 * 500), and nearly every batch has every lease held.
 */
export const JOB_COMPLETE_MANY = `${JOB_COMPLETE_MANY_COUNTED}
RETURNING jobs.id`;

/** The savepoint a counted completion can be undone to (see {@link JOB_COMPLETE_MANY}). */
export const COMPLETE_SAVEPOINT = 'SAVEPOINT warden_complete';
/** Undoes the counted completion, keeping the savepoint. */
export const COMPLETE_ROLLBACK = 'ROLLBACK TO warden_complete';
/** Ends the savepoint, keeping what was written since (the enclosing transaction commits it). */
export const COMPLETE_RELEASE = 'RELEASE warden_complete';

/**
 * Running jobs whose lease expired before now, oldest expiry first. `INDEXED BY jobs_lease_idx` makes this a
 * range scan in expiry order with no sort (unforced, the planner picked the
 * `jobs_state_id_idx` of migrations before 0009 and sorted).
 * Params: `@limit, @now`.
 */
export const JOB_RESCUE_CANDIDATES = `
SELECT id, lease_token FROM jobs INDEXED BY jobs_lease_idx
WHERE state = 'running' AND lease_expires_at < ${NOW}
ORDER BY lease_expires_at, id
LIMIT @limit`;

/**
 * Rescues one lost lease: `lost_count + 1`; `dead` (finished now) when attempts are used up or the job was lost
 * `@maxLost` times (poison), else `retrying` due now. SET expressions read the old row values.
 * Params: `@id, @leaseToken, @maxLost, @error, @now`.
 */
export const JOB_RESCUE = `
UPDATE jobs
SET lost_count = lost_count + 1,
    state = CASE WHEN attempt >= max_attempts OR lost_count + 1 >= @maxLost THEN 'dead' ELSE 'retrying' END,
    run_at = CASE WHEN attempt >= max_attempts OR lost_count + 1 >= @maxLost THEN run_at ELSE ${NOW} END,
    finished_at = CASE WHEN attempt >= max_attempts OR lost_count + 1 >= @maxLost THEN ${NOW} ELSE NULL END,
    last_error = @error,
    lease_worker = NULL,
    lease_expires_at = NULL,
    updated_at = ${NOW}
WHERE id = @id AND lease_token = @leaseToken AND state = 'running'
RETURNING id, name, queue, attempt, lease_token, state`;

// ---------------------------------------------------------------------------------------------- operator actions

/**
 * Records the attempt of a running job that an operator cancels (no row when the job is not running).
 * Params: `@id, @error, @now`.
 */
export const ATTEMPT_INSERT_CANCELLED = `
INSERT INTO job_attempts (job_id, attempt, lease_token, worker_id, started_at, finished_at, outcome, error)
SELECT id, attempt, lease_token, lease_worker, started_at, ${NOW}, 'cancelled', @error
FROM jobs WHERE id = @id AND state = 'running'`;

/**
 * Cancels an active job in one guarded update. A running job's error becomes `@error` (its attempt was
 * cancelled); clearing the lease makes that attempt's later writes stale. Params: `@id, @error, @now`.
 */
export const JOB_CANCEL = `
UPDATE jobs
SET state = 'cancelled',
    last_error = CASE WHEN state = 'running' THEN @error ELSE last_error END,
    lease_worker = NULL,
    lease_expires_at = NULL,
    finished_at = ${NOW},
    updated_at = ${NOW}
WHERE id = @id AND state IN ${ACTIVE_STATES_SQL}
RETURNING *`;

/**
 * Operator retry of a dead or retrying job: queued and due now, at least one more attempt allowed, lost count
 * reset. Checkpoint and steps are kept. The key check (`JOB_KEY_HOLDER_STATE`) is the caller's, in the same
 * transaction. Params: `@id, @now`.
 */
export const JOB_RETRY = `
UPDATE jobs
SET state = 'queued',
    run_at = ${NOW},
    max_attempts = max(max_attempts, attempt + 1),
    lost_count = 0,
    finished_at = NULL,
    updated_at = ${NOW}
WHERE id = @id AND state IN ('dead','retrying')
RETURNING *`;

/** Deletes a job's attempts (before the job, so nothing depends on ON DELETE CASCADE). Params: `@id`. */
export const ATTEMPT_DELETE_BY_JOB = `DELETE FROM job_attempts WHERE job_id = @id`;

/** Deletes a job's recorded steps (before the job, as for attempts). Params: `@id`. */
export const STEP_DELETE_BY_JOB = `DELETE FROM job_steps WHERE job_id = @id`;

/** Deletes a job that is not running and returns it. Params: `@id`. */
export const JOB_DELETE = `DELETE FROM jobs WHERE id = @id AND state <> 'running' RETURNING *`;

// ---------------------------------------------------------------------------------------------- reads

/** One job by id. Params: `@id`. */
export const JOB_GET = `SELECT * FROM jobs WHERE id = @id`;

/**
 * A job's finished attempts, oldest first (the lease token grows with every claim): its `job_attempts` rows and,
 * for a job completed since migration 0011, the completing attempt, which is kept on the job row (`completed_by` is
 * its worker). Params: `@id`.
 */
export const ATTEMPT_LIST = `
SELECT job_id, attempt, lease_token, worker_id, started_at, finished_at, outcome, error FROM job_attempts WHERE job_id = @id
UNION ALL
SELECT id, attempt, lease_token, completed_by, started_at, finished_at, 'completed', NULL FROM jobs
WHERE id = @id AND completed_by IS NOT NULL
ORDER BY lease_token`;

/** The states `jobs_rare_state_idx` holds (migrations 0009, 0010), in the order of its `WHERE`. */
const RARE_STATES: readonly string[] = ['retrying', 'dead', 'cancelled'];

/** `jobs_rare_state_idx`'s `WHERE` term, as the index has it (0010): a query must repeat it to use the index. */
export const RARE_STATES_SQL = stateIsOneOf(RARE_STATES);

/** The state filter of {@link jobListSql} for listing `state` (undefined: no filter). */
export function jobListStateFilter(state: string | undefined): JobListFilters['state'] {
  if (state === undefined) return false;
  return RARE_STATES.includes(state) ? 'rare' : 'common';
}

/**
 * Which optional filters a {@link jobListSql} statement applies. `state`: none, one of the states `jobs_rare_state_idx` holds, or
 * another state.
 */
export interface JobListFilters {
  state: false | 'rare' | 'common';
  queue: boolean;
  name: boolean;
}

/**
 * Builds the job list query for a combination of filters. Absent filters are left out of the text rather than
 * written as `@x IS NULL OR …`, which would stop SQLite from using an index; a rare state also carries
 * {@link RARE_STATES_SQL}, since SQLite uses a partial index only when the query repeats its `WHERE` term. At most
 * twelve distinct texts exist, and the driver caches each prepared. `@beforeId` is always bound (the largest id
 * when not paging) so the rowid range applies. Params: `@beforeId, @limit`, and `@state, @queue, @name` when enabled.
 */
export function jobListSql(filters: JobListFilters): string {
  const where = ['id < @beforeId'];
  if (filters.state) where.push('state = @state');
  if (filters.state === 'rare') where.push(RARE_STATES_SQL);
  if (filters.queue) where.push('queue = @queue');
  if (filters.name) where.push('name = @name');
  return `SELECT * FROM jobs WHERE ${where.join(' AND ')} ORDER BY id DESC LIMIT @limit`;
}

/**
 * One row per queue that has jobs or a `queues` row, sorted by name: pause flag, a count per state, and
 * `lag_ms`, the age of the oldest due queued/retrying job (0 when none). One statement, so one snapshot.
 * Params: `@now`.
 */
export const QUEUE_LIST = `
WITH t AS (SELECT ${NOW} AS now),
c AS (
  SELECT queue,
         sum(state = 'queued') AS queued,
         sum(state = 'retrying') AS retrying,
         sum(state = 'running') AS running,
         sum(state = 'completed') AS completed,
         sum(state = 'dead') AS dead,
         sum(state = 'cancelled') AS cancelled,
         min(CASE WHEN state IN ('queued','retrying') AND run_at <= (SELECT now FROM t) THEN run_at END) AS oldest_due
  FROM jobs GROUP BY queue),
n AS (SELECT queue AS name FROM c UNION SELECT name FROM queues)
SELECT n.name AS name,
       coalesce(q.paused, 0) AS paused,
       coalesce(c.queued, 0) AS queued,
       coalesce(c.retrying, 0) AS retrying,
       coalesce(c.running, 0) AS running,
       coalesce(c.completed, 0) AS completed,
       coalesce(c.dead, 0) AS dead,
       coalesce(c.cancelled, 0) AS cancelled,
       CASE WHEN c.oldest_due IS NULL THEN 0 ELSE max(0, (SELECT now FROM t) - c.oldest_due) END AS lag_ms
FROM n
LEFT JOIN c ON c.queue = n.name
LEFT JOIN queues q ON q.name = n.name
ORDER BY n.name`;

/**
 * {@link QUEUE_LIST} for the jobs not yet ended only: waiting counts and lag read through `jobs_claim_idx`, running
 * counts through `jobs_lease_idx` (`INDEXED BY`: the statement fails rather than reads every job should an index be
 * missing), so finished jobs, however many are kept, are not read. Params: `@now`.
 */
export const QUEUE_ACTIVITY = `
WITH t AS (SELECT ${NOW} AS now),
w AS (
  SELECT queue, sum(state = 'queued') AS queued, sum(state = 'retrying') AS retrying,
         min(CASE WHEN run_at <= (SELECT now FROM t) THEN run_at END) AS oldest_due
  FROM jobs INDEXED BY jobs_claim_idx WHERE state IN ('queued','retrying') GROUP BY queue),
r AS (SELECT queue, count(*) AS running FROM jobs INDEXED BY jobs_lease_idx WHERE state = 'running' GROUP BY queue),
n AS (SELECT queue AS name FROM w UNION SELECT queue FROM r UNION SELECT name FROM queues)
SELECT n.name AS name,
       coalesce(q.paused, 0) AS paused,
       coalesce(w.queued, 0) AS queued,
       coalesce(w.retrying, 0) AS retrying,
       coalesce(r.running, 0) AS running,
       CASE WHEN w.oldest_due IS NULL THEN 0 ELSE max(0, (SELECT now FROM t) - w.oldest_due) END AS lag_ms
FROM n
LEFT JOIN w ON w.queue = n.name
LEFT JOIN r ON r.queue = n.name
LEFT JOIN queues q ON q.name = n.name
ORDER BY n.name`;

/** Persists a queue's pause flag (creating its row if needed). Params: `@queue, @paused` (0/1), `@now`. */
export const QUEUE_SET_PAUSED = `
INSERT INTO queues (name, paused, updated_at) VALUES (@queue, @paused, ${NOW})
ON CONFLICT (name) DO UPDATE SET paused = excluded.paused, updated_at = excluded.updated_at`;
