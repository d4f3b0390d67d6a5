/**
 * Retries, backoff and the dead letters, driven by a fake clock: exact exponential delays (and jitter from a
 * seeded `random`), the attempt bound, non-retryable errors, timeouts, unknown job names and stored payloads
 * that no longer validate. Attempt rows in the database are the oracle for what happened and when.
 * @module
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { Warden } from '../../src/client/warden.js';
import { JobTimeoutError, NonRetryableError } from '../../src/errors.js';
import { defineJob, type JobDefinition } from '../../src/job/define-job.js';
import { createTestDatabase, DRIVER_KINDS, makeInsert, type TestDatabase } from '../support/test-databases.js';
import { deferred, IDLE_TIMERS, makeWarden, type MakeWardenOptions, record, T0, TestClock, within } from './helpers.js';

const POLL_MS = 100;

describe.each(DRIVER_KINDS)('retries (%s)', (kind) => {
  let tdb: TestDatabase;
  let clock: TestClock;
  let warden: Warden | undefined;
  /** Called before closing: lets blocked handlers return so shutdown does not wait on the fake clock. */
  let releaseHandlers: (() => void)[];

  beforeEach(async () => {
    tdb = await createTestDatabase(kind);
    clock = new TestClock(T0);
    releaseHandlers = [];
  });

  afterEach(async () => {
    for (const release of releaseHandlers) release();
    await warden?.close();
    warden = undefined;
    await tdb?.cleanup();
  });

  function open(jobs: JobDefinition<any, any>[], options: MakeWardenOptions = {}): Warden {
    warden = makeWarden(tdb, { jobs, clock, ...options });
    return warden;
  }

  /** Starts the worker and waits until its claim loop, heartbeater and rescuer all wait on the clock. */
  async function startIdle(w: Warden): Promise<void> {
    await w.start({ pollInterval: `${POLL_MS}ms` });
    await clock.waitForTimers(IDLE_TIMERS, 'the started worker to be idle');
  }

  /**
   * Runs an always-failing job with a started worker, advancing fake time by exactly each scheduled delay
   * (one poll interval at a time), and checks that no attempt starts a moment early. Returns the delays.
   */
  async function runToDeath(w: Warden, job: JobDefinition<any, any>, maxAttempts: number): Promise<{ id: string; delays: number[]; dead: number }> {
    const delays: number[] = [];
    const deadEvents = record(w, 'job:dead');
    const started = record(w, 'job:started');
    await startIdle(w);
    let scheduled = w.events.next('job:retry-scheduled');
    const dead = w.events.next('job:dead');
    const { id } = await w.enqueue(job, {});
    for (let attempt = 1; attempt < maxAttempts; attempt++) {
      const event = await within(scheduled, `job:retry-scheduled after attempt ${attempt}`);
      expect(event).toMatchObject({ job: { id }, attempt });
      delays.push(event.delayMs);
      const row = await w.jobs.get(id);
      expect(row).toMatchObject({ state: 'retrying', attempt });
      expect(row!.runAt.getTime()).toBe(clock.now() + event.delayMs);

      scheduled = w.events.next('job:retry-scheduled');
      const next = w.events.next('job:started', (e) => e.attempt === attempt + 1);
      // Every poll up to one interval before the due time finds nothing.
      await clock.step(event.delayMs - POLL_MS, POLL_MS, IDLE_TIMERS);
      expect(started).toHaveLength(attempt);
      expect((await w.jobs.get(id))!.state).toBe('retrying');
      // The poll at exactly the due time claims it.
      await clock.step(POLL_MS, POLL_MS, IDLE_TIMERS);
      await within(next, `attempt ${attempt + 1} to start`);
    }
    await within(dead, 'job:dead');
    return { id, delays, dead: deadEvents.length };
  }

  it('retries with exact exponential backoff, then dead-letters after maxAttempts', async () => {
    let calls = 0;
    const job = defineJob({
      name: 'always-fails',
      retry: { maxAttempts: 5, backoff: { type: 'exponential', base: '1s', max: '1m', jitter: 'none' } },
      handler: () => {
        calls++;
        throw new Error(`boom ${calls}`);
      },
    });
    const w = open([job]);
    const { id, delays } = await runToDeath(w, job, 5);
    const deadEvents = record(w, 'job:dead');

    expect(delays).toEqual([1000, 2000, 4000, 8000]);
    expect(calls).toBe(5);
    const row = await w.jobs.get(id);
    expect(row).toMatchObject({ state: 'dead', attempt: 5, lastError: { name: 'Error', message: 'boom 5' } });
    const attempts = await w.jobs.attempts(id);
    expect(attempts.map((a) => [a.attempt, a.outcome, a.error?.message])).toEqual([
      [1, 'failed', 'boom 1'],
      [2, 'failed', 'boom 2'],
      [3, 'failed', 'boom 3'],
      [4, 'failed', 'boom 4'],
      [5, 'failed', 'boom 5'],
    ]);
    for (let i = 1; i < attempts.length; i++) {
      const gap = attempts[i]!.startedAt!.getTime() - attempts[i - 1]!.finishedAt.getTime();
      expect(gap).toBeGreaterThanOrEqual(delays[i - 1]!);
      // Claimed by the first poll at or after the due time, not later.
      expect(gap).toBeLessThan(delays[i - 1]! + POLL_MS);
    }

    // Dead is final: a minute of polling later nothing more has run and no second job:dead was emitted.
    await clock.step(60_000, 1_000, IDLE_TIMERS);
    expect(calls).toBe(5);
    expect(deadEvents).toEqual([]);
    expect(await w.jobs.attempts(id)).toHaveLength(5);
  });

  it('emits exactly one job:dead, with the last attempt and its error', async () => {
    const job = defineJob({
      name: 'always-fails',
      retry: { maxAttempts: 2, backoff: { base: '1s', jitter: 'none' } },
      handler: () => {
        throw new Error('nope');
      },
    });
    const w = open([job]);
    const deadEvents = record(w, 'job:dead');
    const { dead } = await runToDeath(w, job, 2);
    expect(dead).toBe(1);
    expect(deadEvents).toHaveLength(1);
    expect(deadEvents[0]).toMatchObject({ attempt: 2, reason: 'failed', error: { name: 'Error', message: 'nope' } });
  });

  it("jitter 'full' with a seeded random scales each delay by it", async () => {
    const job = defineJob({
      name: 'always-fails-jittered',
      retry: { maxAttempts: 5, backoff: { type: 'exponential', base: '1s', max: '1m', jitter: 'full' } },
      handler: () => {
        throw new Error('boom');
      },
    });
    const w = open([job], { random: () => 0.5 });
    const { id, delays } = await runToDeath(w, job, 5);
    expect(delays).toEqual([500, 1000, 2000, 4000]);
    expect((await w.jobs.attempts(id)).map((a) => a.outcome)).toEqual(['failed', 'failed', 'failed', 'failed', 'failed']);
    expect((await w.jobs.get(id))!.state).toBe('dead');
  });

  it('NonRetryableError dead-letters after exactly one attempt', async () => {
    let calls = 0;
    const job = defineJob({
      name: 'declined',
      retry: { maxAttempts: 5 },
      handler: () => {
        calls++;
        throw new NonRetryableError('card declined');
      },
    });
    const w = open([job]);
    const deadEvents = record(w, 'job:dead');
    const retries = record(w, 'job:retry-scheduled');
    const { id } = await w.enqueue(job, {});
    expect(await w.drain()).toEqual({ attempts: 1 });
    expect(await w.drain()).toEqual({ attempts: 0 });
    expect(calls).toBe(1);
    expect(await w.jobs.get(id)).toMatchObject({ state: 'dead', attempt: 1, lastError: { name: 'NonRetryableError', message: 'card declined' } });
    const attempts = await w.jobs.attempts(id);
    expect(attempts.map((a) => [a.outcome, a.error?.name])).toEqual([['failed', 'NonRetryableError']]);
    expect(retries).toEqual([]);
    expect(deadEvents).toHaveLength(1);
    expect(deadEvents[0]).toMatchObject({ job: { id }, attempt: 1, reason: 'failed' });
  });

  it('a timeout aborts ctx.signal with JobTimeoutError, records a timeout attempt, and is retried', async () => {
    const reasons: unknown[] = [];
    let calls = 0;
    const job = defineJob({
      name: 'slow',
      timeout: '5s',
      retry: { maxAttempts: 3, backoff: { base: '1s', jitter: 'none' } },
      handler: async (_payload, ctx) => {
        calls++;
        if (ctx.attempt > 1) return;
        const release = deferred();
        releaseHandlers.push(() => release.resolve());
        await new Promise<void>((resolve, reject) => {
          ctx.signal.addEventListener('abort', () => {
            reasons.push(ctx.signal.reason);
            reject(ctx.signal.reason);
          });
          void release.promise.then(resolve);
        });
      },
    });
    const w = open([job]);
    const failed = record(w, 'job:failed');
    await startIdle(w);
    const started = w.events.next('job:started');
    const scheduled = w.events.next('job:retry-scheduled');
    const { id } = await w.enqueue(job, {});
    await within(started, 'attempt 1 to start');
    // Poll, heartbeater, rescuer and the attempt's timeout timer.
    await clock.waitForTimers(IDLE_TIMERS + 1, 'the timeout timer');

    await clock.step(4_900, POLL_MS, IDLE_TIMERS + 1);
    expect(reasons).toEqual([]);
    expect((await w.jobs.get(id))!.state).toBe('running');
    await clock.step(100, POLL_MS, IDLE_TIMERS);
    const retry = await within(scheduled, 'job:retry-scheduled after the timeout');
    expect(retry).toMatchObject({ attempt: 1, delayMs: 1_000 });
    expect(reasons).toHaveLength(1);
    expect(reasons[0]).toBeInstanceOf(JobTimeoutError);
    expect((reasons[0] as JobTimeoutError).timeoutMs).toBe(5_000);
    expect(failed).toHaveLength(1);
    expect(failed[0]).toMatchObject({ outcome: 'timeout', nextState: 'retrying', error: { name: 'JobTimeoutError' } });
    expect(await w.jobs.get(id)).toMatchObject({ state: 'retrying', attempt: 1, lastError: { name: 'JobTimeoutError' } });

    const completed = w.events.next('job:completed', (e) => e.job.id === id);
    await clock.step(1_000, POLL_MS, IDLE_TIMERS);
    await within(completed, 'attempt 2 to complete');
    expect(calls).toBe(2);
    const attempts = await w.jobs.attempts(id);
    expect(attempts.map((a) => [a.attempt, a.outcome, a.error?.name ?? null])).toEqual([
      [1, 'timeout', 'JobTimeoutError'],
      [2, 'completed', null],
    ]);
    expect(attempts[0]!.finishedAt.getTime() - attempts[0]!.startedAt!.getTime()).toBe(5_000);
    expect(await w.jobs.get(id)).toMatchObject({ state: 'completed', attempt: 2 });
  });

  it('a handler error whose message contains U+0000 is recorded and does not hold up other endings', async () => {
    // Real clock and no grace period: if the ending cannot be written, shutdown must not wait on a fake clock.
    const poisonMessage = defineJob({
      name: 'nul-error',
      retry: { maxAttempts: 1 },
      handler: () => {
        throw new Error('bad\u0000byte');
      },
    });
    const fine = defineJob({ name: 'fine', handler: () => {} });
    const w = makeWarden(tdb, { jobs: [poisonMessage, fine], worker: { pollInterval: '50ms', grace: 0 } });
    try {
      const errors = record(w, 'error');
      await w.start();
      const a = await w.enqueue(poisonMessage, {});
      const dead = w.events.next('job:dead', (e) => e.job.id === a.id);
      await within(dead, 'the failing job to be dead-lettered', 5_000).catch(() => undefined);
      const b = await w.enqueue(fine, {});
      const completed = w.events.next('job:completed', (e) => e.job.id === b.id);
      await within(completed, 'a later job to complete on the same worker', 5_000).catch(() => undefined);

      const rowA = await w.jobs.get(a.id);
      const rowB = await w.jobs.get(b.id);
      expect(errors.map((e) => `${e.context}: ${(e.error as Error).message}`)).toEqual([]);
      expect(rowA!.state).toBe('dead');
      expect(rowA!.lastError!.message.startsWith('bad')).toBe(true);
      expect(rowB!.state).toBe('completed');
    } finally {
      await w.close();
    }
  });

  it('a job name no worker knows is retried (not dead-lettered) with UnknownJobError', async () => {
    const known = defineJob({ name: 'known', handler: () => {} });
    const w = open([known]);
    const [inserted] = await tdb.driver.jobInsertMany({ jobs: [makeInsert({ name: 'not-registered', maxAttempts: 3 })], now: clock.sqlNow() });
    const id = inserted!.job.id;
    const deadEvents = record(w, 'job:dead');

    expect(await w.drain()).toEqual({ attempts: 1 });
    const row = await w.jobs.get(id);
    expect(row).toMatchObject({ state: 'retrying', attempt: 1, lastError: { name: 'UnknownJobError' } });
    expect(row!.lastError!.message).toContain('not-registered');
    expect(row!.runAt.getTime()).toBeGreaterThan(clock.now());
    const attempts = await w.jobs.attempts(id);
    expect(attempts.map((a) => [a.outcome, a.error?.name])).toEqual([['failed', 'UnknownJobError']]);
    expect(deadEvents).toEqual([]);
  });

  it('a schema whose validator throws at run time fails the attempt (retryable), never leaving the job running', async () => {
    let throwing = false;
    let calls = 0;
    const job = defineJob({
      name: 'validated',
      // A refine that throws makes the Standard Schema validate() reject: not an invalid payload, a crash.
      schema: z.object({ n: z.number() }).refine(() => {
        if (throwing) throw new Error('validator crashed');
        return true;
      }),
      retry: { maxAttempts: 3 },
      handler: () => {
        calls++;
      },
    });
    const w = open([job]);
    const errors = record(w, 'error');
    const { id } = await w.enqueue(job, { n: 1 });
    throwing = true;

    // drain() awaits the attempt: it rejected with the validator's error, leaving the job running under its lease.
    expect(await w.drain()).toEqual({ attempts: 1 });
    expect(calls).toBe(0);
    expect(await w.jobs.get(id)).toMatchObject({ state: 'retrying', attempt: 1 });
    const attempts = await w.jobs.attempts(id);
    expect(attempts.map((a) => [a.outcome, a.error?.message])).toEqual([['failed', 'validator crashed']]);
    expect(errors).toEqual([]);

    throwing = false;
    await clock.advance(60_000);
    expect(await w.drain()).toEqual({ attempts: 1 });
    expect(calls).toBe(1);
    expect(await w.jobs.get(id)).toMatchObject({ state: 'completed', attempt: 2 });
  });

  it('a stored payload that no longer validates is dead after one attempt, handler never called, issues kept', async () => {
    let calls = 0;
    const job = defineJob({
      name: 'typed',
      schema: z.object({ n: z.number() }),
      retry: { maxAttempts: 5 },
      handler: () => {
        calls++;
      },
    });
    const w = open([job]);
    const deadEvents = record(w, 'job:dead');
    const [inserted] = await tdb.driver.jobInsertMany({
      jobs: [makeInsert({ name: 'typed', payloadJson: '{"n":"not a number"}', maxAttempts: 5 })],
      now: clock.sqlNow(),
    });
    const id = inserted!.job.id;

    expect(await w.drain()).toEqual({ attempts: 1 });
    expect(await w.drain()).toEqual({ attempts: 0 });
    expect(calls).toBe(0);
    const row = await w.jobs.get(id);
    expect(row).toMatchObject({ state: 'dead', attempt: 1, payload: { n: 'not a number' } });
    const attempts = await w.jobs.attempts(id);
    expect(attempts).toHaveLength(1);
    expect(attempts[0]!.outcome).toBe('invalid');
    expect(attempts[0]!.error?.name).toBe('PayloadValidationError');
    expect(attempts[0]!.error?.message).toContain('Expected');
    expect(attempts[0]!.error?.issues).toEqual([expect.objectContaining({ path: ['n'] })]);
    expect(deadEvents).toHaveLength(1);
    expect(deadEvents[0]).toMatchObject({ job: { id }, attempt: 1, reason: 'invalid' });
  });
});
