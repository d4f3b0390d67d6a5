/**
 * `Driver.scheduleAdvance` for PostgreSQL: the compare-and-swap on `next_run_at` and, in the same transaction on
 * the same connection, one `schedule_ticks` row per tick plus the jobs of fired ticks.
 *
 * Exactly once: the swap's UPDATE holds the schedule row lock until commit, so a concurrent advance with the same
 * expectation waits and then matches nothing (and writes nothing), and everything below is serialized per
 * schedule. The tick row's primary key is the second guard: a tick already recorded (say by an advance that
 * re-covered it after a resume moved `next_run_at` back) is reported with its stored outcome and gets no job.
 * @module
 */
import type { JobState } from '../../job/job-record.js';
import { tickOutcome, type ScheduleAdvanceParams, type ScheduleAdvanceResult, type ScheduleTickResult, type ScheduleTickWrite } from '../schedule-params.js';
import { insertJobs, type Run } from './postgres-insert.js';
import type { PostgresScheduleContext } from './postgres-schedules.js';
import { CANCELLED_ERROR } from '../stored-errors.js';
import { withTransaction } from './postgres-transaction.js';

type TickOutcome = ScheduleTickResult['outcome'];

/** JSON of the error on the attempt rows of running jobs cancelled by overlap `replace` (as `jobCancel`). */
const CANCELLED_ERROR_JSON = JSON.stringify(CANCELLED_ERROR);

/**
 * Handles due ticks of one schedule atomically (see the module comment). Returns `{ advanced: false, ticks: [] }`
 * when the swap matched nothing: another caller handled these ticks, or the schedule changed, was paused or removed.
 */
export async function scheduleAdvance(ctx: PostgresScheduleContext, params: ScheduleAdvanceParams): Promise<ScheduleAdvanceResult> {
  const { name, ticks, now } = params;
  let newest: Date | null = null;
  for (const tick of ticks) if (newest === null || tick.tickAt.getTime() > newest.getTime()) newest = tick.tickAt;
  return withTransaction(ctx.pool, async (run) => {
    const swapped = await run(ctx.sql.scheduleSwap, [
      name, params.definitionHash, params.expectedNextRunAt, params.nextRunAt, newest, now,
    ]);
    // Nothing was written, so committing the empty transaction is the same as rolling it back.
    if (swapped.rowCount === 0) return { advanced: false, ticks: [] };
    const results: ScheduleTickResult[] = [];
    for (const tick of ticks) results.push(await handleTick(ctx, run, name, tick, now, params.firedBy ?? null));
    return { advanced: true, ticks: results };
  });
}

/**
 * One tick, inside the advance transaction. The tick row is inserted first (a fired tick provisionally as
 * `skipped`), so the primary key decides before any side effect whether this tick is still to be handled; a
 * fired tick then gets its final outcome and job.
 */
async function handleTick(
  ctx: PostgresScheduleContext,
  run: Run,
  name: string,
  tick: ScheduleTickWrite,
  now: Date | null,
  firedBy: string | null,
): Promise<ScheduleTickResult> {
  const result = (outcome: TickOutcome, jobId: string | null, extra?: Partial<ScheduleTickResult>): ScheduleTickResult => ({
    tickAt: tick.tickAt, outcome, late: tick.late, jobId, cancelledJobIds: [], queue: null, alreadyHandled: false, ...extra,
  });
  if (tick.action === 'fire' && !tick.job) {
    throw new Error(`Expected a job for the fire tick of schedule ${name} at ${tick.tickAt.toISOString()}, got null`);
  }
  const claimed = await run(ctx.sql.tickInsert, [
    name, tick.tickAt, 'scheduled', tick.action === 'missed' ? 'missed' : 'skipped', tick.late, null, null, now, firedBy,
  ]);
  if (claimed.rowCount === 0) {
    // Already handled: report what was recorded then, and do nothing else.
    type Stored = { outcome: TickOutcome; late: boolean; job_id: string | null };
    const stored = (await run<Stored>(ctx.sql.tickGet, [name, tick.tickAt, 'scheduled'])).rows[0]!;
    return result(stored.outcome, stored.job_id === null ? null : String(stored.job_id), { late: stored.late, alreadyHandled: true });
  }
  if (tick.action === 'missed') return result('missed', null);

  let cancelledJobIds: string[] = [];
  if (tick.cancelActive) {
    const { rows } = await run<{ id: string }>(ctx.sql.scheduleCancelActive, [name, CANCELLED_ERROR_JSON, now]);
    cancelledJobIds = rows.map((r) => String(r.id));
  }
  if (tick.blockIfActiveIn.length > 0) {
    const states: JobState[] = [...new Set(tick.blockIfActiveIn)];
    const { rows } = await run<{ blocked: boolean }>(ctx.sql.scheduleHasJobIn, [name, states]);
    // The tick row already says `skipped`.
    if (rows[0]!.blocked) return result('skipped', null, { cancelledJobIds });
  }
  const [inserted] = await insertJobs(run, ctx.jobSql, ctx.channel, [{ ...tick.job!, scheduleName: name, tickAt: tick.tickAt }], now);
  const { job, replaced } = inserted!;
  const outcome = tickOutcome(inserted!);
  await run(ctx.sql.tickSetOutcome, [name, tick.tickAt, 'scheduled', outcome, job.id]);
  return result(outcome, job.id, { cancelledJobIds, queue: outcome === 'fired' ? job.queue : null, ...(replaced ? { replaced: true } : {}) });
}
