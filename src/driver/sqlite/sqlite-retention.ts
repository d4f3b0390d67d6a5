/**
 * Retention for the SQLite driver (`Driver.jobPrune`, `jobKeyPrune`, `scheduleTickPrune`): bounded deletes, each
 * in one `BEGIN IMMEDIATE` transaction through the driver's `write`, so no writer can slip between choosing rows
 * and deleting them. Attempts and steps go with their job (`ON DELETE CASCADE`; the driver's connections turn
 * foreign keys on).
 * @module
 */
import type { JobKeyPruneParams, JobKeyPruneResult, JobPruneParams, ScheduleTickPruneParams } from '../retention-params.js';
import { toMs, type SqliteContext } from './sqlite-exec.js';
import type { DbInt } from './sqlite-rows.js';
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

function nameList(names: readonly string[] | null | undefined): string | null {
  return names === null || names === undefined ? null : JSON.stringify(names);
}

/** Deletes a bounded batch of finished jobs and frees the keys they held; returns how many jobs went. */
export function jobPrune(ctx: SqliteContext, params: JobPruneParams): Promise<number> {
  const bind = {
    state: params.state,
    olderThanMs: Math.trunc(params.olderThanMs),
    names: nameList(params.names),
    excludeNames: nameList(params.excludeNames),
    limit: Math.trunc(params.limit),
    now: toMs(params.now, 'now'),
  };
  return ctx.write(() => {
    const deleted = ctx.stmt(JOB_PRUNE).all(bind) as { id: DbInt; key: string | null }[];
    for (const row of deleted) if (row.key !== null) ctx.stmt(JOB_KEY_RELEASE).run({ key: row.key, id: row.id });
    return deleted.length;
  });
}

/** Looks at a window of key rows and deletes those whose holder is gone: one short write transaction. */
export function jobKeyPrune(ctx: SqliteContext, params: JobKeyPruneParams): Promise<JobKeyPruneResult> {
  const limit = Math.trunc(params.limit);
  return ctx.write(() => {
    const rows = ctx.stmt(JOB_KEY_WINDOW).all({ after: params.afterKey, limit }) as { key: string; job_id: DbInt; orphan: DbInt }[];
    let deleted = 0;
    for (const row of rows) if (Number(row.orphan) === 1) deleted += ctx.stmt(JOB_KEY_RELEASE).run({ key: row.key, id: row.job_id }).changes;
    return { deleted, lastKey: rows.length < limit ? null : rows[rows.length - 1]!.key };
  });
}

/** Deletes a bounded batch of old ticks, never a schedule's newest. */
export function scheduleTickPrune(ctx: SqliteContext, params: ScheduleTickPruneParams): Promise<number> {
  const bind = { olderThanMs: Math.trunc(params.olderThanMs), limit: Math.trunc(params.limit), now: toMs(params.now, 'now') };
  return ctx.write(() => ctx.stmt(SCHEDULE_TICK_PRUNE).run(bind).changes);
}
