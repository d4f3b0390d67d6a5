/**
 * Schedule operations of the PostgreSQL driver (`Driver.schedule*`), except `scheduleAdvance`, which has its
 * own module (`postgres-schedule-advance.ts`). Statements come from `postgres-schedule-sql.ts`; jobs are
 * inserted through the same path as `jobInsertMany` (`insertJobs`), so deduplication and wake-ups match it.
 * @module
 */
import type pg from 'pg';
import { ScheduleNotFoundError } from '../../errors.js';
import {
  tickListLimit, tickOutcome,
  type ScheduleLastSuccess, type ScheduleResumeParams, type ScheduleRow, type ScheduleSyncParams, type ScheduleTickRow, type ScheduleTicksAfterParams, type ScheduleTicksWrittenParams,
  type ScheduleTickWritten, type ScheduleTriggerParams, type ScheduleTriggerResult,
} from '../schedule-params.js';
import { insertJobs, type PostgresInsertStatements } from './postgres-insert.js';
import { toScheduleRow, toScheduleTickRow, type PgScheduleRecord, type PgScheduleTickRecord } from './postgres-rows.js';
import { SCHEDULE_SYNC_LOCK_SQL, type PostgresScheduleStatements } from './postgres-schedule-sql.js';
import { withTransaction } from './postgres-transaction.js';

/** What the schedule operations run on. */
export interface PostgresScheduleContext {
  pool: pg.Pool;
  /** The validated, unquoted schema (key of the sync lock). */
  schema: string;
  /** The statements `insertJobs` needs. */
  jobSql: PostgresInsertStatements;
  sql: PostgresScheduleStatements;
  /** The wake-up channel, `<schema>_jobs`. */
  channel: string;
}

/**
 * Upserts the code's schedules in one transaction, behind a per-schema advisory lock so concurrent syncs
 * (every process syncs at start) queue instead of deadlocking. Repeated names: the last definition wins.
 */
export async function scheduleSync(ctx: PostgresScheduleContext, params: ScheduleSyncParams): Promise<void> {
  const byName = new Map(params.schedules.map((item) => [item.name, item]));
  const items = [...byName.values()];
  await withTransaction(ctx.pool, async (run) => {
    await run(SCHEDULE_SYNC_LOCK_SQL, [ctx.schema]);
    if (items.length > 0) {
      await run(ctx.sql.scheduleUpsert, [
        items.map((i) => i.name),
        items.map((i) => i.definitionHash),
        items.map((i) => i.specJson),
        items.map((i) => i.firstRunAt),
        params.now,
      ]);
    }
    if (params.removeMissing) await run(ctx.sql.scheduleRemoveMissing, [[...byName.keys()], params.now]);
  });
}

/** Active, unpaused schedules with `next_run_at <= now`, soonest first, at most `limit`. */
export async function scheduleDue(ctx: PostgresScheduleContext, params: { now: Date | null; limit: number }): Promise<ScheduleRow[]> {
  if (!(params.limit >= 1)) return [];
  const { rows } = await ctx.pool.query<PgScheduleRecord>(ctx.sql.scheduleDue, [params.now, Math.trunc(params.limit)]);
  return rows.map(toScheduleRow);
}

/** Every schedule not removed, by name, with its newest tick and that tick's job state. */
export async function scheduleList(ctx: PostgresScheduleContext): Promise<ScheduleRow[]> {
  const { rows } = await ctx.pool.query<PgScheduleRecord>(ctx.sql.scheduleList);
  return rows.map(toScheduleRow);
}

/** The schedule of that name with its newest tick, or null when it is missing or removed. */
export async function scheduleGet(ctx: PostgresScheduleContext, params: { name: string }): Promise<ScheduleRow | null> {
  const { rows } = await ctx.pool.query<PgScheduleRecord>(ctx.sql.scheduleGet, [params.name]);
  return rows[0] ? toScheduleRow(rows[0]) : null;
}

/** @throws ScheduleNotFoundError when the schedule is missing or removed. */
export async function schedulePause(ctx: PostgresScheduleContext, params: { name: string; now: Date | null }): Promise<ScheduleRow> {
  const { rows } = await ctx.pool.query<PgScheduleRecord>(ctx.sql.schedulePause, [params.name, params.now]);
  if (!rows[0]) throw new ScheduleNotFoundError(params.name);
  return toScheduleRow(rows[0]);
}

/**
 * Unpauses, and sets `next_run_at` if the schedule was paused (one not paused keeps its due tick), only while its
 * stored definition hash is `expectedHash`; null when it is not (nothing written).
 * @throws ScheduleNotFoundError when the schedule is missing or removed.
 */
export async function scheduleResume(ctx: PostgresScheduleContext, params: ScheduleResumeParams): Promise<ScheduleRow | null> {
  const { rows } = await ctx.pool.query<PgScheduleRecord>(ctx.sql.scheduleResume, [params.name, params.nextRunAt, params.now, params.expectedHash]);
  if (rows[0]) return toScheduleRow(rows[0]);
  // Nothing matched: missing or removed, or another definition was stored. A new statement sees what committed
  // since, so a schedule removed meanwhile is reported as not found rather than as changed.
  const exists = await ctx.pool.query(ctx.sql.scheduleExistsActive, [params.name]);
  if (exists.rowCount === 0) throw new ScheduleNotFoundError(params.name);
  return null;
}

/**
 * A schedule's ticks, newest first; `limit` as {@link tickListLimit} reads it (default 100, clamped to 1..1000).
 * @throws InvalidOptionError for a `limit` that is not a whole number.
 */
export async function scheduleTickList(ctx: PostgresScheduleContext, params: { name: string; limit?: number }): Promise<ScheduleTickRow[]> {
  const limit = tickListLimit(params.limit);
  const { rows } = await ctx.pool.query<PgScheduleTickRecord>(ctx.sql.tickList, [params.name, limit]);
  return rows.map(toScheduleTickRow);
}

/** A schedule's newest `fired` tick whose job completed, with that job's finish time; null when there is none. */
export async function scheduleLastSuccess(ctx: PostgresScheduleContext, params: { name: string }): Promise<ScheduleLastSuccess | null> {
  const { rows } = await ctx.pool.query<{ tick_at: Date; job_id: string; finished_at: Date }>(ctx.sql.scheduleLastSuccess, [params.name]);
  const row = rows[0];
  return row ? { tickAt: row.tick_at, jobId: String(row.job_id), finishedAt: row.finished_at } : null;
}

/**
 * A schedule's `scheduled` ticks with `after < tick_at <= through`, oldest first; `limit` as {@link tickListLimit}
 * reads it (default 100, clamped to 1..1000).
 * @throws InvalidOptionError for a `limit` that is not a whole number.
 */
export async function scheduleTicksAfter(ctx: PostgresScheduleContext, params: ScheduleTicksAfterParams): Promise<ScheduleTickRow[]> {
  const limit = tickListLimit(params.limit);
  const { rows } = await ctx.pool.query<PgScheduleTickRecord>(ctx.sql.ticksAfter, [params.name, params.after, params.through, limit]);
  return rows.map(toScheduleTickRow);
}

/**
 * The scheduled ticks among `tickAts` that `firedBy` wrote, read after taking the schedule row's lock: an advance of
 * that schedule still in flight (its client gone, its transaction not yet ended) holds it, so what is read is final.
 */
export async function scheduleTicksWrittenBy(ctx: PostgresScheduleContext, params: ScheduleTicksWrittenParams): Promise<ScheduleTickWritten[]> {
  if (params.tickAts.length === 0) return [];
  return withTransaction(ctx.pool, async (run) => {
    await run(ctx.sql.scheduleWait, [params.name]);
    const { rows } = await run<{ tick_at: Date; outcome: ScheduleTickWritten['outcome']; late: boolean; job_id: string | null; replaced: boolean }>(
      ctx.sql.ticksWrittenBy, [params.name, params.firedBy, params.tickAts],
    );
    return rows.map((r) => ({
      tickAt: r.tick_at, outcome: r.outcome, late: r.late, jobId: r.job_id === null ? null : String(r.job_id), ...(r.replaced ? { replaced: true } : {}),
    }));
  });
}

/**
 * Enqueues one run of an active (possibly paused) schedule now, in one transaction: locks the schedule row,
 * inserts the job (`schedule_name`, `tick_at`) through the enqueue path (which notifies its queue at commit), and
 * records a `triggered` tick with the actor. `tickAt` is `now` at millisecond precision, or the first millisecond
 * after it not yet taken by another trigger. A keyed job deduplicated against an active one is not a new run: the
 * tick is recorded `skipped` with that job, whose id is returned with `duplicate: true`; `fired` with it when its
 * key replaced that job's payload and due time (`replaced: true`: that job runs for this trigger).
 * @throws ScheduleNotFoundError when the schedule is missing or removed.
 */
export async function scheduleTrigger(
  ctx: PostgresScheduleContext,
  params: ScheduleTriggerParams,
): Promise<ScheduleTriggerResult> {
  const { name, now } = params;
  return withTransaction(ctx.pool, async (run) => {
    const d = params.define;
    if (d) await run(ctx.sql.scheduleInsertMissing, [name, d.definitionHash, d.specJson, d.firstRunAt, now]);
    const locked = await run(ctx.sql.scheduleLockActive, [name]);
    if (locked.rowCount === 0) throw new ScheduleNotFoundError(name);
    const tickAt = (await run<{ tick_at: Date }>(ctx.sql.triggerTickAt, [name, now])).rows[0]?.tick_at;
    if (!tickAt) throw new Error(`Expected a free trigger time for schedule ${name} within a second of now, got 1000 triggers already`);
    const [result] = await insertJobs(run, ctx.jobSql, ctx.channel, [{ ...params.job, scheduleName: name, tickAt }], now);
    const { job, duplicate, replaced } = result!;
    const recorded = await run(ctx.sql.tickInsert, [name, tickAt, 'triggered', tickOutcome(result!), false, job.id, params.actor, now, null]);
    // Cannot happen: the schedule row lock serializes triggers, and the tick time was chosen free under it.
    if (recorded.rowCount === 0) {
      throw new Error(`Expected a new triggered tick of schedule ${name} at ${tickAt.toISOString()}, got one already recorded`);
    }
    return { jobId: job.id, tickAt, duplicate, replaced };
  });
}
