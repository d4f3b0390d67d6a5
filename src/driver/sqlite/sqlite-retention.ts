/**
 * Retention for the SQLite driver (`Driver.jobPrune`, `jobKeyPrune`, `scheduleTickPrune`): bounded deletes, each
 * in one `BEGIN IMMEDIATE` transaction through the driver's `write`, so no writer can slip between choosing rows
 * and deleting them. Attempts and steps go with their job (`ON DELETE CASCADE`; the driver's connections turn
 * foreign keys on).
 * @module
 */
import { keepAfterSuccess, type JobKeyPruneParams, type JobKeyPruneResult, type JobPruneParams, type ScheduleTickPruneParams } from '../retention-params.js';
import { toMs, type SqliteContext } from './sqlite-exec.js';
import * as SQL from './sqlite-retention-sql.js';
import type { DbInt } from './sqlite-rows.js';

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
    const deleted = ctx.stmt(SQL.JOB_PRUNE).all(bind) as { id: DbInt; key: string | null }[];
    for (const row of deleted) if (row.key !== null) ctx.stmt(SQL.JOB_KEY_RELEASE).run({ key: row.key, id: row.id });
    return deleted.length;
  });
}

/** Looks at a window of key rows and deletes those whose holder is gone: one short write transaction. */
export function jobKeyPrune(ctx: SqliteContext, params: JobKeyPruneParams): Promise<JobKeyPruneResult> {
  const limit = Math.trunc(params.limit);
  return ctx.write(() => {
    const rows = ctx.stmt(SQL.JOB_KEY_WINDOW).all({ after: params.afterKey, limit }) as { key: string; job_id: DbInt; orphan: DbInt }[];
    let deleted = 0;
    for (const row of rows) if (Number(row.orphan) === 1) deleted += ctx.stmt(SQL.JOB_KEY_RELEASE).run({ key: row.key, id: row.job_id }).changes;
    return { deleted, lastKey: rows.length < limit ? null : rows[rows.length - 1]!.key };
  });
}

/** Deletes a bounded batch of old ticks, never a schedule's newest nor those its missed-run check reads. */
export function scheduleTickPrune(ctx: SqliteContext, params: ScheduleTickPruneParams): Promise<number> {
  const bind = { olderThanMs: Math.trunc(params.olderThanMs), keep: keepAfterSuccess(params), limit: Math.trunc(params.limit), now: toMs(params.now, 'now') };
  return ctx.write(() => ctx.stmt(SQL.SCHEDULE_TICK_PRUNE).run(bind).changes);
}
