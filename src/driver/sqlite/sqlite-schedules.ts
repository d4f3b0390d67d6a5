/**
 * Schedule operations of the SQLite driver (`Driver.schedule*`). Statements come from `sqlite-schedule-sql.ts`;
 * jobs are inserted through the same path as `jobInsertMany` (`insertJobs`), so deduplication matches it. Every
 * write runs in one `BEGIN IMMEDIATE` transaction through the driver's `write`, every read through its `read`.
 * @module
 */
import { InvalidOptionError, ScheduleNotFoundError } from '../../errors.js';
import {
  tickListLimit, tickOutcome,
  type ScheduleAdvanceParams, type ScheduleAdvanceResult, type ScheduleLastSuccess, type ScheduleResumeParams, type ScheduleRow, type ScheduleSyncParams,
  type ScheduleTickResult, type ScheduleTickRow, type ScheduleTicksAfterParams, type ScheduleTicksWrittenParams, type ScheduleTickWrite, type ScheduleTickWritten,
  type ScheduleTriggerParams, type ScheduleTriggerResult,
} from '../schedule-params.js';
import { resolveNow, toMs, type Prepare } from './sqlite-exec.js';
import { insertJobs } from './sqlite-insert.js';
import {
  jobId, toScheduleRow, toScheduleTickRow, type DbInt, type JobDbRow, type ScheduleDbRow, type ScheduleTickDbRow,
} from './sqlite-rows.js';
import * as SQL from './sqlite-schedule-sql.js';

/** What the schedule operations run on: the driver's connection, transactions and job cancel. */
export interface SqliteScheduleContext {
  /** The cached prepared statement for an SQL text on the driver's own connection. */
  stmt: Prepare;
  /** Runs `fn` in one `BEGIN IMMEDIATE` transaction, retried as a whole on SQLITE_BUSY/LOCKED. */
  write: <T>(fn: () => T) => Promise<T>;
  /** Runs a single read statement, retried on SQLITE_BUSY/LOCKED. */
  read: <T>(fn: () => T) => Promise<T>;
  /**
   * Cancels one active job inside the caller's write transaction (as `jobCancel`); the job row, or undefined
   * when it was not active. Used by overlap `replace`.
   */
  cancelOne: (id: DbInt, now: number) => JobDbRow | undefined;
}

/** A tick to write, with its time as bindable ms. */
type PlannedTickWrite = ScheduleTickWrite & { tickAtMs: number };

/** Upserts the code's schedules in one transaction, and with `removeMissing` marks the others removed. */
export async function scheduleSync(ctx: SqliteScheduleContext, params: ScheduleSyncParams): Promise<void> {
  const { removeMissing } = params;
  const nowParam = toMs(params.now, 'now');
  const items = params.schedules.map((item, i) => ({
    name: item.name,
    definitionHash: item.definitionHash,
    spec: item.specJson,
    firstRunAt: toMs(item.firstRunAt, `schedules[${i}].firstRunAt`),
  }));
  if (items.length === 0 && !removeMissing) return;
  await ctx.write(() => {
    const now = resolveNow(ctx.stmt, nowParam);
    for (const item of items) ctx.stmt(SQL.SCHEDULE_UPSERT).run({ ...item, now });
    if (removeMissing) ctx.stmt(SQL.SCHEDULE_REMOVE_MISSING).run({ names: JSON.stringify(items.map((i) => i.name)), now });
  });
}

/** Active, unpaused schedules with `next_run_at <= now`, soonest first, at most `limit`. */
export async function scheduleDue(ctx: SqliteScheduleContext, params: { now: Date | null; limit: number }): Promise<ScheduleRow[]> {
  const now = toMs(params.now, 'now');
  if (!(params.limit >= 1)) return [];
  const rows = await ctx.read(() => ctx.stmt(SQL.SCHEDULE_DUE).all({ limit: Math.trunc(params.limit), now }) as ScheduleDbRow[]);
  return rows.map(toScheduleRow);
}

/** Every schedule not removed, by name, with its newest tick and that tick's job state. */
export async function scheduleList(ctx: SqliteScheduleContext): Promise<ScheduleRow[]> {
  const rows = await ctx.read(() => ctx.stmt(SQL.SCHEDULE_LIST).all() as ScheduleDbRow[]);
  return rows.map(toScheduleRow);
}

/**
 * A schedule's ticks, newest first; `limit` as {@link tickListLimit} reads it (default 100, clamped to 1..1000).
 * @throws InvalidOptionError for a `limit` that is not a whole number.
 */
export async function scheduleTickList(ctx: SqliteScheduleContext, params: { name: string; limit?: number }): Promise<ScheduleTickRow[]> {
  const limit = tickListLimit(params.limit);
  const rows = await ctx.read(() => ctx.stmt(SQL.SCHEDULE_TICK_LIST).all({ name: params.name, limit }) as ScheduleTickDbRow[]);
  return rows.map(toScheduleTickRow);
}

/** A schedule's newest `fired` tick whose job completed, with that job's finish time; null when there is none. */
export async function scheduleLastSuccess(ctx: SqliteScheduleContext, params: { name: string }): Promise<ScheduleLastSuccess | null> {
  type Row = { tick_at: DbInt; job_id: DbInt; finished_at: DbInt };
  const row = await ctx.read(() => ctx.stmt(SQL.SCHEDULE_LAST_SUCCESS).get({ name: params.name }) as Row | undefined);
  return row ? { tickAt: new Date(Number(row.tick_at)), jobId: jobId(row.job_id), finishedAt: new Date(Number(row.finished_at)) } : null;
}

/**
 * A schedule's `scheduled` ticks with `after < tick_at <= through`, oldest first; `limit` as {@link tickListLimit}
 * reads it (default 100, clamped to 1..1000).
 * @throws InvalidOptionError for a `limit` that is not a whole number, or a bound that is not a valid Date.
 */
export async function scheduleTicksAfter(ctx: SqliteScheduleContext, params: ScheduleTicksAfterParams): Promise<ScheduleTickRow[]> {
  const limit = tickListLimit(params.limit);
  const after = toMs(params.after, 'after');
  const through = toMs(params.through, 'through');
  if (through === null) throw new InvalidOptionError('through', params.through, 'a valid Date');
  const rows = await ctx.read(() => ctx.stmt(SQL.SCHEDULE_TICKS_AFTER).all({ name: params.name, after, through, limit }) as ScheduleTickDbRow[]);
  return rows.map(toScheduleTickRow);
}

/**
 * The scheduled ticks among `tickAts` that `firedBy` wrote. Writes are serialized by the file's write lock and a
 * failed advance of this driver is rolled back, so what is read is final.
 */
export async function scheduleTicksWrittenBy(ctx: SqliteScheduleContext, params: ScheduleTicksWrittenParams): Promise<ScheduleTickWritten[]> {
  const tickAts = params.tickAts.map((t, i) => {
    const ms = toMs(t, `tickAts[${i}]`);
    if (ms === null) throw new InvalidOptionError(`tickAts[${i}]`, t, 'a valid Date');
    return ms;
  });
  if (tickAts.length === 0) return [];
  type Row = { tick_at: DbInt; outcome: ScheduleTickWritten['outcome']; late: DbInt; job_id: DbInt | null; replaced: DbInt };
  const rows = await ctx.read(() => ctx.stmt(SQL.SCHEDULE_TICKS_WRITTEN_BY).all({ name: params.name, firedBy: params.firedBy, tickAts: JSON.stringify(tickAts) }) as Row[]);
  return rows.map((r) => ({
    tickAt: new Date(Number(r.tick_at)), outcome: r.outcome, late: Number(r.late) === 1, jobId: r.job_id === null ? null : jobId(r.job_id),
    ...(Number(r.replaced) === 1 ? { replaced: true } : {}),
  }));
}

/** The schedule of that name with its newest tick, or null when it is missing or removed. */
export async function scheduleGet(ctx: SqliteScheduleContext, params: { name: string }): Promise<ScheduleRow | null> {
  const row = await ctx.read(() => ctx.stmt(SQL.SCHEDULE_GET_ACTIVE).get({ name: params.name }) as ScheduleDbRow | undefined);
  return row ? toScheduleRow(row) : null;
}

/** @throws ScheduleNotFoundError when the schedule is missing or removed. */
export async function schedulePause(ctx: SqliteScheduleContext, params: { name: string; now: Date | null }): Promise<ScheduleRow> {
  const row = await setSchedulePaused(ctx, params.name, true, null, null, toMs(params.now, 'now'));
  // Without an expected hash only a missing or removed schedule matches nothing, and that threw.
  return row!;
}

/**
 * Unpauses, and sets `next_run_at` if the schedule was paused (one not paused keeps its due tick), only while its
 * stored definition hash is `expectedHash`; null when it is not (nothing written).
 * @throws ScheduleNotFoundError when the schedule is missing or removed.
 */
export async function scheduleResume(ctx: SqliteScheduleContext, params: ScheduleResumeParams): Promise<ScheduleRow | null> {
  return setSchedulePaused(ctx, params.name, false, toMs(params.nextRunAt, 'nextRunAt'), params.expectedHash, toMs(params.now, 'now'));
}

/**
 * Pause (`next_run_at` kept) or resume (`next_run_at = nextRunAt` if it was paused), then the updated row, in one
 * transaction. With `expectedHash`, only while the stored definition hash is that one: null when it is not.
 * @throws ScheduleNotFoundError when the schedule is missing or removed.
 */
async function setSchedulePaused(
  ctx: SqliteScheduleContext,
  name: string,
  paused: boolean,
  nextRunAt: number | null,
  expectedHash: string | null,
  now: number | null,
): Promise<ScheduleRow | null> {
  return ctx.write(() => {
    const bind = { name, paused: paused ? 1 : 0, setNextRunAt: paused ? 0 : 1, nextRunAt, expectedHash, now };
    if (ctx.stmt(SQL.SCHEDULE_SET_PAUSED).get(bind) === undefined) {
      if (ctx.stmt(SQL.SCHEDULE_EXISTS_ACTIVE).get({ name }) === undefined) throw new ScheduleNotFoundError(name);
      return null;
    }
    return toScheduleRow(ctx.stmt(SQL.SCHEDULE_GET_ACTIVE).get({ name }) as ScheduleDbRow);
  });
}

/**
 * One transaction: the compare-and-swap of `next_run_at` (nothing is written when it fails), then each tick in
 * order (see `writeTick`).
 * @throws InvalidOptionError for an invalid date, or a `fire` tick without a job.
 */
export async function scheduleAdvance(ctx: SqliteScheduleContext, params: ScheduleAdvanceParams): Promise<ScheduleAdvanceResult> {
  const { name, definitionHash } = params;
  const nowParam = toMs(params.now, 'now');
  const expectedNextRunAt = toMs(params.expectedNextRunAt, 'expectedNextRunAt');
  if (expectedNextRunAt === null) throw new InvalidOptionError('expectedNextRunAt', params.expectedNextRunAt, 'a valid Date');
  const nextRunAt = toMs(params.nextRunAt, 'nextRunAt');
  const ticks = params.ticks.map((tick, i): PlannedTickWrite => {
    const tickAtMs = toMs(tick.tickAt, `ticks[${i}].tickAt`);
    if (tickAtMs === null) throw new InvalidOptionError(`ticks[${i}].tickAt`, tick.tickAt, 'a valid Date');
    if (tick.action === 'fire' && !tick.job) throw new InvalidOptionError(`ticks[${i}].job`, tick.job, 'the job to enqueue for a fire tick');
    return { ...tick, tickAtMs };
  });
  const newestTickAt = ticks.reduce<number | null>((max, t) => (max === null || t.tickAtMs > max ? t.tickAtMs : max), null);
  return ctx.write(() => {
    const now = resolveNow(ctx.stmt, nowParam);
    const swap = { name, definitionHash, expectedNextRunAt, nextRunAt, newestTickAt, now };
    if (ctx.stmt(SQL.SCHEDULE_ADVANCE).run(swap).changes === 0) return { advanced: false, ticks: [] };
    return { advanced: true, ticks: ticks.map((tick) => writeTick(ctx, name, tick, now, params.firedBy ?? null)) };
  });
}

/**
 * One tick of a successful advance, inside its transaction. The tick row goes in first (`ON CONFLICT DO
 * NOTHING`, with a provisional outcome that is set for good below, before the transaction commits): if it
 * already existed, the tick was handled before and is reported with its stored outcome, and nothing else is
 * written. Otherwise: `missed` is done; `fire` cancels the schedule's active jobs when `cancelActive`, is
 * `skipped` when an active job of the schedule is in a `blockIfActiveIn` state, and else inserts the job through
 * the normal insert path (see `tickOutcome`).
 */
function writeTick(ctx: SqliteScheduleContext, name: string, tick: PlannedTickWrite, now: number, firedBy: string | null): ScheduleTickResult {
  const tickRow = { name, tickAt: tick.tickAtMs, kind: 'scheduled' };
  const base = { tickAt: tick.tickAt, late: tick.late, jobId: null, cancelledJobIds: [] as string[], queue: null, alreadyHandled: false };
  const provisional = tick.action === 'missed' ? 'missed' : 'skipped';
  const fresh = ctx.stmt(SQL.SCHEDULE_TICK_INSERT).get({ ...tickRow, outcome: provisional, late: tick.late ? 1 : 0, jobId: null, actor: null, now, firedBy });
  if (fresh === undefined) {
    const stored = toScheduleTickRow(ctx.stmt(SQL.SCHEDULE_TICK_GET).get(tickRow) as ScheduleTickDbRow);
    return { ...base, outcome: stored.outcome, late: stored.late, jobId: stored.jobId, alreadyHandled: true };
  }
  if (tick.action === 'missed' || !tick.job) return { ...base, outcome: 'missed' };

  const cancelledJobIds: string[] = [];
  if (tick.cancelActive) {
    for (const { id } of ctx.stmt(SQL.JOB_SCHEDULE_ACTIVE_IDS).all({ name }) as { id: DbInt }[]) {
      if (ctx.cancelOne(id, now)) cancelledJobIds.push(jobId(id));
    }
  }
  const blocked =
    tick.blockIfActiveIn.length > 0 &&
    ctx.stmt(SQL.JOB_SCHEDULE_BLOCKING).get({ name, states: JSON.stringify(tick.blockIfActiveIn) }) !== undefined;
  if (blocked) {
    ctx.stmt(SQL.SCHEDULE_TICK_SET_OUTCOME).run({ ...tickRow, outcome: 'skipped', jobId: null });
    return { ...base, outcome: 'skipped', cancelledJobIds };
  }
  const [result] = insertJobs(ctx.stmt, [{ ...tick.job, scheduleName: name, tickAt: tick.tickAt }], now);
  if (!result) throw new Error(`Expected one insert result for schedule ${JSON.stringify(name)}, got none`);
  const outcome = tickOutcome(result);
  ctx.stmt(SQL.SCHEDULE_TICK_SET_OUTCOME).run({ ...tickRow, outcome, jobId: BigInt(result.job.id) });
  const queue = outcome === 'fired' ? result.job.queue : null;
  return { ...base, outcome, jobId: result.job.id, cancelledJobIds, queue, ...(result.replaced ? { replaced: true } : {}) };
}


/**
 * One transaction: the schedule must be active (paused is fine); the tick row (`triggered`, at `now`, or the
 * next free millisecond when another trigger took that one) goes in first and the job after it. A job
 * deduplicated on its key records outcome `skipped` with the active job's id, which is returned with
 * `duplicate: true`; `fired` with it when its key replaced that job's payload (`replaced: true`).
 * @throws ScheduleNotFoundError when the schedule is missing or removed.
 */
export async function scheduleTrigger(ctx: SqliteScheduleContext, params: ScheduleTriggerParams): Promise<ScheduleTriggerResult> {
  const { name, job, actor } = params;
  const nowParam = toMs(params.now, 'now');
  const d = params.define;
  const define = d ? { name, definitionHash: d.definitionHash, spec: d.specJson, firstRunAt: toMs(d.firstRunAt, 'define.firstRunAt') } : null;
  return ctx.write(() => {
    const now = resolveNow(ctx.stmt, nowParam);
    if (define) ctx.stmt(SQL.SCHEDULE_INSERT_MISSING).run({ ...define, now });
    if (ctx.stmt(SQL.SCHEDULE_EXISTS_ACTIVE).get({ name }) === undefined) throw new ScheduleNotFoundError(name);
    // Two triggers in the same millisecond are two runs: the later one takes the next free millisecond,
    // as on PostgreSQL, because the tick row's primary key includes the time.
    let tickAtMs = now;
    while (ctx.stmt(SQL.SCHEDULE_TICK_INSERT).get({ name, tickAt: tickAtMs, kind: 'triggered', outcome: 'fired', late: 0, jobId: null, actor, now, firedBy: null }) === undefined) tickAtMs++;
    const tickAt = new Date(tickAtMs);
    const tickRow = { name, tickAt: tickAtMs, kind: 'triggered' };
    const [result] = insertJobs(ctx.stmt, [{ ...job, scheduleName: name, tickAt }], now);
    if (!result) throw new Error(`Expected one insert result for schedule ${JSON.stringify(name)}, got none`);
    const outcome = tickOutcome(result);
    ctx.stmt(SQL.SCHEDULE_TICK_SET_OUTCOME).run({ ...tickRow, outcome, jobId: BigInt(result.job.id) });
    return { jobId: result.job.id, tickAt, duplicate: result.duplicate, replaced: result.replaced };
  });
}
