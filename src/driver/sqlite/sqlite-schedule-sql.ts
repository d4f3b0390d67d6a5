/**
 * The SQL of the SQLite driver's schedule operations (`sqlite-schedules.ts`), and nothing else. Same conventions
 * as `sqlite-sql.ts`: values are named parameters, time is `@now` (ms or `NULL` for the database clock), and the
 * only `${…}` splices in the constant fragments `NOW`, `ACTIVE_STATES_TERM` and `SCHEDULE_SELECT`.
 * @module
 */
import { ACTIVE_STATES_TERM, NOW } from './sqlite-sql.js';

/**
 * Upserts one schedule of the code's list. New name: inserted, due at `@firstRunAt`. Existing name whose hash
 * differs, or that was removed: hash and spec replaced, un-removed (pause state kept), and `next_run_at` set to
 * `@firstRunAt` unless the row was active and its stored spec has the new spec's timing: the same `cron` and
 * `everyMs` (one of them set in the new spec) and, for a cron pattern, the same `timezone` (same ticks: a due tick
 * stays due). The stored spec, not a column of this version's own, because every version writes it with
 * `next_run_at`: a row changed by an older version (a rolling deploy, a rollback) is compared with the timing it was
 * really stored with. `IS` compares NULL-safely: a field the stored spec lacks compares as a change, so the doubtful
 * case resets. Unchanged and active: the `DO UPDATE … WHERE` matches nothing, so the row is untouched. An upsert, so
 * concurrent syncs of the same list never fail on the primary key. Params: `@name, @definitionHash, @spec,
 * @firstRunAt` (ms or NULL), `@now`.
 */
export const SCHEDULE_UPSERT = `
INSERT INTO schedules (name, definition_hash, spec, paused, next_run_at, last_tick_at, removed_at, created_at, updated_at)
VALUES (@name, @definitionHash, @spec, 0, @firstRunAt, NULL, NULL, ${NOW}, ${NOW})
ON CONFLICT (name) DO UPDATE
SET definition_hash = excluded.definition_hash,
    spec = excluded.spec,
    next_run_at = CASE WHEN schedules.removed_at IS NULL
        AND coalesce(json_extract(excluded.spec, '$.cron'), json_extract(excluded.spec, '$.everyMs')) IS NOT NULL
        AND json_extract(schedules.spec, '$.cron') IS json_extract(excluded.spec, '$.cron')
        AND json_extract(schedules.spec, '$.everyMs') IS json_extract(excluded.spec, '$.everyMs')
        AND (json_extract(excluded.spec, '$.cron') IS NULL OR json_extract(schedules.spec, '$.timezone') IS json_extract(excluded.spec, '$.timezone'))
      THEN schedules.next_run_at ELSE excluded.next_run_at END,
    removed_at = NULL,
    updated_at = excluded.updated_at
WHERE schedules.definition_hash <> excluded.definition_hash OR schedules.removed_at IS NOT NULL`;

/**
 * Stores one schedule only if no row of its name exists (never synced); a removed or active one is left as it is.
 * Params: `@name, @definitionHash, @spec, @firstRunAt, @now`.
 */
export const SCHEDULE_INSERT_MISSING = `
INSERT INTO schedules (name, definition_hash, spec, paused, next_run_at, last_tick_at, removed_at, created_at, updated_at)
VALUES (@name, @definitionHash, @spec, 0, @firstRunAt, NULL, NULL, ${NOW}, ${NOW})
ON CONFLICT (name) DO NOTHING`;

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
    ORDER BY recorded_at DESC, tick_at DESC, kind DESC
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
 * Sets an active schedule's pause flag, and on resume of a paused one its `next_run_at` (one not paused keeps it:
 * a tick already due stays due; the SET reads the row as it was). With `@expectedHash`, only while the stored
 * definition hash is that one (resume: the hash its next run was computed from); NULL: any. Returns the name, or
 * no row when the schedule is missing, removed or has another hash. Params: `@name, @paused` (0/1),
 * `@setNextRunAt` (0/1: whether to replace `next_run_at` of a paused schedule), `@nextRunAt` (ms or NULL),
 * `@expectedHash` (or NULL), `@now`.
 */
export const SCHEDULE_SET_PAUSED = `
UPDATE schedules
SET paused = @paused,
    next_run_at = CASE WHEN @setNextRunAt = 1 AND paused = 1 THEN @nextRunAt ELSE next_run_at END,
    updated_at = ${NOW}
WHERE name = @name AND removed_at IS NULL AND (@expectedHash IS NULL OR definition_hash = @expectedHash)
RETURNING name`;

/**
 * Ids of a schedule's active jobs, oldest first (served by jobs_schedule_active_idx), for overlap `replace`.
 * Params: `@name`.
 */
export const JOB_SCHEDULE_ACTIVE_IDS = `
SELECT id FROM jobs
WHERE schedule_name = @name AND ${ACTIVE_STATES_TERM}
ORDER BY id`;

/**
 * One active job of a schedule in one of `@states` (JSON array), or no row: whether overlap blocks a tick. The
 * active-states term keeps jobs_schedule_active_idx usable (finished jobs never block). Params: `@name, @states`.
 */
export const JOB_SCHEDULE_BLOCKING = `
SELECT id FROM jobs
WHERE schedule_name = @name AND ${ACTIVE_STATES_TERM}
  AND state IN (SELECT value FROM json_each(@states))
LIMIT 1`;

/**
 * Records one tick unless a row for it already exists (primary key `(schedule_name, tick_at, kind)`): returns the
 * row when inserted, no row when the tick was already handled. Params: `@name, @tickAt, @kind, @outcome, @late`
 * (0/1), `@jobId` (or NULL), `@actor` (or NULL), `@now`, `@firedBy` (the scheduler instance writing it, or NULL).
 */
export const SCHEDULE_TICK_INSERT = `
INSERT INTO schedule_ticks (schedule_name, tick_at, kind, outcome, late, job_id, actor, recorded_at, fired_by)
VALUES (@name, @tickAt, @kind, @outcome, @late, @jobId, @actor, ${NOW}, @firedBy)
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

/**
 * A schedule's newest success: its newest `fired` tick (by `tick_at`, then `kind`, as {@link SCHEDULE_TICK_LIST}
 * orders them) whose job exists and is `completed`, with that job's `finished_at`; no row when there is none. The job
 * is read by correlated scalar subqueries rather than a join, as on PostgreSQL, so the ticks are always the outer loop:
 * the primary key `(schedule_name, tick_at, kind)` walked newest first (no temporary b-tree for the ORDER BY), each
 * tick's job read by its rowid, stopping at the first completed one. Params: `@name`.
 */
export const SCHEDULE_LAST_SUCCESS = `
SELECT t.tick_at, t.job_id, (SELECT j.finished_at FROM jobs j WHERE j.id = t.job_id) AS finished_at
FROM schedule_ticks t
WHERE t.schedule_name = @name AND t.outcome = 'fired'
  AND (SELECT j.state FROM jobs j WHERE j.id = t.job_id) = 'completed'
ORDER BY t.tick_at DESC, t.kind DESC
LIMIT 1`;

/**
 * A range of a schedule's `scheduled` ticks, oldest first: `@after < tick_at <= @through` (ms; `@after` NULL: no lower
 * bound, the smallest safe integer standing in for it), at most `@limit`, each with its job's current state
 * (`job_state`). A forward range search of the primary key `(schedule_name, tick_at, kind)` (no temporary b-tree for
 * the ORDER BY) that stops after `@limit` rows, so the ticks before `@after` are never read; the job is read by a
 * correlated scalar subquery through its rowid, as in {@link SCHEDULE_LAST_SUCCESS}, so the ticks stay the outer loop.
 * Params: `@name, @after, @through, @limit`.
 */
export const SCHEDULE_TICKS_AFTER = `
SELECT t.schedule_name, t.tick_at, t.kind, t.outcome, t.late, t.job_id, t.actor, t.recorded_at,
       (SELECT j.state FROM jobs j WHERE j.id = t.job_id) AS job_state
FROM schedule_ticks t
WHERE t.schedule_name = @name AND t.kind = 'scheduled'
  AND t.tick_at > coalesce(@after, -9007199254740991) AND t.tick_at <= @through
ORDER BY t.tick_at
LIMIT @limit`;

/**
 * The scheduled ticks among `@tickAts` (a JSON array of ms) that scheduler instance `@firedBy` wrote for `@name`.
 * `replaced` (0/1): a `fired` tick whose job is not the one it enqueued (that job's schedule or tick differs), so its
 * key replaced a waiting holder's payload; 0 when the job is gone.
 */
export const SCHEDULE_TICKS_WRITTEN_BY = `
SELECT t.tick_at, t.outcome, t.late, t.job_id,
       (t.outcome = 'fired' AND j.id IS NOT NULL AND (j.schedule_name IS NOT t.schedule_name OR j.tick_at IS NOT t.tick_at)) AS replaced
FROM schedule_ticks t LEFT JOIN jobs j ON j.id = t.job_id
WHERE t.schedule_name = @name AND t.kind = 'scheduled' AND t.fired_by = @firedBy AND t.tick_at IN (SELECT value FROM json_each(@tickAts))
ORDER BY t.tick_at`;
