/**
 * The SQL of the PostgreSQL driver's alerts (`postgres-alerts.ts`, migration `0006_alerts`), and nothing else.
 * Same conventions as `postgres-sql.ts`.
 * @module
 */
import { nowAt, quoteIdentifier } from './postgres-sql.js';

/**
 * Opens an alert in one statement: inserts a new key, or opens a resolved one again as the next episode (only if
 * it was resolved at or before `$7`, when given). A concurrent opener of the same key waits for this one's insert
 * and then finds it open: the `DO UPDATE … WHERE` matches nothing and it gets no row, so exactly one instance
 * notifies. Params: `$1` key, `$2` rule, `$3` severity, `$4` summary, `$5` details (JSON text), `$6` instance,
 * `$7` since (or NULL), `$8` now.
 */
export function alertOpenSql(s: string): string {
  return `INSERT INTO ${s}.alerts AS a (key, rule, state, severity, summary, details, episode, opened_at, resolved_at, updated_at, opened_by, resolved_by, notices)
VALUES ($1, $2, 'open', $3, $4, $5::jsonb, 1, ${nowAt(8)}, NULL, ${nowAt(8)}, $6, NULL, 1)
ON CONFLICT (key) DO UPDATE
SET rule = excluded.rule, state = 'open', severity = excluded.severity, summary = excluded.summary, details = excluded.details,
    episode = a.episode + 1, opened_at = excluded.opened_at, resolved_at = NULL, updated_at = excluded.updated_at,
    opened_by = excluded.opened_by, resolved_by = NULL, notices = a.notices + 1
WHERE a.state = 'resolved' AND ($7::timestamptz IS NULL OR a.resolved_at <= $7::timestamptz)
RETURNING *`;
}

/**
 * Resolves an open alert (opened at or before `$4`, when given); no row when it was not open. Params: `$1` key,
 * `$2` details (JSON text, or NULL to keep the last), `$3` instance, `$4` since (or NULL), `$5` now.
 */
export function alertResolveSql(s: string): string {
  return `UPDATE ${s}.alerts
SET state = 'resolved', resolved_at = ${nowAt(5)}, updated_at = ${nowAt(5)}, resolved_by = $3,
    details = coalesce($2::jsonb, details), notices = notices + 1
WHERE key = $1 AND state = 'open' AND ($4::timestamptz IS NULL OR opened_at <= $4::timestamptz)
RETURNING *`;
}

/** Alerts, most recently changed first (ties by key, bytewise). Params: `$1` state, `$2` rule (or NULL), `$3` limit. */
export function alertListSql(s: string): string {
  return `SELECT * FROM ${s}.alerts
WHERE ($1::text IS NULL OR state = $1) AND ($2::text IS NULL OR rule = $2)
ORDER BY updated_at DESC, key COLLATE "C"
LIMIT $3`;
}

/** The alert of one key, in whichever state. Params: `$1` key. */
export function alertGetSql(s: string): string {
  return `SELECT * FROM ${s}.alerts WHERE key = $1`;
}

/**
 * A page of the dead jobs, newest id first, each with whether its dead-letter alert exists (the key `deadLetterKey`
 * builds, looked up by the primary key). The dead jobs are a range of `jobs_rare_state_idx (state, id)`, so a page
 * costs its rows, however many jobs are kept. Params: `$1` before id (or NULL), `$2` limit.
 */
export function alertDeadJobListSql(s: string): string {
  return `SELECT j.id, j.name, j.attempt,
  EXISTS (SELECT 1 FROM ${s}.alerts a WHERE a.key = 'dead-letter:' || j.id || ':' || j.attempt) AS alerted
FROM ${s}.jobs j
WHERE j.state = 'dead' AND ($1::bigint IS NULL OR j.id < $1::bigint)
ORDER BY j.id DESC
LIMIT $2`;
}

/**
 * Running attempts started at or before `$1`, oldest start first (then by id), after the attempt `($2, $3)` when
 * given. Read through `jobs_lease_idx`, the partial index of the running jobs, and sorted: the cost is the jobs
 * running, not the jobs kept. Params: `$1` started before, `$2` after started_at (or NULL), `$3` after id, `$4` limit.
 */
export function alertRunningJobListSql(s: string): string {
  return `SELECT id, name, queue, schedule_name, attempt, started_at, lease_worker
FROM ${s}.jobs
WHERE state = 'running' AND started_at <= $1
  AND ($2::timestamptz IS NULL OR (started_at, id) > ($2::timestamptz, $3::bigint))
ORDER BY started_at, id
LIMIT $4`;
}

/** Every alert statement, built once per driver. */
export interface PostgresAlertStatements {
  alertOpen: string;
  alertResolve: string;
  alertList: string;
  alertGet: string;
  alertDeadJobList: string;
  alertRunningJobList: string;
}

/** Builds every alert statement for a schema already checked by `validateSchemaName`. */
export function buildPostgresAlertStatements(schema: string): PostgresAlertStatements {
  const s = quoteIdentifier(schema);
  return {
    alertOpen: alertOpenSql(s), alertResolve: alertResolveSql(s), alertList: alertListSql(s), alertGet: alertGetSql(s),
    alertDeadJobList: alertDeadJobListSql(s), alertRunningJobList: alertRunningJobListSql(s),
  };
}
