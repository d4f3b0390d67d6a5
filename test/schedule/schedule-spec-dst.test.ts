/**
 * The stored spec (read by the missed-run check, and by `resume` in a process without the definition) reads cron
 * ticks as the definition does: a listed hour's wall time repeated when the clock falls back is one tick.
 */
import { describe, expect, it } from 'vitest';
import { defineSchedule } from '../../src/schedule/define-schedule.js';
import { nextTickFromSpec, scheduleSpec } from '../../src/schedule/schedule-spec.js';
import { defineJob } from '../../src/job/define-job.js';

const job = defineJob({ name: 'report', handler: async () => {} });

/** The ticks after `from` up to `to`, by `next`. */
function ticks(next: (after: Date) => Date | null, from: string, to: string): string[] {
  const out: string[] = [];
  for (let t = next(new Date(from)); t && t <= new Date(to); t = next(t)) out.push(t.toISOString());
  return out;
}

describe('nextTickFromSpec across daylight saving', () => {
  it.each([
    ['30 1,2 * * *', 'Europe/Berlin', '2026-10-24T12:00:00Z', '2026-10-25T12:00:00Z'],
    ['0 1,13 * * *', 'America/New_York', '2026-10-31T18:00:00Z', '2026-11-01T20:00:00Z'],
  ])('%s in %s gives the definition’s ticks, each wall time once', (cron, timezone, from, to) => {
    const schedule = defineSchedule({ name: 's', job, cron, timezone });
    const spec = scheduleSpec(schedule);
    const fromSpec = ticks((after) => nextTickFromSpec(spec, after), from, to);
    expect(fromSpec).toEqual(ticks((after) => schedule.nextTick(after), from, to));
    expect(fromSpec.length).toBe(2);
  });
});
