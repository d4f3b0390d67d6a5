/**
 * Daylight-saving transitions (croner 11), in America/New_York and Europe/Berlin, spring forward and fall back:
 * - a fixed-time tick inside the spring-forward gap fires once, at the first valid time after the gap;
 * - a fixed-time tick in the repeated fall-back hour fires once (the first occurrence), never twice;
 * - an interval pattern (`*\/15 * * * *`) keeps its 15-minute cadence in UTC through both transitions: no gap, no
 *   duplicate instant, and in the repeated hour it fires in both offsets.
 * Checked on the definition (`nextTick`, the real croner) and end to end: a Warden driven by a FakeClock across
 * each transition (six hours either side), scanning every 15 minutes of fake time, enqueues exactly the expected
 * ticks.
 * @module
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FakeClock } from '../../src/clock/fake-clock.js';
import type { Warden } from '../../src/client/warden.js';
import { defineSchedule, type ScheduleDefinition } from '../../src/schedule/define-schedule.js';
import { createTestDatabase, DRIVER_KINDS, type TestDatabase } from '../support/test-databases.js';
import { HOUR, iso, jobsOf, makeWarden, MINUTE, noopJob, openOracle, type Oracle, ticksOf } from './helpers.js';

const QUARTER = 15 * MINUTE;

interface Scenario {
  zone: string;
  transition: 'spring forward' | 'fall back';
  /** The fixed-time pattern whose local time falls in the gap or in the repeated hour. */
  fixedCron: string;
  /** Scan window (UTC): from the day before the transition to the morning after. */
  from: string;
  to: string;
  /** Every tick of `fixedCron` in (from, to], by the documented rule. */
  fixedTicks: string[];
  /** The transition's interesting UTC instants for `*\/15`: every quarter hour around it, each exactly once. */
  quartersAround: string[];
}

const SCENARIOS: Scenario[] = [
  {
    // 02:00 EST (07:00Z) jumps to 03:00 EDT: 02:30 does not exist that day; it fires at 03:00 EDT = 07:00Z.
    zone: 'America/New_York',
    transition: 'spring forward',
    fixedCron: '30 2 * * *',
    from: '2026-03-07T00:00:00Z',
    to: '2026-03-09T12:00:00Z',
    fixedTicks: ['2026-03-07T07:30:00.000Z', '2026-03-08T07:00:00.000Z', '2026-03-09T06:30:00.000Z'],
    quartersAround: ['2026-03-08T06:30:00.000Z', '2026-03-08T06:45:00.000Z', '2026-03-08T07:00:00.000Z', '2026-03-08T07:15:00.000Z', '2026-03-08T07:30:00.000Z'],
  },
  {
    // 02:00 EDT (06:00Z) falls back to 01:00 EST: 01:00–02:00 local happens twice (05:00Z–07:00Z).
    // 01:30 fires once, at its first occurrence (EDT, 05:30Z), not again at 06:30Z.
    zone: 'America/New_York',
    transition: 'fall back',
    fixedCron: '30 1 * * *',
    from: '2026-10-31T00:00:00Z',
    to: '2026-11-02T12:00:00Z',
    fixedTicks: ['2026-10-31T05:30:00.000Z', '2026-11-01T05:30:00.000Z', '2026-11-02T06:30:00.000Z'],
    // In the repeated hour */15 fires in both offsets: 01:00–01:45 EDT (05:00Z–05:45Z) and EST (06:00Z–06:45Z).
    quartersAround: [
      '2026-11-01T05:00:00.000Z', '2026-11-01T05:15:00.000Z', '2026-11-01T05:30:00.000Z', '2026-11-01T05:45:00.000Z',
      '2026-11-01T06:00:00.000Z', '2026-11-01T06:15:00.000Z', '2026-11-01T06:30:00.000Z', '2026-11-01T06:45:00.000Z',
      '2026-11-01T07:00:00.000Z',
    ],
  },
  {
    // 02:00 CET (01:00Z) jumps to 03:00 CEST: 02:30 fires at 03:00 CEST = 01:00Z.
    zone: 'Europe/Berlin',
    transition: 'spring forward',
    fixedCron: '30 2 * * *',
    from: '2026-03-28T00:00:00Z',
    to: '2026-03-30T12:00:00Z',
    fixedTicks: ['2026-03-28T01:30:00.000Z', '2026-03-29T01:00:00.000Z', '2026-03-30T00:30:00.000Z'],
    quartersAround: ['2026-03-29T00:30:00.000Z', '2026-03-29T00:45:00.000Z', '2026-03-29T01:00:00.000Z', '2026-03-29T01:15:00.000Z', '2026-03-29T01:30:00.000Z'],
  },
  {
    // 03:00 CEST (01:00Z) falls back to 02:00 CET: 02:00–03:00 local happens twice (00:00Z–02:00Z).
    // 02:30 fires once, at its first occurrence (CEST, 00:30Z), not again at 01:30Z.
    zone: 'Europe/Berlin',
    transition: 'fall back',
    fixedCron: '30 2 * * *',
    from: '2026-10-24T00:00:00Z',
    to: '2026-10-26T12:00:00Z',
    fixedTicks: ['2026-10-24T00:30:00.000Z', '2026-10-25T00:30:00.000Z', '2026-10-26T01:30:00.000Z'],
    quartersAround: [
      '2026-10-25T00:00:00.000Z', '2026-10-25T00:15:00.000Z', '2026-10-25T00:30:00.000Z', '2026-10-25T00:45:00.000Z',
      '2026-10-25T01:00:00.000Z', '2026-10-25T01:15:00.000Z', '2026-10-25T01:30:00.000Z', '2026-10-25T01:45:00.000Z',
      '2026-10-25T02:00:00.000Z',
    ],
  },
];

function schedulesOf(s: Scenario): { fixed: ScheduleDefinition; quarterly: ScheduleDefinition } {
  return {
    // overlap 'allow': the enqueued jobs are never run here, and must not hold back later ticks.
    fixed: defineSchedule({ name: 'fixed-time', cron: s.fixedCron, timezone: s.zone, job: noopJob, overlap: 'allow' }),
    quarterly: defineSchedule({ name: 'quarter-hourly', cron: '*/15 * * * *', timezone: s.zone, job: noopJob, overlap: 'allow' }),
  };
}

/** Every tick of `def` in (from, to], by chaining `nextTick`. */
function chain(def: ScheduleDefinition, from: number, to: number): number[] {
  const out: number[] = [];
  for (let t = def.nextTick(new Date(from)); t && t.getTime() <= to; t = def.nextTick(t)) out.push(t.getTime());
  return out;
}

/** Every quarter hour of UTC in (from, to]: the documented cadence of `*\/15` in any whole-hour-offset zone. */
function quarters(from: number, to: number): number[] {
  const out: number[] = [];
  for (let t = (Math.floor(from / QUARTER) + 1) * QUARTER; t <= to; t += QUARTER) out.push(t);
  return out;
}

describe.each(SCENARIOS)('DST: nextTick across $zone $transition', (s) => {
  const from = Date.parse(s.from);
  const to = Date.parse(s.to);
  const { fixed, quarterly } = schedulesOf(s);

  it(`fires the fixed-time pattern ${s.fixedCron} once per day, as documented`, () => {
    expect(iso(chain(fixed, from, to))).toEqual(s.fixedTicks);
  });

  it('never returns the fixed-time tick again from inside the repeated hour or the gap', () => {
    const transitionDay = Date.parse(s.fixedTicks[1]!);
    const nextDay = Date.parse(s.fixedTicks[2]!);
    // From every minute between that day's tick and the next day's, the next tick is the next day's.
    for (let t = transitionDay; t < nextDay; t += MINUTE) expect(fixed.nextTick(new Date(t))?.getTime(), new Date(t).toISOString()).toBe(nextDay);
    // And from just before it, that day's tick.
    expect(fixed.nextTick(new Date(transitionDay - 1))?.getTime()).toBe(transitionDay);
  });

  it('keeps */15 on every UTC quarter hour: no gap, no duplicate', () => {
    const ticks = chain(quarterly, from, to);
    expect(iso(ticks)).toEqual(iso(quarters(from, to)));
    expect(new Set(ticks).size).toBe(ticks.length);
    for (const q of s.quartersAround) expect(ticks.filter((t) => t === Date.parse(q)), q).toHaveLength(1);
  });
});

describe.each(DRIVER_KINDS)('DST: a Warden scanning every 15 minutes of fake time (%s)', (kind) => {
  let tdb: TestDatabase;
  let oracle: Oracle;
  let warden: Warden | undefined;

  beforeEach(async () => {
    tdb = await createTestDatabase(kind);
    oracle = await openOracle(tdb);
  });

  afterEach(async () => {
    await warden?.close();
    warden = undefined;
    await oracle?.close();
    await tdb?.cleanup();
  });

  it.each(SCENARIOS)('enqueues exactly the documented ticks across $zone $transition', async (s) => {
    // Six hours either side of the transition day's fixed-time tick: the gap or repeated hour and well past it.
    const from = Date.parse(s.fixedTicks[1]!) - 6 * HOUR;
    const to = Date.parse(s.fixedTicks[1]!) + 6 * HOUR;
    const { fixed, quarterly } = schedulesOf(s);
    const clock = new FakeClock(from);
    warden = makeWarden(tdb, { schedules: [fixed, quarterly], clock });
    const fired: { schedule: string; tickAt: number; late: boolean }[] = [];
    warden.on('schedule:fired', (e) => fired.push({ schedule: e.schedule, tickAt: e.tickAt.getTime(), late: e.late }));
    const missedEvents: unknown[] = [];
    warden.on('schedule:missed', (e) => missedEvents.push(e));

    await warden.runSchedulerOnce(); // sync at `from`
    while (clock.now() < to) {
      await clock.advance(QUARTER);
      await warden.runSchedulerOnce();
    }

    const expectedQuarters = quarters(from, to);
    for (const [def, expected] of [[fixed, [Date.parse(s.fixedTicks[1]!)]], [quarterly, expectedQuarters]] as const) {
      const jobs = await jobsOf(oracle, def.name);
      const tickTimes = jobs.map((j) => j.tickAt!).sort((a, b) => a - b);
      expect(iso(tickTimes), `${def.name}: job tick times`).toEqual(iso(expected));
      expect(jobs, `${def.name}: job count`).toHaveLength(expected.length);
      const rows = await ticksOf(oracle, def.name);
      expect(iso(rows.map((r) => r.tickAt)), `${def.name}: tick rows`).toEqual(iso(expected));
      expect(rows.every((r) => r.outcome === 'fired' && r.kind === 'scheduled' && !r.late), `${def.name}: every tick fired on time`).toBe(true);
    }
    for (const q of s.quartersAround) expect(fired.filter((f) => f.schedule === quarterly.name && f.tickAt === Date.parse(q)), q).toHaveLength(1);
    expect(fired.filter((f) => f.schedule === fixed.name).map((f) => f.tickAt)).toEqual([Date.parse(s.fixedTicks[1]!)]);
    expect(fired.every((f) => !f.late)).toBe(true);
    expect(missedEvents).toEqual([]);
  });
});
