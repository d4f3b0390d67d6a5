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
  /** Missed ticks beyond {@link MAX_RECORDED_TICKS} that were counted but not listed. */
  unlistedMissed: number;
}

/** Most ticks listed in one plan; a longer outage is summarized by a count so a scan stays bounded. */
export const MAX_RECORDED_TICKS = 1_000;

/**
 * Decides, for the ticks of `schedule` due between `nextRunAt` and `now` (inclusive), which fire and which
 * were missed. Pure: all times come in as arguments (database time), so every instance computes the same plan.
 *
 * - A tick at most `misfire.graceMs` late is on time and fires.
 * - Later ticks were missed (no scheduler was running). `skip`: none fire. `run-once`: the newest fires once if
 *   it is within `misfire.within` (default: one interval plus the grace). `catch-up`: each one within `within`
 *   fires, the newest `maxCount` of them.
 */
export function planTicks(schedule: ScheduleDefinition, nextRunAt: Date, now: Date): TickPlan {
  const due: Date[] = [];
  let unlistedMissed = 0;
  let tick: Date | null = nextRunAt;
  while (tick && tick.getTime() <= now.getTime()) {
    if (due.length === MAX_RECORDED_TICKS) {
      // Drop the oldest listed tick: only the newest ones can still be within a misfire window.
      due.shift();
      unlistedMissed++;
    }
    due.push(tick);
    tick = schedule.nextTick(tick);
  }
  const { policy, graceMs, maxCount } = schedule.misfire;
  const ticks: PlannedTick[] = [];
  const missed: Date[] = [];
  for (const t of due) {
    if (now.getTime() - t.getTime() <= graceMs) ticks.push({ tickAt: t, action: 'fire', late: false });
    else missed.push(t);
  }
  const withinMs = (t: Date) => schedule.misfire.withinMs ?? intervalAt(schedule, t) + graceMs;
  const inWindow = missed.filter((t) => now.getTime() - t.getTime() <= withinMs(t));
  let catchUp: Date[] = [];
  if (policy === 'run-once' && inWindow.length > 0) catchUp = [inWindow[inWindow.length - 1]!];
  if (policy === 'catch-up') catchUp = inWindow.slice(-maxCount);
  const firing = new Set(catchUp.map((t) => t.getTime()));
  const planned = missed.map((t) => ({ tickAt: t, action: firing.has(t.getTime()) ? ('fire' as const) : ('missed' as const), late: true }));
  return { ticks: [...planned, ...ticks].sort((a, b) => a.tickAt.getTime() - b.tickAt.getTime()), nextRunAt: tick, unlistedMissed };
}

/** The gap from tick `t` to the tick after it: "one interval" of the schedule at that point. */
function intervalAt(schedule: ScheduleDefinition, t: Date): number {
  const next = schedule.nextTick(t);
  return next ? next.getTime() - t.getTime() : 0;
}
