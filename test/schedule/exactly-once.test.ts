/**
 * Exactly once per tick, on both drivers:
 * - three Warden instances (separate drivers, like three processes) with the same every-minute schedule and fake
 *   clocks at the same time all scan after each of 1,000 minutes: exactly 1,000 jobs, one per minute boundary,
 *   1,000 `fired` tick rows, no duplicate, none missing, and exactly one compare-and-swap won per tick;
 * - clock reversal: an instance whose clock goes 04:00:01 → 03:00:01 → 04:00:01 fires the 04:00 tick of an
 *   hourly schedule once in total, also when another instance re-deploys the schedule with its clock behind
 *   (the tick row's primary key is the second guard);
 * - clock skew: an instance whose process clock is 90 s ahead of the database (`sqlNow()` null) emits
 *   `clock:skew` and schedules by database time.
 * @module
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type Clock, systemClock } from '../../src/clock/clock.js';
import { FakeClock } from '../../src/clock/fake-clock.js';
import type { Warden } from '../../src/client/warden.js';
import type { WardenEventMap } from '../../src/events/event-map.js';
import { defineSchedule } from '../../src/schedule/define-schedule.js';
import { createTestDatabase, DRIVER_KINDS, type TestDatabase } from '../support/test-databases.js';
import { HOUR, iso, jobsOf, makeWarden, MINUTE, noopJob, openOracle, type Oracle, T0, ticksOf } from './helpers.js';

const TICKS = 1_000;
const INSTANCES = 3;

describe.each(DRIVER_KINDS)('exactly once per tick (%s)', (kind) => {
  let tdb: TestDatabase;
  let oracle: Oracle;
  let wardens: Warden[];

  beforeEach(async () => {
    tdb = await createTestDatabase(kind);
    oracle = await openOracle(tdb);
    wardens = [];
  });

  afterEach(async () => {
    await Promise.allSettled(wardens.map((w) => w.close()));
    await oracle?.close();
    await tdb?.cleanup();
  });

  it(`three instances racing on every scan fire each of ${TICKS} ticks exactly once`, { timeout: 300_000 }, async () => {
    // overlap 'allow': the jobs are never run here, and must not turn later ticks into skips.
    const schedule = defineSchedule({ name: 'every-minute', every: '1m', job: noopJob, overlap: 'allow' });
    const clocks = Array.from({ length: INSTANCES }, () => new FakeClock(T0));
    wardens = clocks.map((clock) => makeWarden(tdb, { schedules: [schedule], clock }));
    const firedEvents: number[] = [];
    for (const w of wardens) w.on('schedule:fired', (e) => firedEvents.push(e.tickAt.getTime()));

    // First call of each: concurrent syncs of the same list at T0 (nothing due yet).
    expect(await Promise.all(wardens.map((w) => w.runSchedulerOnce()))).toEqual([0, 0, 0]);
    let swapsWon = 0;
    for (let i = 1; i <= TICKS; i++) {
      for (const clock of clocks) await clock.advance(MINUTE);
      const advanced = await Promise.all(wardens.map((w) => w.runSchedulerOnce()));
      const won = advanced.reduce((a, b) => a + b, 0);
      if (won !== 1) throw new Error(`Expected exactly one instance to advance the schedule at tick ${i}, got ${won} (${advanced.join(', ')})`);
      swapsWon += won;
    }
    expect(swapsWon).toBe(TICKS);

    const expected = Array.from({ length: TICKS }, (_, i) => T0 + (i + 1) * MINUTE);
    const jobs = await jobsOf(oracle, schedule.name);
    expect(jobs).toHaveLength(TICKS);
    const tickTimes = jobs.map((j) => j.tickAt!).sort((a, b) => a - b);
    expect(new Set(tickTimes).size).toBe(TICKS);
    expect(iso(tickTimes)).toEqual(iso(expected));
    expect(tickTimes.every((t) => t % MINUTE === 0)).toBe(true);

    const rows = await ticksOf(oracle, schedule.name);
    expect(rows).toHaveLength(TICKS);
    expect(rows.filter((r) => r.outcome === 'fired' && r.kind === 'scheduled' && !r.late)).toHaveLength(TICKS);
    expect(iso(rows.map((r) => r.tickAt))).toEqual(iso(expected));
    // Each tick row points at its own job, and each job at its own tick.
    const jobById = new Map(jobs.map((j) => [j.id, j]));
    for (const r of rows) expect(jobById.get(r.jobId!)?.tickAt).toBe(r.tickAt);
    expect(new Set(rows.map((r) => r.jobId)).size).toBe(TICKS);

    expect(await oracle.number("SELECT COUNT(*) FROM (SELECT tick_at FROM {jobs} WHERE schedule_name = 'every-minute' GROUP BY tick_at HAVING COUNT(*) > 1) d")).toBe(0);
    expect(firedEvents.sort((a, b) => a - b)).toEqual(expected);

    const [listed] = await wardens[0]!.schedules.list();
    expect(listed?.nextRunAt?.getTime()).toBe(T0 + (TICKS + 1) * MINUTE);
    expect(listed?.lastTickAt?.getTime()).toBe(T0 + TICKS * MINUTE);
  });

  it('keeps firing every tick when all instances but one go away', async () => {
    const schedule = defineSchedule({ name: 'every-minute', every: '1m', job: noopJob, overlap: 'allow' });
    const clocks = Array.from({ length: INSTANCES }, () => new FakeClock(T0));
    wardens = clocks.map((clock) => makeWarden(tdb, { schedules: [schedule], clock }));
    await Promise.all(wardens.map((w) => w.runSchedulerOnce()));
    for (let i = 1; i <= 10; i++) {
      if (i === 6) await Promise.all(wardens.slice(0, 2).map((w) => w.close()));
      const alive = i < 6 ? wardens : wardens.slice(2);
      for (const clock of clocks) await clock.advance(MINUTE);
      expect((await Promise.all(alive.map((w) => w.runSchedulerOnce()))).reduce((a, b) => a + b, 0)).toBe(1);
    }
    expect(iso((await jobsOf(oracle, 'every-minute')).map((j) => j.tickAt!).sort((a, b) => a - b))).toEqual(
      iso(Array.from({ length: 10 }, (_, i) => T0 + (i + 1) * MINUTE)),
    );
  });

  it('fires the 04:00 tick once when an instance clock goes 04:00:01 → 03:00:01 → 04:00:01', async () => {
    const hourly = defineSchedule({ name: 'hourly', cron: '0 * * * *', job: noopJob, overlap: 'allow' });
    const clock = new FakeClock(T0 + 3 * HOUR + 30 * MINUTE);
    const a = makeWarden(tdb, { schedules: [hourly], clock });
    wardens.push(a);
    await a.runSchedulerOnce(); // sync at 03:30: next run 04:00
    expect((await a.schedules.list())[0]?.nextRunAt?.getTime()).toBe(T0 + 4 * HOUR);

    const results: number[] = [];
    for (const time of [T0 + 4 * HOUR + 1_000, T0 + 3 * HOUR + 1_000, T0 + 4 * HOUR + 1_000]) {
      await clock.set(time);
      results.push(await a.runSchedulerOnce());
    }
    expect(results).toEqual([1, 0, 0]);

    // Another instance whose clock is an hour behind, scanning meanwhile, fires nothing either.
    const behind = new FakeClock(T0 + 3 * HOUR + 1_000);
    const b = makeWarden(tdb, { schedules: [hourly], clock: behind });
    wardens.push(b);
    expect(await b.runSchedulerOnce()).toBe(0);
    await behind.set(T0 + 4 * HOUR + 1_000);
    expect(await b.runSchedulerOnce()).toBe(0);

    const jobs = await jobsOf(oracle, 'hourly');
    expect(iso(jobs.map((j) => j.tickAt!))).toEqual(iso([T0 + 4 * HOUR]));
    expect((await ticksOf(oracle, 'hourly')).map((r) => [r.tickAt, r.outcome])).toEqual([[T0 + 4 * HOUR, 'fired']]);

    // Time moving on from there fires 05:00, once.
    await clock.set(T0 + 5 * HOUR + 1_000);
    await behind.set(T0 + 5 * HOUR + 1_000);
    expect((await Promise.all([a.runSchedulerOnce(), b.runSchedulerOnce()])).reduce((x, y) => x + y, 0)).toBe(1);
    expect(iso((await jobsOf(oracle, 'hourly')).map((j) => j.tickAt!))).toEqual(iso([T0 + 4 * HOUR, T0 + 5 * HOUR]));
  });

  /** Fires 04:00 under v1, then re-deploys a changed v2 from a host whose clock reads 03:00:01 and scans at 04:00:01. */
  async function redeployBehind(): Promise<{ b: Warden; behind: FakeClock; fired: WardenEventMap['schedule:fired'][] }> {
    const v1 = defineSchedule({ name: 'hourly', cron: '0 * * * *', job: noopJob, overlap: 'allow' });
    const clock = new FakeClock(T0 + 3 * HOUR + 30 * MINUTE);
    const a = makeWarden(tdb, { schedules: [v1], clock });
    wardens.push(a);
    await a.runSchedulerOnce();
    await clock.set(T0 + 4 * HOUR + 1_000);
    expect(await a.runSchedulerOnce()).toBe(1);

    // A new deploy on a host whose clock reads 03:00:01, with a changed pattern (the same ticks, but a changed timing
    // resets next_run_at, to the first tick after that host's time).
    const v2 = defineSchedule({ name: 'hourly', cron: '0 */1 * * *', job: noopJob, overlap: 'queue-one' });
    const behind = new FakeClock(T0 + 3 * HOUR + 1_000);
    const b = makeWarden(tdb, { schedules: [v2], clock: behind });
    wardens.push(b);
    await b.runSchedulerOnce();
    expect((await b.schedules.list())[0]?.nextRunAt?.getTime()).toBe(T0 + 4 * HOUR);
    await behind.set(T0 + 4 * HOUR + 1_000);
    const fired: WardenEventMap['schedule:fired'][] = [];
    b.on('schedule:fired', (e) => fired.push(e));
    await b.runSchedulerOnce();
    return { b, behind, fired };
  }

  it('does not run a handled tick again when a re-deploy with a clock behind moves next_run_at back onto it', async () => {
    const { b } = await redeployBehind();
    // The 04:00 tick row already exists: no second job, no second tick row; the schedule still moves on.
    expect(iso((await jobsOf(oracle, 'hourly')).map((j) => j.tickAt!))).toEqual(iso([T0 + 4 * HOUR]));
    expect(await oracle.number("SELECT COUNT(*) FROM {schedule_ticks} WHERE schedule_name = 'hourly'")).toBe(1);
    expect((await b.schedules.list())[0]?.nextRunAt?.getTime()).toBe(T0 + 5 * HOUR);
  });

  it('does not report a tick handled before as fired again (schedule:fired means a run was enqueued)', async () => {
    const { fired } = await redeployBehind();
    expect(fired).toEqual([]);
  });

  it.each([90_000, -90_000])('warns about a process clock %i ms off the database and schedules by database time', async (offset) => {
    // The real clock for timers, 90 s off for now(), and no injected SQL time: the database decides.
    const skewed: Clock = {
      now: () => Date.now() + offset,
      sqlNow: () => null,
      sleep: (ms, signal) => systemClock.sleep(ms, signal),
      setTimer: (ms, fn) => systemClock.setTimer(ms, fn),
    };
    const minutely = defineSchedule({ name: 'minutely', cron: '* * * * *', job: noopJob, overlap: 'allow' });
    const warden = makeWarden(tdb, { schedules: [minutely], clock: skewed, scheduler: { clockSkewWarning: '30s' } });
    wardens.push(warden);
    const skews: WardenEventMap['clock:skew'][] = [];
    warden.on('clock:skew', (e) => skews.push(e));

    const before = (await tdb.driver.dbNow()).getTime();
    await warden.runSchedulerOnce(); // sync, then a scan
    const after = (await tdb.driver.dbNow()).getTime();

    expect(skews).toHaveLength(1);
    expect(skews[0]!.thresholdMs).toBe(30_000);
    expect(Math.abs(skews[0]!.skewMs - offset)).toBeLessThan(5_000);

    // next_run_at is the next minute after the database's now, not after the skewed process clock's.
    const nextMinute = (t: number) => (Math.floor(t / MINUTE) + 1) * MINUTE;
    const nextRunAt = (await warden.schedules.list())[0]!.nextRunAt!.getTime();
    const fromDb = new Set([nextMinute(before), nextMinute(after)]);
    const firedMeanwhile = (await jobsOf(oracle, 'minutely')).length > 0;
    // (Unless the database's minute turned during the call, in which case that tick fired and moved it on.)
    if (!firedMeanwhile) {
      expect(fromDb.has(nextRunAt), `next_run_at ${new Date(nextRunAt).toISOString()}`).toBe(true);
      expect(nextRunAt).not.toBe(nextMinute(before + offset));
    }

    // A scan now: the process clock is already past the next tick (it is at most 60 s away, the skew is 90 s),
    // the database is not, so nothing may fire before its database time.
    await warden.runSchedulerOnce();
    const scannedBy = (await tdb.driver.dbNow()).getTime();
    // At most one warning a minute: the sync and the two scans above warned once.
    expect(skews).toHaveLength(1);
    const jobs = await jobsOf(oracle, 'minutely');
    for (const j of jobs) expect(j.tickAt!, 'a job fired before its tick in database time').toBeLessThanOrEqual(scannedBy);
    expect(jobs.filter((j) => j.tickAt! > scannedBy)).toEqual([]);
    expect(Date.now() + 90_000).toBeGreaterThanOrEqual(nextMinute(scannedBy));
  });

  it('does not warn when the process clock agrees with the database', async () => {
    const minutely = defineSchedule({ name: 'minutely', cron: '* * * * *', job: noopJob, overlap: 'allow' });
    const warden = makeWarden(tdb, { schedules: [minutely], scheduler: { clockSkewWarning: '30s' } });
    wardens.push(warden);
    const skews: unknown[] = [];
    warden.on('clock:skew', (e) => skews.push(e));
    await warden.runSchedulerOnce();
    await warden.runSchedulerOnce();
    expect(skews).toEqual([]);
  });
});
