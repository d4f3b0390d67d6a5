/**
 * Writes through a closed Warden are refused with `WardenClosedError`, whether it opened its driver or was given one.
 * Before, only `start()` checked: with a driver passed in, a closed Warden still wrote the job (its audit trail
 * already stopped, so unrecorded); with a driver of its own, the error was that driver's untyped one, different per
 * driver. The refusal starts once `close()` has stopped the worker: handlers finishing in the grace period still
 * enqueue their follow-up jobs, writes accepted before are waited for, and an alert written while `close()` flushes
 * the alerts still enqueues its delivery jobs.
 * @module
 */
import type { StandardSchemaV1 } from '@standard-schema/spec';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createWarden, type Warden } from '../../src/client/warden.js';
import { WardenClosedError } from '../../src/errors.js';
import { defineJob } from '../../src/job/define-job.js';
import { defineSchedule } from '../../src/schedule/define-schedule.js';
import { countRows, expectRejects } from '../conformance/helpers.js';
import { deferred, makeWarden, record, silent, within } from '../runtime/helpers.js';
import { overrideDriver } from '../support/override-driver.js';
import { createTestDatabase, DRIVER_KINDS, type TestDatabase } from '../support/test-databases.js';

const task = defineJob({ name: 'task', handler: () => undefined });
const hourly = defineSchedule({ name: 'hourly', every: '1h', job: task });

/** Every write a Warden offers, each with the name its refusal gives. */
function writes(warden: Warden, jobId: string): [string, () => Promise<unknown>][] {
  return [
    ['enqueue()', () => warden.enqueue(task, {})],
    ['enqueueMany()', () => warden.enqueueMany([{ job: task, payload: {} }])],
    ['jobs.retry()', () => warden.jobs.retry(jobId)],
    ['jobs.cancel()', () => warden.jobs.cancel(jobId)],
    ['jobs.discard()', () => warden.jobs.discard(jobId)],
    ['queues.pause()', () => warden.queues.pause('default')],
    ['queues.resume()', () => warden.queues.resume('default')],
    ['migrate()', () => warden.migrate()],
    ['drain()', () => warden.drain()],
    ['rescue()', () => warden.rescue()],
    ['runSchedulerOnce()', () => warden.runSchedulerOnce()],
    ['runRetentionOnce()', () => warden.runRetentionOnce()],
    ['schedules.sync()', () => warden.schedules.sync()],
    ['schedules.pause()', () => warden.schedules.pause('hourly')],
    ['schedules.resume()', () => warden.schedules.resume('hourly')],
    ['schedules.trigger()', () => warden.schedules.trigger('hourly')],
  ];
}

describe.each(DRIVER_KINDS)('writes after close (%s)', (kind) => {
  let tdb: TestDatabase;

  beforeEach(async () => {
    tdb = await createTestDatabase(kind);
  });

  afterEach(async () => {
    await tdb.cleanup();
  });

  it.each([
    ['that opened its driver', (t: TestDatabase) => makeWarden(t, { jobs: [task], schedules: [hourly], retention: {} })],
    ['given a driver', (t: TestDatabase) => createWarden({ database: t.driver, jobs: [task], schedules: [hourly], retention: {}, logger: silent })],
  ])('refuses every write of a Warden %s with WardenClosedError; nothing is written', async (_label, open) => {
    const warden = open(tdb);
    const { id } = await warden.enqueue(task, {});
    await warden.close();
    for (const [call, write] of writes(warden, id)) {
      const error = await expectRejects(write(), WardenClosedError);
      expect(error.call, call).toBe(call);
      expect(error.message).toBe(`Expected ${call} on an open Warden, got one closing or closed by close()`);
    }
    expect(await countRows(tdb, 'jobs')).toBe(1);
    expect((await tdb.driver.jobGet({ id }))!.state).toBe('queued');
    expect(await tdb.driver.queueList()).toMatchObject([{ queue: 'default', paused: false }]);
    expect(await tdb.driver.scheduleList()).toEqual([]);
  });

  it("lets a handler running in the stop's grace period enqueue its follow-up job", async () => {
    const followUp = defineJob({ name: 'follow-up', handler: () => undefined });
    const started = deferred();
    const release = deferred();
    let enqueued: Promise<unknown> | null = null;
    const first = defineJob({
      name: 'first',
      handler: async () => {
        started.resolve();
        await release.promise;
        enqueued = warden.enqueue(followUp, { after: 'first' });
        await enqueued;
      },
    });
    const warden = makeWarden(tdb, { jobs: [first, followUp], retention: false, worker: { pollInterval: '50ms' } });
    await warden.enqueue(first, {});
    await warden.start({ queues: ['default'] });
    await within(started.promise, 'the first job to start');
    const closing = warden.close();
    release.resolve();
    await within(closing, 'close() to finish');
    await expect(enqueued).resolves.toMatchObject({ duplicate: false });
    expect(await countRows(tdb, 'jobs')).toBe(2);
    await expectRejects(warden.enqueue(followUp, {}), WardenClosedError);
  });

  it("still enqueues the delivery jobs of an alert that close() flushes after refusing writes", async () => {
    const gate = deferred();
    // The dead-letter alert's write waits until close() refuses enqueues, then goes on in its transaction.
    const driver = overrideDriver(tdb.driver, { alertOpen: (real) => async (params) => { await gate.promise; return real(params); } });
    const warden = createWarden({
      database: driver, jobs: [task], retention: false, logger: silent,
      alerts: { sinks: [{ type: 'webhook', url: 'http://127.0.0.1:9/hook', secret: 'at-least-sixteen-chars' }], rules: { consecutiveFailures: false, failureRate: false } },
    });
    const errors: unknown[] = [];
    warden.on('error', (e) => errors.push(e.error));
    const job = { id: '1', name: 'task', queue: 'default' };
    warden.events.emit('job:dead', { job, attempt: 1, reason: 'failed', error: { name: 'Error', message: 'boom' } });
    const closing = warden.close();
    // Without retention, runRetentionOnce touches no database: refused as closed once writes are.
    const refusesWrites = () => warden.runRetentionOnce().then(() => false, (e: unknown) => e instanceof WardenClosedError);
    while (!(await refusesWrites())) await new Promise((resolve) => setImmediate(resolve));
    gate.resolve();
    await within(closing, 'close() to finish');
    expect(errors).toEqual([]);
    expect((await tdb.driver.jobList({ limit: 10 })).map((j) => [j.name, j.queue])).toEqual([['warden.alert-webhook', expect.any(String)]]);
  });

  it('waits for an enqueue accepted before close() before closing its driver', async () => {
    const gate = deferred();
    // An asynchronous schema holds the enqueue between its acceptance and its insert.
    const slowSchema: StandardSchemaV1 = {
      '~standard': { version: 1, vendor: 'test', validate: async (value) => { await gate.promise; return { value }; } },
    };
    const slow = defineJob({ name: 'slow', schema: slowSchema, handler: () => undefined });
    const warden = makeWarden(tdb, { jobs: [slow], retention: false });
    const enqueue = warden.enqueue(slow, { n: 1 });
    let closed = false;
    const closing = warden.close().then(() => {
      closed = true;
    });
    for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
    expect(closed, 'close() finished while an accepted enqueue was in flight').toBe(false);
    gate.resolve();
    await expect(enqueue).resolves.toMatchObject({ duplicate: false });
    await closing;
    expect(await countRows(tdb, 'jobs')).toBe(1);
  });

  it("gives up waiting for an accepted write that never settles after the worker's grace, says so, and closes", async () => {
    // A write whose database call never answers (a half-open connection): close() must still end.
    const driver = overrideDriver(tdb.driver, { jobInsertMany: () => () => new Promise(() => {}) });
    const warden = createWarden({ database: driver, jobs: [task], retention: false, logger: silent, worker: { grace: '200ms' } });
    const errors = record(warden, 'error');
    void warden.enqueue(task, {}).catch(() => undefined);
    await within(warden.close(), 'close() to give up on the write and finish');
    expect(errors.map((e) => [e.context, (e.error as { code?: string }).code])).toEqual([['closing', 'CLOSE_WRITES_PENDING']]);
  });

  it('waits for a drain() accepted before it', async () => {
    const started = deferred();
    const release = deferred();
    const gated = defineJob({ name: 'gated', handler: async () => {
      started.resolve();
      await release.promise;
    } });
    const warden = makeWarden(tdb, { jobs: [gated], retention: false });
    await warden.enqueue(gated, {});
    const draining = warden.drain();
    await within(started.promise, 'the drained job to start');
    let closed = false;
    const closing = warden.close().then(() => {
      closed = true;
    });
    for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
    expect(closed, 'close() finished while a drain was running').toBe(false);
    release.resolve();
    await expect(within(draining, 'drain() to settle')).resolves.toEqual({ attempts: 1 });
    await within(closing, 'close()');
  });

  it('refuses alerts.resolve() and alerts.check() after close: no delivery job is written (driver passed in)', async () => {
    const warden = createWarden({
      database: tdb.driver, retention: false, logger: silent,
      alerts: { sinks: [{ type: 'webhook', url: 'http://127.0.0.1:9/hook', secret: 'at-least-sixteen-chars' }], rules: { consecutiveFailures: false, failureRate: false } },
    });
    warden.events.emit('job:dead', { job: { id: '1', name: 'task', queue: 'default' }, attempt: 1, reason: 'failed', error: { name: 'Error', message: 'boom' } });
    await warden.alerts.settled();
    const [open] = await warden.alerts.list({ state: 'open' });
    expect(open?.key).toBe('dead-letter:1:1');
    const jobsBefore = await countRows(tdb, 'jobs');
    await warden.close();
    expect((await expectRejects(warden.alerts.resolve(open!.key), WardenClosedError)).call).toBe('alerts.resolve()');
    expect((await expectRejects(warden.alerts.check(), WardenClosedError)).call).toBe('alerts.check()');
    expect(await countRows(tdb, 'jobs')).toBe(jobsBefore);
  });
});
