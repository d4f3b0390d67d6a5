import type { ScheduleDefinition } from './define-schedule.js';

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
   * Missed ticks too old to matter to any policy, skipped without being listed (exact for `every`, estimated from
   * the interval for cron). Their time span is `[nextRunAt, firstListedAt)`.
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
 * Cost is bounded: after an outage of more than {@link MAX_RECORDED_TICKS} ticks, the ticks older than the policy's
 * window (`within`; by default the newest missed tick's own interval plus the grace; the grace under `skip`) are
 * skipped over and counted rather than enumerated one by one.
 */
export function planTicks(schedule: ScheduleDefinition, nextRunAt: Date, now: Date): TickPlan {
  const { policy, graceMs, maxCount } = schedule.misfire;
  const defaultWithin = (t: Date) => intervalAt(schedule, t) + graceMs;
  let first: Date | null = nextRunAt;
  let unlistedMissed = 0;
  const interval = Math.max(1, schedule.everyMs ?? intervalAt(schedule, nextRunAt));
  // Only a long outage is skipped over: up to MAX_RECORDED_TICKS old ticks are still listed (and recorded missed).
  // Every policy's window starts at or before `now - grace`, so a gap shorter than that needs no window at all.
  if ((now.getTime() - graceMs - nextRunAt.getTime()) / interval > MAX_RECORDED_TICKS) {
    const windowStart = oldestActionable(schedule, nextRunAt, now);
    if ((windowStart - nextRunAt.getTime()) / interval > MAX_RECORDED_TICKS) {
      first = schedule.nextTick(new Date(windowStart - 1));
      const end = Math.min(first ? first.getTime() : now.getTime(), now.getTime() + 1);
      unlistedMissed = Math.max(1, Math.ceil((end - nextRunAt.getTime()) / interval));
    }
  }
  const due: Date[] = [];
  let tick = first;
  while (tick && tick.getTime() <= now.getTime()) {
    if (due.length === MAX_RECORDED_TICKS) {
      // Keep the newest: with a wide window, the oldest listed ticks are the least relevant.
      due.shift();
      unlistedMissed++;
    }
    due.push(tick);
    tick = schedule.nextTick(tick);
  }
  const ticks: PlannedTick[] = [];
  const missed: Date[] = [];
  for (const t of due) {
    if (now.getTime() - t.getTime() <= graceMs) ticks.push({ tickAt: t, action: 'fire', late: false });
    else missed.push(t);
  }
  const withinMs = (t: Date) => schedule.misfire.withinMs ?? defaultWithin(t);
  const inWindow = missed.filter((t) => now.getTime() - t.getTime() <= withinMs(t));
  let catchUp: Date[] = [];
  if (policy === 'run-once' && inWindow.length > 0) catchUp = [inWindow[inWindow.length - 1]!];
  if (policy === 'catch-up') catchUp = inWindow.slice(-maxCount);
  const firing = new Set(catchUp.map((t) => t.getTime()));
  const planned = missed.map((t) => ({ tickAt: t, action: firing.has(t.getTime()) ? ('fire' as const) : ('missed' as const), late: true }));
  return { ticks: [...planned, ...ticks].sort((a, b) => a.tickAt.getTime() - b.tickAt.getTime()), nextRunAt: tick, unlistedMissed };
}

/**
 * The oldest tick time any policy could still act on (ticks before it can only be "missed"), for an outage that
 * began at `nextRunAt`. `skip` acts on nothing older than the grace, an explicit `within` bounds it directly. The
 * default window is each tick's own interval plus the grace, so a missed tick is in it exactly when the tick after
 * it was not yet missed: only the newest missed tick can be, however long the interval was at `nextRunAt`.
 */
function oldestActionable(schedule: ScheduleDefinition, nextRunAt: Date, now: Date): number {
  const { policy, graceMs, withinMs } = schedule.misfire;
  const missedBefore = now.getTime() - graceMs;
  if (policy === 'skip') return missedBefore;
  if (withinMs !== null) return now.getTime() - Math.max(graceMs, withinMs);
  return newestTickBefore(schedule, nextRunAt, missedBefore)?.getTime() ?? missedBefore;
}

/**
 * The newest tick in `[from, before)`, or null when there is none. A binary search over `nextTick` (monotonic in
 * its argument), so it costs some 50 evaluations of the pattern whatever the number of ticks in between.
 */
function newestTickBefore(schedule: ScheduleDefinition, from: Date, before: number): Date | null {
  // The first tick at or after `ms`.
  const atOrAfter = (ms: number) => schedule.nextTick(new Date(ms - 1));
  const isBefore = (tick: Date | null) => tick !== null && tick.getTime() < before;
  let lo = from.getTime();
  if (!isBefore(atOrAfter(lo))) return null;
  // Invariant: a tick lies in [lo, before), none in [hi, before).
  let hi = before;
  while (hi - lo > 1) {
    const mid = lo + Math.floor((hi - lo) / 2);
    if (isBefore(atOrAfter(mid))) lo = mid;
    else hi = mid;
  }
  return atOrAfter(lo);
}

/** The gap from tick `t` to the tick after it: "one interval" of the schedule at that point. */
function intervalAt(schedule: ScheduleDefinition, t: Date): number {
  const next = schedule.nextTick(t);
  return next ? next.getTime() - t.getTime() : 0;
}
