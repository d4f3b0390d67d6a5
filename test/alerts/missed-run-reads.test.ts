/**
 * What the missed-run rule reads, decided from the schedule row and the last success (pure): when the row alone
 * settles that nothing is missing (`surelyOnTime`), which recorded ticks can be missed (`recordedTicksToRead`), and
 * when the counts of `findMissedRun` are lower bounds (`capped`).
 * @module
 */
import { describe, expect, it } from 'vitest';
import { findMissedRun, MAX_COUNTED_TICKS, recordedTicksToRead, surelyOnTime } from '../../src/alerts/missed-run.js';
import type { ScheduleTickRow } from '../../src/driver/schedule-params.js';
import type { ScheduleSpec } from '../../src/schedule/schedule-spec.js';
import { MINUTE, T0 } from '../schedule/helpers.js';

const spec = { cron: null, everyMs: MINUTE, timezone: 'UTC', expect: { withinMs: 180 * MINUTE, maxRuntimeMs: null } } as unknown as ScheduleSpec;
const noWithin = { ...spec, expect: { withinMs: null, maxRuntimeMs: 5 * MINUTE } } as unknown as ScheduleSpec;
const at = (m: number) => new Date(T0 + m * MINUTE);

function tick(m: number, jobState: ScheduleTickRow['jobState'], kind: ScheduleTickRow['kind'] = 'scheduled', outcome: ScheduleTickRow['outcome'] = 'fired'): ScheduleTickRow {
  return { scheduleName: 's', tickAt: at(m), kind, outcome, late: false, jobId: outcome === 'fired' ? '1' : null, jobState, actor: null, recordedAt: at(m) };
}

describe('surelyOnTime', () => {
  it('holds when the newest tick row is a success at or after every recorded tick and nothing unhandled is overdue', () => {
    expect(surelyOnTime({ spec, schedule: { nextRunAt: at(11), lastTickAt: at(10), lastTick: tick(10, 'completed') }, now: at(500) })).toBe(false); // +11m overdue, unhandled
    expect(surelyOnTime({ spec, schedule: { nextRunAt: at(11), lastTickAt: at(10), lastTick: tick(10, 'completed') }, now: at(190) })).toBe(true);
    // A completed trigger after the newest scheduled tick covers it too.
    expect(surelyOnTime({ spec, schedule: { nextRunAt: at(11), lastTickAt: at(10), lastTick: tick(10.5, 'completed', 'triggered') }, now: at(190) })).toBe(true);
    // No tick recorded yet, none overdue: nothing expected.
    expect(surelyOnTime({ spec, schedule: { nextRunAt: at(1), lastTickAt: null, lastTick: null }, now: at(100) })).toBe(true);
    // No expect.within: nothing can be missed.
    expect(surelyOnTime({ spec: noWithin, schedule: { nextRunAt: at(1), lastTickAt: at(0), lastTick: tick(0, 'dead') }, now: at(10_000) })).toBe(true);
  });

  it('asks for a read otherwise', () => {
    for (const lastTick of [tick(10, 'dead'), tick(10, 'running'), tick(10, null), tick(10, null, 'scheduled', 'missed'), tick(10, null, 'scheduled', 'skipped')]) {
      expect(surelyOnTime({ spec, schedule: { nextRunAt: at(11), lastTickAt: at(10), lastTick }, now: at(190) }), JSON.stringify(lastTick)).toBe(false);
    }
    // The newest row by recorded time is a success older than a scheduled tick recorded before it (a late tick).
    expect(surelyOnTime({ spec, schedule: { nextRunAt: at(11), lastTickAt: at(10), lastTick: tick(9.5, 'completed', 'triggered') }, now: at(190) })).toBe(false);
  });
});

describe('recordedTicksToRead', () => {
  it('after the last success, up to the earlier of now - within and last_tick_at; null when that is empty', () => {
    expect(recordedTicksToRead({ spec, lastTickAt: at(200), lastSuccessTickAt: at(1), now: at(200) })).toEqual({ after: at(1), through: at(20) });
    expect(recordedTicksToRead({ spec, lastTickAt: at(200), lastSuccessTickAt: null, now: at(200) })).toEqual({ after: null, through: at(20) });
    // Ticks recorded after the schedule row was read are counted as unhandled from its next_run_at, not read twice.
    expect(recordedTicksToRead({ spec, lastTickAt: at(5), lastSuccessTickAt: null, now: at(200) })).toEqual({ after: null, through: at(5) });
    expect(recordedTicksToRead({ spec, lastTickAt: at(200), lastSuccessTickAt: at(20), now: at(200) })).toBeNull();
    expect(recordedTicksToRead({ spec, lastTickAt: at(200), lastSuccessTickAt: at(199), now: at(200) })).toBeNull();
    expect(recordedTicksToRead({ spec, lastTickAt: null, lastSuccessTickAt: null, now: at(200) })).toBeNull();
    expect(recordedTicksToRead({ spec: noWithin, lastTickAt: at(200), lastSuccessTickAt: null, now: at(10_000) })).toBeNull();
  });
});

describe('findMissedRun counts', () => {
  it('are exact below the cap and "at least" (capped) at it, recorded or unhandled', () => {
    const recorded = (n: number) => Array.from({ length: n }, (_, i) => tick(i + 1, 'dead'));
    expect(findMissedRun({ spec, nextRunAt: at(2_000), ticks: recorded(MAX_COUNTED_TICKS - 1), lastSuccessTickAt: null, now: at(1_999) }))
      .not.toHaveProperty('capped');
    expect(findMissedRun({ spec, nextRunAt: at(2_000), ticks: recorded(MAX_COUNTED_TICKS), lastSuccessTickAt: null, now: at(1_999) }))
      .toMatchObject({ firstMissedTickAt: at(1), missedTicks: MAX_COUNTED_TICKS, unhandledTicks: 0, capped: true });
    // Unhandled: every scheduler down since +1m; at +1180m exactly 1,000 are past their deadline, at +1181m more.
    expect(findMissedRun({ spec, nextRunAt: at(1), ticks: [], lastSuccessTickAt: null, now: at(1_180) }))
      .toEqual({ firstMissedTickAt: at(1), dueBy: at(181), missedTicks: MAX_COUNTED_TICKS, unhandledTicks: MAX_COUNTED_TICKS, lastSuccessTickAt: null, withinMs: 180 * MINUTE });
    expect(findMissedRun({ spec, nextRunAt: at(1), ticks: [], lastSuccessTickAt: null, now: at(1_181) }))
      .toMatchObject({ missedTicks: MAX_COUNTED_TICKS, unhandledTicks: MAX_COUNTED_TICKS, capped: true });
  });
});
