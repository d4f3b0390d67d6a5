/**
 * The SQL of the SQLite driver's retention (`sqlite-retention.ts`), and nothing else. Same conventions as
 * `sqlite-sql.ts`: times are integer ms, `@now` NULL means the database's clock.
 * @module
 */
import { NOW } from './sqlite-sql.js';

/**
 * Up to `@limit` jobs in `@state` finished at least `@olderThanMs` before now, oldest first, filtered by name
 * lists given as JSON arrays (NULL: no filter), except each schedule's newest completed job. Returns their ids and
 * keys, so the keys they hold can be freed in the same transaction.
 */
export const JOB_PRUNE = `
DELETE FROM jobs WHERE id IN (
  SELECT j.id FROM jobs j
  WHERE j.state = @state AND j.finished_at IS NOT NULL AND j.finished_at <= ${NOW} - @olderThanMs
    AND (@names IS NULL OR j.name IN (SELECT value FROM json_each(@names)))
    AND (@excludeNames IS NULL OR j.name NOT IN (SELECT value FROM json_each(@excludeNames)))
    AND NOT (j.state = 'completed' AND j.schedule_name IS NOT NULL AND j.id = (
      SELECT max(n.id) FROM jobs n WHERE n.schedule_name = j.schedule_name AND n.state = 'completed'))
  ORDER BY j.finished_at
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
 * Up to `@limit` ticks recorded at least `@olderThanMs` before now that are not their schedule's newest (in the
 * order of `schedule_ticks_recent_idx`: `recorded_at, tick_at, kind`).
 */
export const SCHEDULE_TICK_PRUNE = `
DELETE FROM schedule_ticks WHERE rowid IN (
  SELECT t.rowid FROM schedule_ticks t
  WHERE t.recorded_at <= ${NOW} - @olderThanMs
    AND EXISTS (SELECT 1 FROM schedule_ticks n WHERE n.schedule_name = t.schedule_name
                AND (n.recorded_at, n.tick_at, n.kind) > (t.recorded_at, t.tick_at, t.kind))
  LIMIT @limit)`;
