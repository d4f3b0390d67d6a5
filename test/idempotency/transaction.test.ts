/**
 * Transactional completion (`ctx.transaction(tx => …)`): the application's writes through `tx` and the job's
 * completion commit in one transaction, or neither does. A throwing function rolls back and the job retries; a
 * second call is refused; a lease lost before the commit (cancel, timeout) rolls the application's write back.
 * The database is the oracle: an independent connection reads the application table and the job.
 * @module
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Warden } from '../../src/client/warden.js';
import { AttemptEndedError, InvalidOptionError, JobStateError, JobTimeoutError, LeaseLostError } from '../../src/errors.js';
import { defineJob, type JobContext, type JobDefinition } from '../../src/job/define-job.js';
import { type Oracle, openOracle } from '../process/db-oracle.js';
import { deferred, type Deferred, makeWarden, record, T0, TestClock, within } from '../runtime/helpers.js';
import { createTestDatabase, DRIVER_KINDS, type TestDatabase } from '../support/test-databases.js';
import { type AppTable, attemptSummary, createAppTable, expectTyped, getJob, RETRY_1S } from './helpers.js';

describe.each(DRIVER_KINDS)('ctx.transaction (%s)', (kind) => {
  let tdb: TestDatabase;
  let oracle: Oracle;
  let clock: TestClock;
  let app: AppTable;
  let warden: Warden | undefined;
  /** What ctx.transaction threw or returned, per attempt. */
  let outcomes: { attempt: number; result?: unknown; error?: unknown }[];
  /** Resolved by a transaction function once its write is done; it then waits for `release`. */
  let inside: Deferred;
  let release: Deferred;

  beforeEach(async () => {
    outcomes = [];
    inside = deferred();
    release = deferred();
    tdb = await createTestDatabase(kind);
    oracle = await openOracle(tdb);
    app = await createAppTable(tdb, oracle);
    clock = new TestClock(T0);
  });

  afterEach(async () => {
    release.resolve();
    await warden?.close();
    warden = undefined;
    await oracle?.close();
    await tdb?.cleanup();
  });

  function open(jobs: JobDefinition<any, any>[]): Warden {
    warden = makeWarden(tdb, { jobs, clock });
    return warden;
  }

  /** Calls ctx.transaction and records what it returned or threw (and rethrows). */
  async function transact<T>(ctx: JobContext, fn: (tx: unknown) => Promise<T>): Promise<T> {
    try {
      const result = await ctx.transaction(fn);
      outcomes.push({ attempt: ctx.attempt, result });
      return result;
    } catch (error) {
      outcomes.push({ attempt: ctx.attempt, error });
      throw error;
    }
  }

  async function jobState(id: string): Promise<{ state: string; attempt: number }> {
    const [row] = await oracle.all<{ state: string; attempt: unknown }>('SELECT state, attempt FROM {jobs} WHERE id = $1', [Number(id)]);
    return { state: row!.state, attempt: Number(row!.attempt) };
  }

  it('completes the job and the application write in one transaction: neither is visible before the commit', async () => {
    const job = defineJob({
      name: 'fulfil',
      handler: async (_payload, ctx: JobContext) =>
        transact(ctx, async (tx) => {
          await app.insert(tx, ctx.job.id, 'shipped');
          inside.resolve();
          await release.promise;
          return 'receipt-1';
        }),
    });
    const w = open([job]);
    const completed = record(w, 'job:completed');
    const { id } = await w.enqueue(job, {});
    const draining = w.drain();
    await within(inside.promise, 'the transaction function to write');

    // Another connection sees neither the row nor the completion while the transaction is open.
    expect(await app.rows()).toEqual([]);
    expect(await jobState(id)).toEqual({ state: 'running', attempt: 1 });

    release.resolve();
    expect(await within(draining, 'the attempt to end')).toEqual({ attempts: 1 });
    expect(await app.rows()).toEqual([{ jobId: id, tag: 'shipped' }]);
    expect(await getJob(w, id)).toMatchObject({ state: 'completed', attempt: 1, leaseWorker: null, leaseExpiresAt: null });
    expect(await attemptSummary(w, id)).toEqual([[1, 'completed', null]]);
    expect(outcomes).toEqual([{ attempt: 1, result: 'receipt-1' }]);
    expect(completed.map((e) => [e.job.id, e.attempt])).toEqual([[id, 1]]);
  });

  it('the attempt has ended once it resolves: the handler’s later throw is ignored', async () => {
    const job = defineJob({
      name: 'throws-after',
      retry: { maxAttempts: 3, backoff: RETRY_1S },
      handler: async (_payload, ctx: JobContext) => {
        await transact(ctx, async (tx) => app.insert(tx, ctx.job.id, 'done'));
        throw new Error('too late to fail');
      },
    });
    const w = open([job]);
    const failed = record(w, 'job:failed');
    const { id } = await w.enqueue(job, {});
    await w.drain();
    expect(await getJob(w, id)).toMatchObject({ state: 'completed', attempt: 1 });
    expect(await attemptSummary(w, id)).toEqual([[1, 'completed', null]]);
    expect(failed).toEqual([]);
    expect(await app.tags(id)).toEqual(['done']);
  });

  it('fn throws: nothing is written, the attempt fails and the job retries; the retry commits once', async () => {
    const job = defineJob({
      name: 'flaky-write',
      retry: { maxAttempts: 3, backoff: RETRY_1S },
      handler: async (_payload, ctx: JobContext) =>
        transact(ctx, async (tx) => {
          await app.insert(tx, ctx.job.id, `attempt ${ctx.attempt}`);
          if (ctx.attempt === 1) throw new Error('payment service said no');
        }),
    });
    const w = open([job]);
    const { id } = await w.enqueue(job, {});
    await w.drain();
    expect(await getJob(w, id)).toMatchObject({ state: 'retrying', attempt: 1 });
    expect(await app.rows()).toEqual([]);
    expect(outcomes[0]!.error).toMatchObject({ message: 'payment service said no' });

    await clock.advance(1_000);
    await w.drain();
    expect(await getJob(w, id)).toMatchObject({ state: 'completed', attempt: 2 });
    expect(await app.rows()).toEqual([{ jobId: id, tag: 'attempt 2' }]);
    expect(await attemptSummary(w, id)).toEqual([
      [1, 'failed', 'Error'],
      [2, 'completed', null],
    ]);
  });

  it('a second call, and any step after it, get AttemptEndedError; the second fn never runs', async () => {
    const late: unknown[] = [];
    let secondRan = false;
    const job = defineJob({
      name: 'twice',
      handler: async (_payload, ctx: JobContext) => {
        await transact(ctx, async (tx) => app.insert(tx, ctx.job.id, 'first'));
        for (const call of [
          () =>
            ctx.transaction(async (tx) => {
              secondRan = true;
              await app.insert(tx, ctx.job.id, 'second');
            }),
          () => ctx.step('after', () => 1),
          () => ctx.iterate({ source: () => ({ items: [], next: null }), batch: () => undefined }),
        ]) {
          try {
            await call();
            late.push('resolved');
          } catch (error) {
            late.push(error);
          }
        }
      },
    });
    const w = open([job]);
    const { id } = await w.enqueue(job, {});
    await w.drain();
    expect(late).toHaveLength(3);
    for (const error of late) expect(expectTyped(error, AttemptEndedError).jobId).toBe(id);
    expect(secondRan).toBe(false);
    expect(await app.tags(id)).toEqual(['first']);
    expect(await getJob(w, id)).toMatchObject({ state: 'completed', attempt: 1 });
    expect(await w.jobs.steps(id)).toEqual([]);
  });

  it('ctx.transaction with something other than a function: InvalidOptionError', async () => {
    const errors: unknown[] = [];
    const job = defineJob({
      name: 'not-fn',
      retry: { maxAttempts: 1 },
      handler: async (_payload, ctx: JobContext) => {
        await ctx.transaction('insert' as never).catch((error: unknown) => {
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

  it('the lease was lost before the transaction (cancelled while the handler worked): LeaseLostError, the write is rolled back', async () => {
    const beforeTx = deferred();
    const job = defineJob({
      name: 'cancelled-before',
      handler: async (_payload, ctx: JobContext) => {
        beforeTx.resolve();
        await release.promise;
        await transact(ctx, async (tx) => app.insert(tx, ctx.job.id, 'must not commit'));
      },
    });
    const w = open([job]);
    const stale = record(w, 'job:stale-write-rejected');
    const completed = record(w, 'job:completed');
    const { id } = await w.enqueue(job, {});
    const draining = w.drain();
    await within(beforeTx.promise, 'the handler to start');
    // Cancelled in the database; the attempt has not heard of it (no heartbeat ran on the fake clock).
    expect((await w.jobs.cancel(id)).state).toBe('cancelled');
    release.resolve();
    await within(draining, 'the attempt to end');

    expect(outcomes).toHaveLength(1);
    expect(expectTyped(outcomes[0]!.error, LeaseLostError)).toMatchObject({ jobId: id, leaseToken: 1 });
    expect(await app.rows()).toEqual([]);
    expect(await getJob(w, id)).toMatchObject({ state: 'cancelled', attempt: 1 });
    expect(await attemptSummary(w, id)).toEqual([[1, 'cancelled', 'CancelledError']]);
    expect(stale).toEqual([{ jobId: id, leaseToken: 1, write: 'finish' }]);
    expect(completed).toEqual([]);
  });

  it('a timeout while fn awaits: the signal aborts with JobTimeoutError, the write is rolled back, the attempt ends as timeout', async () => {
    const job = defineJob({
      name: 'slow-write',
      timeout: '5s',
      retry: { maxAttempts: 2, backoff: RETRY_1S },
      handler: async (_payload, ctx: JobContext) =>
        transact(ctx, async (tx) => {
          await app.insert(tx, ctx.job.id, `attempt ${ctx.attempt}`);
          if (ctx.attempt === 1) {
            inside.resolve();
            await release.promise;
          }
        }),
    });
    const w = open([job]);
    const { id } = await w.enqueue(job, {});
    const draining = w.drain();
    await within(inside.promise, 'the transaction function to write');
    await clock.advance(5_000);
    // The function returns after the timeout: its transaction must not commit.
    release.resolve();
    await within(draining, 'the attempt to end');
    expect(expectTyped(outcomes[0]!.error, JobTimeoutError)).toBeTruthy();
    expect(await app.rows()).toEqual([]);
    expect(await getJob(w, id)).toMatchObject({ state: 'retrying', attempt: 1 });
    expect(await attemptSummary(w, id)).toEqual([[1, 'timeout', 'JobTimeoutError']]);

    await clock.advance(1_000);
    await w.drain();
    expect(await app.rows()).toEqual([{ jobId: id, tag: 'attempt 2' }]);
    expect(await getJob(w, id)).toMatchObject({ state: 'completed', attempt: 2 });
  });

  it('a cancel racing with the open transaction: exactly one wins, never both', async () => {
    const job = defineJob({
      name: 'racing',
      handler: async (_payload, ctx: JobContext) =>
        transact(ctx, async (tx) => {
          await app.insert(tx, ctx.job.id, 'effect');
          inside.resolve();
          await release.promise;
        }),
    });
    const w = open([job]);
    const { id } = await w.enqueue(job, {});
    const draining = w.drain();
    await within(inside.promise, 'the transaction function to write');
    const cancel = w.jobs.cancel(id).then(
      (row) => ({ row, error: null }),
      (error: unknown) => ({ row: null, error }),
    );
    if (kind === 'postgres') {
      // PostgreSQL: the transaction has not touched the job row yet, so the cancel commits at once; the
      // completion inside the transaction then finds the lease gone and everything rolls back.
      expect((await within(cancel, 'the cancel')).row?.state).toBe('cancelled');
      release.resolve();
      await within(draining, 'the attempt to end');
      expect(expectTyped(outcomes[0]!.error, LeaseLostError).jobId).toBe(id);
      expect(await app.rows()).toEqual([]);
      expect(await getJob(w, id)).toMatchObject({ state: 'cancelled', attempt: 1 });
    } else {
      // SQLite: the transaction holds the write lock, so the cancel waits for it; the job completes with its
      // write, and the cancel then finds a completed job.
      release.resolve();
      await within(draining, 'the attempt to end');
      const { error } = await within(cancel, 'the cancel');
      expect(error).toBeInstanceOf(JobStateError);
      expect(outcomes).toEqual([{ attempt: 1, result: undefined }]);
      expect(await app.rows()).toEqual([{ jobId: id, tag: 'effect' }]);
      expect(await getJob(w, id)).toMatchObject({ state: 'completed', attempt: 1 });
    }
  });

  it('other connections keep working while a transaction is open (no deadlock with the worker’s own writes)', async () => {
    const other = defineJob({ name: 'other', handler: () => undefined });
    const job = defineJob({
      name: 'holder',
      handler: async (_payload, ctx: JobContext) =>
        transact(ctx, async (tx) => {
          await app.insert(tx, ctx.job.id, 'held');
          inside.resolve();
          await release.promise;
        }),
    });
    const w = open([job, other]);
    const { id } = await w.enqueue(job, {});
    const draining = w.drain();
    await within(inside.promise, 'the transaction function to write');
    // Reads go on; an enqueue on another connection waits for the lock on SQLite and goes through once released.
    expect((await getJob(w, id)).state).toBe('running');
    const enqueue = w.enqueue(other, {});
    if (kind === 'postgres') await within(enqueue, 'an enqueue while the transaction is open');
    release.resolve();
    const { id: otherId } = await within(enqueue, 'the enqueue');
    await within(draining, 'the attempt to end');
    await w.drain();
    expect((await getJob(w, otherId)).state).toBe('completed');
    expect((await getJob(w, id)).state).toBe('completed');
  });
});
