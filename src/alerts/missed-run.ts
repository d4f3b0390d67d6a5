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
 * (`Driver.scheduleLastSuccess`), so the kept job's tick, or a later success, is found however long ago it was, and
 * it already covers the older tick. Tick retention keeps the rows read here however old (`Driver.scheduleTickPrune`
 * with `keepAfterSuccess` = {@link MAX_COUNTED_TICKS}: from that tick on, as many as are counted), so a `within`
 * longer than `retention.scheduleTicks` loses neither the last success nor a missed tick.
 *
 * Only the ticks after that success can be missed, and only those up to `now - within` are past their deadline, so
 * those are the recorded ticks read (`Driver.scheduleTicksAfter`, oldest first, at most {@link MAX_COUNTED_TICKS};
 * {@link recordedTicksToRead} gives the range). Oldest first, the first missed tick is exact however long `within`
 * is; only the count can reach the cap, and is then a lower bound (`capped`). Every recorded scheduled tick is at or
 * before the schedule's `last_tick_at` (an advance raises it with each tick it records and never lowers it), so when
 * the newest tick row is a success at or after it and no unhandled tick is past its deadline, nothing can be missed
 * and nothing more is read ({@link surelyOnTime}): the common case costs no query beyond the schedule list.
 * @module
 */
import type { ScheduleRow, ScheduleTickRow } from '../driver/schedule-params.js';
import { nextTickFromSpec, type ScheduleSpec } from '../schedule/schedule-spec.js';

/**
 * Most ticks counted per evaluation, recorded ones (the most `Driver.scheduleTicksAfter` returns at once) and unhandled
 * ones (a long outage of a frequent schedule) each, so a check stays cheap however long `within` or an outage is.
 */
export const MAX_COUNTED_TICKS = 1_000;

/** What {@link findMissedRun} reads. */
export interface MissedRunInput {
  /** The stored spec (only `cron`/`everyMs`/`timezone` and `expect` are read). */
  spec: ScheduleSpec;
  /** The schedule's next unhandled tick. */
  nextRunAt: Date | null;
  /**
   * Its recorded ticks, any order, with their jobs' current states: at least its oldest `scheduled` ticks after its
   * newest success that are past their deadline, up to {@link MAX_COUNTED_TICKS} of them (the alert monitor reads
   * exactly those, with {@link recordedTicksToRead}'s range). Others may be given: only overdue `scheduled` ticks
   * after the newest success are counted, and a success among them counts as one.
   */
  ticks: readonly ScheduleTickRow[];
  /**
   * The tick of its newest success as the driver reads it (`Driver.scheduleLastSuccess`: over every tick kept, not
   * only `ticks`); null when it has none. A newer success among `ticks` counts too: the two are separate reads, and a
   * run may complete between them.
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
  /**
   * Expected ticks past their deadline with no completed run since: the recorded ones among `ticks` plus
   * `unhandledTicks`. Each part is counted up to {@link MAX_COUNTED_TICKS}; when either reaches it, `capped` is set and
   * this is a lower bound ("at least").
   */
  missedTicks: number;
  /**
   * How many of those no scheduler has handled (no tick row: every scheduler was down or behind), counted up to
   * {@link MAX_COUNTED_TICKS} (then `capped`: at least this many).
   */
  unhandledTicks: number;
  /** Present when a count reached {@link MAX_COUNTED_TICKS}: `missedTicks` and `unhandledTicks` are then lower bounds. */
  capped?: true;
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
  let read = 0;
  for (; tick && tick.getTime() + withinMs <= nowMs && read < MAX_COUNTED_TICKS; read++, tick = nextTickFromSpec(input.spec, tick)) {
    if (!overdue(tick.getTime())) continue;
    unhandled++;
    first = Math.min(first, tick.getTime());
  }
  if (missed + unhandled === 0) return null;
  // A full read may have stopped short of more missed ticks: then the counts say "at least".
  const capped = missed >= MAX_COUNTED_TICKS || (read === MAX_COUNTED_TICKS && tick !== null && overdue(tick.getTime()));
  return {
    firstMissedTickAt: new Date(first),
    dueBy: new Date(first + withinMs),
    missedTicks: missed + unhandled,
    unhandledTicks: unhandled,
    ...(capped ? { capped: true as const } : {}),
    lastSuccessTickAt,
    withinMs,
  };
}

/** What {@link surelyOnTime} reads: the schedule as the schedule list read it, and its stored spec. */
export interface OnTimeInput {
  spec: ScheduleSpec;
  schedule: Pick<ScheduleRow, 'nextRunAt' | 'lastTickAt' | 'lastTick'>;
  now: Date;
}

/**
 * Whether the schedule's row alone shows that no run is missing at `now`, so that {@link findMissedRun} would find
 * nothing and nothing more needs reading: no `expect.within`; or no unhandled tick is past its deadline and every
 * recorded scheduled tick is covered by a success, because the newest tick row (`lastTick`) is a `fired` tick whose
 * job completed, at or after `lastTickAt` (no scheduled tick row is later than that). False means "read and see",
 * not "missing".
 */
export function surelyOnTime(input: OnTimeInput): boolean {
  const withinMs = input.spec.expect?.withinMs;
  if (typeof withinMs !== 'number' || withinMs <= 0) return true;
  const { nextRunAt, lastTickAt, lastTick } = input.schedule;
  if (nextRunAt && nextRunAt.getTime() + withinMs <= input.now.getTime()) return false;
  if (lastTickAt === null) return true;
  return lastTick !== null && lastTick.outcome === 'fired' && lastTick.jobState === 'completed' && lastTick.tickAt.getTime() >= lastTickAt.getTime();
}

/** What {@link recordedTicksToRead} reads. */
export interface RecordedTicksInput {
  spec: ScheduleSpec;
  /** The schedule's `last_tick_at` as the schedule list read it: no scheduled tick row is later. */
  lastTickAt: Date | null;
  /** The tick of its newest success (`Driver.scheduleLastSuccess`); null when it has none. */
  lastSuccessTickAt: Date | null;
  now: Date;
}

/**
 * The range of recorded `scheduled` ticks that can be missed at `now`, for `Driver.scheduleTicksAfter`: after the
 * newest success, and up to the earlier of `now - within` (later ones are not past their deadline) and `lastTickAt`
 * (no row is later; ticks recorded after the schedule list was read are counted from its `nextRunAt` as unhandled,
 * not twice). Null when that range is empty or the schedule has no `expect.within`: nothing to read.
 */
export function recordedTicksToRead(input: RecordedTicksInput): { after: Date | null; through: Date } | null {
  const withinMs = input.spec.expect?.withinMs;
  if (typeof withinMs !== 'number' || withinMs <= 0 || input.lastTickAt === null) return null;
  const through = Math.min(input.now.getTime() - withinMs, input.lastTickAt.getTime());
  if (input.lastSuccessTickAt !== null && through <= input.lastSuccessTickAt.getTime()) return null;
  return { after: input.lastSuccessTickAt, through: new Date(through) };
}
