/**
 * The SQLite statements of operator actions on jobs (cancel, retry, delete) and of job, attempt and queue reads,
 * and queue pauses. Conventions and shared fragments: `sqlite-sql.ts`.
 * @module
 */
import { ACTIVE_STATES_SQL, NOW, stateIsOneOf } from './sqlite-sql.js';

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
 * reset. Checkpoint and steps are kept. The key test ({@link KEY_OTHER_ACTIVE_JOB}) and the holder update
 * ({@link KEY_TAKE_FOR_RETRY}) are the caller's, in the same write transaction. Params: `@id, @now`.
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

/**
 * For an operator retry of a dead keyed job: the lowest-id other job with `@key` in an active state, or no row. Every
 * job of the key counts, not only the one `job_keys` names: with `unique.replace` or custom `unique.states` a job can
 * still run after a newer one took the key. Read through `jobs_key_idx`. Params: `@key, @id` (the job retried).
 */
export const KEY_OTHER_ACTIVE_JOB = `
SELECT id FROM jobs
WHERE key = @key AND id <> @id AND state IN ${ACTIVE_STATES_SQL}
ORDER BY id
LIMIT 1`;

/**
 * After an operator retry: the retried job becomes its key's holder (creating the key's row if it was pruned),
 * unless another active job holds the key, which then keeps it (a retried `retrying` job does not take the key
 * from a newer holder that later inserts deduplicate against). Params: `@key, @id`.
 */
export const KEY_TAKE_FOR_RETRY = `
INSERT INTO job_keys (key, job_id) VALUES (@key, @id)
ON CONFLICT (key) DO UPDATE SET job_id = excluded.job_id
WHERE NOT EXISTS (SELECT 1 FROM jobs h WHERE h.id = job_keys.job_id AND h.id <> excluded.job_id AND h.state IN ${ACTIVE_STATES_SQL})`;

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
 * The jobs of a list of ids, each once (an `IN` list is a set), each by rowid. Params: `@ids`, a JSON array of ids
 * (numbers).
 */
export const JOB_GET_MANY = `SELECT * FROM jobs WHERE id IN (SELECT value FROM json_each(@ids))`;

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
