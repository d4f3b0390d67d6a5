import { Cron } from 'croner';
import { createHash } from 'node:crypto';
import type { ScheduleSyncItem } from '../driver/schedule-params.js';
import type { ScheduleDefinition } from './define-schedule.js';
import { nextCronTick } from './next-cron-tick.js';

/**
 * What is stored about a schedule for operators and for code that has no definition (CLI resume). Its `cron`,
 * `everyMs` and `timezone` are also what a sync compares, stored against new, to tell whether a changed definition
 * changed its tick times (`ScheduleSyncParams`). Every version writes them together with `next_run_at`, and moves
 * `next_run_at` only on a row whose hash (which covers them) is its own, so they describe the stored next tick even
 * after an older version wrote the row. Renamed or re-encoded, every schedule's next change would reset its next tick.
 */
export interface ScheduleSpec {
  cron: string | null;
  everyMs: number | null;
  timezone: string;
  job: string;
  queue: string;
  priority: number;
  overlap: string;
  misfire: ScheduleDefinition['misfire'];
  expect: ScheduleDefinition['expect'];
}

/** The stored description of a schedule. */
export function scheduleSpec(s: ScheduleDefinition): ScheduleSpec {
  return { cron: s.cron, everyMs: s.everyMs, timezone: s.timezone, job: s.job.name, queue: s.queue, priority: s.priority, overlap: s.overlap, misfire: s.misfire, expect: s.expect };
}

/** The first tick after `after` computed from a stored spec, for processes that do not have the definition. */
export function nextTickFromSpec(spec: ScheduleSpec, after: Date): Date | null {
  // The same reading as the definition's own (daylight-saving repeats and gaps of listed hours), so the missed-run
  // check and a resume by a process without the definition agree with the scheduler on every tick.
  if (spec.cron) return nextCronTick(new Cron(spec.cron, { timezone: spec.timezone, paused: true }), after);
  if (spec.everyMs) return everyNextTick(spec.everyMs, after);
  return null;
}

/** The first multiple of `everyMs` since the Unix epoch strictly after `after`: every instance agrees on it. */
export function everyNextTick(everyMs: number, after: Date): Date {
  return new Date((Math.floor(after.getTime() / everyMs) + 1) * everyMs);
}

/** A short, stable hash of `parts` (their JSON): what `definitionHash` is. */
export function shortHash(parts: unknown[]): string {
  return createHash('sha256').update(JSON.stringify(parts)).digest('hex').slice(0, 16);
}

/** The row a definition is synced as, with its first tick after `now` (database time). */
export function toSyncItem(s: ScheduleDefinition, now: Date): ScheduleSyncItem {
  return { name: s.name, definitionHash: s.definitionHash, specJson: JSON.stringify(scheduleSpec(s)), firstRunAt: s.nextTick(now) };
}
