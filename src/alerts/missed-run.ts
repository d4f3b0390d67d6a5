/**
 * The dead man's switch, as a pure function of what the database says about one schedule: a schedule with
 * `expect.within` is missing a run when some tick it was expected to run is older than `within` and no run of that
 * tick or a later one has completed.
 *
 * The expected ticks are the schedule's recorded `scheduled` ticks (fired, skipped or missed) and the ticks from
 * its `next_run_at` on that no scheduler has handled yet, because all schedulers are down or behind. Ticks a pause
 * or a changed definition jumped over are in neither, so they are never expected. A success is a tick row whose job
 * completed, a manual trigger's included. A fired tick whose job no longer exists is never a success: an operator's
 * discard deletes a job in any state but running, and retention prunes dead and cancelled jobs as well as completed
 * ones, so a missing row says nothing about how the run ended. No success that matters is lost by this: retention
 * always keeps each schedule's newest completed job (the highest id), and a schedule's jobs and tick rows are written
 * together, one advance or trigger at a time, so a scheduled tick whose completed job was pruned was recorded before
 * the kept job's tick and is not later than it. The newest success is read on its own, over every tick kept
 * (`Driver.scheduleLastSuccess`, not only the newest ticks read for the expected ones), so the kept job's tick, or a
 * later success, is found however long ago it was, and it already covers the older tick.
 * @module
 */
import type { ScheduleTickRow } from '../driver/schedule-params.js';
import { nextTickFromSpec, type ScheduleSpec } from '../schedule/schedule-spec.js';

/** Most unhandled ticks counted per evaluation (a long outage of a frequent schedule), so a check stays cheap. */
export const MAX_COUNTED_TICKS = 1_000;

/** What {@link findMissedRun} reads. */
export interface MissedRunInput {
  /** The stored spec (only `cron`/`everyMs`/`timezone` and `expect` are read). */
  spec: ScheduleSpec;
  /** The schedule's next unhandled tick. */
  nextRunAt: Date | null;
  /** Its newest ticks, any order, with their jobs' current states. */
  ticks: readonly ScheduleTickRow[];
  /**
   * The tick of its newest success as the driver reads it (`Driver.scheduleLastSuccess`: over every tick kept, not
   * only `ticks`); null when it has none. A newer success among `ticks` counts too: the two are separate reads.
   * Absent: only `ticks` are searched, so a success older than all of them is not seen.
   */
  lastSuccessTickAt?: Date | null;
  now: Date;
}

/** A missing run. */
export interface MissedRunFinding {
  /** The oldest expected tick with no completed run of it or of any later tick. */
  firstMissedTickAt: Date;
  /** `firstMissedTickAt + within`: when the run was due at the latest. */
  dueBy: Date;
  /** Expected ticks past their deadline with no completed run since (at most {@link MAX_COUNTED_TICKS} unhandled ones counted). */
  missedTicks: number;
  /** How many of those no scheduler has handled (no tick row: every scheduler was down or behind). */
  unhandledTicks: number;
  /** The tick of the newest completed run (see {@link lastSuccessTick}); null when none. */
  lastSuccessTickAt: Date | null;
  withinMs: number;
}

/**
 * The tick of a schedule's newest success: the later of the one the driver read and any among `ticks` (a `fired`
 * tick whose job completed; one whose job is gone never is); null when there is none.
 */
export function lastSuccessTick(input: Pick<MissedRunInput, 'ticks' | 'lastSuccessTickAt'>): Date | null {
  let newest = input.lastSuccessTickAt?.getTime() ?? -Infinity;
  for (const t of input.ticks) {
    if (t.outcome === 'fired' && t.jobState === 'completed') newest = Math.max(newest, t.tickAt.getTime());
  }
  return Number.isFinite(newest) ? new Date(newest) : null;
}

/** The missing run of a schedule at `now`, or null when every expected tick past its deadline has a completed run. */
export function findMissedRun(input: MissedRunInput): MissedRunFinding | null {
  const withinMs = input.spec.expect?.withinMs;
  if (typeof withinMs !== 'number' || withinMs <= 0) return null;
  const nowMs = input.now.getTime();
  const lastSuccessTickAt = lastSuccessTick(input);
  const lastSuccess = lastSuccessTickAt?.getTime() ?? -Infinity;
  const overdue = (tickMs: number) => tickMs > lastSuccess && tickMs + withinMs <= nowMs;
  let first = Infinity;
  let missed = 0;
  for (const t of input.ticks) {
    if (t.kind !== 'scheduled' || !overdue(t.tickAt.getTime())) continue;
    missed++;
    first = Math.min(first, t.tickAt.getTime());
  }
  let unhandled = 0;
  let tick = input.nextRunAt;
  for (let read = 0; tick && tick.getTime() + withinMs <= nowMs && read < MAX_COUNTED_TICKS; read++, tick = nextTickFromSpec(input.spec, tick)) {
    if (!overdue(tick.getTime())) continue;
    unhandled++;
    first = Math.min(first, tick.getTime());
  }
  if (missed + unhandled === 0) return null;
  return {
    firstMissedTickAt: new Date(first),
    dueBy: new Date(first + withinMs),
    missedTicks: missed + unhandled,
    unhandledTicks: unhandled,
    lastSuccessTickAt,
    withinMs,
  };
}
