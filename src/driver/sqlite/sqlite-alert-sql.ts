/**
 * The SQL of the SQLite driver's alerts (`sqlite-alerts.ts`, migration `0006_alerts`), and nothing else. Same
 * conventions as `sqlite-sql.ts`: times are integer ms, `@now` NULL means the database's clock.
 * @module
 */
import { RARE_STATES_SQL } from './sqlite-job-admin-sql.js';
import { NOW } from './sqlite-sql.js';

/**
 * Opens an alert in one statement: inserts a new key, or opens a resolved one again as the next episode (only if
 * it was resolved at or before `@since`, when given). An open key matches the `DO UPDATE … WHERE` not at all, so no
 * row comes back: someone else opened it and notified. Params: `@key, @rule, @severity, @summary, @details,
 * @instance, @since` (ms or NULL), `@now`.
 */
export const ALERT_OPEN = `
INSERT INTO alerts (key, rule, state, severity, summary, details, episode, opened_at, resolved_at, updated_at, opened_by, resolved_by, notices)
VALUES (@key, @rule, 'open', @severity, @summary, @details, 1, ${NOW}, NULL, ${NOW}, @instance, NULL, 1)
ON CONFLICT (key) DO UPDATE
SET rule = excluded.rule,
    state = 'open',
    severity = excluded.severity,
    summary = excluded.summary,
    details = excluded.details,
    episode = alerts.episode + 1,
    opened_at = excluded.opened_at,
    resolved_at = NULL,
    updated_at = excluded.updated_at,
    opened_by = excluded.opened_by,
    resolved_by = NULL,
    notices = alerts.notices + 1
WHERE alerts.state = 'resolved' AND (@since IS NULL OR alerts.resolved_at <= @since)
RETURNING *`;

/**
 * Resolves an open alert (opened at or before `@since`, when given); no row when it was not open, i.e. someone
 * else resolved it. `@details` NULL keeps the last details. Params: `@key, @details, @instance, @since, @now`.
 */
export const ALERT_RESOLVE = `
UPDATE alerts
SET state = 'resolved',
    resolved_at = ${NOW},
    updated_at = ${NOW},
    resolved_by = @instance,
    details = coalesce(@details, details),
    notices = notices + 1
WHERE key = @key AND state = 'open' AND (@since IS NULL OR opened_at <= @since)
RETURNING *`;

/** Alerts, most recently changed first, optionally of one state and rule. Params: `@state, @rule` (or NULL), `@limit`. */
export const ALERT_LIST = `
SELECT * FROM alerts
WHERE (@state IS NULL OR state = @state) AND (@rule IS NULL OR rule = @rule)
ORDER BY updated_at DESC, key
LIMIT @limit`;

/** The alert of one key, in whichever state. Params: `@key`. */
export const ALERT_GET = `SELECT * FROM alerts WHERE key = @key`;

/**
 * A page of the dead jobs, newest id first, each with whether its dead-letter alert exists (the key `deadLetterKey`
 * builds, looked up by the primary key). The dead jobs are a range of `jobs_rare_state_idx (state, id)`, which SQLite
 * uses only when the query repeats the index's `WHERE` term; a page costs its rows, however many jobs are kept.
 * `@beforeId` is always bound (the largest id from the newest). Params: `@beforeId, @limit`.
 */
export const ALERT_DEAD_JOB_LIST = `
SELECT j.id, j.name, j.attempt,
  EXISTS (SELECT 1 FROM alerts a WHERE a.key = 'dead-letter:' || j.id || ':' || j.attempt) AS alerted
FROM jobs j
WHERE j.state = 'dead' AND ${RARE_STATES_SQL} AND j.id < @beforeId
ORDER BY j.id DESC
LIMIT @limit`;

/**
 * Running attempts started at or before `@startedBefore`, oldest start first (then by id), after the attempt
 * `(@afterAt, @afterId)` when `@afterAt` is not NULL. Read through `jobs_lease_idx`, the partial index of the running
 * jobs, and sorted: the cost is the jobs running, not the jobs kept. Params: `@startedBefore, @afterAt, @afterId, @limit`.
 */
export const ALERT_RUNNING_JOB_LIST = `
SELECT id, name, queue, schedule_name, attempt, started_at, lease_worker
FROM jobs INDEXED BY jobs_lease_idx
WHERE state = 'running' AND started_at <= @startedBefore
  AND (@afterAt IS NULL OR started_at > @afterAt OR (started_at = @afterAt AND id > @afterId))
ORDER BY started_at, id
LIMIT @limit`;
