/**
 * `start()`: the worker opens its connections and starts listening while the migrations are checked, and claims
 * only once none is pending. A start that fails (a pending migration) or is stopped before it finishes claims
 * nothing, leaves nothing running, and can be followed by a start that works.
 * @module
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createWarden, type Warden } from '../../src/client/warden.js';
import type { Driver } from '../../src/driver/driver.js';
import { MigrationRequiredError, WardenClosedError } from '../../src/errors.js';
import { defineJob } from '../../src/job/define-job.js';
import { defineSchedule } from '../../src/schedule/define-schedule.js';
import { rawQuery, rawTime, tableRef } from '../conformance/helpers.js';
import { overrideDriver } from '../support/override-driver.js';
import { createTestDatabase, DRIVER_KINDS, type TestDatabase } from '../support/test-databases.js';
import { deferred, type Deferred, silent, waitFor, within } from './helpers.js';

/** Claims, rescues, schedule syncs, and LISTENs started and not ended, through {@link instrumented}. */
interface Calls {
  claims: number;
  rescues: number;
  scheduleSyncs: number;
  listening: number;
}

/**
 * The test database's driver, counting claims, rescues and open LISTENs, with `migrationStatus` held until `gate`
 * resolves (and `onChecked` called as its answer is returned) and `listen` until `listenGate` does.
 */
function instrumented(driver: Driver, gate: Promise<void>, listenGate: Promise<void>, onChecked?: () => void): { driver: Driver; calls: Calls } {
  const calls: Calls = { claims: 0, rescues: 0, scheduleSyncs: 0, listening: 0 };
  const proxy = overrideDriver(driver, {
    migrationStatus: (real) => async () => {
      await gate;
      const status = await real();
      onChecked?.();
      return status;
    },
    jobClaim: (real) => (params) => {
      calls.claims++;
      return real(params);
    },
    listen: (real) => real && (async (params) => {
      await listenGate;
      const unlisten = await real(params);
      calls.listening++;
      return async () => {
        calls.listening--;
        await unlisten();
      };
    }),
    scheduleSync: (real) => (params) => {
      calls.scheduleSyncs++;
      return real(params);
    },
    jobRescue: (real) => (params) => {
      calls.rescues++;
      return real(params);
    },
  });
  return { driver: proxy, calls };
}

describe.each(DRIVER_KINDS)('worker start (%s)', (kind) => {
  let tdb: TestDatabase;
  let warden: Warden;
  let gate: Deferred;
  let listenGate: Deferred;
  let calls: Calls;
  let ran: number[];
  const noop = defineJob({ name: 'noop', handler: (payload: { i: number }) => void ran.push(payload.i) });

  beforeEach(async () => {
    tdb = await createTestDatabase(kind);
    gate = deferred();
    listenGate = deferred();
    listenGate.resolve();
    ran = [];
    const wrapped = instrumented(tdb.driver, gate.promise, listenGate.promise);
    calls = wrapped.calls;
    warden = createWarden({ database: wrapped.driver, logger: silent, jobs: [noop] });
  });
  afterEach(async () => {
    gate.resolve();
    await warden.close();
    await tdb.cleanup();
  });

  /** Resolves once job `id` is completed (by whichever Warden `warden` is now). */
  const untilCompleted = (id: string) => within(waitFor(async () => (await warden.jobs.get(id))!.state === 'completed'), 'the job to complete');

  const settle = async () => {
    for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
  };

  it('claims nothing while the migration check runs, and rejects a pending migration without leaving a worker behind', async () => {
    const [job] = await warden.enqueueMany([{ job: noop, payload: { i: 1 } }]);
    // The newest migration not applied: as after installing a version whose migrations have not been run.
    const [newest] = await rawQuery(tdb, `SELECT name FROM ${tableRef(tdb, 'migrations')} ORDER BY name DESC LIMIT 1`);
    await rawQuery(tdb, `DELETE FROM ${tableRef(tdb, 'migrations')} WHERE name = ?`, [newest!.name]);
    const started = warden.events.next('worker:started');
    const starting = warden.start({ concurrency: 2, pollInterval: '20ms', rescueInterval: '20ms' });
    await settle();
    expect(calls.claims).toBe(0);
    gate.resolve();
    const error = await within(starting.then(() => null, (e: unknown) => e), 'start to reject');
    expect(error).toBeInstanceOf(MigrationRequiredError);
    expect((error as MigrationRequiredError).pending).toEqual([newest!.name]);
    await settle();
    expect(calls).toEqual({ claims: 0, rescues: 0, scheduleSyncs: 0, listening: 0 });
    expect((await warden.jobs.get(job!.id))!).toMatchObject({ state: 'queued', attempt: 0 });

    // Migrated (the row put back), the same Warden starts: the failed start left nothing that blocks it.
    await rawQuery(tdb, `INSERT INTO ${tableRef(tdb, 'migrations')} (name, applied_at) VALUES (?, ?)`, [newest!.name, rawTime(tdb, new Date())]);
    await warden.start({ concurrency: 2, pollInterval: '20ms' });
    await within(started, 'the worker to start');
    await untilCompleted(job!.id);
    expect(ran).toEqual([1]);
  });

  it('a stop during start ends it before any claim, starts nothing after it (its scheduler), and a later start runs the jobs', async () => {
    const [job] = await warden.enqueueMany([{ job: noop, payload: { i: 2 } }]);
    let startedEvents = 0;
    // Listening is still being set up when stop is called, and goes on after stop began: it is ended too.
    listenGate = deferred();
    const wrapped = instrumented(tdb.driver, gate.promise, listenGate.promise);
    calls = wrapped.calls;
    await warden.close();
    // A schedule, so a start that went on after the stop would start a scheduler (which syncs at once).
    warden = createWarden({ database: wrapped.driver, logger: silent, jobs: [noop], schedules: [defineSchedule({ name: 'hourly', every: '1h', job: noop })] });
    warden.events.on('worker:started', () => void startedEvents++);
    // A worker stopped while starting never announced itself, but its shutdown is announced: readiness and the CLI
    // follow it.
    const shutdownEvents: string[] = [];
    warden.events.on('worker:draining', () => void shutdownEvents.push('draining'));
    warden.events.on('worker:stopped', () => void shutdownEvents.push('stopped'));
    const starting = warden.start({ concurrency: 2, pollInterval: '20ms', rescueInterval: '20ms' });
    const stopping = warden.stop();
    await settle();
    listenGate.resolve();
    await within(stopping, 'stop to finish while start waits for the migration check');
    expect(calls.listening).toBe(0);
    gate.resolve();
    await within(starting, 'start to return');
    await settle();
    expect(calls).toEqual({ claims: 0, rescues: 0, scheduleSyncs: 0, listening: 0 });
    expect(startedEvents).toBe(0);
    expect(shutdownEvents).toEqual(['draining', 'stopped']);
    expect((await warden.jobs.get(job!.id))!).toMatchObject({ state: 'queued', attempt: 0 });

    await warden.start({ concurrency: 2, pollInterval: '20ms' });
    await untilCompleted(job!.id);
    expect(ran).toEqual([2]);
    expect(startedEvents).toBe(1);
    await within(waitFor(() => calls.scheduleSyncs === 1), 'the scheduler of the later start to sync');
    await warden.stop();
    expect(shutdownEvents).toEqual(['draining', 'stopped', 'draining', 'stopped']);
  });

  it('a start called while a stop is in progress is not undone by that stop: it runs the jobs', async () => {
    gate.resolve();
    const [job] = await warden.enqueueMany([{ job: noop, payload: { i: 3 } }]);
    const stopping = warden.stop();
    const starting = warden.start({ concurrency: 2, pollInterval: '20ms' });
    await within(Promise.all([stopping, starting]), 'stop and start to finish');
    await untilCompleted(job!.id);
    expect(ran).toEqual([3]);
  });

  /**
   * A fresh, started Warden whose worker runs a job that holds until `release` resolves, so a `stop()` called now
   * stays in progress (waiting for it) until then; `started()` counts `worker:started` events.
   */
  const runningWithHeldJob = async () => {
    gate.resolve();
    const release = deferred();
    const holding = deferred();
    const held = defineJob({ name: 'held', handler: async () => {
      holding.resolve();
      await release.promise;
    } });
    await warden.close();
    warden = createWarden({ database: tdb.driver, logger: silent, jobs: [noop, held] });
    let startedEvents = 0;
    warden.events.on('worker:started', () => void startedEvents++);
    await warden.start({ concurrency: 2, pollInterval: '20ms' });
    await warden.enqueue(held, {});
    await within(holding.promise, 'the held job to start');
    return { release, started: () => startedEvents };
  };

  it('a start called while a running Warden stops waits for that stop, then runs the jobs', async () => {
    const { release, started } = await runningWithHeldJob();
    // The stop waits for the held job (its grace), still holding its worker, when the start is called.
    const stopping = warden.stop();
    const starting = warden.start({ concurrency: 2, pollInterval: '20ms' });
    release.resolve();
    await within(Promise.all([stopping, starting]), 'stop and start to finish');
    expect(started()).toBe(2);
    const { id } = await warden.enqueue(noop, { i: 4 });
    await untilCompleted(id);
    expect(ran).toEqual([4]);
  });

  it('a stop called after such a waiting start wins: nothing is started', async () => {
    const { release, started } = await runningWithHeldJob();
    const first = warden.stop();
    const starting = warden.start({ concurrency: 2, pollInterval: '20ms' });
    const second = warden.stop();
    release.resolve();
    await within(Promise.all([first, starting, second]), 'both stops and the start to finish');
    expect(started()).toBe(1);
  });

  it('a start called after a stop overtook the start in progress runs: stop, start, stop, start', async () => {
    const { release, started } = await runningWithHeldJob();
    const stops = [warden.stop()];
    const starts = [warden.start({ concurrency: 2, pollInterval: '20ms' })];
    stops.push(warden.stop());
    // The first start will end without starting anything (a stop came after it): this one must not share it.
    starts.push(warden.start({ concurrency: 2, pollInterval: '20ms' }));
    release.resolve();
    await within(Promise.all([...stops, ...starts]), 'the stops and starts to finish');
    expect(started()).toBe(2);
    const { id } = await warden.enqueue(noop, { i: 5 });
    await untilCompleted(id);
    expect(ran).toEqual([5]);
  });

  it('a start called while close() stops a running Warden is refused and starts nothing', async () => {
    const { release, started } = await runningWithHeldJob();
    const closing = warden.close();
    const starting = warden.start({ concurrency: 2, pollInterval: '20ms' }).then(() => null, (e: unknown) => e);
    release.resolve();
    await within(closing, 'close to finish');
    expect(await within(starting, 'start to settle')).toBeInstanceOf(WardenClosedError);
    expect(started()).toBe(1);
  });

  it('start, stop, start, stop while the migration check is held: nothing is started', async () => {
    let startedEvents = 0;
    warden.events.on('worker:started', () => void startedEvents++);
    const calls = [
      warden.start({ concurrency: 2, pollInterval: '20ms' }), warden.stop(),
      warden.start({ concurrency: 2, pollInterval: '20ms' }), warden.stop(),
    ];
    await settle();
    gate.resolve();
    await within(Promise.all(calls), 'the starts and stops to finish');
    await settle();
    expect(startedEvents).toBe(0);
  });

  it('close() waits for a start called before it, which starts nothing', async () => {
    let startedEvents = 0;
    warden.events.on('worker:started', () => void startedEvents++);
    const order: string[] = [];
    const starting = warden.start({ concurrency: 2, pollInterval: '20ms' }).then(() => order.push('start'), () => order.push('start rejected'));
    const closing = warden.close().then(() => order.push('close'));
    // Without the wait, close() finished here while the start still checked the migrations.
    await settle();
    gate.resolve();
    await within(Promise.all([starting, closing]), 'start and close to finish');
    expect(order).toEqual(['start', 'close']);
    expect(startedEvents).toBe(0);
  });

  it('a stop called just as the migration check passes: the starting worker claims nothing', async () => {
    await warden.close();
    let startedEvents = 0;
    const wrapped = instrumented(tdb.driver, Promise.resolve(), Promise.resolve(), () => void warden.stop());
    calls = wrapped.calls;
    warden = createWarden({ database: wrapped.driver, logger: silent, jobs: [noop] });
    warden.events.on('worker:started', () => void startedEvents++);
    await warden.enqueue(noop, { i: 6 });
    await within(warden.start({ concurrency: 2, pollInterval: '20ms' }), 'start to return');
    await settle();
    expect(startedEvents).toBe(0);
    expect(calls.claims).toBe(0);
    expect(ran).toEqual([]);
  });

  it('starts called together share one outcome: both reject a pending migration', async () => {
    gate.resolve();
    const [newest] = await rawQuery(tdb, `SELECT name FROM ${tableRef(tdb, 'migrations')} ORDER BY name DESC LIMIT 1`);
    await rawQuery(tdb, `DELETE FROM ${tableRef(tdb, 'migrations')} WHERE name = ?`, [newest!.name]);
    const outcomes = await within(Promise.allSettled([warden.start({ concurrency: 2 }), warden.start({ concurrency: 2 })]), 'both starts');
    expect(outcomes.map((o) => o.status)).toEqual(['rejected', 'rejected']);
    for (const o of outcomes) expect((o as PromiseRejectedResult).reason).toBeInstanceOf(MigrationRequiredError);
  });
});

describe.each(DRIVER_KINDS)('worker start on a database never migrated (%s)', (kind) => {
  it('rejects with every migration pending, reports no error, and leaves nothing listening', async () => {
    const tdb = await createTestDatabase(kind, { migrate: false });
    const wrapped = instrumented(tdb.driver, Promise.resolve(), Promise.resolve());
    const warden = createWarden({ database: wrapped.driver, logger: silent, jobs: [defineJob({ name: 'noop', handler: () => {} })] });
    const errors: unknown[] = [];
    warden.on('error', (e) => void errors.push(e));
    try {
      const error = await within(warden.start({ concurrency: 2 }).then(() => null, (e: unknown) => e), 'start to reject');
      expect(error).toBeInstanceOf(MigrationRequiredError);
      expect((error as MigrationRequiredError).pending).toEqual((await tdb.driver.migrationStatus()).pending);
      expect((error as MigrationRequiredError).pending.length).toBeGreaterThan(0);
      expect(errors).toEqual([]);
      expect(wrapped.calls).toEqual({ claims: 0, rescues: 0, scheduleSyncs: 0, listening: 0 });
    } finally {
      await warden.close();
      await tdb.cleanup();
    }
  });
});

describe.each(DRIVER_KINDS)('worker start on a database a newer release migrated (%s)', (kind) => {
  it('starts and runs jobs beside a migration, a column and a table it does not know (a rolling deploy)', async () => {
    const tdb = await createTestDatabase(kind);
    const known = (await tdb.driver.migrationStatus()).applied;
    // What the next release's migration could do: add a table, a nullable column and an index, and record itself.
    await rawQuery(tdb, `CREATE TABLE ${tableRef(tdb, 'future_things')} (id integer PRIMARY KEY, note text)`);
    await rawQuery(tdb, `ALTER TABLE ${tableRef(tdb, 'jobs')} ADD COLUMN future_note text`);
    await rawQuery(tdb, `CREATE INDEX future_note_idx ON ${tableRef(tdb, 'jobs')} (future_note)`);
    await rawQuery(tdb, `INSERT INTO ${tableRef(tdb, 'migrations')} (name, applied_at) VALUES (?, ?)`, ['9999_from_a_newer_release', rawTime(tdb, new Date())]);
    const noop = defineJob({ name: 'noop', handler: () => {} });
    const warden = createWarden({ database: tdb.driver, logger: silent, jobs: [noop] });
    try {
      expect(await warden.migrationStatus()).toEqual({ applied: [...known, '9999_from_a_newer_release'], pending: [] });
      const { id } = await warden.enqueue(noop, {});
      const completed = warden.events.next('job:completed', (e) => e.job.id === id);
      await within(warden.start({ concurrency: 2 }), 'start');
      await within(completed, 'the job to complete');
      expect(await warden.jobs.get(id)).toMatchObject({ state: 'completed', attempt: 1 });
      // Its migrations stay as they are: nothing to apply, nothing undone.
      expect(await warden.migrate()).toEqual({ applied: [], current: [...known, '9999_from_a_newer_release'] });
    } finally {
      await warden.close();
      await tdb.cleanup();
    }
  });
});
