/**
 * The SQL of the SQLite driver's retention (`sqlite-retention.ts`), and nothing else. Same conventions as
 * `sqlite-sql.ts`: times are integer ms, `@now` NULL means the database's clock.
 * @module
 */
import { NOW } from './sqlite-sql.js';

/**
 * Up to `@limit` jobs in `@state` finished at least `@olderThanMs` before now, name by name, each name's oldest first:
 * the names `@names`, or (NULL) every name with finished jobs in that state; never the names `@excludeNames` (name
 * lists as JSON arrays; NULL: none left out) nor a schedule's newest completed job. Returns their ids and keys, so
 * the keys they hold can be freed in the same transaction.
 *
 * Each name's jobs are one range of `jobs_finished_name_idx (state, name, finished_at)`, searched with `n` as the
 * outer loop (`CROSS JOIN` keeps that order), so the statement, which holds the write lock, reads about the rows it
 * deletes however many jobs of other names are kept; the names are found by skipping through the same index, one
 * search per name (`seen`). See `jobPruneSql` of the PostgreSQL driver.
 */
export const JOB_PRUNE = `
DELETE FROM jobs WHERE id IN (
  WITH RECURSIVE seen(name) AS (
    SELECT (SELECT f.name FROM jobs f WHERE f.state = @state AND f.finished_at IS NOT NULL ORDER BY f.name LIMIT 1)
    WHERE @names IS NULL
    UNION ALL
    SELECT (SELECT f.name FROM jobs f WHERE f.state = @state AND f.finished_at IS NOT NULL AND f.name > seen.name ORDER BY f.name LIMIT 1)
    FROM seen WHERE seen.name IS NOT NULL
  ),
  n(name) AS (
    SELECT seen.name FROM seen WHERE seen.name IS NOT NULL
    UNION
    SELECT value FROM json_each(@names)
  )
  SELECT j.id FROM n CROSS JOIN jobs j
  WHERE j.state = @state AND j.name = n.name AND j.finished_at IS NOT NULL AND j.finished_at <= ${NOW} - @olderThanMs
    AND (@excludeNames IS NULL OR n.name NOT IN (SELECT value FROM json_each(@excludeNames)))
    AND NOT (j.state = 'completed' AND j.schedule_name IS NOT NULL AND j.id = (
      SELECT max(k.id) FROM jobs k WHERE k.schedule_name = j.schedule_name AND k.state = 'completed'))
  LIMIT @limit)
RETURNING id, key`;

/** Frees `@key` if the deleted job `@id` still holds it. */
export const JOB_KEY_RELEASE = `DELETE FROM job_keys WHERE key = @key AND job_id = @id`;

/** Up to `@limit` key rows after `@after` (NULL: from the first), in key order, each with whether its holder is gone. */
export const JOB_KEY_WINDOW = `
SELECT k.key, k.job_id, NOT EXISTS (SELECT 1 FROM jobs j WHERE j.id = k.job_id) AS orphan
FROM job_keys k WHERE @after IS NULL OR k.key > @after
ORDER BY k.key LIMIT @limit`;

/**
 * Up to `@limit` ticks recorded at least `@olderThanMs` before now that are neither their schedule's newest (in the
 * order of `schedule_ticks_recent_idx`: `recorded_at, tick_at, kind`) nor among the ticks its missed-run check reads
 * (`k`): from the tick of its newest completed job through the `@keep`th scheduled tick after it; from its oldest
 * tick when it has none. See `scheduleTickPruneSql` of the PostgreSQL driver for why and what it costs.
 */
export const SCHEDULE_TICK_PRUNE = `
DELETE FROM schedule_ticks WHERE rowid IN (
  WITH f AS MATERIALIZED (
    SELECT e.name, (SELECT j.tick_at FROM jobs j WHERE j.schedule_name = e.name AND j.state = 'completed' ORDER BY j.id DESC LIMIT 1) AS from_at
    FROM schedules e
  ),
  k AS MATERIALIZED (
    SELECT f.name, f.from_at,
           (SELECT a.tick_at FROM schedule_ticks a
            WHERE a.schedule_name = f.name AND a.kind = 'scheduled' AND a.tick_at > coalesce(f.from_at, -9007199254740991)
            ORDER BY a.tick_at LIMIT 1 OFFSET @keep - 1) AS through_at
    FROM f
  )
  SELECT t.rowid FROM schedule_ticks t LEFT JOIN k ON k.name = t.schedule_name
  WHERE t.recorded_at <= ${NOW} - @olderThanMs
    AND EXISTS (SELECT 1 FROM schedule_ticks n WHERE n.schedule_name = t.schedule_name
                AND (n.recorded_at, n.tick_at, n.kind) > (t.recorded_at, t.tick_at, t.kind))
    AND NOT (k.name IS NOT NULL AND t.tick_at >= coalesce(k.from_at, -9007199254740991)
             AND (k.through_at IS NULL OR t.tick_at <= k.through_at))
  LIMIT @limit)`;
