/**
 * Schedule policies and operations, on both drivers:
 * - misfire: every scheduler down for 5 ticks, then one scan: `skip` runs none, `run-once` exactly one (the
 *   newest), `catch-up` one per missed tick within its window (at most `maxCount`); missed ticks are recorded;
 *   an irregular cron's newest missed tick still runs after an outage too long to list;
 * - overlap, with a started worker on a fake clock and runs that take 2.5 intervals: `skip` never has two active
 *   runs and records (and emits) every skipped tick; `queue-one` never has two waiting; `allow` overlaps; `replace`
 *   cancels the running one (its signal aborts with LeaseLostError at the next heartbeat) and enqueues the new one;
 * - sync: a schedule removed from the code stops firing; a scheduler with no schedules removes nothing; a changed
 *   pattern resets `next_run_at`; a renamed schedule is a new schedule;
 * - operations: list, pause (persisted: another instance does not fire it), resume (from the next future tick of
 *   the stored definition, no misfires for the paused time; a schedule not paused keeps its due tick), trigger (a
 *   `triggered` tick with its actor, also while paused; a deduplicated one is reported skipped), tick history.
 * @module
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FakeClock } from '../../src/clock/fake-clock.js';
import type { Warden } from '../../src/client/warden.js';
import { InvalidNameError, InvalidOptionError, LeaseLostError, ScheduleNotFoundError } from '../../src/errors.js';
import type { WardenEventMap } from '../../src/events/event-map.js';
import { defineJob } from '../../src/job/define-job.js';
import { defineSchedule, type MisfirePolicy, type OverlapPolicy, type ScheduleDefinition } from '../../src/schedule/define-schedule.js';
import { deferred, type Deferred, TestClock } from '../runtime/helpers.js';
import { createTestDatabase, DRIVER_KINDS, type TestDatabase } from '../support/test-databases.js';
import { activeCounts, HOUR, iso, jobsOf, makeWarden, type MakeWardenOptions, MINUTE, noopJob, openOracle, type Oracle, T0, ticksOf, until } from './helpers.js';

const SECOND = 1_000;

/** Collects every payload of `event` from now on. */
function record<K extends keyof WardenEventMap>(warden: Warden, event: K): WardenEventMap[K][] {
  const seen: WardenEventMap[K][] = [];
  warden.on(event, (payload) => seen.push(payload));
  return seen;
}

describe.each(DRIVER_KINDS)('schedule policies (%s)', (kind) => {
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

  function open(options: MakeWardenOptions): Warden {
    const warden = makeWarden(tdb, options);
    wardens.push(warden);
    return warden;
  }

  // ------------------------------------------------------------------------------------------------ misfire

  describe('misfire: all schedulers down for 5 ticks', () => {
    /**
     * Syncs at T0, runs three ticks normally (+1m…+3m), then time jumps 5m30s with no scan (the +4m…+8m ticks
     * are all more than the 5s grace late) and one scan runs at +8m30s.
     */
    async function outage(misfire: { policy: MisfirePolicy; within?: `${number}m`; maxCount?: number }) {
      const schedule = defineSchedule({ name: 'minutely', cron: '* * * * *', job: noopJob, overlap: 'allow', misfire: { grace: '5s', ...misfire } });
      const clock = new FakeClock(T0);
      const warden = open({ schedules: [schedule], clock });
      await warden.runSchedulerOnce();
      for (let i = 0; i < 3; i++) {
        await clock.advance(MINUTE);
        await warden.runSchedulerOnce();
      }
      expect((await jobsOf(oracle, 'minutely')).map((j) => j.tickAt! - T0)).toEqual([1, 2, 3].map((m) => m * MINUTE));
      const fired = record(warden, 'schedule:fired');
      const missed = record(warden, 'schedule:missed');
      await clock.advance(5 * MINUTE + 30 * SECOND);
      await warden.runSchedulerOnce();
      const jobs = (await jobsOf(oracle, 'minutely')).slice(3);
      const ticks = (await ticksOf(oracle, 'minutely')).filter((t) => t.tickAt > T0 + 3 * MINUTE);
      const nextRunAt = (await warden.schedules.list())[0]!.nextRunAt;
      return { warden, clock, fired, missed, jobs, ticks, nextRunAt };
    }

    const outageTicks = [4, 5, 6, 7, 8].map((m) => T0 + m * MINUTE);

    it('skip: no extra run; the 5 ticks are recorded missed and emitted', async () => {
      const { jobs, ticks, fired, missed, nextRunAt } = await outage({ policy: 'skip' });
      expect(jobs).toEqual([]);
      expect(fired).toEqual([]);
      expect(ticks.map((t) => [t.tickAt, t.outcome, t.late])).toEqual(outageTicks.map((t) => [t, 'missed', true]));
      expect(missed.map((e) => e.tickAt.getTime())).toEqual(outageTicks);
      expect(nextRunAt?.getTime()).toBe(T0 + 9 * MINUTE);
    });

    it('run-once: exactly one extra run, for the newest missed tick, marked late', async () => {
      const { jobs, ticks, fired, missed, nextRunAt } = await outage({ policy: 'run-once' });
      expect(jobs.map((j) => j.tickAt)).toEqual([T0 + 8 * MINUTE]);
      expect(fired.map((e) => [e.tickAt.getTime(), e.late, e.actor])).toEqual([[T0 + 8 * MINUTE, true, null]]);
      expect(ticks.filter((t) => t.outcome === 'missed').map((t) => t.tickAt)).toEqual(outageTicks.slice(0, 4));
      expect(ticks.filter((t) => t.outcome === 'fired').map((t) => [t.tickAt, t.late, t.jobId])).toEqual([[T0 + 8 * MINUTE, true, jobs[0]!.id]]);
      expect(missed).toHaveLength(4);
      expect(nextRunAt?.getTime()).toBe(T0 + 9 * MINUTE);
    });

    it('catch-up (within 10m, overlap allow): exactly 5 extra runs, one per missed tick, none missed', async () => {
      const { jobs, ticks, fired, missed } = await outage({ policy: 'catch-up', within: '10m' });
      expect(jobs.map((j) => j.tickAt)).toEqual(outageTicks);
      expect(ticks.map((t) => [t.tickAt, t.outcome, t.late])).toEqual(outageTicks.map((t) => [t, 'fired', true]));
      expect(fired).toHaveLength(5);
      expect(missed).toEqual([]);
    });

    it('catch-up runs only the newest maxCount', async () => {
      const { jobs, ticks } = await outage({ policy: 'catch-up', within: '10m', maxCount: 2 });
      expect(jobs.map((j) => j.tickAt)).toEqual(outageTicks.slice(3));
      expect(ticks.filter((t) => t.outcome === 'missed').map((t) => t.tickAt)).toEqual(outageTicks.slice(0, 3));
    });

    it('catch-up with the default window (one interval plus grace) runs only the ticks within it', async () => {
      const { jobs } = await outage({ policy: 'catch-up' });
      // +8m is 30s late (within 65s); +7m is 90s late.
      expect(jobs.map((j) => j.tickAt)).toEqual([T0 + 8 * MINUTE]);
    });

    it('back to normal after the outage: the next tick fires on time, once', async () => {
      const { warden, clock } = await outage({ policy: 'run-once' });
      await clock.advance(30 * SECOND); // +9m
      expect(await warden.runSchedulerOnce()).toBe(1);
      const ticks = await ticksOf(oracle, 'minutely');
      expect(ticks.at(-1)).toMatchObject({ tickAt: T0 + 9 * MINUTE, outcome: 'fired', late: false });
      expect(await jobsOf(oracle, 'minutely')).toHaveLength(3 + 1 + 1);
    });
  });

  describe('misfire: the documented example (hourly, all instances down 02:10–05:20)', () => {
    /** Syncs at 01:30, fires 02:00, goes down at 02:10 and scans once at 05:20 (03:00, 04:00, 05:00 missed). */
    async function downFrom0210To0520(overlap: OverlapPolicy, misfire: { policy: MisfirePolicy; within?: `${number}h` }) {
      const schedule = defineSchedule({ name: 'hourly', cron: '0 * * * *', timezone: 'Europe/London', job: noopJob, overlap, misfire });
      const clock = new FakeClock(T0 + HOUR + 30 * MINUTE);
      const warden = open({ schedules: [schedule], clock });
      await warden.runSchedulerOnce();
      await clock.set(T0 + 2 * HOUR);
      await warden.runSchedulerOnce();
      await warden.drain(); // the 02:00 run is done
      await clock.set(T0 + 5 * HOUR + 20 * MINUTE);
      await warden.runSchedulerOnce();
      const ticks = (await ticksOf(oracle, 'hourly')).filter((t) => t.tickAt > T0 + 2 * HOUR);
      return { warden, clock, ticks: ticks.map((t) => [new Date(t.tickAt).toISOString().slice(11, 16), t.outcome, t.late]) };
    }

    it('skip: nothing runs until 06:00', async () => {
      const { warden, clock, ticks } = await downFrom0210To0520('skip', { policy: 'skip' });
      expect(ticks).toEqual([['03:00', 'missed', true], ['04:00', 'missed', true], ['05:00', 'missed', true]]);
      expect((await warden.schedules.list())[0]?.nextRunAt?.getTime()).toBe(T0 + 6 * HOUR);
      await clock.set(T0 + 6 * HOUR);
      expect(await warden.runSchedulerOnce()).toBe(1);
      expect((await jobsOf(oracle, 'hourly')).map((j) => j.tickAt)).toEqual([T0 + 2 * HOUR, T0 + 6 * HOUR]);
    });

    it('run-once (default window): one run at 05:20 for the 05:00 tick, marked late; 03:00 and 04:00 missed', async () => {
      const { ticks } = await downFrom0210To0520('skip', { policy: 'run-once' });
      expect(ticks).toEqual([['03:00', 'missed', true], ['04:00', 'missed', true], ['05:00', 'fired', true]]);
    });

    it("catch-up within 6h (overlap allow): three runs at 05:20, for 03:00, 04:00 and 05:00", async () => {
      const { ticks } = await downFrom0210To0520('allow', { policy: 'catch-up', within: '6h' });
      expect(ticks).toEqual([['03:00', 'fired', true], ['04:00', 'fired', true], ['05:00', 'fired', true]]);
      expect(await jobsOf(oracle, 'hourly')).toHaveLength(4);
    });

    it('catch-up within 6h with overlap skip: only the first of them runs', async () => {
      const { ticks } = await downFrom0210To0520('skip', { policy: 'catch-up', within: '6h' });
      expect(ticks).toEqual([['03:00', 'fired', true], ['04:00', 'skipped', true], ['05:00', 'skipped', true]]);
    });
  });

  // ------------------------------------------------------------------------------------------------ overlap

  describe('misfire: an irregular cron after an outage long enough to be skipped over', () => {
    it('run-once (default window): the newest missed tick, within its own interval plus the grace, runs once, late', async () => {
      // Every minute during business hours: the 17:59 tick's own interval is 15h01m, the outage began at 10:00
      // the day before, where ticks are a minute apart (1,019 ticks before 17:59: too many to list, so counted).
      const clock = new FakeClock(Date.parse('2026-03-02T09:59:30Z'));
      const warden = open({ schedules: [defineSchedule({ name: 'biz', cron: '* 9-17 * * *', job: noopJob })], clock });
      await warden.runSchedulerOnce();
      await clock.set(Date.parse('2026-03-03T18:30:00Z'));
      const missed = record(warden, 'schedule:missed');
      const fired = record(warden, 'schedule:fired');
      expect(await warden.runSchedulerOnce()).toBe(1);
      expect((await ticksOf(oracle, 'biz')).map((t) => [iso([t.tickAt])[0], t.outcome, t.late])).toEqual([['2026-03-03T17:59:00.000Z', 'fired', true]]);
      expect(fired.map((e) => [e.tickAt.toISOString(), e.late])).toEqual([['2026-03-03T17:59:00.000Z', true]]);
      expect(missed).toEqual([{ schedule: 'biz', tickAt: new Date('2026-03-02T10:00:00Z'), count: 1_019 }]);
      expect((await warden.schedules.list())[0]?.nextRunAt?.toISOString()).toBe('2026-03-04T09:00:00.000Z');
    });
  });

  describe('overlap, with a started worker and runs of 2.5 intervals', () => {
    const INTERVAL = MINUTE;
    const RUNTIME = 2.5 * INTERVAL;
    const STEP = 30 * SECOND;
    const TICKS = 10;

    interface Run {
      id: string;
      startedAt: number;
      gate: Deferred;
    }

    let clock: TestClock;
    /** Handlers running now, by job id. */
    let running: Map<string, Run>;
    let maxConcurrent: number;
    /** Abort reasons seen by handlers, by job id. */
    let aborts: Map<string, unknown>;
    /** Set when the test is over: runs started from then on return at once, so the worker can stop. */
    let tearingDown: boolean;

    const slowJob = defineJob({
      name: 'slow-job',
      retry: { maxAttempts: 1 },
      handler: async (_payload, ctx) => {
        if (tearingDown) return;
        const run: Run = { id: ctx.job.id, startedAt: clock.now(), gate: deferred() };
        running.set(run.id, run);
        maxConcurrent = Math.max(maxConcurrent, running.size);
        try {
          await new Promise<void>((resolve, reject) => {
            ctx.signal.addEventListener('abort', () => {
              aborts.set(run.id, ctx.signal.reason);
              reject(ctx.signal.reason);
            }, { once: true });
            void run.gate.promise.then(resolve);
          });
        } finally {
          running.delete(run.id);
        }
      },
    });

    beforeEach(() => {
      clock = new TestClock(T0);
      running = new Map();
      maxConcurrent = 0;
      aborts = new Map();
      tearingDown = false;
    });

    afterEach(async () => {
      // Let every handler return (and any run claimed meanwhile return at once), so the worker stops at once.
      tearingDown = true;
      for (const run of running.values()) run.gate.resolve();
      await Promise.allSettled(wardens.map((w) => w.close()));
    });

    interface Simulation {
      warden: Warden;
      schedule: ScheduleDefinition;
      fired: WardenEventMap['schedule:fired'][];
      skipped: WardenEventMap['schedule:skipped'][];
      replaced: WardenEventMap['schedule:replaced'][];
      /** Largest numbers of the schedule's jobs waiting (queued/retrying) and running seen in the database. */
      maxWaiting: number;
      maxRunning: number;
      maxActive: number;
    }

    /**
     * A schedule firing every minute for TICKS minutes while a started worker (concurrency `concurrency`) runs its
     * jobs, each taking RUNTIME of fake time. Fake time moves in 30 s steps; in each: runs that have taken RUNTIME
     * are released, then on a minute boundary one scheduler pass runs; after each, the test waits for the worker
     * to settle (every job claimable by a free slot claimed, every finished run written) and samples the database.
     */
    async function simulate(overlap: OverlapPolicy, concurrency: number): Promise<Simulation> {
      const schedule = defineSchedule({ name: `overlap-${overlap}`, every: '1m', job: slowJob, overlap });
      const warden = open({ schedules: [schedule], clock });
      const fired = record(warden, 'schedule:fired');
      const skipped = record(warden, 'schedule:skipped');
      const replaced = record(warden, 'schedule:replaced');
      const cancelled = new Set<string>();
      warden.on('schedule:replaced', (e) => e.cancelledJobIds.forEach((id) => cancelled.add(id)));
      const sim: Simulation = { warden, schedule, fired, skipped, replaced, maxWaiting: 0, maxRunning: 0, maxActive: 0 };

      await warden.runSchedulerOnce(); // sync at T0
      // The worker only: scheduler passes are run by the test, one per minute of fake time.
      await warden.start({ scheduler: false, concurrency, lease: '1h', heartbeat: '10s', pollInterval: '1h', rescueInterval: '1h' });
      await clock.waitForTimers(3, 'the started worker to be idle');

      const settle = async (what: string) => {
        const live = () => [...running.keys()].filter((id) => !cancelled.has(id)).join(',');
        let sample = { waiting: 0, running: 0 };
        await until(async () => {
          // The counts are a settled state only if no handler started or ended while they were read, and the
          // sample is that same read: a second read could catch the next run claimed while the previous one's
          // ending is still being written (the slot frees when the handler returns, before its ending commits).
          const before = live();
          const counts = await activeCounts(oracle, schedule.name);
          const after = live();
          if (before !== after) return false;
          sample = counts;
          return counts.running === (after === '' ? 0 : after.split(',').length) && (counts.waiting === 0 || running.size >= concurrency);
        }, `the worker to settle (${what})`);
        sim.maxWaiting = Math.max(sim.maxWaiting, sample.waiting);
        sim.maxRunning = Math.max(sim.maxRunning, sample.running);
        sim.maxActive = Math.max(sim.maxActive, sample.waiting + sample.running);
      };

      for (let elapsed = STEP; elapsed <= TICKS * INTERVAL; elapsed += STEP) {
        await clock.advance(STEP);
        // A replaced run is aborted by the first heartbeat after its cancellation (heartbeats are every 10s).
        await until(() => ![...running.keys()].some((id) => cancelled.has(id)), `replaced runs to be aborted by +${elapsed}ms`);
        for (const run of running.values()) if (clock.now() - run.startedAt >= RUNTIME) run.gate.resolve();
        await settle(`+${elapsed}ms, runs released`);
        if (elapsed % INTERVAL === 0) {
          await warden.runSchedulerOnce();
          await settle(`+${elapsed}ms, after the scheduler pass`);
        }
      }
      return sim;
    }

    const minute = (m: number) => T0 + m * MINUTE;
    const tickTimes = (events: { tickAt: Date }[]) => events.map((e) => e.tickAt.getTime());

    it('skip: never two active runs; every skipped tick is recorded and emitted', async () => {
      const sim = await simulate('skip', 10);
      expect(sim.maxActive).toBe(1);
      expect(maxConcurrent).toBe(1);
      // A run started at +1m ends at +3m30s, so +2m and +3m are skipped and +4m fires; and so on.
      expect(iso(tickTimes(sim.fired))).toEqual(iso([1, 4, 7, 10].map(minute)));
      expect(iso(tickTimes(sim.skipped))).toEqual(iso([2, 3, 5, 6, 8, 9].map(minute)));
      expect(sim.skipped.every((e) => e.reason === 'overlap' && e.schedule === sim.schedule.name)).toBe(true);
      const ticks = await ticksOf(oracle, sim.schedule.name);
      expect(ticks.filter((t) => t.outcome === 'skipped').map((t) => t.tickAt)).toEqual(tickTimes(sim.skipped));
      expect(ticks.filter((t) => t.outcome === 'skipped').every((t) => t.jobId === null)).toBe(true);
      expect(ticks.filter((t) => t.outcome === 'fired').map((t) => t.tickAt)).toEqual(tickTimes(sim.fired));
      expect(await jobsOf(oracle, sim.schedule.name)).toHaveLength(4);
    });

    it('queue-one: never two waiting runs; the waiting one runs when the previous ends', async () => {
      const sim = await simulate('queue-one', 1);
      expect(sim.maxWaiting).toBe(1);
      expect(sim.maxRunning).toBe(1);
      // +1m runs; +2m waits; +3m is skipped (one waiting); +2m's run starts when +1m's ends (+3m30s); …
      expect(iso(tickTimes(sim.fired))).toEqual(iso([1, 2, 4, 6, 9].map(minute)));
      expect(iso(tickTimes(sim.skipped))).toEqual(iso([3, 5, 7, 8, 10].map(minute)));
      const ticks = await ticksOf(oracle, sim.schedule.name);
      expect(ticks.filter((t) => t.outcome === 'skipped').map((t) => t.tickAt)).toEqual(tickTimes(sim.skipped));
      const jobs = await jobsOf(oracle, sim.schedule.name);
      expect(jobs.map((j) => j.state)).toEqual(['completed', 'completed', 'completed', 'running', 'queued']);
    });

    it('allow: every tick fires and the runs overlap', async () => {
      const sim = await simulate('allow', 10);
      expect(iso(tickTimes(sim.fired))).toEqual(iso([1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map(minute)));
      expect(sim.skipped).toEqual([]);
      // Runs of 2.5 minutes started every minute: three at a time.
      expect(maxConcurrent).toBe(3);
      expect(sim.maxRunning).toBe(3);
      expect((await ticksOf(oracle, sim.schedule.name)).every((t) => t.outcome === 'fired')).toBe(true);
    });

    it('replace: each tick cancels the running run (aborted with LeaseLostError at the next heartbeat) and enqueues a new one', async () => {
      const sim = await simulate('replace', 2);
      expect(iso(tickTimes(sim.fired))).toEqual(iso([1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map(minute)));
      expect(sim.skipped).toEqual([]);
      expect(sim.maxActive).toBe(1);
      const jobIdAt = new Map(sim.fired.map((e) => [e.tickAt.getTime(), e.jobId]));
      // Tick n replaced the run of tick n-1.
      expect(sim.replaced.map((e) => [e.tickAt.getTime(), e.cancelledJobIds])).toEqual(
        [2, 3, 4, 5, 6, 7, 8, 9, 10].map((m) => [minute(m), [jobIdAt.get(minute(m - 1))]]),
      );
      const jobs = await jobsOf(oracle, sim.schedule.name);
      expect(jobs.map((j) => j.state)).toEqual([...Array(9).fill('cancelled'), 'running']);
      // The run replaced at the last tick learns it at the next heartbeat (10 s later).
      await clock.advance(STEP);
      await until(() => aborts.size === 9, 'the last replaced run to be aborted');
      // Each replaced run saw its signal abort with LeaseLostError, and was not retried.
      expect([...aborts.keys()].sort()).toEqual(jobs.slice(0, 9).map((j) => j.id).sort());
      for (const reason of aborts.values()) expect(reason).toBeInstanceOf(LeaseLostError);
      for (const job of jobs.slice(0, 9)) {
        const row = await sim.warden.jobs.get(job.id);
        expect(row).toMatchObject({ state: 'cancelled', attempt: 1 });
        expect((await sim.warden.jobs.attempts(job.id)).map((a) => a.outcome)).toEqual(['cancelled']);
      }
    });
  });

  // ------------------------------------------------------------------------------------------------ sync

  describe('sync', () => {
    it('a schedule removed from the code (a new instance without it) stops firing', async () => {
      const report = defineSchedule({ name: 'report', cron: '* * * * *', job: noopJob, overlap: 'allow' });
      const other = defineSchedule({ name: 'other', cron: '0 0 * * *', job: noopJob });
      const clockA = new FakeClock(T0);
      const a = open({ schedules: [report], clock: clockA });
      await a.runSchedulerOnce();
      await clockA.advance(MINUTE);
      expect(await a.runSchedulerOnce()).toBe(1);

      const clockB = new FakeClock(T0 + MINUTE);
      const b = open({ schedules: [other], clock: clockB });
      await b.runSchedulerOnce(); // syncs [other]: report is removed
      expect((await a.schedules.list()).map((s) => s.name)).toEqual(['other']);

      for (let i = 0; i < 3; i++) {
        await clockA.advance(MINUTE);
        await clockB.advance(MINUTE);
        expect(await a.runSchedulerOnce()).toBe(0);
        expect(await b.runSchedulerOnce()).toBe(0);
      }
      expect((await jobsOf(oracle, 'report')).map((j) => j.tickAt)).toEqual([T0 + MINUTE]);
      await expect(a.schedules.trigger('report')).rejects.toBeInstanceOf(ScheduleNotFoundError);
      await expect(a.schedules.pause('report')).rejects.toBeInstanceOf(ScheduleNotFoundError);

      // Added back, it starts again from its next tick, without misfires for the time it was removed.
      const clockC = new FakeClock(T0 + 4 * MINUTE + 30 * SECOND);
      const c = open({ schedules: [report, other], clock: clockC });
      await c.runSchedulerOnce();
      expect((await c.schedules.list()).find((s) => s.name === 'report')?.nextRunAt?.getTime()).toBe(T0 + 5 * MINUTE);
      await clockC.advance(30 * SECOND);
      expect(await c.runSchedulerOnce()).toBe(1);
      expect((await ticksOf(oracle, 'report')).map((t) => [t.tickAt, t.outcome])).toEqual([
        [T0 + MINUTE, 'fired'],
        [T0 + 5 * MINUTE, 'fired'],
      ]);
    });

    it('a scheduler with no schedules removes nothing: the stored ones keep firing', async () => {
      const clock = new FakeClock(T0);
      const a = open({ schedules: [defineSchedule({ name: 'report', cron: '* * * * *', job: noopJob })], clock });
      await a.runSchedulerOnce();
      const empty = open({ jobs: [noopJob], clock });
      expect(await empty.runSchedulerOnce()).toBe(0);
      expect((await a.schedules.list()).map((s) => s.name)).toEqual(['report']);
      await clock.set(T0 + MINUTE);
      expect(await a.runSchedulerOnce()).toBe(1);
    });

    it('a changed pattern resets next_run_at; the old definition no longer fires it', async () => {
      const v1 = defineSchedule({ name: 'digest', cron: '0 * * * *', job: noopJob, overlap: 'allow' });
      const v2 = defineSchedule({ name: 'digest', cron: '*/5 * * * *', job: noopJob, overlap: 'allow' });
      const clockA = new FakeClock(T0 + 10 * SECOND);
      const a = open({ schedules: [v1], clock: clockA });
      await a.runSchedulerOnce();
      const [before] = await a.schedules.list();
      expect(before).toMatchObject({ name: 'digest', definitionHash: v1.definitionHash, spec: { cron: '0 * * * *' } });
      expect(before?.nextRunAt?.getTime()).toBe(T0 + HOUR);

      const clockB = new FakeClock(T0 + 2 * MINUTE);
      const b = open({ schedules: [v2], clock: clockB });
      await b.runSchedulerOnce();
      const [after] = await b.schedules.list();
      expect(after).toMatchObject({ name: 'digest', definitionHash: v2.definitionHash, spec: { cron: '*/5 * * * *' } });
      expect(after?.nextRunAt?.getTime()).toBe(T0 + 5 * MINUTE);

      // The old deploy's scans leave it alone (its hash no longer matches); the new one fires every 5 minutes.
      for (const m of [5, 10, 15]) {
        await clockA.set(T0 + m * MINUTE);
        await clockB.set(T0 + m * MINUTE);
        expect(await a.runSchedulerOnce()).toBe(0);
        expect(await b.runSchedulerOnce()).toBe(1);
      }
      await clockA.set(T0 + HOUR);
      expect(await a.runSchedulerOnce()).toBe(0);
      expect((await jobsOf(oracle, 'digest')).map((j) => j.tickAt! - T0)).toEqual([5, 10, 15].map((m) => m * MINUTE));
    });

    it('an unchanged definition synced again keeps next_run_at and the pause', async () => {
      const def = defineSchedule({ name: 'digest', cron: '0 * * * *', job: noopJob });
      const clockA = new FakeClock(T0 + 10 * SECOND);
      const a = open({ schedules: [def], clock: clockA });
      await a.runSchedulerOnce();
      await a.schedules.pause('digest');
      const b = open({ schedules: [defineSchedule({ name: 'digest', cron: '0 * * * *', job: noopJob })], clock: new FakeClock(T0 + 30 * MINUTE) });
      await b.runSchedulerOnce();
      const [row] = await b.schedules.list();
      expect(row).toMatchObject({ paused: true, definitionHash: def.definitionHash });
      expect(row?.nextRunAt?.getTime()).toBe(T0 + HOUR);
    });

    it('a changed definition keeps the pause, and resets next_run_at', async () => {
      const v1 = defineSchedule({ name: 'digest', cron: '0 * * * *', job: noopJob });
      const a = open({ schedules: [v1], clock: new FakeClock(T0 + 10 * SECOND) });
      await a.runSchedulerOnce();
      await a.schedules.pause('digest');
      const v2 = defineSchedule({ name: 'digest', cron: '*/10 * * * *', job: noopJob });
      const clockB = new FakeClock(T0 + 12 * MINUTE);
      const b = open({ schedules: [v2], clock: clockB });
      await b.runSchedulerOnce();
      const [row] = await b.schedules.list();
      expect(row).toMatchObject({ paused: true, definitionHash: v2.definitionHash });
      expect(row?.nextRunAt?.getTime()).toBe(T0 + 20 * MINUTE);
      await clockB.set(T0 + 30 * MINUTE);
      expect(await b.runSchedulerOnce()).toBe(0);
      expect(await jobsOf(oracle, 'digest')).toEqual([]);
    });

    it('a renamed schedule is a new schedule: the old name is removed, the new one starts fresh', async () => {
      const oldName = defineSchedule({ name: 'report-a', cron: '* * * * *', job: noopJob, overlap: 'allow' });
      const newName = defineSchedule({ name: 'report-b', cron: '* * * * *', job: noopJob, overlap: 'allow' });
      const clockA = new FakeClock(T0);
      const a = open({ schedules: [oldName], clock: clockA });
      await a.runSchedulerOnce();
      await clockA.advance(MINUTE);
      await a.runSchedulerOnce();

      const clockB = new FakeClock(T0 + MINUTE + 30 * SECOND);
      const b = open({ schedules: [newName], clock: clockB });
      await b.runSchedulerOnce();
      const list = await b.schedules.list();
      expect(list.map((s) => s.name)).toEqual(['report-b']);
      expect(list[0]).toMatchObject({ lastTick: null, lastTickAt: null, paused: false });
      expect(list[0]?.createdAt.getTime()).toBe(T0 + MINUTE + 30 * SECOND);
      expect(list[0]?.nextRunAt?.getTime()).toBe(T0 + 2 * MINUTE);
      expect(await b.schedules.ticks('report-b')).toEqual([]);

      for (const clock of [clockA, clockB]) await clock.set(T0 + 2 * MINUTE);
      await Promise.all([a.runSchedulerOnce(), b.runSchedulerOnce()]);
      expect((await jobsOf(oracle, 'report-a')).map((j) => j.tickAt)).toEqual([T0 + MINUTE]);
      expect((await jobsOf(oracle, 'report-b')).map((j) => j.tickAt)).toEqual([T0 + 2 * MINUTE]);
    });
  });

  // ------------------------------------------------------------------------------------------------ payloads, service

  describe('payloads and the scheduler service', () => {
    it('computes the payload per tick; a payload function that throws records that tick missed and reports it', async () => {
      const def = defineSchedule({
        name: 'stamped',
        every: '1m',
        job: noopJob,
        overlap: 'allow',
        payload: ({ tickAt, scheduleName }) => {
          if (tickAt.getTime() === T0 + 2 * MINUTE) throw new Error('no payload for this tick');
          return { at: tickAt.toISOString(), scheduleName };
        },
      });
      const clock = new FakeClock(T0);
      const warden = open({ schedules: [def], clock });
      const errors = record(warden, 'error');
      const missed = record(warden, 'schedule:missed');
      await warden.runSchedulerOnce();
      for (let i = 0; i < 3; i++) {
        await clock.advance(MINUTE);
        await warden.runSchedulerOnce();
      }
      const jobs = await jobsOf(oracle, 'stamped');
      expect(jobs.map((j) => j.tickAt)).toEqual([T0 + MINUTE, T0 + 3 * MINUTE]);
      for (const j of jobs) expect((await warden.jobs.get(j.id))?.payload).toEqual({ at: new Date(j.tickAt!).toISOString(), scheduleName: 'stamped' });
      expect((await ticksOf(oracle, 'stamped')).map((t) => [t.tickAt, t.outcome])).toEqual([
        [T0 + MINUTE, 'fired'],
        [T0 + 2 * MINUTE, 'missed'],
        [T0 + 3 * MINUTE, 'fired'],
      ]);
      expect(missed.map((e) => e.tickAt.getTime())).toEqual([T0 + 2 * MINUTE]);
      expect(errors.map((e) => e.context)).toEqual(['building the payload of schedule stamped']);
    });

    it('start() runs the scheduler service: due ticks fire every scan interval and the worker runs them', async () => {
      const clock = new TestClock(T0);
      const ran: number[] = [];
      const job = defineJob({ name: 'tick-job', handler: (_payload, ctx) => void ran.push(ctx.job.tickAt!.getTime()) });
      const def = defineSchedule({ name: 'minutely', every: '1m', job });
      const warden = open({ schedules: [def], clock, scheduler: { scanInterval: '10s' } });
      await warden.start({ pollInterval: '1h', rescueInterval: '1h', heartbeat: '10s', lease: '1h' });
      // Idle: the worker's poll, heartbeater and rescuer, and the scheduler's wait for its next scan.
      await clock.waitForTimers(4, 'the worker and the scheduler to be idle');
      // Minute by minute, each run completed before the next tick: the default overlap policy (skip) would
      // otherwise skip a tick whose predecessor a loaded machine has not finished yet in real time.
      for (let m = 1; m <= 3; m++) {
        await clock.step(MINUTE, 10 * SECOND, 4);
        await until(() => ran.length === m, `tick ${m} to run`);
        await until(async () => (await jobsOf(oracle, 'minutely')).every((j) => j.state === 'completed'), `run ${m} to be completed`);
      }
      expect(iso(ran)).toEqual(iso([1, 2, 3].map((m) => T0 + m * MINUTE)));
      expect((await ticksOf(oracle, 'minutely')).map((t) => [t.tickAt, t.outcome, t.late])).toEqual([1, 2, 3].map((m) => [T0 + m * MINUTE, 'fired', false]));
      await until(async () => (await jobsOf(oracle, 'minutely')).every((j) => j.state === 'completed'), 'the runs to be completed');
    });
  });

  // ------------------------------------------------------------------------------------------------ operations

  describe('operations', () => {
    const minutely = () => defineSchedule({ name: 'minutely', cron: '* * * * *', job: noopJob, overlap: 'allow', misfire: { grace: '5s' } });

    it('list: next run, last tick with its outcome and job state, pause state, spec', async () => {
      const def = minutely();
      const clock = new FakeClock(T0);
      const warden = open({ schedules: [def], clock });
      await warden.runSchedulerOnce();
      let [row] = await warden.schedules.list();
      expect(row).toMatchObject({ name: 'minutely', paused: false, lastTick: null, lastTickAt: null, definitionHash: def.definitionHash });
      expect(row?.nextRunAt?.getTime()).toBe(T0 + MINUTE);
      expect(row?.spec).toMatchObject({ cron: '* * * * *', everyMs: null, timezone: 'UTC', job: 'noop-job', overlap: 'allow', misfire: { policy: 'run-once', graceMs: 5_000 } });

      await clock.advance(MINUTE);
      await warden.runSchedulerOnce();
      [row] = await warden.schedules.list();
      expect(row?.nextRunAt?.getTime()).toBe(T0 + 2 * MINUTE);
      expect(row?.lastTickAt?.getTime()).toBe(T0 + MINUTE);
      expect(row?.lastTick).toMatchObject({ scheduleName: 'minutely', kind: 'scheduled', outcome: 'fired', late: false, jobState: 'queued', actor: null });
      expect(row?.lastTick?.tickAt.getTime()).toBe(T0 + MINUTE);

      // The job's state is read as it is now.
      await warden.drain();
      [row] = await warden.schedules.list();
      expect(row?.lastTick?.jobState).toBe('completed');

      // After a gap: +2m is missed and +3m fires late (run-once); the newest of them is the last tick.
      await clock.advance(2 * MINUTE + 30 * SECOND);
      await warden.runSchedulerOnce();
      [row] = await warden.schedules.list();
      expect(row?.lastTick).toMatchObject({ outcome: 'fired', late: true });
      expect(row?.lastTick?.tickAt.getTime()).toBe(T0 + 3 * MINUTE);
      expect(row?.nextRunAt?.getTime()).toBe(T0 + 4 * MINUTE);
    });

    it('pause is persisted: another instance does not fire it; next_run_at is kept', async () => {
      const clockA = new FakeClock(T0);
      const clockB = new FakeClock(T0);
      const a = open({ schedules: [minutely()], clock: clockA });
      const b = open({ schedules: [minutely()], clock: clockB });
      await Promise.all([a.runSchedulerOnce(), b.runSchedulerOnce()]);
      const actions = record(a, 'schedule:operator-action');
      const paused = await a.schedules.pause('minutely', { actor: 'ops' });
      expect(paused).toMatchObject({ name: 'minutely', paused: true });
      expect(paused.nextRunAt?.getTime()).toBe(T0 + MINUTE);
      expect(actions).toEqual([{ schedule: 'minutely', action: 'pause', actor: 'ops', reason: null }]);

      for (let i = 0; i < 3; i++) {
        await clockA.advance(MINUTE);
        await clockB.advance(MINUTE);
        expect(await b.runSchedulerOnce()).toBe(0);
        expect(await a.runSchedulerOnce()).toBe(0);
      }
      expect(await jobsOf(oracle, 'minutely')).toEqual([]);
      expect(await ticksOf(oracle, 'minutely')).toEqual([]);
      const [row] = await b.schedules.list();
      expect(row).toMatchObject({ paused: true });
      expect(row?.nextRunAt?.getTime()).toBe(T0 + MINUTE);
      // A Warden started later, with the same definition, sees it paused too.
      const c = open({ schedules: [minutely()], clock: new FakeClock(T0 + 10 * MINUTE) });
      expect(await c.runSchedulerOnce()).toBe(0);
      expect((await c.schedules.list())[0]?.paused).toBe(true);
    });

    it('resume continues from the next future tick: no misfires for the paused time', async () => {
      const clock = new FakeClock(T0);
      const warden = open({ schedules: [minutely()], clock });
      await warden.runSchedulerOnce();
      await clock.advance(MINUTE);
      await warden.runSchedulerOnce(); // +1m fires
      await clock.advance(10 * SECOND);
      await warden.schedules.pause('minutely');
      await clock.set(T0 + 5 * MINUTE + 30 * SECOND); // +2m…+5m fall in the pause
      expect(await warden.runSchedulerOnce()).toBe(0);

      const missed = record(warden, 'schedule:missed');
      const fired = record(warden, 'schedule:fired');
      const actions = record(warden, 'schedule:operator-action');
      const resumed = await warden.schedules.resume('minutely', { actor: 'ops' });
      expect(resumed).toMatchObject({ paused: false });
      expect(resumed.nextRunAt?.getTime()).toBe(T0 + 6 * MINUTE);
      expect(actions).toEqual([{ schedule: 'minutely', action: 'resume', actor: 'ops', reason: null }]);
      expect(await warden.runSchedulerOnce()).toBe(0);
      await clock.set(T0 + 6 * MINUTE);
      expect(await warden.runSchedulerOnce()).toBe(1);

      expect(missed).toEqual([]);
      expect(fired.map((e) => [e.tickAt.getTime(), e.late])).toEqual([[T0 + 6 * MINUTE, false]]);
      expect((await ticksOf(oracle, 'minutely')).map((t) => [t.tickAt, t.outcome, t.late])).toEqual([
        [T0 + MINUTE, 'fired', false],
        [T0 + 6 * MINUTE, 'fired', false],
      ]);
    });

    it('trigger: one job now, a triggered tick with its actor; also while paused; next_run_at untouched', async () => {
      const clock = new FakeClock(T0 + 10 * SECOND);
      const warden = open({ schedules: [minutely()], clock });
      await warden.runSchedulerOnce();
      const fired = record(warden, 'schedule:fired');
      const actions = record(warden, 'schedule:operator-action');

      const first = await warden.schedules.trigger('minutely', { actor: 'alice' });
      expect(first.tickAt.getTime()).toBe(T0 + 10 * SECOND);
      const job = await warden.jobs.get(first.jobId);
      expect(job).toMatchObject({ name: 'noop-job', state: 'queued', scheduleName: 'minutely' });
      expect(job?.tickAt?.getTime()).toBe(T0 + 10 * SECOND);
      expect(fired.map((e) => [e.schedule, e.tickAt.getTime(), e.jobId, e.actor, e.late])).toEqual([['minutely', T0 + 10 * SECOND, first.jobId, 'alice', false]]);
      expect(actions).toEqual([{ schedule: 'minutely', action: 'trigger', actor: 'alice', reason: null }]);

      await warden.schedules.pause('minutely');
      await clock.advance(20 * SECOND);
      const second = await warden.schedules.trigger('minutely');
      expect(second.jobId).not.toBe(first.jobId);

      const ticks = await warden.schedules.ticks('minutely');
      expect(ticks.map((t) => [t.tickAt.getTime(), t.kind, t.outcome, t.actor, t.jobId, t.jobState])).toEqual([
        [T0 + 30 * SECOND, 'triggered', 'fired', 'api', second.jobId, 'queued'],
        [T0 + 10 * SECOND, 'triggered', 'fired', 'alice', first.jobId, 'queued'],
      ]);
      const [row] = await warden.schedules.list();
      expect(row?.paused).toBe(true);
      expect(row?.nextRunAt?.getTime()).toBe(T0 + MINUTE);
      expect(row?.lastTick).toMatchObject({ kind: 'triggered', actor: 'api' });

      // A trigger neither moves nor consumes the scheduled tick: after resuming, +1m fires as usual.
      await warden.schedules.resume('minutely');
      await clock.set(T0 + MINUTE);
      expect(await warden.runSchedulerOnce()).toBe(1);
      expect(await jobsOf(oracle, 'minutely')).toHaveLength(3);
    });

    it('trigger before any scheduler ran stores the schedule first; the scheduler then fires its next tick as usual', async () => {
      const clock = new FakeClock(T0 + 10 * SECOND);
      const warden = open({ schedules: [minutely()], clock });
      const triggered = await warden.schedules.trigger('minutely', { actor: 'alice' });
      expect(triggered.tickAt.getTime()).toBe(T0 + 10 * SECOND);
      const [row] = await warden.schedules.list();
      expect(row).toMatchObject({ name: 'minutely', paused: false, definitionHash: minutely().definitionHash });
      expect(row?.nextRunAt?.getTime()).toBe(T0 + MINUTE);
      expect(row?.lastTick).toMatchObject({ kind: 'triggered', actor: 'alice', jobId: triggered.jobId });
      await warden.runSchedulerOnce();
      await clock.set(T0 + MINUTE);
      expect(await warden.runSchedulerOnce()).toBe(1);
      expect((await jobsOf(oracle, 'minutely')).map((j) => j.tickAt)).toEqual([T0 + 10 * SECOND, T0 + MINUTE]);
    });

    it('trigger twice at the same instant enqueues two runs', async () => {
      const clock = new FakeClock(T0 + 10 * SECOND);
      const warden = open({ schedules: [minutely()], clock });
      await warden.runSchedulerOnce();
      const a = await warden.schedules.trigger('minutely', { actor: 'alice' });
      const b = await warden.schedules.trigger('minutely', { actor: 'bob' });
      expect(b.jobId).not.toBe(a.jobId);
      expect(await jobsOf(oracle, 'minutely')).toHaveLength(2);
      expect((await warden.schedules.ticks('minutely')).map((t) => t.actor).sort()).toEqual(['alice', 'bob']);
    });

    it('trigger deduplicated against an active keyed job: recorded skipped, reported as a duplicate and skipped, not fired', async () => {
      const keyed = defineJob({ name: 'keyed', handler: () => undefined, unique: { key: () => 'the-one' } });
      const clock = new FakeClock(T0 + 10 * SECOND);
      const warden = open({ schedules: [defineSchedule({ name: 'nightly', cron: '0 3 * * *', job: keyed })], clock, audit: { actor: 'system:test' } });
      await warden.runSchedulerOnce();
      const first = await warden.schedules.trigger('nightly', { actor: 'alice' });
      const fired = record(warden, 'schedule:fired');
      const skipped = record(warden, 'schedule:skipped');
      const enqueued = record(warden, 'job:enqueued');
      await clock.advance(SECOND);

      const second = await warden.schedules.trigger('nightly', { actor: 'bob' });
      expect(first.duplicate).toBe(false);
      expect(second).toEqual({ jobId: first.jobId, tickAt: new Date(T0 + 11 * SECOND), duplicate: true, replaced: false });
      expect((await warden.schedules.ticks('nightly')).map((t) => [t.actor, t.outcome, t.jobId])).toEqual([['bob', 'skipped', first.jobId], ['alice', 'fired', first.jobId]]);
      expect(await jobsOf(oracle, 'nightly')).toHaveLength(1);
      // The events say what the tick row says: no run was enqueued, the active job stood in the way.
      expect(fired).toEqual([]);
      expect(enqueued.map((e) => [e.job.id, e.duplicate, e.replaced])).toEqual([[first.jobId, true, false]]);
      expect(skipped).toEqual([{ schedule: 'nightly', tickAt: new Date(T0 + 11 * SECOND), reason: 'duplicate', activeJobId: first.jobId, actor: 'bob' }]);
      // And so does the audit trail: the operator's trigger, then its skipped tick; no second job.created or fired.
      const trail: [string, string][] = [];
      for await (const e of warden.audit.entries()) trail.push([e.action, e.actor]);
      expect(trail).toEqual([
        ['schedule.triggered', 'alice'], ['job.created', 'system:test'], ['schedule.fired', 'alice'],
        ['schedule.triggered', 'bob'], ['schedule.skipped', 'bob'],
      ]);
    });

    it('resume of a schedule that is not paused keeps its next_run_at: a tick already due still fires', async () => {
      const hourly = defineSchedule({ name: 'hourly', cron: '0 * * * *', job: noopJob });
      const clock = new FakeClock(T0 + 10 * SECOND);
      const warden = open({ schedules: [hourly], clock });
      await warden.runSchedulerOnce();
      // Every scheduler down over the 01:00 tick; at 01:20 an operator resumes the schedule, which was not paused.
      await clock.set(T0 + HOUR + 20 * MINUTE);
      const resumed = await warden.schedules.resume('hourly', { actor: 'ops' });
      expect([resumed.paused, resumed.nextRunAt?.getTime()]).toEqual([false, T0 + HOUR]);
      expect(await warden.runSchedulerOnce()).toBe(1);
      expect((await ticksOf(oracle, 'hourly')).map((t) => [t.tickAt, t.outcome, t.late])).toEqual([[T0 + HOUR, 'fired', true]]);
    });

    it('resume from a process whose definition differs from the stored one continues the stored pattern', async () => {
      const stored = defineSchedule({ name: 'report', cron: '0 * * * *', job: noopJob });
      const clock = new FakeClock(T0 + 10 * SECOND);
      const scheduler = open({ schedules: [stored], clock });
      await scheduler.runSchedulerOnce();
      // An operator process with another version of it (every 7 minutes): it must not impose its own pattern.
      const operator = open({ schedules: [defineSchedule({ name: 'report', every: '7m', job: noopJob })], clock });
      await operator.schedules.pause('report');
      await clock.set(T0 + 5 * MINUTE);
      const resumed = await operator.schedules.resume('report');
      expect(resumed.nextRunAt?.getTime()).toBe(T0 + HOUR);
      expect(resumed.definitionHash).toBe(stored.definitionHash);
      await clock.set(T0 + 7 * MINUTE);
      expect(await scheduler.runSchedulerOnce()).toBe(0);
      await clock.set(T0 + HOUR);
      expect(await scheduler.runSchedulerOnce()).toBe(1);
      expect((await jobsOf(oracle, 'report')).map((j) => j.tickAt)).toEqual([T0 + HOUR]);
      // With the stored definition itself, resume uses it as is.
      await scheduler.schedules.pause('report');
      await clock.set(T0 + HOUR + 5 * MINUTE);
      expect((await scheduler.schedules.resume('report')).nextRunAt?.getTime()).toBe(T0 + 2 * HOUR);
    });

    it('trigger needs the definition in this process; unknown names are refused', async () => {
      const clock = new FakeClock(T0);
      const a = open({ schedules: [minutely()], clock });
      await a.runSchedulerOnce();
      const operator = open({ jobs: [noopJob], clock });
      const error = await operator.schedules.trigger('minutely').catch((e: unknown) => e);
      expect(error).toBeInstanceOf(InvalidOptionError);
      expect((error as InvalidOptionError).field).toBe('schedule');
      await expect(a.schedules.trigger('Bad Name')).rejects.toBeInstanceOf(InvalidNameError);
      await expect(a.schedules.pause('missing')).rejects.toBeInstanceOf(ScheduleNotFoundError);
      await expect(a.schedules.resume('missing')).rejects.toBeInstanceOf(ScheduleNotFoundError);
      // The operator instance (no definition) can still pause and resume it, from the stored spec.
      await operator.schedules.pause('minutely');
      await clock.set(T0 + 3 * MINUTE + 20 * SECOND);
      const resumed = await operator.schedules.resume('minutely');
      expect(resumed.nextRunAt?.getTime()).toBe(T0 + 4 * MINUTE);
      expect(await jobsOf(oracle, 'minutely')).toEqual([]);
    });

    it('ticks: the history newest first, with kind, outcome, lateness, actor and job state; limit', async () => {
      const def = defineSchedule({ name: 'minutely', cron: '* * * * *', job: noopJob, misfire: { policy: 'skip', grace: '5s' } });
      const clock = new FakeClock(T0);
      const warden = open({ schedules: [def], clock });
      await warden.runSchedulerOnce();
      await clock.set(T0 + MINUTE);
      await warden.runSchedulerOnce(); // +1m fired
      await clock.set(T0 + 2 * MINUTE);
      await warden.runSchedulerOnce(); // +2m skipped (overlap skip: +1m's job is still queued)
      await warden.drain();
      await clock.set(T0 + 4 * MINUTE + 30 * SECOND);
      await warden.runSchedulerOnce(); // +3m, +4m missed (skip)
      await warden.schedules.trigger('minutely', { actor: 'carol' });

      const ticks = await warden.schedules.ticks('minutely');
      expect(ticks.map((t) => [iso([t.tickAt.getTime()])[0], t.kind, t.outcome, t.late, t.actor, t.jobState])).toEqual([
        [iso([T0 + 4 * MINUTE + 30 * SECOND])[0], 'triggered', 'fired', false, 'carol', 'queued'],
        [iso([T0 + 4 * MINUTE])[0], 'scheduled', 'missed', true, null, null],
        [iso([T0 + 3 * MINUTE])[0], 'scheduled', 'missed', true, null, null],
        [iso([T0 + 2 * MINUTE])[0], 'scheduled', 'skipped', false, null, null],
        [iso([T0 + MINUTE])[0], 'scheduled', 'fired', false, null, 'completed'],
      ]);
      expect(ticks.every((t) => t.scheduleName === 'minutely')).toBe(true);
      expect((await warden.schedules.ticks('minutely', { limit: 2 })).map((t) => t.tickAt.getTime())).toEqual([T0 + 4 * MINUTE + 30 * SECOND, T0 + 4 * MINUTE]);
      expect(await warden.schedules.ticks('never-defined')).toEqual([]);
      expect(() => warden.schedules.ticks('Bad Name')).toThrow(InvalidNameError);
    });
  });
});
