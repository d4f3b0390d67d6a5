/**
 * Retention for the PostgreSQL driver (`Driver.jobPrune`, `jobKeyPrune`, `scheduleTickPrune`): one bounded
 * autocommit statement each. Attempts and steps go with their job (`ON DELETE CASCADE`).
 *
 * Key rows are deleted only while they still name the job decided on (`k.job_id = d.id`): a keyed insert that
 * locked the row and moved it to a new holder meanwhile makes PostgreSQL re-check that condition on the new row
 * version, which then no longer matches, so a live key is never freed.
 * @module
 */
import { keepAfterSuccess, type JobKeyPruneParams, type JobKeyPruneResult, type JobPruneParams, type ScheduleTickPruneParams } from '../retention-params.js';
import type { Run } from './postgres-insert.js';
import { retentionStatements } from './postgres-retention-sql.js';

/** Deletes a bounded batch of finished jobs and frees the keys they held; returns how many jobs went. */
export async function jobPrune(run: Run, schema: string, params: JobPruneParams): Promise<number> {
  const { rows } = await run<{ deleted: number }>(retentionStatements(schema).jobPrune, [
    params.state,
    params.olderThanMs,
    params.names ?? null,
    params.excludeNames ?? null,
    Math.trunc(params.limit),
    params.now,
  ]);
  return rows[0]?.deleted ?? 0;
}

/** Looks at a window of key rows and deletes those whose holder is gone: one statement. */
export async function jobKeyPrune(run: Run, schema: string, params: JobKeyPruneParams): Promise<JobKeyPruneResult> {
  const limit = Math.trunc(params.limit);
  const { rows } = await run<{ deleted: number; seen: number; last_key: string | null }>(retentionStatements(schema).jobKeyPrune, [params.afterKey, limit]);
  const row = rows[0]!;
  return { deleted: row.deleted, lastKey: row.seen < limit ? null : row.last_key };
}

/** Deletes a bounded batch of old ticks, never a schedule's newest nor those its missed-run check reads. */
export async function scheduleTickPrune(run: Run, schema: string, params: ScheduleTickPruneParams): Promise<number> {
  const values = [params.olderThanMs, Math.trunc(params.limit), params.now, keepAfterSuccess(params)];
  const result = await run(retentionStatements(schema).scheduleTickPrune, values);
  return result.rowCount ?? 0;
}
