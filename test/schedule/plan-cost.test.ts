/**
 * What planning a schedule costs after a long outage, counted in evaluations of its cron pattern (calls to croner's
 * `nextRun`, spied on), never timed: a plan lists at most MAX_RECORDED_TICKS ticks and counts the rest, so its
 * reads stay bounded (some 2 × MAX_RECORDED_TICKS + 500) however many ticks the outage held. Before, every tick
 * inside the misfire window was read one by one: 172,800 reads for a minutely pattern down 120 days with
 * `within: '365d'`, ~190,000 for `*\/5 * 9-17 * * *` down 30 days from 17:59:55 (its one interval at that tick,
 * 15 h, hid the outage's length from the skip-ahead). Also: the reads of a whole scan through a Warden (both
 * drivers), and {@link TickSeries} (newest ticks, counts) against reading every tick.
 * @module
 */
import { Cron } from 'croner';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { FakeClock } from '../../src/clock/fake-clock.js';
import { createWarden } from '../../src/client/warden.js';
import { defineSchedule, type ScheduleDefinition } from '../../src/schedule/define-schedule.js';
import { MAX_RECORDED_TICKS, planTicks } from '../../src/schedule/plan-ticks.js';
import { TickSeries } from '../../src/schedule/tick-series.js';
import { Cleanup } from '../support/cleanup.js';
import { createTestDatabase, DRIVER_KINDS } from '../support/test-databases.js';
import { HOUR, iso, jobsOf, MINUTE, noopJob, openOracle, silent, T0 } from './helpers.js';

const SECOND = 1_000;
const DAY = 24 * HOUR;
/** The most reads any plan below may make: the listing cap twice over, plus the searches and the count. */
const PLAN_READS = 2 * MAX_RECORDED_TICKS + 500;

/** Runs `fn`, counting croner evaluations (`Cron.prototype.nextRun`) during it. */
function counted<T>(fn: () => T): { result: T; reads: number } {
  const spy = vi.spyOn(Cron.prototype, 'nextRun');
  try {
    const result = fn();
    return { result, reads: spy.mock.calls.length };
  } finally {
    spy.mockRestore();
  }
}

const fired = (ticks: { tickAt: Date; action: string; late: boolean }[]) => ticks.filter((t) => t.action === 'fire').map((t) => [t.tickAt.toISOString(), t.late]);

describe('planTicks after a long outage reads the pattern a bounded number of times', () => {
  const minutely = (misfire: Parameters<typeof defineSchedule>[0]['misfire']) => defineSchedule({ name: 'minutely', cron: '* * * * *', job: noopJob, misfire });
  const now = new Date(T0 + 120 * DAY + 30 * SECOND); // every scheduler down for 120 days: 172,801 ticks due

  it('run-once within 365d: the newest missed tick fires late, the on-time one on time', () => {
    const s = minutely({ policy: 'run-once', within: '365d' });
    const { result: plan, reads } = counted(() => planTicks(s, new Date(T0), now));
    expect(fired(plan.ticks)).toEqual([[iso([T0 + 120 * DAY - MINUTE])[0], true], [iso([T0 + 120 * DAY])[0], false]]);
    // The newest 1,000 are listed (the window holds them all), the rest counted: exactly, the ticks being even.
    expect(plan.ticks).toHaveLength(MAX_RECORDED_TICKS);
    expect(plan.unlistedMissed).toBe(120 * 24 * 60 + 1 - MAX_RECORDED_TICKS);
    expect(plan.nextRunAt?.getTime()).toBe(T0 + 120 * DAY + MINUTE);
    expect(reads).toBeLessThan(PLAN_READS);
  });

  it('catch-up (maxCount 10) within 365d: the newest 10 missed ticks fire late', () => {
    const s = minutely({ policy: 'catch-up', within: '365d', maxCount: 10 });
    const { result: plan, reads } = counted(() => planTicks(s, new Date(T0), now));
    const late = Array.from({ length: 10 }, (_, i) => [iso([T0 + 120 * DAY - (10 - i) * MINUTE])[0], true]);
    expect(fired(plan.ticks)).toEqual([...late, [iso([T0 + 120 * DAY])[0], false]]);
    expect(reads).toBeLessThan(PLAN_READS);
  });

  describe('an irregular pattern whose interval at the outage start is long: */5 * 9-17 * * *, down 30 days from 17:59:55', () => {
    const lastTick = new Date(Date.UTC(2040, 0, 2, 17, 59, 55));
    const at = new Date(Date.UTC(2040, 1, 1, 12, 0, 30));
    const business = (policy: 'run-once' | 'skip') => defineSchedule({ name: 'business-hours', cron: '*/5 * 9-17 * * *', job: noopJob, misfire: { policy } });
    // 6,480 ticks a business day: the 17:59:55 tick, 29 whole days, and 09:00:00–11:59:20 of the 1st.
    const unlisted = 1 + 29 * 6_480 + 2_153;

    it('run-once (default window): the newest missed tick (11:59:25, 65 s late) fires late, with the 13 on-time ones', () => {
      const s = business('run-once');
      const { result: plan, reads } = counted(() => planTicks(s, lastTick, at));
      expect(plan.ticks[0]).toEqual({ tickAt: new Date('2040-02-01T11:59:25Z'), action: 'fire', late: true });
      expect(plan.ticks.slice(1).map((t) => [t.action, t.late])).toEqual(Array(13).fill(['fire', false]));
      // The ~190,000 older ticks are counted, not listed, and the count is close (it is extrapolated once the
      // reads run out).
      expect(Math.abs(plan.unlistedMissed - unlisted) / unlisted).toBeLessThan(0.05);
      expect(reads).toBeLessThan(1_000);
    });

    it('skip: the on-time ticks fire, every older one is counted', () => {
      const s = business('skip');
      const { result: plan, reads } = counted(() => planTicks(s, lastTick, at));
      expect(plan.ticks.map((t) => [t.action, t.late])).toEqual(Array(13).fill(['fire', false]));
      expect(Math.abs(plan.unlistedMissed - unlisted - 1) / unlisted).toBeLessThan(0.05);
      expect(reads).toBeLessThan(1_000);
    });
  });

  it('a minutely pattern down ten years: the newest missed tick fires, the rest counted exactly', () => {
    const s = defineSchedule({ name: 'minutely', cron: '* * * * *', job: noopJob, misfire: { grace: '5s' } });
    const { result: plan, reads } = counted(() => planTicks(s, new Date(T0 + MINUTE), new Date(T0 + 3_650 * DAY + 30 * SECOND)));
    expect(plan.ticks.map((t) => [t.tickAt.getTime(), t.action, t.late])).toEqual([[T0 + 3_650 * DAY, 'fire', true]]);
    expect(plan.unlistedMissed).toBe(3_650 * 24 * 60 - 1);
    expect(reads).toBeLessThan(1_000);
  });

  it('a scan on time reads the pattern twice: the due tick, and the one after it', () => {
    const s = minutely({});
    const { result: plan, reads } = counted(() => planTicks(s, new Date(T0 + MINUTE), new Date(T0 + MINUTE + 500)));
    expect(fired(plan.ticks)).toEqual([[iso([T0 + MINUTE])[0], false]]);
    expect(reads).toBe(2);
  });
});

describe.each(DRIVER_KINDS)('a scan after a 120-day outage (%s)', (kind) => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('fires the newest missed tick, reading the pattern a bounded number of times', async () => {
    const tdb = cleanup.add(await createTestDatabase(kind), (t) => t.cleanup());
    const oracle = cleanup.add(await openOracle(tdb), (o) => o.close());
    const clock = new FakeClock(T0);
    const s = defineSchedule({ name: 'minutely', cron: '* * * * *', job: noopJob, misfire: { policy: 'run-once', within: '365d' } });
    const w = cleanup.add(createWarden({ database: tdb.url, schema: tdb.schema, logger: silent, clock, schedules: [s], retention: false }), (x) => x.close());
    await w.runSchedulerOnce();
    await clock.set(T0 + 120 * DAY + 30 * SECOND);
    const spy = vi.spyOn(Cron.prototype, 'nextRun');
    try {
      expect(await w.runSchedulerOnce()).toBe(1);
      expect(spy.mock.calls.length).toBeLessThan(PLAN_READS);
    } finally {
      spy.mockRestore();
    }
    // Overlap skip: the on-time tick waits behind the late run.
    expect((await jobsOf(oracle, 'minutely')).map((j) => j.tickAt)).toEqual([T0 + 120 * DAY - MINUTE]);
  });
});

describe('TickSeries: what it reads back agrees with reading every tick', () => {
  /** Every tick of the series from `origin` in [from, to), read one by one. */
  function every(s: ScheduleDefinition, origin: number, from: number, to: number): number[] {
    const out: number[] = [];
    for (let t: number | null = origin; t !== null && t < to; t = s.nextTick(new Date(t))?.getTime() ?? null) if (t >= from) out.push(t);
    return out;
  }
  const cases: { cron: string; timezone?: string; span: number }[] = [
    { cron: '* * * * *', span: 3 * DAY },
    { cron: '*/5 * 9-17 * * *', span: 2 * DAY },
    { cron: '* 0 0 * * *', span: 40 * DAY },
    { cron: '0 9,17 * * 1-5', span: 400 * DAY },
    { cron: '0,1 * * * * *', span: 2 * DAY },
    { cron: '30 1,2 * * *', timezone: 'Europe/Berlin', span: 400 * DAY },
  ];

  it.each(cases)('$cron ($timezone): the newest k ticks, the newest before a time, and the count', ({ cron, timezone, span }) => {
    const s = defineSchedule({ name: 'series', cron, timezone, job: noopJob });
    const origin = Date.UTC(2026, 0, 1, 0, 0, 0);
    const series = new TickSeries(s, origin);
    const all = every(s, origin, origin, origin + span);
    for (const k of [1, 7, 100, 1_000]) expect(series.newest(origin, origin + span, k), `k = ${k}`).toEqual(all.slice(-k));
    const from = all[Math.floor(all.length / 3)]! + 1;
    expect(series.newest(from, origin + span, 50)).toEqual(all.filter((t) => t >= from).slice(-50));
    expect(series.newestBefore(from)).toBe(all.filter((t) => t < from).at(-1));
    const count = series.count(origin, origin + span);
    // Exact while the reads last (up to some hundreds of ticks, and any run of evenly spaced ones), close after.
    if (all.length <= 300) expect(count).toBe(all.length);
    else expect(Math.abs(count - all.length) / all.length).toBeLessThan(0.1);
  });

  it('counts `every` ticks by arithmetic, the series start included when it is not a multiple', () => {
    const s = defineSchedule({ name: 'series', every: '1m', job: noopJob });
    expect(new TickSeries(s, T0).count(T0, T0 + 10 * MINUTE)).toBe(10);
    expect(new TickSeries(s, T0 + 30 * SECOND).count(T0 + 30 * SECOND, T0 + 10 * MINUTE)).toBe(10);
    expect(new TickSeries(s, T0).count(T0 + SECOND, T0 + 10 * MINUTE + 1)).toBe(10);
  });
});
