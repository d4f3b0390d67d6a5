/**
 * Deduplication at enqueue (`key`, `unique: { key, window, states, replace }`, a job's `unique.key(payload)`):
 * which existing job counts as a duplicate, under a fake clock for the window; debounce (`replace`) of a job still
 * waiting; and bad input refused with typed errors, nothing written (no job, no key row).
 * @module
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { Warden } from '../../src/client/warden.js';
import { InvalidDurationError, InvalidNameError, InvalidOptionError } from '../../src/errors.js';
import { defineJob, type JobContext } from '../../src/job/define-job.js';
import type { JobState } from '../../src/job/job-record.js';
import { type Oracle, openOracle } from '../process/db-oracle.js';
import { deferred, type Deferred, IDLE_TIMERS, makeWarden, type MakeWardenOptions, record, T0, TestClock, within } from '../runtime/helpers.js';
import { createTestDatabase, DRIVER_KINDS, type TestDatabase } from '../support/test-databases.js';
import { caught, expectTyped, getJob, RETRY_1S } from './helpers.js';

const HOUR = 3_600_000;

describe.each(DRIVER_KINDS)('enqueue deduplication (%s)', (kind) => {
  let tdb: TestDatabase;
  let oracle: Oracle;
  let clock: TestClock;
  let wardens: Warden[];
  let ran: string[];
  /** Held by `hold` jobs until released (or their signal aborts). */
  let gate: Deferred;

  const payload = z.object({ tag: z.string() });
  const task = defineJob({ name: 'task', schema: payload, retry: { maxAttempts: 3, backoff: RETRY_1S }, handler: (p) => void ran.push(p.tag) });
  /** Fails while `failing` is set: lands in `retrying`, then `dead` after 2 attempts. */
  let failing = false;
  const flaky = defineJob({
    name: 'flaky',
    schema: payload,
    retry: { maxAttempts: 2, backoff: RETRY_1S },
    handler: (p) => {
      ran.push(p.tag);
      if (failing) throw new Error('not yet');
    },
  });
  const hold = defineJob({
    name: 'hold',
    schema: payload,
    handler: async (p, ctx: JobContext) => {
      ran.push(p.tag);
      await new Promise<void>((resolve, reject) => {
        ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason));
        void gate.promise.then(resolve);
      });
    },
  });
  /** Keys derived from the payload; a 1 h window; completed jobs count. */
  const perUser = defineJob({
    name: 'per-user',
    schema: z.object({ userId: z.number(), note: z.string() }),
    unique: { key: (p) => `user:${p.userId}`, window: '1h' },
    handler: (p) => void ran.push(p.note),
  });
  const jobs = [task, flaky, hold, perUser];

  beforeEach(async () => {
    ran = [];
    wardens = [];
    failing = false;
    gate = deferred();
    tdb = await createTestDatabase(kind);
    oracle = await openOracle(tdb);
    clock = new TestClock(T0);
  });

  afterEach(async () => {
    gate.resolve();
    for (const w of wardens) await w.close();
    await oracle?.close();
    await tdb?.cleanup();
  });

  function open(options: MakeWardenOptions = {}): Warden {
    const w = makeWarden(tdb, { jobs, clock, ...options });
    wardens.push(w);
    return w;
  }

  async function jobCount(): Promise<number> {
    return oracle.number('SELECT count(*) FROM {jobs}');
  }

  async function keyRows(): Promise<{ key: string; jobId: string }[]> {
    return (await oracle.all<{ key: string; job_id: unknown }>('SELECT key, job_id FROM {job_keys} ORDER BY key')).map((r) => ({ key: r.key, jobId: String(r.job_id) }));
  }

  /** Claims every due job of `queue` through the driver, as a worker would, leaving them `running`. */
  async function claimAll(): Promise<string[]> {
    const rows = await tdb.driver.jobClaim({ queues: ['default'], limit: 100, workerId: 'test-worker', leaseMs: 60_000, now: clock.sqlNow() });
    return rows.map((r) => r.id);
  }

  describe('key (no policy): the holder is a duplicate while queued, retrying or running', () => {
    it('queued and running holders are duplicates; a completed one frees the key', async () => {
      const w = open();
      const enqueued = record(w, 'job:enqueued');
      const first = await w.enqueue(task, { tag: 'first' }, { key: 'k' });
      expect(first).toMatchObject({ duplicate: false, replaced: false });

      const queuedDup = await w.enqueue(task, { tag: 'second' }, { key: 'k' });
      expect(queuedDup).toMatchObject({ id: first.id, duplicate: true, replaced: false });
      // The duplicate leaves the holder as it was: the first payload stays.
      expect(queuedDup.job.payload).toEqual({ tag: 'first' });

      expect(await claimAll()).toEqual([first.id]);
      expect(await w.enqueue(task, { tag: 'third' }, { key: 'k' })).toMatchObject({ id: first.id, duplicate: true, replaced: false });

      await tdb.driver.jobFinishMany({ items: [{ id: first.id, leaseToken: 1, outcome: 'completed', state: 'completed', retryDelayMs: 0, error: null }], now: clock.sqlNow() });
      expect((await getJob(w, first.id)).state).toBe('completed');
      const after = await w.enqueue(task, { tag: 'fourth' }, { key: 'k' });
      expect(after).toMatchObject({ duplicate: false, replaced: false });
      expect(after.id).not.toBe(first.id);

      expect(await jobCount()).toBe(2);
      expect(await keyRows()).toEqual([{ key: 'k', jobId: after.id }]);
      expect(enqueued.map((e) => [e.job.id, e.duplicate, e.replaced])).toEqual([
        [first.id, false, false],
        [first.id, true, false],
        [first.id, true, false],
        [after.id, false, false],
      ]);
    });

    it('a retrying holder is a duplicate; a dead one frees the key', async () => {
      const w = open();
      failing = true;
      const first = await w.enqueue(flaky, { tag: 'a' }, { key: 'k' });
      expect(await w.drain()).toEqual({ attempts: 1 });
      expect((await getJob(w, first.id)).state).toBe('retrying');
      expect(await w.enqueue(flaky, { tag: 'b' }, { key: 'k' })).toMatchObject({ id: first.id, duplicate: true });

      await clock.advance(1_000);
      expect(await w.drain()).toEqual({ attempts: 1 });
      expect((await getJob(w, first.id)).state).toBe('dead');
      const next = await w.enqueue(flaky, { tag: 'c' }, { key: 'k' });
      expect(next.duplicate).toBe(false);
      expect(next.id).not.toBe(first.id);
    });

    it('different keys never collide, and unkeyed enqueues are never duplicates', async () => {
      const w = open();
      const a = await w.enqueue(task, { tag: 'a' }, { key: 'a' });
      const b = await w.enqueue(task, { tag: 'b' }, { key: 'b' });
      const plain1 = await w.enqueue(task, { tag: 'p1' });
      const plain2 = await w.enqueue(task, { tag: 'p2' });
      expect([a, b, plain1, plain2].map((r) => r.duplicate)).toEqual([false, false, false, false]);
      expect(new Set([a.id, b.id, plain1.id, plain2.id]).size).toBe(4);
      expect(await keyRows()).toEqual([
        { key: 'a', jobId: a.id },
        { key: 'b', jobId: b.id },
      ]);
    });
  });

  describe('window', () => {
    it('a completed job is a duplicate within the window from its enqueue, and not from the window’s end on', async () => {
      const w = open();
      const first = await w.enqueue(task, { tag: 'first' }, { unique: { key: 'daily', window: '1h' } });
      expect(await w.drain()).toEqual({ attempts: 1 });
      expect((await getJob(w, first.id)).state).toBe('completed');

      await clock.advance(30 * 60_000);
      expect(await w.enqueue(task, { tag: 'dup-30m' }, { unique: { key: 'daily', window: '1h' } })).toMatchObject({ id: first.id, duplicate: true, replaced: false });
      await clock.advance(30 * 60_000 - 1);
      expect(await w.enqueue(task, { tag: 'dup-1h-1ms' }, { unique: { key: 'daily', window: '1h' } })).toMatchObject({ id: first.id, duplicate: true });
      // Exactly one window after the first enqueue: no longer a duplicate.
      await clock.advance(1);
      const second = await w.enqueue(task, { tag: 'second' }, { unique: { key: 'daily', window: '1h' } });
      expect(second.duplicate).toBe(false);
      expect(second.id).not.toBe(first.id);
      expect(second.job.createdAt.getTime()).toBe(T0 + HOUR);

      // The window now runs from the new holder's enqueue.
      await clock.advance(HOUR - 1);
      expect(await w.enqueue(task, { tag: 'dup-of-second' }, { unique: { key: 'daily', window: '1h' } })).toMatchObject({ id: second.id, duplicate: true });
      expect(await jobCount()).toBe(2);
      expect(ran).toEqual(['first']);
    });

    it('a holder still waiting after its window is not a duplicate either: the new enqueue takes the key', async () => {
      const w = open();
      const first = await w.enqueue(task, { tag: 'first' }, { unique: { key: 'w', window: '10m' } });
      await clock.advance(10 * 60_000);
      const second = await w.enqueue(task, { tag: 'second' }, { unique: { key: 'w', window: '10m' } });
      expect(second.duplicate).toBe(false);
      expect(await keyRows()).toEqual([{ key: 'w', jobId: second.id }]);
      expect((await getJob(w, first.id)).state).toBe('queued');
      // The key now points at the second job: a third enqueue is its duplicate.
      expect(await w.enqueue(task, { tag: 'third' }, { unique: { key: 'w', window: '10m' } })).toMatchObject({ id: second.id, duplicate: true });
    });

    it('the job definition’s window applies to a plain `key`', async () => {
      const windowed = defineJob({ name: 'windowed', unique: { window: '5m' }, handler: () => undefined });
      const w = open({ jobs: [windowed] });
      const first = await w.enqueue(windowed, {}, { key: 'x' });
      expect(await w.drain()).toEqual({ attempts: 1 });
      await clock.advance(5 * 60_000 - 1);
      expect(await w.enqueue(windowed, {}, { key: 'x' })).toMatchObject({ id: first.id, duplicate: true });
      await clock.advance(1);
      expect((await w.enqueue(windowed, {}, { key: 'x' })).duplicate).toBe(false);
    });
  });

  describe('states', () => {
    it('states: ["queued"]: a running holder is not a duplicate', async () => {
      const w = open();
      const opts = { unique: { key: 'q', states: ['queued'] as JobState[] } };
      const first = await w.enqueue(task, { tag: 'a' }, opts);
      expect(await w.enqueue(task, { tag: 'b' }, opts)).toMatchObject({ id: first.id, duplicate: true });
      expect(await claimAll()).toEqual([first.id]);
      const second = await w.enqueue(task, { tag: 'c' }, opts);
      expect(second.duplicate).toBe(false);
      expect(second.id).not.toBe(first.id);
      expect((await getJob(w, first.id)).state).toBe('running');
      expect(await jobCount()).toBe(2);
    });

    it('states including completed, without a window: a completed holder blocks the key for good', async () => {
      const w = open();
      const opts = { unique: { key: 'once', states: ['queued', 'retrying', 'running', 'completed'] as JobState[] } };
      const first = await w.enqueue(task, { tag: 'a' }, opts);
      expect(await w.drain()).toEqual({ attempts: 1 });
      await clock.advance(365 * 24 * HOUR);
      expect(await w.enqueue(task, { tag: 'b' }, opts)).toMatchObject({ id: first.id, duplicate: true });
      // A plain key (active states only) does not see the completed holder.
      const plain = await w.enqueue(task, { tag: 'c' }, { key: 'once' });
      expect(plain.duplicate).toBe(false);
      expect(ran).toEqual(['a']);
    });

    it('states: ["dead"]: only a dead holder is a duplicate', async () => {
      const w = open();
      failing = true;
      const opts = { unique: { key: 'poison', states: ['dead'] as JobState[] } };
      const first = await w.enqueue(flaky, { tag: 'a' }, opts);
      // Queued: not a duplicate under states ["dead"], so a second job takes the key.
      const second = await w.enqueue(flaky, { tag: 'b' }, opts);
      expect(second.duplicate).toBe(false);
      expect(await w.drain()).toEqual({ attempts: 2 });
      await clock.advance(1_000);
      expect(await w.drain()).toEqual({ attempts: 2 });
      expect((await getJob(w, second.id)).state).toBe('dead');
      expect(await w.enqueue(flaky, { tag: 'c' }, opts)).toMatchObject({ id: second.id, duplicate: true });
      expect(first.id).not.toBe(second.id);
    });
  });

  describe('replace (debounce)', () => {
    it('a waiting holder gets the new payload and run time; same id; replaced: true', async () => {
      const w = open();
      const enqueued = record(w, 'job:enqueued');
      const first = await w.enqueue(task, { tag: 'v1' }, { unique: { key: 'search-index', replace: true }, delay: '10s', priority: 7 });
      expect(first).toMatchObject({ duplicate: false, replaced: false });
      expect(first.job.runAt.getTime()).toBe(T0 + 10_000);

      await clock.advance(2_000);
      const second = await w.enqueue(task, { tag: 'v2' }, { unique: { key: 'search-index', replace: true }, delay: '10s' });
      expect(second).toMatchObject({ id: first.id, duplicate: true, replaced: true });
      expect(second.job.payload).toEqual({ tag: 'v2' });
      expect(second.job.runAt.getTime()).toBe(T0 + 12_000);

      const runAt = new Date(T0 + 60_000);
      const third = await w.enqueue(task, { tag: 'v3' }, { unique: { key: 'search-index', replace: true }, runAt });
      expect(third).toMatchObject({ id: first.id, duplicate: true, replaced: true });

      const stored = await getJob(w, first.id);
      expect(stored).toMatchObject({ state: 'queued', payload: { tag: 'v3' }, attempt: 0, priority: 7 });
      expect(stored.runAt.getTime()).toBe(runAt.getTime());
      expect(await jobCount()).toBe(1);
      expect(enqueued.map((e) => [e.duplicate, e.replaced])).toEqual([
        [false, false],
        [true, true],
        [true, true],
      ]);

      // Debounced: nothing runs before the last run time; then the last payload runs, once.
      await clock.advance(60_000 - 2_001);
      expect(await w.drain()).toEqual({ attempts: 0 });
      await clock.advance(1);
      expect(await w.drain()).toEqual({ attempts: 1 });
      expect(ran).toEqual(['v3']);
    });

    it('a retrying holder is replaced too: it becomes due at the new time with the new payload', async () => {
      const w = open();
      failing = true;
      const first = await w.enqueue(flaky, { tag: 'v1' }, { unique: { key: 'd', replace: true } });
      expect(await w.drain()).toEqual({ attempts: 1 });
      expect(await getJob(w, first.id)).toMatchObject({ state: 'retrying', attempt: 1 });
      failing = false;
      const replaced = await w.enqueue(flaky, { tag: 'v2' }, { unique: { key: 'd', replace: true }, delay: '1m' });
      expect(replaced).toMatchObject({ id: first.id, duplicate: true, replaced: true });
      expect(await getJob(w, first.id)).toMatchObject({ state: 'retrying', attempt: 1, payload: { tag: 'v2' } });
      await clock.advance(60_000 - 1);
      expect(await w.drain()).toEqual({ attempts: 0 });
      await clock.advance(1);
      expect(await w.drain()).toEqual({ attempts: 1 });
      expect(ran).toEqual(['v1', 'v2']);
      expect(await getJob(w, first.id)).toMatchObject({ state: 'completed', attempt: 2 });
    });

    it('a running holder is not replaced: a new job is enqueued and takes the key', async () => {
      const w = open();
      const opts = { unique: { key: 'r', replace: true } };
      const first = await w.enqueue(hold, { tag: 'v1' }, opts);
      const started = w.events.next('job:started');
      const draining = w.drain();
      await within(started, 'the holder to start');
      expect((await getJob(w, first.id)).state).toBe('running');

      const second = await w.enqueue(hold, { tag: 'v2' }, opts);
      expect(second).toMatchObject({ duplicate: false, replaced: false });
      expect(second.id).not.toBe(first.id);
      expect(await getJob(w, first.id)).toMatchObject({ state: 'running', payload: { tag: 'v1' } });
      expect(await keyRows()).toEqual([{ key: 'r', jobId: second.id }]);
      // The new holder is waiting, so the next enqueue replaces it.
      expect(await w.enqueue(hold, { tag: 'v3' }, opts)).toMatchObject({ id: second.id, duplicate: true, replaced: true });

      gate.resolve();
      await within(draining, 'both jobs to run');
      expect(ran).toEqual(['v1', 'v3']);
    });

    it('a replace that makes the job due wakes a started worker at once, in this process and (PostgreSQL) in another', async () => {
      const worker = open();
      await worker.start({ pollInterval: '1h' });
      await clock.waitForTimers(IDLE_TIMERS, 'the started worker to be idle');
      const producers = kind === 'postgres' ? [worker, open()] : [worker];
      for (const [i, producer] of producers.entries()) {
        const key = `wake-${i}`;
        const first = await producer.enqueue(task, { tag: `later-${i}` }, { unique: { key, replace: true }, delay: '1h' });
        const completed = worker.events.next('job:completed', (e) => e.job.id === first.id);
        // No time passes: only a wake-up can make the worker look again before its hourly poll.
        const replaced = await producer.enqueue(task, { tag: `now-${i}` }, { unique: { key, replace: true } });
        expect(replaced).toMatchObject({ id: first.id, replaced: true });
        await within(completed, `the replaced job ${i} to run`);
      }
      expect(ran).toEqual(producers.map((_, i) => `now-${i}`));
      expect(clock.now()).toBe(T0);
    });

    it('replace in one enqueueMany: the later item replaces the earlier one', async () => {
      const w = open();
      const results = await w.enqueueMany([
        { job: task, payload: { tag: 'a1' }, options: { unique: { key: 'a', replace: true } } },
        { job: task, payload: { tag: 'a2' }, options: { unique: { key: 'a', replace: true } } },
      ]);
      expect(results.map((r) => [r.duplicate, r.replaced])).toEqual([
        [false, false],
        [true, true],
      ]);
      expect(results[1]!.id).toBe(results[0]!.id);
      expect((await getJob(w, results[0]!.id)).payload).toEqual({ tag: 'a2' });
      expect(await jobCount()).toBe(1);
    });
  });

  describe('job-level unique.key(payload)', () => {
    it('derives the key from the payload; an explicit key overrides it', async () => {
      const w = open();
      const a1 = await w.enqueue(perUser, { userId: 1, note: 'a1' });
      const a2 = await w.enqueue(perUser, { userId: 1, note: 'a2' });
      const b1 = await w.enqueue(perUser, { userId: 2, note: 'b1' });
      expect(a1.duplicate).toBe(false);
      expect(a2).toMatchObject({ id: a1.id, duplicate: true });
      expect(b1.duplicate).toBe(false);
      expect(a1.job.key).toBe('user:1');
      expect(b1.job.key).toBe('user:2');

      const explicit = await w.enqueue(perUser, { userId: 1, note: 'x' }, { key: 'custom' });
      expect(explicit.duplicate).toBe(false);
      expect(explicit.job.key).toBe('custom');

      // The job's window (1 h, completed counts) applies to derived keys.
      expect(await w.drain()).toEqual({ attempts: 3 });
      await clock.advance(HOUR - 1);
      expect(await w.enqueue(perUser, { userId: 1, note: 'a3' })).toMatchObject({ id: a1.id, duplicate: true });
      await clock.advance(1);
      const a4 = await w.enqueue(perUser, { userId: 1, note: 'a4' });
      expect(a4.duplicate).toBe(false);
      expect(a4.id).not.toBe(a1.id);
      expect(await keyRows()).toEqual([
        { key: 'custom', jobId: explicit.id },
        { key: 'user:1', jobId: a4.id },
        { key: 'user:2', jobId: b1.id },
      ]);
    });
  });

  describe('bad input: a typed error and nothing written', () => {
    async function expectNothingWritten(): Promise<void> {
      expect(await jobCount()).toBe(0);
      expect(await keyRows()).toEqual([]);
    }

    it('key and unique both', async () => {
      const w = open();
      const error = expectTyped(await caught(() => w.enqueue(task, { tag: 'x' }, { key: 'a', unique: { key: 'a' } })), InvalidOptionError);
      expect(error.field).toBe('key');
      await expectNothingWritten();
    });

    it.each<[string, unknown, abstract new (...args: any[]) => Error, string]>([
      ['empty states', { key: 'k', states: [] }, InvalidOptionError, 'unique.states'],
      ['an unknown state', { key: 'k', states: ['queued', 'sleeping'] }, InvalidOptionError, 'unique.states'],
      ['states not an array', { key: 'k', states: 'queued' }, InvalidOptionError, 'unique.states'],
      ['a malformed window', { key: 'k', window: '5 minutes' }, InvalidDurationError, 'unique.window'],
      ['a zero window', { key: 'k', window: 0 }, InvalidDurationError, 'unique.window'],
      ['a negative window', { key: 'k', window: -1 }, InvalidDurationError, 'unique.window'],
      ['replace not a boolean', { key: 'k', replace: 'yes' }, InvalidOptionError, 'unique.replace'],
      ['an empty key', { key: '' }, InvalidNameError, 'key'],
      ['a key that is not a string', { key: 42 }, InvalidNameError, 'key'],
      ['unique not an object', 'k', InvalidOptionError, 'unique'],
    ])('unique with %s', async (_title, unique, type, field) => {
      const w = open();
      const error = expectTyped(await caught(() => w.enqueue(task, { tag: 'x' }, { unique: unique as never })), type as never) as unknown as { field: string };
      expect(error.field).toBe(field);
      await expectNothingWritten();
    });

    it('a key function that throws: InvalidOptionError with the cause; nothing written', async () => {
      const boom = new Error('no user id');
      const derived = defineJob({
        name: 'derived',
        unique: {
          key: () => {
            throw boom;
          },
        },
        handler: () => undefined,
      });
      const w = open({ jobs: [derived] });
      const error = expectTyped(await caught(() => w.enqueue(derived, {})), InvalidOptionError);
      expect(error.cause).toBe(boom);
      // One bad item refuses the whole batch.
      expect(await caught(() => w.enqueueMany([{ job: task, payload: { tag: 'ok' }, options: { key: 'ok' } }, { job: derived, payload: {} }]))).toBeInstanceOf(InvalidOptionError);
      await expectNothingWritten();
    });

    it('a key function that returns no valid key: InvalidNameError; nothing written', async () => {
      const derived = defineJob({ name: 'derived', unique: { key: () => undefined as unknown as string }, handler: () => undefined });
      const w = open({ jobs: [derived] });
      expectTyped(await caught(() => w.enqueue(derived, {})), InvalidNameError);
      await expectNothingWritten();
    });

    it('defineJob refuses a bad unique at definition time', () => {
      expect(() => defineJob({ name: 'bad', unique: { states: [] }, handler: () => undefined })).toThrow(InvalidOptionError);
      expect(() => defineJob({ name: 'bad', unique: { window: 'soon' as never }, handler: () => undefined })).toThrow(InvalidDurationError);
      expect(() => defineJob({ name: 'bad', unique: { key: 'not-a-function' as never }, handler: () => undefined })).toThrow(InvalidOptionError);
    });
  });
});
