/**
 * Leases, heartbeats, cancellation and rescue, driven by a fake clock: heartbeats keep a long attempt's lease;
 * a cancelled attempt loses its lease (signal aborted with LeaseLostError, its ending rejected as stale);
 * cancel and rescue racing on an expired lease always end cancelled; lost jobs are retried, then dead-lettered
 * as poison after `maxLost` losses, and an operator retry runs them again.
 * @module
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Warden } from '../../src/client/warden.js';
import { LeaseLostError } from '../../src/errors.js';
import { defineJob, type JobContext } from '../../src/job/define-job.js';
import type { JobRow } from '../../src/job/job-record.js';
import type { WorkerOptions } from '../../src/runtime/worker-options.js';
import { createTestDatabase, DRIVER_KINDS, type TestDatabase } from '../support/test-databases.js';
import { deferred, type Deferred, IDLE_TIMERS, makeWarden, record, T0, TestClock, within } from './helpers.js';

const LEASE_MS = 3_000;
const HEARTBEAT_MS = 1_000;
/** Steps smaller than the heartbeat interval, so each heartbeat fires at its own time. */
const STEP_MS = 250;
const WORKER: WorkerOptions = { lease: LEASE_MS, heartbeat: HEARTBEAT_MS, rescueInterval: '2s', pollInterval: '500ms' };

describe.each(DRIVER_KINDS)('leases and cancellation (%s)', (kind) => {
  let tdb: TestDatabase;
  let clock: TestClock;
  let warden: Warden;
  let calls: number;
  let aborts: unknown[];
  /** The running attempt's release: the handler returns when it resolves (or throws on abort). */
  let gate: Deferred;
  /** The release of `abortableJob`'s attempts. */
  let gateB: Deferred;

  /**
   * A handler that blocks until `release()` opens or its signal aborts; on abort it records the reason in `aborts`
   * and rejects with it, as a well-behaved handler does.
   */
  function untilReleasedOrAborted(release: () => Deferred) {
    return async (_payload: unknown, ctx: JobContext): Promise<void> => {
      calls++;
      await new Promise<void>((resolve, reject) => {
        ctx.signal.addEventListener('abort', () => {
          aborts.push(ctx.signal.reason);
          reject(ctx.signal.reason);
        });
        void release().promise.then(resolve);
      });
    };
  }

  const longJob = defineJob({ name: 'long-job', retry: { maxAttempts: 10 }, handler: untilReleasedOrAborted(() => gate) });
  /** A job whose handler ignores its signal: it returns when released, whatever happened meanwhile. */
  const stubbornJob = defineJob({
    name: 'stubborn-job',
    handler: async () => {
      calls++;
      await gate.promise;
    },
  });
  /** As `long-job`, released by `gateB`: it can run while `gate` holds another job. */
  const abortableJob = defineJob({ name: 'abortable-job', handler: untilReleasedOrAborted(() => gateB) });
  const quickJob = defineJob({
    name: 'quick-job',
    retry: { maxAttempts: 10 },
    handler: () => {
      calls++;
    },
  });

  beforeEach(async () => {
    calls = 0;
    aborts = [];
    gate = deferred();
    gateB = deferred();
    tdb = await createTestDatabase(kind);
    clock = new TestClock(T0);
    warden = makeWarden(tdb, { jobs: [longJob, stubbornJob, abortableJob, quickJob], clock });
  });

  afterEach(async () => {
    gate.resolve();
    gateB.resolve();
    await warden?.close();
    await tdb?.cleanup();
  });

  async function startIdle(): Promise<void> {
    await warden.start(WORKER);
    await clock.waitForTimers(IDLE_TIMERS, 'the started worker to be idle');
  }

  async function get(id: string): Promise<JobRow> {
    const row = await warden.jobs.get(id);
    expect(row).not.toBeNull();
    return row!;
  }

  /** Claims the job directly through the driver, as a worker that then dies would: no heartbeat ever follows. */
  async function claimWithoutHeartbeat(id: string, workerId: string): Promise<JobRow> {
    const rows = await tdb.driver.jobClaim({ queues: ['default'], limit: 10, workerId, leaseMs: LEASE_MS, now: clock.sqlNow() });
    expect(rows.map((r) => r.id)).toEqual([id]);
    return rows[0]!;
  }

  it('heartbeats keep a long attempt’s lease alive well past the lease length', async () => {
    const rescued = record(warden, 'job:rescued');
    const stale = record(warden, 'job:stale-write-rejected');
    await startIdle();
    const started = warden.events.next('job:started');
    const { id } = await warden.enqueue(longJob, {});
    await within(started, 'the attempt to start');
    const first = await get(id);
    expect(first.leaseExpiresAt!.getTime()).toBe(T0 + LEASE_MS);

    // Four lease lengths, in steps smaller than the heartbeat; the worker's own rescuer runs every 2 s.
    await clock.step(4 * LEASE_MS, STEP_MS, IDLE_TIMERS);
    await warden.rescue();

    const row = await get(id);
    expect(row).toMatchObject({ state: 'running', attempt: 1, leaseToken: first.leaseToken, lostCount: 0 });
    // Renewed by the heartbeat at the last whole second: it expires a full lease after that.
    expect(row.leaseExpiresAt!.getTime()).toBe(clock.now() + LEASE_MS);
    expect(rescued).toEqual([]);
    expect(stale).toEqual([]);
    expect(aborts).toEqual([]);
    expect(await warden.jobs.attempts(id)).toEqual([]);
    expect(warden.workerCounters).toMatchObject({ rescued: 0, staleWritesRejected: 0 });

    const completed = warden.events.next('job:completed', (e) => e.job.id === id);
    gate.resolve();
    await within(completed, 'the long attempt to complete');
    expect(await get(id)).toMatchObject({ state: 'completed', attempt: 1 });
    expect((await warden.jobs.attempts(id)).map((a) => [a.attempt, a.outcome])).toEqual([[1, 'completed']]);
    expect(calls).toBe(1);
  });

  it('a buffered job cancelled, then started while the heartbeat that finds it stale is in flight, is aborted by it', async () => {
    const a = await warden.enqueue(stubbornJob, {});
    const startedA = warden.events.next('job:started', (e) => e.job.id === a.id);
    // One handler, one job buffered: A runs, B waits in the buffer.
    await warden.start({ ...WORKER, concurrency: 1, prefetch: 1 });
    await within(startedA, 'A to start');
    // B is claimed 100 ms before the first heartbeat: its claim still confirms it when it starts in A's slot during
    // that heartbeat (RECHECK_MS), so it starts without a look-up, cancelled or not.
    await clock.step(HEARTBEAT_MS - 100, 100, IDLE_TIMERS);
    const b = await warden.enqueue(abortableJob, {});
    await within((async () => {
      while ((await get(b.id)).state !== 'running') await new Promise((resolve) => setImmediate(resolve));
    })(), 'B to be claimed into the buffer');
    expect((await warden.jobs.cancel(b.id, { actor: 'test' })).state).toBe('cancelled');
    const driver = warden.driver;
    const heartbeat = driver.jobHeartbeat.bind(driver);
    const stale = record(warden, 'job:stale-write-rejected');
    // The heartbeat is sent with B still buffered; before its answer, A ends and B starts in A's slot.
    driver.jobHeartbeat = async (params) => {
      const startedB = warden.events.next('job:started', (e) => e.job.id === b.id);
      gate.resolve();
      await within(startedB, 'B to start while the heartbeat is in flight');
      return heartbeat(params);
    };
    await clock.advance(HEARTBEAT_MS);
    await within((async () => {
      while (aborts.length === 0) await new Promise((resolve) => setImmediate(resolve));
    })(), "B's signal to abort", 5_000);
    expect(aborts[0]).toBeInstanceOf(LeaseLostError);
    expect(stale.filter((e) => e.jobId === b.id)).toHaveLength(1);
    expect(await get(b.id)).toMatchObject({ state: 'cancelled' });
  });

  it('without heartbeats the same lease is rescued once it expires (control)', async () => {
    const { id } = await warden.enqueue(longJob, {});
    await claimWithoutHeartbeat(id, 'dead-worker');
    await clock.advance(LEASE_MS);
    await warden.rescue();
    expect((await get(id)).state).toBe('running');
    await clock.advance(1);
    await warden.rescue();
    expect(await get(id)).toMatchObject({ state: 'retrying', lostCount: 1 });
  });

  it('cancelling a running job aborts its signal with LeaseLostError at the next heartbeat; it stays cancelled', async () => {
    const completed = record(warden, 'job:completed');
    const failed = record(warden, 'job:failed');
    const staleHeartbeat = warden.events.next('job:stale-write-rejected');
    await startIdle();
    const started = warden.events.next('job:started');
    const { id } = await warden.enqueue(longJob, {});
    const startedEvent = await within(started, 'the attempt to start');

    const cancelled = await warden.jobs.cancel(id, { actor: 'test' });
    expect(cancelled.state).toBe('cancelled');
    expect(aborts).toEqual([]);

    // Steps up to just before the heartbeat leave the handler undisturbed; the heartbeat finds the lease gone.
    await clock.step(HEARTBEAT_MS - STEP_MS, STEP_MS, IDLE_TIMERS);
    expect(aborts).toEqual([]);
    await clock.step(STEP_MS, STEP_MS, IDLE_TIMERS);
    expect(await within(staleHeartbeat, 'the heartbeat to be rejected as stale')).toEqual({
      jobId: id,
      leaseToken: startedEvent.leaseToken,
      write: 'heartbeat',
    });
    expect(aborts).toHaveLength(1);
    expect(aborts[0]).toBeInstanceOf(LeaseLostError);
    expect(aborts[0]).toMatchObject({ jobId: id, leaseToken: startedEvent.leaseToken });

    // More time passes: nothing completes it, fails it or runs it again.
    await clock.step(10_000, 500, IDLE_TIMERS);
    expect(await get(id)).toMatchObject({ state: 'cancelled', attempt: 1 });
    expect((await warden.jobs.attempts(id)).map((a) => [a.attempt, a.outcome, a.error?.name])).toEqual([[1, 'cancelled', 'CancelledError']]);
    expect(completed).toEqual([]);
    expect(failed).toEqual([]);
    expect(calls).toBe(1);
    expect(warden.workerCounters!.staleWritesRejected).toBeGreaterThanOrEqual(1);
  });

  it('a cancelled attempt that finishes anyway has its completion rejected as stale', async () => {
    const completed = record(warden, 'job:completed');
    await startIdle();
    const started = warden.events.next('job:started');
    const { id } = await warden.enqueue(stubbornJob, {});
    await within(started, 'the attempt to start');
    await warden.jobs.cancel(id);

    const staleFinish = warden.events.next('job:stale-write-rejected', (e) => e.jobId === id);
    gate.resolve();
    expect(await within(staleFinish, 'the completion to be rejected as stale')).toMatchObject({ jobId: id, write: 'finish' });
    expect(await get(id)).toMatchObject({ state: 'cancelled', attempt: 1 });
    expect((await warden.jobs.attempts(id)).map((a) => a.outcome)).toEqual(['cancelled']);
    expect(completed).toEqual([]);
    expect(warden.workerCounters!.staleWritesRejected).toBe(1);
  });

  describe.each([
    ['cancel, then rescue', 'cancel-first'],
    ['rescue, then cancel', 'rescue-first'],
    ['cancel and rescue at once', 'together'],
  ] as const)('an expired lease: %s', (_title, order) => {
    it('ends cancelled, and no worker ever runs the job', async () => {
      const { id } = await warden.enqueue(quickJob, {});
      const claimed = await claimWithoutHeartbeat(id, 'dead-worker');
      await clock.advance(LEASE_MS + 1);

      if (order === 'cancel-first') {
        await warden.jobs.cancel(id);
        await warden.rescue();
      } else if (order === 'rescue-first') {
        await warden.rescue();
        expect((await get(id)).state).toBe('retrying');
        await warden.jobs.cancel(id);
      } else {
        await Promise.all([warden.jobs.cancel(id), warden.rescue()]);
      }

      expect(await get(id)).toMatchObject({ state: 'cancelled', attempt: 1 });
      const attempts = await warden.jobs.attempts(id);
      // Exactly one ending for the one lease: `cancelled` if the cancel saw it running, else `lost`.
      expect(attempts).toHaveLength(1);
      expect(attempts[0]!.leaseToken).toBe(claimed.leaseToken);
      expect(['cancelled', 'lost']).toContain(attempts[0]!.outcome);
      if (order === 'cancel-first') expect(attempts[0]!.outcome).toBe('cancelled');
      if (order === 'rescue-first') expect(attempts[0]!.outcome).toBe('lost');

      expect(await warden.drain()).toEqual({ attempts: 0 });
      await startIdle();
      await clock.step(10_000, 500, IDLE_TIMERS);
      await warden.rescue();
      expect(calls).toBe(0);
      expect(await get(id)).toMatchObject({ state: 'cancelled', attempt: 1 });
      expect(await warden.jobs.attempts(id)).toHaveLength(1);
    });
  });

  it('a lost job is retried; after maxLost losses it is dead as poison; an operator retry runs it again', async () => {
    const rescuedEvents = record(warden, 'job:rescued');
    const deadEvents = record(warden, 'job:dead');
    const { id } = await warden.enqueue(quickJob, {});

    // First loss: back to retrying, due now, with a `lost` attempt.
    await claimWithoutHeartbeat(id, 'dead-worker-1');
    await clock.advance(LEASE_MS + 1);
    await warden.rescue({ maxLost: 2 });
    const afterFirst = await get(id);
    expect(afterFirst).toMatchObject({ state: 'retrying', attempt: 1, lostCount: 1, lastError: { name: 'LeaseExpiredError' } });
    expect(afterFirst.runAt.getTime()).toBe(clock.now());
    expect(rescuedEvents).toEqual([{ job: { id, name: 'quick-job', queue: 'default', scheduleName: null }, attempt: 1, nextState: 'retrying' }]);
    expect(deadEvents).toEqual([]);

    // Second loss reaches maxLost: dead, reason lost.
    await claimWithoutHeartbeat(id, 'dead-worker-2');
    await clock.advance(LEASE_MS + 1);
    await warden.rescue({ maxLost: 2 });
    expect(await get(id)).toMatchObject({ state: 'dead', attempt: 2, lostCount: 2 });
    expect(rescuedEvents.map((e) => e.nextState)).toEqual(['retrying', 'dead']);
    expect(deadEvents).toHaveLength(1);
    expect(deadEvents[0]).toMatchObject({ job: { id }, attempt: 2, reason: 'lost' });
    // The event announces the error the rescue stored, not a text of its own.
    expect((deadEvents[0] as { error: unknown }).error).toEqual((await get(id)).lastError);
    const lost = await warden.jobs.attempts(id);
    expect(lost.map((a) => [a.attempt, a.outcome, a.workerId])).toEqual([
      [1, 'lost', 'dead-worker-1'],
      [2, 'lost', 'dead-worker-2'],
    ]);
    expect(calls).toBe(0);
    expect(await warden.drain()).toEqual({ attempts: 0 });

    // The operator retries the poison job: it runs again, in this process, and completes.
    const retried = await warden.jobs.retry(id, { actor: 'ops' });
    expect(retried).toMatchObject({ state: 'queued', lostCount: 0 });
    expect(await warden.drain()).toEqual({ attempts: 1 });
    expect(calls).toBe(1);
    expect(await get(id)).toMatchObject({ state: 'completed', attempt: 3 });
    expect((await warden.jobs.attempts(id)).map((a) => a.outcome)).toEqual(['lost', 'lost', 'completed']);
    expect(deadEvents).toHaveLength(1);
  });

  it("a started worker's rescuer rescues a lease whose worker died, and runs the job", async () => {
    const { id } = await warden.enqueue(quickJob, {});
    await claimWithoutHeartbeat(id, 'dead-worker');
    const completed = warden.events.next('job:completed', (e) => e.job.id === id);
    await startIdle();
    // The rescuer runs every 2 s; the lease expires at 3 s, so the pass at 4 s rescues it.
    await clock.step(LEASE_MS + 1_000, 500, IDLE_TIMERS);
    await within(completed, 'the rescued job to complete');
    expect(calls).toBe(1);
    expect(await get(id)).toMatchObject({ state: 'completed', attempt: 2, lostCount: 1 });
    expect((await warden.jobs.attempts(id)).map((a) => [a.attempt, a.outcome])).toEqual([
      [1, 'lost'],
      [2, 'completed'],
    ]);
    expect(warden.workerCounters!.rescued).toBe(1);
  });
});
