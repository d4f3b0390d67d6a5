/**
 * Daylight saving with a cron whose hour field names its hours (`30 1,2 * * *`, `0 1-2 * * *`, `*\/30 1 * * *`):
 * each listed wall time fires once a day, as a single fixed time does. croner (11) alone fires such a pattern's
 * repeated autumn time in both offsets (`30 1,2 * * *` in Europe/Berlin: 02:30 CEST and 02:30 CET) and drops its
 * spring time inside the gap (`30 1,2 * * *` in America/New_York: no 02:30, nor 03:00, on 2026-03-08); the rule is
 * `nextCronTick` (src/schedule/next-cron-tick.ts). Checked: the ticks of the transition days in six zones (a
 * 30-minute shift, transitions at midnight, the southern hemisphere), that patterns with a `*` or step hour field
 * still follow croner everywhere and named hours do on ordinary days, that the next tick is the chain's from any
 * instant (the planner's searches rely on it), and end to end: a Warden scanning every 5 minutes, on both drivers.
 * @module
 */
import { Cron } from 'croner';
import { afterEach, describe, expect, it } from 'vitest';
import { FakeClock } from '../../src/clock/fake-clock.js';
import { createWarden } from '../../src/client/warden.js';
import { defineSchedule, type ScheduleDefinition } from '../../src/schedule/define-schedule.js';
import { Cleanup } from '../support/cleanup.js';
import { createTestDatabase, DRIVER_KINDS } from '../support/test-databases.js';
import { HOUR, iso, jobsOf, MINUTE, noopJob, openOracle, silent, ticksOf } from './helpers.js';

const DAY = 24 * HOUR;

interface Case {
  zone: string;
  cron: string;
  /** The transition day's ticks (UTC), from 6 hours before its local midnight to 6 hours after the next one. */
  from: string;
  to: string;
  ticks: string[];
  why: string;
}

const CASES: Case[] = [
  // Fall back: the repeated wall time fires at its first occurrence only.
  { zone: 'Europe/Berlin', cron: '30 1,2 * * *', from: '2026-10-24T16:00:00Z', to: '2026-10-25T16:00:00Z', ticks: ['2026-10-24T23:30:00.000Z', '2026-10-25T00:30:00.000Z'], why: '02:30 CEST, not again at 02:30 CET (01:30Z)' },
  { zone: 'Europe/Berlin', cron: '30 2-3 * * *', from: '2026-10-24T16:00:00Z', to: '2026-10-25T16:00:00Z', ticks: ['2026-10-25T00:30:00.000Z', '2026-10-25T02:30:00.000Z'], why: '02:30 CEST and 03:30 CET' },
  { zone: 'America/New_York', cron: '0 1,13 * * *', from: '2026-10-31T22:00:00Z', to: '2026-11-01T22:00:00Z', ticks: ['2026-11-01T05:00:00.000Z', '2026-11-01T18:00:00.000Z'], why: '01:00 EDT, not again at 01:00 EST (06:00Z)' },
  { zone: 'America/New_York', cron: '0 1-2 * * *', from: '2026-10-31T22:00:00Z', to: '2026-11-01T22:00:00Z', ticks: ['2026-11-01T05:00:00.000Z', '2026-11-01T07:00:00.000Z'], why: '01:00 EDT, 02:00 EST' },
  { zone: 'America/New_York', cron: '*/30 1 * * *', from: '2026-10-31T22:00:00Z', to: '2026-11-01T22:00:00Z', ticks: ['2026-11-01T05:00:00.000Z', '2026-11-01T05:30:00.000Z'], why: '01:00 and 01:30 EDT only' },
  { zone: 'Australia/Lord_Howe', cron: '45 1,13 * * *', from: '2026-04-04T07:00:00Z', to: '2026-04-05T07:00:00Z', ticks: ['2026-04-04T14:45:00.000Z', '2026-04-05T03:15:00.000Z'], why: 'a 30-minute shift: 01:45 at +11 only, not at +10:30' },
  { zone: 'America/Santiago', cron: '30 11,23 * * *', from: '2026-04-04T09:00:00Z', to: '2026-04-05T09:00:00Z', ticks: ['2026-04-04T14:30:00.000Z', '2026-04-05T02:30:00.000Z'], why: 'midnight falls back to 23:00: 23:30 at -3 only' },
  // Spring forward: a wall time in the gap fires once, at the first instant after it.
  { zone: 'America/New_York', cron: '30 1,2 * * *', from: '2026-03-07T23:00:00Z', to: '2026-03-08T23:00:00Z', ticks: ['2026-03-08T06:30:00.000Z', '2026-03-08T07:00:00.000Z'], why: '01:30 EST, and 02:30 at 03:00 EDT' },
  { zone: 'America/New_York', cron: '30 2,14 * * *', from: '2026-03-07T23:00:00Z', to: '2026-03-08T23:00:00Z', ticks: ['2026-03-08T07:00:00.000Z', '2026-03-08T18:30:00.000Z'], why: '02:30 at 03:00 EDT' },
  { zone: 'America/New_York', cron: '*/30 2 * * *', from: '2026-03-07T23:00:00Z', to: '2026-03-08T23:00:00Z', ticks: ['2026-03-08T07:00:00.000Z'], why: '02:00 and 02:30 both at 03:00 EDT, once' },
  { zone: 'Europe/Berlin', cron: '30 1,2 * * *', from: '2026-03-28T17:00:00Z', to: '2026-03-29T17:00:00Z', ticks: ['2026-03-29T00:30:00.000Z', '2026-03-29T01:00:00.000Z'], why: '01:30 CET, and 02:30 at 03:00 CEST' },
  { zone: 'Australia/Lord_Howe', cron: '15 2,14 * * *', from: '2026-10-03T08:00:00Z', to: '2026-10-04T08:00:00Z', ticks: ['2026-10-03T15:30:00.000Z', '2026-10-04T03:15:00.000Z'], why: 'a 30-minute gap: 02:15 at 02:30 +11' },
  { zone: 'America/Santiago', cron: '30 0,12 * * *', from: '2026-09-05T21:00:00Z', to: '2026-09-06T21:00:00Z', ticks: ['2026-09-06T04:00:00.000Z', '2026-09-06T15:30:00.000Z'], why: 'midnight jumps to 01:00: 00:30 at 01:00 -3' },
  { zone: 'Australia/Sydney', cron: '30 2,14 * * *', from: '2026-10-03T08:00:00Z', to: '2026-10-04T08:00:00Z', ticks: ['2026-10-03T16:00:00.000Z', '2026-10-04T03:30:00.000Z'], why: '02:30 at 03:00 AEDT' },
];

/** Every tick of `s` in (from, to], by chaining `nextTick`. */
function chain(s: Pick<ScheduleDefinition, 'nextTick'>, from: number, to: number): number[] {
  const out: number[] = [];
  for (let t = s.nextTick(new Date(from)); t && t.getTime() <= to; t = s.nextTick(t)) out.push(t.getTime());
  return out;
}

/** croner's own ticks, for comparison. */
const croner = (cron: string, timezone: string) => {
  const c = new Cron(cron, { timezone, paused: true });
  return { nextTick: (after: Date) => c.nextRun(after) };
};

const schedule = (cron: string, timezone: string) => defineSchedule({ name: 'listed-hours', cron, timezone, job: noopJob, overlap: 'allow' });

describe('a cron naming its hours fires each wall time once on a transition day', () => {
  it.each(CASES)('$cron in $zone, $from: $why', ({ zone, cron, from, to, ticks }) => {
    const s = schedule(cron, zone);
    expect(iso(chain(s, Date.parse(from), Date.parse(to)))).toEqual(ticks);
  });

  it.each(CASES)('$cron in $zone, $from: from any instant of the day, the next tick is the next of those', ({ zone, cron, from, to }) => {
    const s = schedule(cron, zone);
    const ticks = chain(s, Date.parse(from) - DAY, Date.parse(to) + DAY);
    for (let t = Date.parse(from); t <= Date.parse(to); t += 5 * MINUTE + 1_000) {
      expect(s.nextTick(new Date(t))?.getTime(), new Date(t).toISOString()).toBe(ticks.find((x) => x > t));
    }
  });
});

describe('everywhere else, the ticks are croner\'s', () => {
  const weeks = [
    ['Europe/Berlin', '2026-10-20T00:00:00Z'],
    ['Europe/Berlin', '2026-03-25T00:00:00Z'],
    ['America/New_York', '2026-10-28T00:00:00Z'],
    ['America/New_York', '2026-03-04T00:00:00Z'],
    ['Australia/Lord_Howe', '2026-04-01T00:00:00Z'],
  ] as const;

  it.each(weeks)('a * or step hour field runs by real time, as croner reads it (%s, the week from %s)', (zone, start) => {
    for (const cron of ['*/15 * * * *', '0 * * * *', '30 */2 * * *', '0 0-23/3 * * *']) {
      const from = Date.parse(start);
      expect(iso(chain(schedule(cron, zone), from, from + 7 * DAY)), cron).toEqual(iso(chain(croner(cron, zone), from, from + 7 * DAY)));
    }
  });

  it.each(weeks)('named hours are croner\'s on ordinary days (%s, the week from %s, less the transition day)', (zone, start) => {
    const transitionDay = CASES.filter((c) => c.zone === zone).map((c) => [Date.parse(c.from), Date.parse(c.to)] as const);
    const off = (t: number) => transitionDay.some(([a, b]) => t >= a && t <= b);
    for (const cron of ['30 1,2 * * *', '0 1,13 * * *', '0 1-3 * * *', '*/30 1 * * *', '15 2,14 * * 1-5', '0 0 1 * *']) {
      const from = Date.parse(start);
      const ours = chain(schedule(cron, zone), from, from + 7 * DAY).filter((t) => !off(t));
      expect(iso(ours), cron).toEqual(iso(chain(croner(cron, zone), from, from + 7 * DAY).filter((t) => !off(t))));
    }
  });

  it('a zone without daylight saving is croner\'s, named hours included', () => {
    for (const zone of ['UTC', 'Asia/Tokyo']) {
      const from = Date.parse('2026-03-01T00:00:00Z');
      expect(iso(chain(schedule('30 1,2 * * *', zone), from, from + 30 * DAY))).toEqual(iso(chain(croner('30 1,2 * * *', zone), from, from + 30 * DAY)));
    }
  });
});

describe.each(DRIVER_KINDS)('a Warden scanning every 5 minutes over the transition day (%s)', (kind) => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it.each(CASES.filter((c) => ['30 1,2 * * *', '0 1,13 * * *', '0 1-2 * * *'].includes(c.cron)))('$cron in $zone from $from enqueues each listed wall time once', async ({ zone, cron, from, to, ticks }) => {
    const tdb = cleanup.add(await createTestDatabase(kind), (t) => t.cleanup());
    const oracle = cleanup.add(await openOracle(tdb), (o) => o.close());
    const clock = new FakeClock(Date.parse(from));
    const s = schedule(cron, zone);
    const w = cleanup.add(createWarden({ database: tdb.url, schema: tdb.schema, logger: silent, clock, schedules: [s], retention: false }), (x) => x.close());
    await w.runSchedulerOnce();
    while (clock.now() < Date.parse(to)) {
      await clock.advance(5 * MINUTE);
      await w.runSchedulerOnce();
    }
    expect(iso((await jobsOf(oracle, s.name)).map((j) => j.tickAt!).sort((a, b) => a - b))).toEqual(ticks);
    expect((await ticksOf(oracle, s.name)).map((t) => [iso([t.tickAt])[0], t.outcome, t.late])).toEqual(ticks.map((t) => [t, 'fired', false]));
  });
});
