/**
 * Every SQL statement the SQLite driver runs, in one place (docs/driver-contract.md, "SQL in one place").
 *
 * Conventions:
 * - Values are always named parameters (`@name`); nothing is ever interpolated. The only `${…}` in this file
 *   splices in the constant fragments {@link NOW}, {@link ACTIVE_STATES_SQL} and `SCHEDULE_SELECT`.
 * - Time: every time-dependent statement takes `@now`, integer milliseconds since the epoch or `NULL`. `NULL`
 *   means the database clock. SQLite keeps the clock fixed for the duration of one `sqlite3_step()`, so all
 *   uses of {@link NOW} inside one statement agree; multi-statement transactions resolve `@now` once with
 *   {@link NOW_SELECT} and pass the result to each statement so attempt and job rows carry the same time.
 * - Queue lists and id lists are passed as JSON array text and read with `json_each`, so one prepared
 *   statement serves any list length.
 * @module
 */

/**
 * The current time in integer ms: `@now` when bound to a number, else the database clock. A fragment, not a
 * statement.
 */
const NOW = `coalesce(@now, CAST(unixepoch('subsec') * 1000 AS INTEGER))`;

/** The states in which a job may still run; the dedup key is unique among these (jobs_key_active_idx). */
const ACTIVE_STATES_SQL = `('queued','retrying','running')`;

// ---------------------------------------------------------------------------------------------- connection

/** Switches the file to write-ahead logging so readers never block the single writer. Needs a brief lock. */
export const PRAGMA_JOURNAL_MODE_WAL = `PRAGMA journal_mode = WAL`;

/** `synchronous = NORMAL`: in WAL mode durable across application crashes, may lose the last commits on power loss. */
export const PRAGMA_SYNCHRONOUS_NORMAL = `PRAGMA synchronous = NORMAL`;

/** `synchronous = FULL`: fsync on every commit; durable across power loss, slower. */
export const PRAGMA_SYNCHRONOUS_FULL = `PRAGMA synchronous = FULL`;

/** Enforces job_attempts -> jobs references (off by default in SQLite, per connection). */
export const PRAGMA_FOREIGN_KEYS_ON = `PRAGMA foreign_keys = ON`;

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
 * Inserts one queued job unless its key is held by an active job. The conflict target repeats the partial
 * unique index's WHERE clause so the index, not a prior read, decides. Returns the new row, or no row on a key
 * conflict. Params: `@name, @queue, @payload, @priority, @runAt` (ms or NULL), `@delayMs, @maxAttempts, @key,
 * @scheduleName` (or NULL), `@tickAt` (ms or NULL), `@now`.
 */
export const JOB_INSERT = `
INSERT INTO jobs (name, queue, payload, state, priority, run_at, max_attempts, key, schedule_name, tick_at, created_at, updated_at)
VALUES (@name, @queue, @payload, 'queued', @priority, coalesce(@runAt, ${NOW} + @delayMs), @maxAttempts, @key, @scheduleName, @tickAt, ${NOW}, ${NOW})
ON CONFLICT (key) WHERE key IS NOT NULL AND state IN ${ACTIVE_STATES_SQL} DO NOTHING
RETURNING *`;

/** The active job holding a dedup key (at most one, by jobs_key_active_idx). Params: `@key`. */
export const JOB_GET_ACTIVE_BY_KEY = `SELECT * FROM jobs WHERE key = @key AND state IN ${ACTIVE_STATES_SQL}`;

// ---------------------------------------------------------------------------------------------- claim / lease

/**
 * Claims up to `@limit` due jobs of the queues in `@queues` (JSON array), skipping paused queues, in
 * `priority, run_at, id` order. Runs inside `BEGIN IMMEDIATE`, which makes the inner SELECT and the UPDATE
 * one atomic step across processes, so the outer UPDATE needs no second state check (PostgreSQL's does).
 * `INDEXED BY jobs_claim_idx`: without ANALYZE statistics the planner prefers jobs_state_id_idx and scans
 * every waiting job of every queue; the partial claim index only holds waiting jobs and is searched per
 * queue (a statement that could not use it would fail to prepare, rather than silently scan). RETURNING
 * order is unspecified, so the caller sorts. Params: `@queues, @limit, @workerId, @leaseMs, @now`.
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
RETURNING *`;

/** Renews one lease if it still holds. `changes` = 1 when applied. Params: `@id, @leaseToken, @leaseMs, @now`. */
export const JOB_HEARTBEAT = `
UPDATE jobs SET lease_expires_at = ${NOW} + @leaseMs
WHERE id = @id AND lease_token = @leaseToken AND state = 'running'`;

// ---------------------------------------------------------------------------------------------- finish / rescue

/**
 * Records the attempt of a lease that still holds, copying attempt, token, worker and start time from the job
 * before the job update clears them. `changes` = 0 means the lease is stale. Shared by finish and rescue.
 * Params: `@id, @leaseToken, @outcome, @error` (JSON or NULL), `@now`.
 */
export const ATTEMPT_INSERT_FROM_LEASE = `
INSERT INTO job_attempts (job_id, attempt, lease_token, worker_id, started_at, finished_at, outcome, error)
SELECT id, attempt, lease_token, lease_worker, started_at, ${NOW}, @outcome, @error
FROM jobs WHERE id = @id AND lease_token = @leaseToken AND state = 'running'`;

/**
 * Ends an attempt under its lease: to `@state`; `completed`/`dead` get `finished_at`, `retrying`/`queued`
 * become due at `now + @retryDelayMs`. Lease fields are cleared; `lease_token` stays as the fence.
 * Params: `@id, @leaseToken, @state, @retryDelayMs, @error, @now`.
 */
export const JOB_FINISH = `
UPDATE jobs
SET state = @state,
    last_error = @error,
    lease_worker = NULL,
    lease_expires_at = NULL,
    finished_at = CASE WHEN @state IN ('completed','dead') THEN ${NOW} ELSE NULL END,
    run_at = CASE WHEN @state IN ('retrying','queued') THEN ${NOW} + @retryDelayMs ELSE run_at END,
    updated_at = ${NOW}
WHERE id = @id AND lease_token = @leaseToken AND state = 'running'`;

/**
 * Running jobs whose lease expired before now, oldest expiry first. `INDEXED BY jobs_lease_idx` makes this a
 * range scan in expiry order with no sort (unforced, the planner picks jobs_state_id_idx and sorts).
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
 * reset. Fails with a UNIQUE constraint error when another active job holds the key. Params: `@id, @now`.
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

/** Another active job holding `@key`, for KeyConflictError. Params: `@key, @id`. */
export const JOB_ACTIVE_ID_BY_KEY = `
SELECT id FROM jobs WHERE key = @key AND state IN ${ACTIVE_STATES_SQL} AND id <> @id LIMIT 1`;

/** Deletes a job's attempts (before the job, so nothing depends on ON DELETE CASCADE). Params: `@id`. */
export const ATTEMPT_DELETE_BY_JOB = `DELETE FROM job_attempts WHERE job_id = @id`;

/** Deletes a job that is not running and returns it. Params: `@id`. */
export const JOB_DELETE = `DELETE FROM jobs WHERE id = @id AND state <> 'running' RETURNING *`;

// ---------------------------------------------------------------------------------------------- reads

/** One job by id. Params: `@id`. */
export const JOB_GET = `SELECT * FROM jobs WHERE id = @id`;

/** A job's finished attempts, oldest first (the lease token grows with every claim). Params: `@id`. */
export const ATTEMPT_LIST = `SELECT * FROM job_attempts WHERE job_id = @id ORDER BY lease_token`;

/** Which optional filters a {@link jobListSql} statement applies. */
export interface JobListFilters {
  state: boolean;
  queue: boolean;
  name: boolean;
}

/**
 * Builds the job list query for a combination of filters. Absent filters are left out of the text rather than
 * written as `@x IS NULL OR …`, which would stop SQLite from using jobs_state_id_idx; at most eight distinct
 * texts exist, and the driver caches each prepared. `@beforeId` is always bound (the largest id when not
 * paging) so the rowid range applies. Params: `@beforeId, @limit`, and `@state, @queue, @name` when enabled.
 */
export function jobListSql(filters: JobListFilters): string {
  const where = ['id < @beforeId'];
  if (filters.state) where.push('state = @state');
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

/** Persists a queue's pause flag (creating its row if needed). Params: `@queue, @paused` (0/1), `@now`. */
export const QUEUE_SET_PAUSED = `
INSERT INTO queues (name, paused, updated_at) VALUES (@queue, @paused, ${NOW})
ON CONFLICT (name) DO UPDATE SET paused = excluded.paused, updated_at = excluded.updated_at`;

// ---------------------------------------------------------------------------------------------- schedules

/**
 * Upserts one schedule of the code's list. New name: inserted, due at `@firstRunAt`. Existing name whose hash
 * differs, or that was removed: hash, spec and `next_run_at` replaced, un-removed (pause state kept). Unchanged
 * and active: the `DO UPDATE … WHERE` matches nothing, so the row is untouched. An upsert, so concurrent syncs of
 * the same list never fail on the primary key. Params: `@name, @definitionHash, @spec, @firstRunAt` (ms or NULL), `@now`.
 */
export const SCHEDULE_UPSERT = `
INSERT INTO schedules (name, definition_hash, spec, paused, next_run_at, last_tick_at, removed_at, created_at, updated_at)
VALUES (@name, @definitionHash, @spec, 0, @firstRunAt, NULL, NULL, ${NOW}, ${NOW})
ON CONFLICT (name) DO UPDATE
SET definition_hash = excluded.definition_hash,
    spec = excluded.spec,
    next_run_at = excluded.next_run_at,
    removed_at = NULL,
    updated_at = excluded.updated_at
WHERE schedules.definition_hash <> excluded.definition_hash OR schedules.removed_at IS NOT NULL`;

/** Marks every active schedule whose name is not in `@names` (JSON array) removed. Params: `@names, @now`. */
export const SCHEDULE_REMOVE_MISSING = `
UPDATE schedules SET removed_at = ${NOW}, updated_at = ${NOW}
WHERE removed_at IS NULL AND name NOT IN (SELECT value FROM json_each(@names))`;

/**
 * The columns of a schedule read, with its newest tick (by `recorded_at`, then `tick_at`; `t_*` columns, all NULL
 * when it has none) and that tick's job's current state (`t_job_state`, NULL when the job is gone). A fragment:
 * the statements below add WHERE / ORDER BY.
 */
const SCHEDULE_SELECT = `
SELECT s.name, s.definition_hash, s.spec, s.paused, s.next_run_at, s.last_tick_at, s.created_at, s.updated_at,
       t.tick_at AS t_tick_at, t.kind AS t_kind, t.outcome AS t_outcome, t.late AS t_late, t.job_id AS t_job_id,
       t.actor AS t_actor, t.recorded_at AS t_recorded_at, j.state AS t_job_state
FROM schedules s
LEFT JOIN schedule_ticks t ON t.rowid = (
    SELECT rowid FROM schedule_ticks
    WHERE schedule_name = s.name
    ORDER BY recorded_at DESC, tick_at DESC, rowid DESC
    LIMIT 1)
LEFT JOIN jobs j ON j.id = t.job_id`;

/**
 * Active, unpaused schedules due at `now` (`next_run_at <= now`), soonest first, at most `@limit`. The WHERE repeats
 * schedules_due_idx's condition so the partial index serves it. Params: `@limit, @now`.
 */
export const SCHEDULE_DUE = `${SCHEDULE_SELECT}
WHERE s.removed_at IS NULL AND s.paused = 0 AND s.next_run_at <= ${NOW}
ORDER BY s.next_run_at, s.name
LIMIT @limit`;

/** Every schedule not removed, by name. No params. */
export const SCHEDULE_LIST = `${SCHEDULE_SELECT}
WHERE s.removed_at IS NULL
ORDER BY s.name`;

/** One schedule that is not removed, by name (no row when missing or removed). Params: `@name`. */
export const SCHEDULE_GET_ACTIVE = `${SCHEDULE_SELECT}
WHERE s.name = @name AND s.removed_at IS NULL`;

/** Whether a schedule exists and is not removed (a row or none). Params: `@name`. */
export const SCHEDULE_EXISTS_ACTIVE = `SELECT 1 AS present FROM schedules WHERE name = @name AND removed_at IS NULL`;

/**
 * The compare-and-swap that claims a schedule's due ticks: succeeds (`changes` = 1) only if the definition hash
 * and `next_run_at` are still the ones the caller planned with and the schedule is active and unpaused; then
 * `next_run_at` moves on and `last_tick_at` becomes the newest handled tick (never moving back; SQLite's scalar
 * `max` returns NULL when an argument is NULL, hence the CASE). Params: `@name, @definitionHash, @expectedNextRunAt,
 * @nextRunAt` (ms or NULL), `@newestTickAt` (ms, or NULL for no ticks), `@now`.
 */
export const SCHEDULE_ADVANCE = `
UPDATE schedules
SET next_run_at = @nextRunAt,
    last_tick_at = CASE WHEN @newestTickAt IS NOT NULL AND (last_tick_at IS NULL OR last_tick_at < @newestTickAt)
                        THEN @newestTickAt ELSE last_tick_at END,
    updated_at = ${NOW}
WHERE name = @name
  AND definition_hash = @definitionHash
  AND next_run_at = @expectedNextRunAt
  AND removed_at IS NULL
  AND paused = 0`;

/**
 * Sets an active schedule's pause flag, and on resume its `next_run_at`. Returns the name, or no row when the
 * schedule is missing or removed. Params: `@name, @paused` (0/1), `@setNextRunAt` (0/1: whether to replace
 * `next_run_at`), `@nextRunAt` (ms or NULL), `@now`.
 */
export const SCHEDULE_SET_PAUSED = `
UPDATE schedules
SET paused = @paused,
    next_run_at = CASE WHEN @setNextRunAt = 1 THEN @nextRunAt ELSE next_run_at END,
    updated_at = ${NOW}
WHERE name = @name AND removed_at IS NULL
RETURNING name`;

/**
 * Ids of a schedule's active jobs, oldest first (served by jobs_schedule_active_idx), for overlap `replace`.
 * Params: `@name`.
 */
export const JOB_SCHEDULE_ACTIVE_IDS = `
SELECT id FROM jobs
WHERE schedule_name = @name AND state IN ${ACTIVE_STATES_SQL}
ORDER BY id`;

/**
 * One active job of a schedule in one of `@states` (JSON array), or no row: whether overlap blocks a tick. The
 * active-states term keeps jobs_schedule_active_idx usable (finished jobs never block). Params: `@name, @states`.
 */
export const JOB_SCHEDULE_BLOCKING = `
SELECT id FROM jobs
WHERE schedule_name = @name AND state IN ${ACTIVE_STATES_SQL}
  AND state IN (SELECT value FROM json_each(@states))
LIMIT 1`;

/**
 * Records one tick unless a row for it already exists (primary key `(schedule_name, tick_at, kind)`): returns the
 * row when inserted, no row when the tick was already handled. Params: `@name, @tickAt, @kind, @outcome, @late`
 * (0/1), `@jobId` (or NULL), `@actor` (or NULL), `@now`.
 */
export const SCHEDULE_TICK_INSERT = `
INSERT INTO schedule_ticks (schedule_name, tick_at, kind, outcome, late, job_id, actor, recorded_at)
VALUES (@name, @tickAt, @kind, @outcome, @late, @jobId, @actor, ${NOW})
ON CONFLICT (schedule_name, tick_at, kind) DO NOTHING
RETURNING schedule_name`;

/** Sets the outcome and job of a tick row inserted in the same transaction. Params: `@name, @tickAt, @kind, @outcome, @jobId`. */
export const SCHEDULE_TICK_SET_OUTCOME = `
UPDATE schedule_ticks SET outcome = @outcome, job_id = @jobId
WHERE schedule_name = @name AND tick_at = @tickAt AND kind = @kind`;

/** One stored tick, for reporting a tick that was already handled. Params: `@name, @tickAt, @kind`. */
export const SCHEDULE_TICK_GET = `
SELECT t.*, j.state AS job_state
FROM schedule_ticks t LEFT JOIN jobs j ON j.id = t.job_id
WHERE t.schedule_name = @name AND t.tick_at = @tickAt AND t.kind = @kind`;

/**
 * A schedule's ticks, newest first (the primary key serves the order), at most `@limit`, each with its job's
 * current state (`job_state`, NULL when there is no job or it was discarded). Params: `@name, @limit`.
 */
export const SCHEDULE_TICK_LIST = `
SELECT t.*, j.state AS job_state
FROM schedule_ticks t LEFT JOIN jobs j ON j.id = t.job_id
WHERE t.schedule_name = @name
ORDER BY t.tick_at DESC, t.kind DESC
LIMIT @limit`;

// ---------------------------------------------------------------------------------------------- lease locks

/**
 * Grants a lease lock if it is new (token 1), released, or expired (token + 1): one statement, so two acquirers
 * can never both get a row back. No row returned: someone else holds it. A lock row is never deleted, so the token
 * only grows. Params: `@name, @holder, @ttlMs, @now`.
 */
export const LOCK_ACQUIRE = `
INSERT INTO locks (name, token, holder, acquired_at, expires_at)
VALUES (@name, 1, @holder, ${NOW}, ${NOW} + @ttlMs)
ON CONFLICT (name) DO UPDATE
SET token = locks.token + 1,
    holder = excluded.holder,
    acquired_at = excluded.acquired_at,
    expires_at = excluded.expires_at
WHERE locks.holder IS NULL OR locks.expires_at <= ${NOW}
RETURNING token, expires_at`;

/** Extends an unexpired lease still held with `@token`; no row when it was lost. Params: `@name, @token, @ttlMs, @now`. */
export const LOCK_RENEW = `
UPDATE locks SET expires_at = ${NOW} + @ttlMs
WHERE name = @name AND token = @token AND holder IS NOT NULL AND expires_at > ${NOW}
RETURNING token, expires_at`;

/** Frees a lock held with `@token`, keeping the token (`changes` = 1 when released). Params: `@name, @token`. */
export const LOCK_RELEASE = `
UPDATE locks SET holder = NULL, expires_at = NULL
WHERE name = @name AND token = @token AND holder IS NOT NULL`;

/**
 * Fence check: the newest token of a lock and whether `@token` is it, still held and unexpired (`held` 0/1).
 * No row when the lock was never granted. Params: `@name, @token, @now`.
 */
export const LOCK_CHECK = `
SELECT token, coalesce(token = @token AND holder IS NOT NULL AND expires_at > ${NOW}, 0) AS held
FROM locks WHERE name = @name`;

/** Every lock row, by name. No params. */
export const LOCK_LIST = `SELECT * FROM locks ORDER BY name`;
