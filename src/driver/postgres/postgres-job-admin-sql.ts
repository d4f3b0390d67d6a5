/**
 * The PostgreSQL statements of operator actions on jobs (cancel, retry, discard) and of job and queue reads (get,
 * get many, list, attempt history, queue list and activity, pause). Built with the helpers of `postgres-sql.ts`, under its
 * conventions (the schema the only identifier, every value a `$n` parameter).
 * @module
 */
import { ACTIVE, ATTEMPT_COLUMNS, nowAt } from './postgres-sql.js';

/**
 * Cancels queued, retrying or running jobs in one guarded statement. `old` locks the rows (in id order) and keeps
 * their pre-update state, so a running attempt gets a `cancelled` attempt row; the job leaves `running`, which
 * makes that attempt's later writes stale. `match` selects the jobs: `id = $1` (operator cancel) or
 * `schedule_name = $1` (overlap `replace`). Params: `$1` id or schedule, `$2` error (JSON text), `$3` now.
 * Returns the cancelled rows, by id. No row: none matched (for an id, the driver re-reads to tell why).
 */
export function jobCancelSql(s: string, match: 'id' | 'schedule_name' = 'id'): string {
  return `WITH t AS (SELECT ${nowAt(3)} AS now),
old AS (
  SELECT id, state, attempt, lease_token, lease_worker, started_at
  FROM ${s}.jobs WHERE ${match} = $1 AND state IN ${ACTIVE}
  ORDER BY id
  FOR UPDATE
),
a AS (
  INSERT INTO ${s}.job_attempts (${ATTEMPT_COLUMNS})
  SELECT old.id, old.attempt, old.lease_token, old.lease_worker, old.started_at, t.now, 'cancelled', $2::jsonb
  FROM old, t WHERE old.state = 'running'
),
u AS (
  UPDATE ${s}.jobs j
  SET state = 'cancelled', finished_at = t.now, lease_worker = NULL, lease_expires_at = NULL, updated_at = t.now,
      -- A running attempt ends with the cancel as its error, as on SQLite; a waiting job keeps its last error.
      last_error = CASE WHEN old.state = 'running' THEN $2::jsonb ELSE j.last_error END
  FROM old, t
  WHERE j.id = old.id
  RETURNING j.*
)
SELECT * FROM u ORDER BY id`;
}

/**
 * Operator retry of a job without a key: `dead`/`retrying` → `queued` due now, with room for at least one more
 * attempt; checkpoint and steps are kept. A keyed job goes through `jobRetryKeyedSql` (`postgres-keys-sql.ts`)
 * instead, which also decides the key. Params: `$1` id, `$2` now.
 */
export function jobRetrySql(s: string): string {
  return `UPDATE ${s}.jobs
SET state = 'queued', run_at = ${nowAt(2)}, max_attempts = greatest(max_attempts, attempt + 1), lost_count = 0,
    finished_at = NULL, updated_at = ${nowAt(2)}
WHERE id = $1 AND state IN ('dead','retrying') AND key IS NULL
RETURNING *`;
}

/**
 * Deletes a job that is not running, with its attempts (explicitly: migration 0008 dropped the foreign key, whose
 * per-row check cost every batch of endings; steps still go by `ON DELETE CASCADE`). No attempt can be written
 * for a job that is not running, so none can appear after this statement's snapshot. `$1` id.
 */
export function jobDiscardSql(s: string): string {
  return `WITH d AS (DELETE FROM ${s}.jobs WHERE id = $1 AND state <> 'running' RETURNING *),
a AS (DELETE FROM ${s}.job_attempts x USING d WHERE x.job_id = d.id)
SELECT * FROM d`;
}

/** One job by id. `$1` id. */
export function jobGetSql(s: string): string {
  return `SELECT * FROM ${s}.jobs WHERE id = $1`;
}

/** The jobs of a list of ids, each once, by primary key (`= ANY` of an array is an index scan). `$1` ids (`bigint[]`). */
export function jobGetManySql(s: string): string {
  return `SELECT * FROM ${s}.jobs WHERE id = ANY($1::bigint[])`;
}

/**
 * Lists jobs newest first; each NULL filter is off. Params: `$1` state, `$2` queue, `$3` name,
 * `$4` before id, `$5` limit.
 */
export function jobListSql(s: string): string {
  return `SELECT * FROM ${s}.jobs
WHERE ($1::text IS NULL OR state = $1) AND ($2::text IS NULL OR queue = $2) AND ($3::text IS NULL OR name = $3)
  AND ($4::bigint IS NULL OR id < $4)
ORDER BY id DESC
LIMIT $5`;
}

/**
 * A job's finished attempts, oldest first: its `job_attempts` rows and, for a job completed since migration 0011,
 * the completing attempt, which is kept on the job row (`completed_by` is its worker). `$1` job id.
 */
export function jobAttemptListSql(s: string): string {
  return `SELECT ${ATTEMPT_COLUMNS} FROM ${s}.job_attempts WHERE job_id = $1
UNION ALL
SELECT id, attempt, lease_token, completed_by, started_at, finished_at, 'completed', NULL::jsonb
FROM ${s}.jobs WHERE id = $1 AND completed_by IS NOT NULL
ORDER BY attempt, lease_token`;
}

/**
 * Per-queue counts for every queue that has jobs or a `queues` row, with pause state and lag (ms since the
 * oldest due waiting job became due; 0 when none). Sorted bytewise (`COLLATE "C"`) so the order does not
 * depend on the database's locale. No parameters.
 */
export function queueListSql(s: string): string {
  return `WITH c AS (
  SELECT queue, state, count(*)::int AS n,
         min(run_at) FILTER (WHERE state IN ('queued','retrying') AND run_at <= now()) AS oldest_due
  FROM ${s}.jobs GROUP BY queue, state
),
names AS (SELECT queue AS name FROM c UNION SELECT name FROM ${s}.queues)
SELECT names.name AS queue, coalesce(q.paused, false) AS paused,
       coalesce(sum(c.n) FILTER (WHERE c.state = 'queued'), 0)::int AS queued,
       coalesce(sum(c.n) FILTER (WHERE c.state = 'retrying'), 0)::int AS retrying,
       coalesce(sum(c.n) FILTER (WHERE c.state = 'running'), 0)::int AS running,
       coalesce(sum(c.n) FILTER (WHERE c.state = 'completed'), 0)::int AS completed,
       coalesce(sum(c.n) FILTER (WHERE c.state = 'dead'), 0)::int AS dead,
       coalesce(sum(c.n) FILTER (WHERE c.state = 'cancelled'), 0)::int AS cancelled,
       coalesce(round(extract(epoch FROM now() - min(c.oldest_due)) * 1000), 0)::float8 AS lag_ms
FROM names
LEFT JOIN ${s}.queues q ON q.name = names.name
LEFT JOIN c ON c.queue = names.name
GROUP BY names.name, q.paused
ORDER BY names.name COLLATE "C"`;
}

/**
 * {@link queueListSql} for the jobs not yet ended only: waiting counts and lag from the jobs `jobs_claim_idx`
 * holds, running counts from those `jobs_lease_idx` holds (each `WHERE` written as its index's), so finished jobs,
 * however many are kept, are not read. One row per queue with such jobs or a `queues` row. No parameters.
 */
export function queueActivitySql(s: string): string {
  return `WITH w AS (
  SELECT queue, count(*) FILTER (WHERE state = 'queued')::int AS queued, count(*) FILTER (WHERE state = 'retrying')::int AS retrying,
         min(run_at) FILTER (WHERE run_at <= now()) AS oldest_due
  FROM ${s}.jobs WHERE state IN ('queued','retrying') GROUP BY queue
),
r AS (SELECT queue, count(*)::int AS running FROM ${s}.jobs WHERE state = 'running' GROUP BY queue),
names AS (SELECT queue AS name FROM w UNION SELECT queue FROM r UNION SELECT name FROM ${s}.queues)
SELECT names.name AS queue, coalesce(q.paused, false) AS paused, coalesce(w.queued, 0) AS queued,
       coalesce(w.retrying, 0) AS retrying, coalesce(r.running, 0) AS running,
       coalesce(round(extract(epoch FROM now() - w.oldest_due) * 1000), 0)::float8 AS lag_ms
FROM names
LEFT JOIN ${s}.queues q ON q.name = names.name
LEFT JOIN w ON w.queue = names.name
LEFT JOIN r ON r.queue = names.name
ORDER BY names.name COLLATE "C"`;
}

/** Sets a queue's pause flag, creating its row if needed. Params: `$1` queue, `$2` paused. */
export function queueSetPausedSql(s: string): string {
  return `INSERT INTO ${s}.queues (name, paused, updated_at) VALUES ($1, $2, now())
ON CONFLICT (name) DO UPDATE SET paused = excluded.paused, updated_at = excluded.updated_at`;
}
