import type { ScheduleDefinition } from './define-schedule.js';
import { TickSeries } from './tick-series.js';

/** What to do with one due tick. `fire` enqueues a run; `missed` records that it did not run. */
export interface PlannedTick {
  tickAt: Date;
  action: 'fire' | 'missed';
  /** True for a run that stands in for missed ticks (misfire `run-once` / `catch-up`). */
  late: boolean;
}

/** The plan for one schedule at one scan. */
export interface TickPlan {
  ticks: PlannedTick[];
  /** The schedule's next tick after this plan: strictly after `now`. Null when the pattern never fires again. */
  nextRunAt: Date | null;
  /**
   * Missed ticks not listed (older than any policy's window, or beyond the newest {@link MAX_RECORDED_TICKS}), only
   * counted: exact for `every`, estimated for cron (see {@link TickSeries.count}). Their time span is
   * `[nextRunAt, firstListedAt)`.
   */
  unlistedMissed: number;
}

/** Most ticks listed in one plan (and the largest `misfire.maxCount`), so a scan stays bounded. */
export const MAX_RECORDED_TICKS = 1_000;

/**
 * Decides, for the ticks of `schedule` due between `nextRunAt` and `now` (inclusive), which fire and which
 * were missed. Pure: all times come in as arguments (database time), so every instance computes the same plan.
 *
 * - A tick at most `misfire.graceMs` late is on time and fires.
 * - Later ticks were missed (no scheduler was running). `skip`: none fire. `run-once`: the newest fires once if
 *   it is within `misfire.within` (default: one interval plus the grace). `catch-up`: each one within `within`
 *   fires, the newest `maxCount` of them.
 *
 * Cost is bounded by the ticks it lists, not by the length of the outage. It lists at most
 * {@link MAX_RECORDED_TICKS} ticks, the newest, from the oldest tick a policy could act on (the grace under `skip`,
 * `within` when given, else the newest missed tick, found by a binary search); the ticks before that too when all
 * of them fit. It reads them back from `now` ({@link TickSeries.newest}): with the default window from the newest
 * missed tick on, with `within` no more than the cap, however long the window. The ticks it does not list are
 * counted ({@link TickSeries.count}: exact for `every`, bounded reads for cron). So a plan reads the pattern some
 * 2 × MAX_RECORDED_TICKS + 500 times at most, and twice for a schedule on time.
 */
export function planTicks(schedule: ScheduleDefinition, nextRunAt: Date, now: Date): TickPlan {
  const { policy, graceMs, withinMs, maxCount } = schedule.misfire;
  const origin = nextRunAt.getTime();
  const nowMs = now.getTime();
  if (origin > nowMs) return { ticks: [], nextRunAt, unlistedMissed: 0 };
  const series = new TickSeries(schedule, origin);
  const windowStart = Math.max(origin, oldestActionable(schedule, series, nowMs));
  let listed = series.newest(windowStart, nowMs + 1, MAX_RECORDED_TICKS);
  // Ticks before the window, none of which any policy acts on: listed too (each recorded missed) when all of them
  // fit beside the others, a short outage; otherwise only counted. The count decides whether reading them is worth
  // it (it is exact for evenly spaced ticks; twice the room leaves a margin for an estimate).
  let older = 0;
  if (windowStart > origin) {
    const room = MAX_RECORDED_TICKS - listed.length;
    older = series.count(origin, windowStart);
    const walk = older <= 2 * room ? series.walk(origin, windowStart, room) : null;
    if (walk?.complete) {
      listed = walk.ticks.concat(listed);
      older = 0;
    } else if (walk) older = Math.max(older, room + 1);
  }
  // And ticks of the window beyond the newest MAX_RECORDED_TICKS.
  const beyond = listed.length === MAX_RECORDED_TICKS ? series.count(windowStart, listed[0]!) : 0;
  const unlistedMissed = older + beyond;
  const missed = listed.filter((t) => nowMs - t > graceMs);
  // The default window is each tick's own interval plus the grace: only the newest missed tick can be in it, since
  // the tick after any other was missed too.
  const newestMissed = missed[missed.length - 1];
  const inWindow = withinMs !== null
    ? missed.filter((t) => nowMs - t <= withinMs)
    : newestMissed !== undefined && nowMs - newestMissed <= intervalAt(series, newestMissed) + graceMs ? [newestMissed] : [];
  const firing = new Set(policy === 'run-once' ? inWindow.slice(-1) : policy === 'catch-up' ? inWindow.slice(-maxCount) : []);
  const ticks = listed.map((t): PlannedTick => {
    if (nowMs - t <= graceMs) return { tickAt: new Date(t), action: 'fire', late: false };
    return { tickAt: new Date(t), action: firing.has(t) ? 'fire' : 'missed', late: true };
  });
  return { ticks, nextRunAt: schedule.nextTick(now), unlistedMissed };
}

/**
 * The oldest tick time any policy could still act on (ticks before it can only be "missed"). `skip` acts on nothing
 * older than the grace, an explicit `within` bounds it directly. The default window is each tick's own interval
 * plus the grace, so a missed tick is in it exactly when the tick after it was not yet missed: only the newest
 * missed tick can be, however long the interval was at `nextRunAt`.
 */
function oldestActionable(schedule: ScheduleDefinition, series: TickSeries, now: number): number {
  const { policy, graceMs, withinMs } = schedule.misfire;
  const missedBefore = now - graceMs;
  if (policy === 'skip') return missedBefore;
  if (withinMs !== null) return now - Math.max(graceMs, withinMs);
  return series.newestBefore(missedBefore) ?? missedBefore;
}

/** The gap from tick `t` to the tick after it: "one interval" of the schedule at that point. */
function intervalAt(series: TickSeries, t: number): number {
  const next = series.next(t);
  return next === null ? 0 : next - t;
}
