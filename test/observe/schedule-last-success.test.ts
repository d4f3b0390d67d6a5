/**
 * `warden_schedule_last_success_timestamp_seconds` as every instance must agree on it, on both drivers:
 * - a removed schedule's series is dropped by the instance that saw it succeed, as a fresh instance never has it;
 *   a failed read of the schedules drops nothing; a schedule removed and stored again is read from the database anew;
 * - an instance that did not see the success (another one, a restart) finds it however many ticks ago it was: an
 *   `overlap: "skip"` schedule held by a long run skips every tick after it;
 * - an unchanged schedule costs no read of its last success.
 * @module
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Warden } from '../../src/client/warden.js';
import type { Driver } from '../../src/driver/driver.js';
import { TypedEmitter } from '../../src/events/typed-emitter.js';
import { defineJob } from '../../src/job/define-job.js';
import { DatabaseSnapshot } from '../../src/observe/database-snapshot.js';
import { attachMetrics } from '../../src/observe/metrics.js';
import { defineSchedule } from '../../src/schedule/define-schedule.js';
import { makeWarden, T0, TestClock } from '../runtime/helpers.js';
import { overrideDriver } from '../support/override-driver.js';
import { createTestDatabase, DRIVER_KINDS, type TestDatabase } from '../support/test-databases.js';
import { matching, scrape } from './helpers.js';

const MINUTE = 60_000;
const GAUGE = 'warden_schedule_last_success_timestamp_seconds';
const tickJob = defineJob({ name: 'tick-job', handler: () => undefined });
const hourly = defineSchedule({ name: 'rescreen', every: '1h', job: tickJob });
const everyMinute = defineSchedule({ name: 'rescreen', every: '1m', job: tickJob, overlap: 'skip', misfire: { policy: 'skip', grace: '10s' } });

/** The gauge's samples of one metrics registry, as `[schedule, seconds]`. */
async function lastSuccess(registry: Parameters<typeof scrape>[0]): Promise<[string, number][]> {
  return matching(await scrape(registry), GAUGE).map((s) => [String(s.labels.schedule), s.value]);
}

/** The gauge as an instance that saw none of this process's events serves it (another instance, a restart). */
async function elsewhere(driver: Driver): Promise<[string, number][]> {
  const fresh = attachMetrics({ events: new TypedEmitter(), driver, cache: 0 });
  try {
    return await lastSuccess(fresh.registry);
  } finally {
    fresh.detach();
  }
}

describe.each(DRIVER_KINDS)('last-success gauge across instances (%s)', (kind) => {
  let tdb: TestDatabase;
  let warden: Warden | undefined;
  beforeEach(async () => { tdb = await createTestDatabase(kind); });
  afterEach(async () => {
    await warden?.close();
    warden = undefined;
    await tdb.cleanup();
  });

  it('drops a removed schedule\'s series, as a fresh instance never has it; a schedule stored again is read anew', async () => {
    const w = (warden = makeWarden(tdb, { schedules: [hourly], metrics: { cache: 0 } }));
    const registry = w.metrics!.registry;
    await w.schedules.trigger('rescreen');
    await w.drain();
    const [done] = await w.jobs.list({ state: 'completed' });
    const seconds = done!.finishedAt!.getTime() / 1000;
    // Seen through this process's event (its clock) and in the database: the newest wins, both at about that time.
    expect((await lastSuccess(registry)).map(([name]) => name)).toEqual(['rescreen']);
    expect(await elsewhere(w.driver)).toEqual([['rescreen', seconds]]);

    // Another deployment no longer defines it: removed from the database.
    await w.schedules.sync({ names: [], removeMissing: true });
    expect(await w.schedules.list()).toEqual([]);
    expect(await elsewhere(w.driver)).toEqual([]);
    expect(await lastSuccess(registry)).toEqual([]);

    // Stored again, with its tick and job unchanged: the success is read from the database again.
    await w.schedules.sync();
    expect(await elsewhere(w.driver)).toEqual([['rescreen', seconds]]);
    expect(await lastSuccess(registry)).toEqual([['rescreen', seconds]]);
  });

  it('keeps every known success when reading the schedules fails', async () => {
    const w = (warden = makeWarden(tdb, { schedules: [hourly] }));
    await w.schedules.trigger('rescreen');
    await w.drain();
    const [done] = await w.jobs.list({ state: 'completed' });
    let failing = false;
    const driver = overrideDriver(w.driver, {
      scheduleList: (real) => () => (failing ? Promise.reject(new Error('connection reset (a database blip)')) : real()),
    });
    const errors: unknown[] = [];
    const snapshot = new DatabaseSnapshot({ driver, cacheMs: 0, finishedCacheMs: 0, timeoutMs: 10_000, onError: (e) => errors.push(e) });
    expect(await snapshot.get()).not.toBeNull();
    const known = [['rescreen', done!.finishedAt!.getTime() / 1000]];
    expect([...snapshot.lastSuccessSeconds()]).toEqual(known);
    failing = true;
    expect(await snapshot.get()).toBeNull();
    expect(errors).toHaveLength(1);
    expect([...snapshot.lastSuccessSeconds()]).toEqual(known);
  });

  it('finds the stored last success after more ticks than any window of recent ones, all skipped by a long run', async () => {
    const clock = new TestClock(T0);
    const w = (warden = makeWarden(tdb, { schedules: [everyMinute], clock }));
    await w.runSchedulerOnce();
    await clock.advance(MINUTE);
    await w.runSchedulerOnce(); // fires T0+1m
    await w.drain(); // completes: the success
    const [success] = await w.jobs.list({ state: 'completed' });
    await clock.advance(MINUTE);
    await w.runSchedulerOnce(); // fires T0+2m
    // A long run: claimed by a worker holding a long lease, so every later tick is skipped.
    const [running] = await tdb.driver.jobClaim({ queues: ['default'], limit: 1, workerId: 'long-runner', leaseMs: 3_600_000, now: new Date(clock.now()) });
    expect(running).toBeDefined();
    for (let i = 0; i < 12; i++) {
      await clock.advance(MINUTE);
      await w.runSchedulerOnce();
    }
    const ticks = await w.schedules.ticks('rescreen', { limit: 100 });
    expect(ticks.filter((t) => t.outcome === 'skipped')).toHaveLength(12);
    expect(await elsewhere(w.driver)).toEqual([['rescreen', success!.finishedAt!.getTime() / 1000]]);
  });

  it('reads a schedule\'s last success only when its newest tick or that tick\'s job changed', async () => {
    const clock = new TestClock(T0);
    const w = (warden = makeWarden(tdb, { schedules: [everyMinute], clock }));
    await w.runSchedulerOnce();
    let reads = 0;
    const driver = overrideDriver(w.driver, {
      scheduleLastSuccess: (real) => (params) => {
        reads++;
        return real(params);
      },
    });
    const snapshot = new DatabaseSnapshot({ driver, cacheMs: 0, finishedCacheMs: 0, timeoutMs: 10_000, onError: (e) => { throw e; } });
    // No tick yet: nothing to read.
    await snapshot.get();
    expect(reads).toBe(0);

    await clock.advance(MINUTE);
    await w.runSchedulerOnce(); // fires T0+1m: its job waits
    await snapshot.get();
    await snapshot.get();
    expect(reads).toBe(1);
    expect([...snapshot.lastSuccessSeconds()]).toEqual([]);

    await w.drain(); // the newest tick's job completed
    await snapshot.get();
    await snapshot.get();
    expect(reads).toBe(2);
    const [done] = await w.jobs.list({ state: 'completed' });
    expect([...snapshot.lastSuccessSeconds()]).toEqual([['rescreen', done!.finishedAt!.getTime() / 1000]]);

    // A success this process recorded (from its events) for the newest tick's job needs no read.
    await clock.advance(MINUTE);
    await w.runSchedulerOnce(); // fires T0+2m
    await snapshot.get();
    expect(reads).toBe(3);
    await w.drain();
    const newest = (await w.jobs.list({ state: 'completed' })).find((j) => j.id !== done!.id)!;
    snapshot.record('rescreen', newest.id, newest.finishedAt!.getTime() / 1000);
    await snapshot.get();
    expect(reads).toBe(3);
    expect([...snapshot.lastSuccessSeconds()]).toEqual([['rescreen', newest.finishedAt!.getTime() / 1000]]);
  });
});
