/**
 * Checkpointed iteration (`ctx.iterate`): checkpoint cadence by items and by (fake) time, progress visible through
 * the API, resuming from the saved cursor after a failure, typed errors for a bad source or cursor with the last
 * good checkpoint intact, transactional batches, handing over after `maxRuntime` (also right after empty pages) and
 * on graceful shutdown, and the zombie checkpoint: a paused attempt that resumes after another took over cannot
 * overwrite the newer cursor.
 * @module
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Warden } from '../../src/client/warden.js';
import {
  InvalidDurationError,
  InvalidOptionError,
  IterationSourceError,
  LeaseLostError,
  NonJsonValueError,
  NonRetryableError,
  PayloadTooLargeError,
} from '../../src/errors.js';
import { defineJob, type JobContext, type JobDefinition } from '../../src/job/define-job.js';
import type { IterateOptions, IterateResult, IterationPage } from '../../src/job/job-context-options.js';
import type { RetryOptions } from '../../src/job/retry-policy.js';
import { type Oracle, openOracle } from '../process/db-oracle.js';
import { deferred, makeWarden, type MakeWardenOptions, record, T0, TestClock, within } from '../runtime/helpers.js';
import { createTestDatabase, DRIVER_KINDS, type TestDatabase } from '../support/test-databases.js';
import { attemptSummary, createAppTable, expectTyped, getJob, RETRY_1S } from './helpers.js';
import { numbers } from './iterate-pages.js';

/** Never save by time unless a test asks for it. */
const NO_TIME = 3_600;

/** How often each item was processed. */
function counts(items: number[]): Map<number, number> {
  const map = new Map<number, number>();
  for (const i of items) map.set(i, (map.get(i) ?? 0) + 1);
  return map;
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

describe.each(DRIVER_KINDS)('ctx.iterate (%s)', (kind) => {
  let tdb: TestDatabase;
  let oracle: Oracle;
  let clock: TestClock;
  let wardens: Warden[];
  /** Items processed, in order, with the attempt that processed them. */
  let processed: { attempt: number; item: number }[];
  /** Cursors the source was called with, per attempt. */
  let sourceCalls: { attempt: number; cursor: unknown }[];
  /** What ctx.iterate returned or threw, per attempt. */
  let outcomes: { attempt: number; result?: IterateResult; error?: unknown }[];

  beforeEach(async () => {
    processed = [];
    sourceCalls = [];
    outcomes = [];
    wardens = [];
    tdb = await createTestDatabase(kind);
    oracle = await openOracle(tdb);
    clock = new TestClock(T0);
  });

  afterEach(async () => {
    for (const w of wardens) await w.close();
    await oracle?.close();
    await tdb?.cleanup();
  });

  function open(jobs: JobDefinition<any, any>[], options: MakeWardenOptions = {}): Warden {
    const w = makeWarden(tdb, { jobs, clock, ...options });
    wardens.push(w);
    return w;
  }

  /**
   * A job iterating with `options(ctx)`: its source and batch are wrapped to record calls and processed items, and
   * what ctx.iterate returned or threw is recorded (then rethrown).
   */
  function iterJob<TItem, TCursor>(
    name: string,
    options: (ctx: JobContext) => IterateOptions<TItem, TCursor>,
    retry: RetryOptions = { maxAttempts: 3, backoff: RETRY_1S },
  ): JobDefinition<unknown, unknown> {
    return defineJob({
      name,
      retry,
      handler: async (_payload, ctx: JobContext) => {
        const o = options(ctx);
        try {
          const result = await ctx.iterate<TItem, TCursor>({
            ...o,
            source:
              typeof o.source === 'function'
                ? (cursor, info) => {
                    sourceCalls.push({ attempt: ctx.attempt, cursor });
                    return o.source(cursor, info);
                  }
                : o.source,
            batch: async (items, info) => {
              await o.batch(items, info);
              for (const item of items) processed.push({ attempt: ctx.attempt, item: item as number });
            },
          });
          outcomes.push({ attempt: ctx.attempt, result });
        } catch (error) {
          outcomes.push({ attempt: ctx.attempt, error });
          throw error;
        }
      },
    });
  }

  describe('checkpoint cadence and progress', () => {
    it('every N items: saved after the batch that reaches N; progress and cursor visible through jobs.get meanwhile', async () => {
      const paused = deferred();
      const resume = deferred();
      const job = iterJob('by-items', () => ({
        source: numbers(100, 10),
        batch: async (items) => {
          if (items[0] === 71) {
            paused.resolve();
            await resume.promise;
          }
        },
        checkpointEvery: { items: 25, seconds: NO_TIME },
      }));
      const w = open([job]);
      const checkpointed = record(w, 'job:checkpointed');
      const { id } = await w.enqueue(job, {});
      expect(await getJob(w, id)).toMatchObject({ checkpoint: null, progress: null, checkpointAt: null });

      const draining = w.drain();
      await within(paused.promise, 'the 8th batch to start');
      const during = await getJob(w, id);
      expect(during).toMatchObject({ state: 'running', checkpoint: { cursor: 60, finished: false }, progress: { done: 60, total: 100 } });
      expect(during.checkpointAt!.getTime()).toBe(T0);
      resume.resolve();
      await within(draining, 'the iteration to finish');

      expect(checkpointed.map((e) => [e.attempt, e.done, e.total])).toEqual([
        [1, 30, 100],
        [1, 60, 100],
        [1, 90, 100],
        [1, 100, 100],
      ]);
      expect(outcomes).toEqual([{ attempt: 1, result: { processed: 100, done: 100, total: 100, resumed: false } }]);
      const done = await getJob(w, id);
      expect(done).toMatchObject({ state: 'completed', attempt: 1, checkpoint: { cursor: 100, finished: true }, progress: { done: 100, total: 100 } });
      expect(processed.map((p) => p.item)).toEqual(range(1, 100));
      // The source was asked for each page once, the last (empty) one with the last item as cursor.
      expect(sourceCalls.map((c) => c.cursor)).toEqual([null, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100]);
    });

    it('every N seconds (fake clock): saved after the first batch ending N seconds after the last save', async () => {
      const job = iterJob('by-time', () => ({
        source: numbers(100, 10),
        // Each batch takes 3 s of (fake) time.
        batch: () => clock.advance(3_000),
        checkpointEvery: { items: 1_000, seconds: 5 },
      }));
      const w = open([job]);
      const checkpointed = record(w, 'job:checkpointed');
      const { id } = await w.enqueue(job, {});
      await w.drain();
      expect(checkpointed.map((e) => e.done)).toEqual([20, 40, 60, 80, 100, 100]);
      const row = await getJob(w, id);
      expect(row).toMatchObject({ state: 'completed', checkpoint: { cursor: 100, finished: true }, progress: { done: 100, total: 100 } });
      expect(row.checkpointAt!.getTime()).toBe(T0 + 30_000);
    });

    it('a total is optional: progress then has total null', async () => {
      const job = iterJob('no-total', () => ({
        source: (cursor: number | null) => {
          const { items, next } = numbers(5, 2)(cursor);
          return { items, next };
        },
        batch: () => undefined,
        checkpointEvery: { items: 2 },
      }));
      const w = open([job]);
      const { id } = await w.enqueue(job, {});
      await w.drain();
      expect(await getJob(w, id)).toMatchObject({ state: 'completed', progress: { done: 5, total: null } });
      expect(outcomes[0]!.result).toEqual({ processed: 5, done: 5, total: null, resumed: false });
    });

    it('`initial` is the first cursor; batches get the cursor their page was fetched with; info.tx is undefined', async () => {
      const infos: unknown[] = [];
      const job = iterJob('initial', () => ({
        source: numbers(30, 10),
        batch: (items, info) => void infos.push({ first: items[0], cursor: info.cursor, tx: info.tx, signal: info.signal instanceof AbortSignal }),
        initial: 10,
      }));
      const w = open([job]);
      await w.enqueue(job, {});
      await w.drain();
      expect(infos).toEqual([
        { first: 11, cursor: 10, tx: undefined, signal: true },
        { first: 21, cursor: 20, tx: undefined, signal: true },
      ]);
    });
  });

  describe('resuming', () => {
    it('a batch throws: the job retries and resumes from the last checkpoint; items processed again ≤ one window', async () => {
      const job = iterJob<number, number>('resume', (ctx) => ({
        source: numbers(100, 10),
        batch: (items) => {
          if (ctx.attempt === 1 && items[0] === 51) {
            // Processed 51..60 partly before failing: recorded as processed, then the batch throws.
            for (const item of items) processed.push({ attempt: ctx.attempt, item });
            throw new Error('downstream 503');
          }
        },
        checkpointEvery: { items: 20, seconds: NO_TIME },
      }));
      const w = open([job]);
      const { id } = await w.enqueue(job, {});
      await w.drain();
      const failed = await getJob(w, id);
      expect(failed).toMatchObject({ state: 'retrying', attempt: 1, checkpoint: { cursor: 40, finished: false }, progress: { done: 40, total: 100 } });
      expect(await attemptSummary(w, id)).toEqual([[1, 'failed', 'Error']]);

      await clock.advance(1_000);
      await w.drain();
      expect(await getJob(w, id)).toMatchObject({ state: 'completed', attempt: 2, checkpoint: { cursor: 100, finished: true }, progress: { done: 100, total: 100 } });
      expect(sourceCalls.filter((c) => c.attempt === 2)[0]).toEqual({ attempt: 2, cursor: 40 });
      expect(outcomes[1]).toEqual({ attempt: 2, result: { processed: 60, done: 100, total: 100, resumed: true } });

      const seen = counts(processed.map((p) => p.item));
      expect([...seen.keys()].sort((a, b) => a - b)).toEqual(range(1, 100));
      const twice = [...seen].filter(([, n]) => n > 1).map(([i]) => i);
      expect(twice).toEqual(range(41, 60));
      expect(twice.length).toBeLessThanOrEqual(20);
    });

    it('the source throws: IterationSourceError naming the cursor; the job retries from its checkpoint', async () => {
      const boom = new Error('connection reset');
      const job = iterJob('source-throws', (ctx) => ({
        source: (cursor: number | null) => {
          if (ctx.attempt === 1 && cursor === 30) throw boom;
          return numbers(50, 10)(cursor);
        },
        batch: () => undefined,
        checkpointEvery: { items: 10 },
      }));
      const w = open([job]);
      const { id } = await w.enqueue(job, {});
      await w.drain();
      const error = expectTyped(outcomes[0]!.error, IterationSourceError);
      expect(error).toMatchObject({ jobId: id, cursor: 30 });
      expect(error.cause).toBe(boom);
      expect(error.message).toContain('connection reset');
      expect(await getJob(w, id)).toMatchObject({ state: 'retrying', checkpoint: { cursor: 30, finished: false }, progress: { done: 30 } });
      expect(await attemptSummary(w, id)).toEqual([[1, 'failed', 'IterationSourceError']]);

      await clock.advance(1_000);
      await w.drain();
      expect(await getJob(w, id)).toMatchObject({ state: 'completed', attempt: 2, progress: { done: 50, total: 50 } });
      expect(sourceCalls.filter((c) => c.attempt === 2).map((c) => c.cursor)).toEqual([30, 40, 50]);
      expect(processed.map((p) => p.item)).toEqual(range(1, 50));
    });

    it('a NonRetryableError from the source keeps its meaning: dead at once, checkpoint intact', async () => {
      const job = iterJob('source-gives-up', () => ({
        source: (cursor: number | null) => {
          if (cursor === 20) throw new NonRetryableError('tenant deleted');
          return numbers(50, 10)(cursor);
        },
        batch: () => undefined,
        checkpointEvery: { items: 10 },
      }));
      const w = open([job]);
      const { id } = await w.enqueue(job, {});
      await w.drain();
      expect(outcomes[0]!.error).toBeInstanceOf(NonRetryableError);
      expect(await getJob(w, id)).toMatchObject({ state: 'dead', attempt: 1, checkpoint: { cursor: 20, finished: false }, progress: { done: 20 } });
    });

    it.each<[string, unknown]>([
      ['null', null],
      ['a string', 'page'],
      ['items not an array', { items: 'x', next: null }],
      ['no next', { items: [1] }],
      ['a negative total', { items: [], next: null, total: -1 }],
      ['a fractional total', { items: [], next: null, total: 1.5 }],
    ])('the source returns a bad page (%s): IterationSourceError, no batch runs, checkpoint intact', async (_title, page) => {
      let batches = 0;
      const job = iterJob(
        'bad-page',
        () => ({
          source: (cursor: number | null) => (cursor === 20 ? (page as IterationPage<number, number>) : numbers(50, 10)(cursor)),
          batch: () => void batches++,
          checkpointEvery: { items: 10 },
        }),
        { maxAttempts: 1 },
      );
      const w = open([job]);
      const { id } = await w.enqueue(job, {});
      await w.drain();
      expect(expectTyped(outcomes[0]!.error, IterationSourceError).cursor).toBe(20);
      expect(batches).toBe(2);
      expect(await getJob(w, id)).toMatchObject({ state: 'dead', checkpoint: { cursor: 20, finished: false }, progress: { done: 20, total: 50 } });
      expect(await attemptSummary(w, id)).toEqual([[1, 'failed', 'IterationSourceError']]);
    });

    it.each<[string, unknown, abstract new (...args: any[]) => Error]>([
      ['over the payload limit', 'x'.repeat(300), PayloadTooLargeError],
      ['not JSON (a Date)', new Date(T0), NonJsonValueError],
      ['not JSON (a BigInt)', 5n, NonJsonValueError],
    ])('a cursor %s: a typed error before the batch runs; the retry resumes from the last good cursor', async (_title, badCursor, type) => {
      const batchesRun: string[] = [];
      const job = iterJob<string, unknown>('bad-cursor', (ctx) => ({
        source: (cursor: unknown) => {
          if (cursor === null) return { items: ['a'], next: 'c1' };
          if (cursor === 'c1') return { items: ['b'], next: ctx.attempt === 1 ? badCursor : 'c2' };
          return { items: [], next: null };
        },
        batch: (items) => void batchesRun.push(`${ctx.attempt}:${items.join()}`),
        checkpointEvery: { items: 1 },
      }));
      const w = open([job], { payloadLimit: 200 });
      const { id } = await w.enqueue(job, {});
      await w.drain();
      expectTyped(outcomes[0]!.error, type as never);
      // The page whose next cursor cannot be saved was not processed.
      expect(batchesRun).toEqual(['1:a']);
      expect(await getJob(w, id)).toMatchObject({ state: 'retrying', checkpoint: { cursor: 'c1', finished: false }, progress: { done: 1 } });
      expect(await attemptSummary(w, id)).toEqual([[1, 'failed', (type as { name: string }).name]]);

      await clock.advance(1_000);
      await w.drain();
      expect(batchesRun).toEqual(['1:a', '2:b']);
      expect(await getJob(w, id)).toMatchObject({ state: 'completed', checkpoint: { cursor: 'c2', finished: true }, progress: { done: 2 } });
    });

    it('an operator retry of a dead job resumes from its checkpoint', async () => {
      let failing = true;
      const job = iterJob<number, number>(
        'operator-retry',
        () => ({
          source: numbers(40, 10),
          batch: (items) => {
            if (failing && items[0] === 21) throw new Error('dead on its only attempt');
          },
          checkpointEvery: { items: 10 },
        }),
        { maxAttempts: 1 },
      );
      const w = open([job]);
      const { id } = await w.enqueue(job, {});
      await w.drain();
      expect(await getJob(w, id)).toMatchObject({ state: 'dead', checkpoint: { cursor: 20, finished: false }, progress: { done: 20 } });
      failing = false;
      const retried = await w.jobs.retry(id);
      expect(retried).toMatchObject({ checkpoint: { cursor: 20, finished: false }, progress: { done: 20, total: 40 } });
      await w.drain();
      expect(await getJob(w, id)).toMatchObject({ state: 'completed', attempt: 2, progress: { done: 40, total: 40 } });
      expect(sourceCalls.filter((c) => c.attempt === 2).map((c) => c.cursor)).toEqual([20, 30, 40]);
      expect(processed.map((p) => p.item)).toEqual(range(1, 40));
    });

    it('a finished checkpoint is not iterated again by a later attempt', async () => {
      const job = iterJob('after-finish', () => ({ source: numbers(20, 10), batch: () => undefined, checkpointEvery: { items: 10 } }));
      const failAfter = defineJob({
        name: 'fail-after',
        retry: { maxAttempts: 2, backoff: RETRY_1S },
        handler: async (payload, ctx: JobContext) => {
          await job.handler(payload, ctx);
          if (ctx.attempt === 1) throw new Error('failed after the iteration');
        },
      });
      const w = open([failAfter]);
      const { id } = await w.enqueue(failAfter, {});
      await w.drain();
      await clock.advance(1_000);
      await w.drain();
      expect(await getJob(w, id)).toMatchObject({ state: 'completed', attempt: 2 });
      expect(outcomes.map((o) => o.result)).toEqual([
        { processed: 20, done: 20, total: 20, resumed: false },
        { processed: 0, done: 20, total: 20, resumed: true },
      ]);
      expect(sourceCalls.filter((c) => c.attempt === 2)).toEqual([]);
    });
  });

  it('transaction: true: each batch’s writes commit with its checkpoint, so a failed batch leaves nothing and no row repeats', async () => {
    const app = await createAppTable(tdb, oracle);
    const job = iterJob<number, number>('tx-batches', (ctx) => ({
      source: numbers(50, 10),
      batch: async (items, { tx }) => {
        expect(tx).toBeDefined();
        for (const item of items) await app.insert(tx, ctx.job.id, String(item));
        if (ctx.attempt === 1 && items[0] === 31) throw new Error('failed after writing 31..40');
      },
      transaction: true,
      // Ignored with transaction: true: every batch is saved.
      checkpointEvery: { items: 1_000, seconds: NO_TIME },
    }));
    const w = open([job]);
    const checkpointed = record(w, 'job:checkpointed');
    const { id } = await w.enqueue(job, {});
    await w.drain();
    expect(await getJob(w, id)).toMatchObject({ state: 'retrying', checkpoint: { cursor: 30, finished: false }, progress: { done: 30 } });
    expect((await app.tags(id)).map(Number)).toEqual(range(1, 30));

    await clock.advance(1_000);
    await w.drain();
    expect(await getJob(w, id)).toMatchObject({ state: 'completed', attempt: 2, checkpoint: { cursor: 50, finished: true }, progress: { done: 50, total: 50 } });
    expect((await app.tags(id)).map(Number)).toEqual(range(1, 50));
    expect(checkpointed.map((e) => [e.attempt, e.done])).toEqual([
      [1, 10],
      [1, 20],
      [1, 30],
      [2, 40],
      [2, 50],
      [2, 50],
    ]);
  });

  describe('handing over to a fresh attempt', () => {
    /**
     * An {@link iterJob} over `pages(ctx)` that hands over after 10 s of `maxRuntime` and saves by no cadence before,
     * with one attempt allowed to start with (each hand-over allows one more).
     */
    function maxRuntimeJob(name: string, pages: (ctx: JobContext) => Pick<IterateOptions<number, number>, 'source' | 'batch'>) {
      return iterJob(name, (ctx) => ({ ...pages(ctx), maxRuntime: '10s', checkpointEvery: { items: 1_000, seconds: NO_TIME } }), { maxAttempts: 1 });
    }

    it('maxRuntime: saves, ends the attempt as yielded, queues the job again with one more attempt allowed; it continues to the end', async () => {
      const seenJob: { attempt: number; maxAttempts: number; checkpoint: unknown }[] = [];
      const job = maxRuntimeJob('long-running', (ctx) => {
        seenJob.push({ attempt: ctx.attempt, maxAttempts: ctx.maxAttempts, checkpoint: ctx.job.checkpoint });
        return { source: numbers(100, 10), batch: () => clock.advance(3_000) };
      });
      const w = open([job]);
      const yielded = record(w, 'job:yielded');
      const failed = record(w, 'job:failed');
      const { id } = await w.enqueue(job, {});
      expect(await w.drain()).toEqual({ attempts: 3 });

      expect(yielded.map((e) => ({ id: e.job.id, attempt: e.attempt, reason: e.reason, done: e.done }))).toEqual([
        { id, attempt: 1, reason: 'max-runtime', done: 40 },
        { id, attempt: 2, reason: 'max-runtime', done: 80 },
      ]);
      expect(failed).toEqual([]);
      expect(seenJob).toEqual([
        { attempt: 1, maxAttempts: 1, checkpoint: null },
        { attempt: 2, maxAttempts: 2, checkpoint: { cursor: 40, finished: false } },
        { attempt: 3, maxAttempts: 3, checkpoint: { cursor: 80, finished: false } },
      ]);
      expect(outcomes.map((o) => (o.error as Error | undefined)?.name ?? o.result)).toEqual([
        'IterationYieldError',
        'IterationYieldError',
        { processed: 20, done: 100, total: 100, resumed: true },
      ]);
      expect(await attemptSummary(w, id)).toEqual([
        [1, 'yielded', null],
        [2, 'yielded', null],
        [3, 'completed', null],
      ]);
      expect(await getJob(w, id)).toMatchObject({ state: 'completed', attempt: 3, maxAttempts: 3, checkpoint: { cursor: 100, finished: true }, progress: { done: 100, total: 100 } });
      // Every item exactly once: each hand-over saved its checkpoint first.
      expect(processed.map((p) => p.item)).toEqual(range(1, 100));
      // Each fresh attempt started right away (due at once), at the time the previous one yielded.
      const attempts = await w.jobs.attempts(id);
      expect(attempts.map((a) => a.startedAt!.getTime())).toEqual([T0, T0 + 12_000, T0 + 24_000]);
    });

    it('after empty pages that moved the cursor: saves that cursor before yielding, so the next attempt does not read them again', async () => {
      // A sparse keyset scan: the first range holds no match and takes 11 s to read, past maxRuntime; the second holds
      // two. Unsaved, every attempt would read the first range again and hand over for ever.
      const job = maxRuntimeJob('sparse-scan', (ctx) => {
        if (ctx.attempt > 4) throw new Error('gave up: still handing over after 4 attempts');
        return {
          source: async (cursor: number | null): Promise<IterationPage<number, number>> => {
            if (cursor === null) {
              await clock.advance(11_000);
              return { items: [], next: 1_000 };
            }
            return { items: [1_001, 1_002], next: null };
          },
          batch: () => undefined,
        };
      });
      const w = open([job]);
      const yielded = record(w, 'job:yielded');
      const checkpointed = record(w, 'job:checkpointed');
      const { id } = await w.enqueue(job, {});
      await w.drain();

      expect(sourceCalls).toEqual([
        { attempt: 1, cursor: null },
        { attempt: 2, cursor: 1_000 },
      ]);
      expect(yielded.map((e) => [e.attempt, e.reason, e.done])).toEqual([[1, 'max-runtime', 0]]);
      expect(checkpointed.map((e) => [e.attempt, e.done])).toEqual([
        [1, 0],
        [2, 2],
      ]);
      expect(await attemptSummary(w, id)).toEqual([
        [1, 'yielded', null],
        [2, 'completed', null],
      ]);
      expect(await getJob(w, id)).toMatchObject({ state: 'completed', attempt: 2, checkpoint: { cursor: 1_000, finished: true }, progress: { done: 2 } });
      expect(processed.map((p) => p.item)).toEqual([1_001, 1_002]);
    });

    it('graceful stop during an iteration: hands over at the next batch boundary; another worker finishes it', async () => {
      const paused = deferred();
      const resume = deferred();
      const job = iterJob('shutdown', (ctx) => ({
        source: numbers(100, 10),
        batch: async (items) => {
          if (ctx.attempt === 1 && items[0] === 41) {
            paused.resolve();
            await resume.promise;
          }
        },
        checkpointEvery: { items: 1_000, seconds: NO_TIME },
      }));
      const a = open([job]);
      const yielded = a.events.next('job:yielded');
      const { id } = await a.enqueue(job, {});
      await a.start({ concurrency: 1, pollInterval: '1s' });
      await within(paused.promise, 'the iteration to reach its 5th batch');

      const draining = a.events.next('worker:draining');
      const stopping = a.stop();
      await within(draining, 'the worker to begin draining');
      resume.resolve();
      await within(stopping, 'the worker to stop');
      expect(await within(yielded, 'the hand-over')).toMatchObject({ job: { id }, attempt: 1, reason: 'shutdown', done: 50 });

      const row = await getJob(a, id);
      expect(row).toMatchObject({ state: 'queued', attempt: 1, maxAttempts: 4, checkpoint: { cursor: 50, finished: false }, progress: { done: 50, total: 100 } });
      expect(await attemptSummary(a, id)).toEqual([[1, 'yielded', null]]);
      // The batch after the boundary never started in the stopping worker.
      expect(sourceCalls.filter((c) => c.attempt === 1).map((c) => c.cursor)).toEqual([null, 10, 20, 30, 40]);

      const b = open([job]);
      expect(await b.drain()).toEqual({ attempts: 1 });
      expect(await getJob(b, id)).toMatchObject({ state: 'completed', attempt: 2, checkpoint: { cursor: 100, finished: true }, progress: { done: 100 } });
      expect(outcomes[1]).toEqual({ attempt: 2, result: { processed: 50, done: 100, total: 100, resumed: true } });
      expect(processed.map((p) => p.item)).toEqual(range(1, 100));
    });
  });

  it('zombie checkpoint: a paused attempt resuming after another took over cannot overwrite the newer cursor', async () => {
    // Two instances with clocks of their own: A's stands still (its heartbeats never run, as in a paused process),
    // B's is past A's lease.
    const clockA = clock;
    const clockB = new TestClock(T0 + 3_001);
    const zombiePaused = deferred();
    const zombieResume = deferred();
    const takeoverPaused = deferred();
    const takeoverResume = deferred();
    const job = iterJob('zombie', (ctx) => ({
      source: numbers(100, 10),
      batch: async (items) => {
        if (ctx.attempt === 1 && items[0] === 31) {
          zombiePaused.resolve();
          await zombieResume.promise;
        }
        if (ctx.attempt === 2 && items[0] === 61) {
          takeoverPaused.resolve();
          await takeoverResume.promise;
        }
      },
      checkpointEvery: { items: 10, seconds: NO_TIME },
    }));
    const a = open([job], { clock: clockA, worker: { lease: '3s', heartbeat: '1s' } });
    const b = open([job], { clock: clockB, worker: { lease: '3s', heartbeat: '1s' } });
    const staleA = record(a, 'job:stale-write-rejected');
    const rescued = record(b, 'job:rescued');
    const { id } = await a.enqueue(job, {});

    const drainA = a.drain();
    await within(zombiePaused.promise, 'attempt 1 to pause inside its 4th batch');
    expect(await getJob(a, id)).toMatchObject({ state: 'running', leaseToken: 1, checkpoint: { cursor: 30, finished: false } });

    // A's lease expired by B's clock: B rescues the job and its attempt 2 resumes from A's last checkpoint.
    await b.rescue();
    expect(rescued.map((e) => [e.job.id, e.attempt, e.nextState])).toEqual([[id, 1, 'retrying']]);
    const drainB = b.drain();
    await within(takeoverPaused.promise, 'attempt 2 to get further');
    expect(await getJob(b, id)).toMatchObject({ state: 'running', attempt: 2, leaseToken: 2, checkpoint: { cursor: 60, finished: false }, progress: { done: 60 } });

    // The zombie wakes up, finishes its batch and tries to save cursor 40 over attempt 2's 60.
    zombieResume.resolve();
    await within(drainA, 'the zombie attempt to end');
    expect(staleA).toEqual([{ jobId: id, leaseToken: 1, write: 'checkpoint' }]);
    expect(expectTyped(outcomes[0]!.error, LeaseLostError)).toMatchObject({ jobId: id, leaseToken: 1 });
    const afterZombie = await getJob(b, id);
    expect(afterZombie).toMatchObject({ state: 'running', attempt: 2, leaseToken: 2, checkpoint: { cursor: 60, finished: false }, progress: { done: 60 } });
    expect(afterZombie.checkpointAt!.getTime()).toBe(T0 + 3_001);
    // The zombie ran no further than the batch it was in.
    expect(sourceCalls.filter((c) => c.attempt === 1).map((c) => c.cursor)).toEqual([null, 10, 20, 30]);

    takeoverResume.resolve();
    await within(drainB, 'attempt 2 to complete');
    expect(await getJob(b, id)).toMatchObject({ state: 'completed', attempt: 2, checkpoint: { cursor: 100, finished: true }, progress: { done: 100, total: 100 } });
    expect(await attemptSummary(b, id)).toEqual([
      [1, 'lost', 'LeaseExpiredError'],
      [2, 'completed', null],
    ]);
    expect(outcomes[1]).toEqual({ attempt: 2, result: { processed: 70, done: 100, total: 100, resumed: true } });
  });

  it('zombie with transaction: true: the stale attempt’s batch writes roll back with its refused checkpoint', async () => {
    const app = await createAppTable(tdb, oracle);
    const clockB = new TestClock(T0 + 3_001);
    const zombiePaused = deferred();
    const zombieResume = deferred();
    const job = iterJob<number, number>('zombie-tx', (ctx) => ({
      // The zombie pauses while fetching its 4th page, outside any transaction (on SQLite an open transaction would
      // hold the write lock, and no other attempt could take over while it is paused).
      source: async (cursor) => {
        if (ctx.attempt === 1 && cursor === 30) {
          zombiePaused.resolve();
          await zombieResume.promise;
        }
        return numbers(60, 10)(cursor);
      },
      batch: async (items, { tx }) => {
        for (const item of items) await app.insert(tx, ctx.job.id, `${ctx.attempt}:${item}`);
      },
      transaction: true,
    }));
    const a = open([job], { worker: { lease: '3s', heartbeat: '1s' } });
    const b = open([job], { clock: clockB, worker: { lease: '3s', heartbeat: '1s' } });
    const staleA = record(a, 'job:stale-write-rejected');
    const { id } = await a.enqueue(job, {});
    const drainA = a.drain();
    await within(zombiePaused.promise, 'attempt 1 to pause');
    await b.rescue();
    expect(await b.drain()).toEqual({ attempts: 1 });
    expect(await getJob(b, id)).toMatchObject({ state: 'completed', attempt: 2, checkpoint: { cursor: 60, finished: true } });

    zombieResume.resolve();
    await within(drainA, 'the zombie attempt to end');
    expect(staleA).toEqual([{ jobId: id, leaseToken: 1, write: 'checkpoint' }]);
    expect(expectTyped(outcomes.find((o) => o.attempt === 1)!.error, LeaseLostError).leaseToken).toBe(1);
    // Items 1..30 by attempt 1, 31..60 by attempt 2, each once: the zombie's 31..40 were rolled back.
    const tags = await app.tags(id);
    expect(tags).toEqual([...range(1, 30).map((i) => `1:${i}`), ...range(31, 60).map((i) => `2:${i}`)]);
    expect(await getJob(b, id)).toMatchObject({ state: 'completed', attempt: 2, checkpoint: { cursor: 60, finished: true }, progress: { done: 60, total: 60 } });
  });

  describe('bad options', () => {
    it.each<[string, Partial<IterateOptions<number, number>>, abstract new (...args: any[]) => Error]>([
      ['checkpointEvery.items 0', { checkpointEvery: { items: 0 } }, InvalidOptionError],
      ['checkpointEvery.seconds -1', { checkpointEvery: { seconds: -1 } }, InvalidOptionError],
      ['a malformed maxRuntime', { maxRuntime: 'a while' as never }, InvalidDurationError],
      ['transaction not a boolean', { transaction: 'yes' as never }, InvalidOptionError],
      ['no source', { source: undefined as never }, InvalidOptionError],
    ])('%s: a typed error; nothing runs, nothing saved', async (_title, bad, type) => {
      let batches = 0;
      const job = iterJob('bad-options', () => ({ source: numbers(10, 5), batch: () => void batches++, ...bad }), { maxAttempts: 1 });
      const w = open([job]);
      const { id } = await w.enqueue(job, {});
      await w.drain();
      expectTyped(outcomes[0]!.error, type as never);
      expect(batches).toBe(0);
      expect(await getJob(w, id)).toMatchObject({ state: 'dead', checkpoint: null, progress: null });
    });

    it('a second ctx.iterate in one attempt: InvalidOptionError', async () => {
      const errors: unknown[] = [];
      const job = defineJob({
        name: 'two-iterations',
        retry: { maxAttempts: 1 },
        handler: async (_payload, ctx: JobContext) => {
          await ctx.iterate({ source: numbers(5, 5), batch: () => undefined });
          await ctx.iterate({ source: numbers(5, 5), batch: () => undefined }).catch((error: unknown) => {
            errors.push(error);
            throw error;
          });
        },
      });
      const w = open([job]);
      const { id } = await w.enqueue(job, {});
      await w.drain();
      expectTyped(errors[0], InvalidOptionError);
      expect(await attemptSummary(w, id)).toEqual([[1, 'failed', 'InvalidOptionError']]);
    });
  });
});
