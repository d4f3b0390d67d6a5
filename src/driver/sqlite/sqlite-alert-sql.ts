/**
 * The SQL of the SQLite driver's alerts (`sqlite-alerts.ts`, migration `0006_alerts`), and nothing else. Same
 * conventions as `sqlite-sql.ts`: times are integer ms, `@now` NULL means the database's clock.
 * @module
 */
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
