/**
 * Steps run side by side (`Promise.all`), as docs/guarantees.md#memoized-steps allows. Found by review:
 *
 * - A step whose function was still running when a sibling step failed: the attempt ended at once, the step then
 *   succeeded, its record was refused, and the next attempt ran its function again. Now the ending waits for every
 *   step the handler called (bounded by the job's timeout), and a step called after the handler returned is refused.
 * - A `{ transaction: true }` step or batch started while another one's transaction was open joined it, and kept
 *   writing through its connection after that transaction had committed: outside any transaction, or inside another
 *   caller's. Now the transaction commits or rolls back only once every call that joined it has finished (function
 *   and record), a failure of any of them rolls all of it back, and a call that waits for its opener is ended by the
 *   job's timeout.
 *
 * - The handles given to those functions (and `ctx.transaction`'s) refuse use once their function returned or their
 *   transaction ended, with `TransactionEndedError`: kept past it, they ran on a connection that carried no
 *   transaction any more (each statement committing alone) or another caller's (PostgreSQL's pool hands the client to
 *   the next borrower; SQLite's transaction connection runs the next transaction).
 *
 * The database is the oracle: an independent connection reads the application table. No wall-clock waits: a step
 * that must outlast another lets a number of event-loop turns pass, or waits for that other step, whichever comes
 * first; with the fixes the other never comes first.
 * @module
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Warden } from '../../src/client/warden.js';
import { AttemptEndedError, InvalidTransactionError, JobTimeoutError, TransactionEndedError } from '../../src/errors.js';
import { defineJob, type JobContext, type JobDefinition } from '../../src/job/define-job.js';
import { type Oracle, openOracle } from '../process/db-oracle.js';
import { type Deferred, deferred, makeWarden, T0, TestClock, within } from '../runtime/helpers.js';
import { createTestDatabase, DRIVER_KINDS, type TestDatabase } from '../support/test-databases.js';
import { type AppTable, attemptSummary, caught, createAppTable, expectTyped, getJob, RETRY_1S } from './helpers.js';

/** Resolves after `n` turns of the event loop (every callback and I/O reply due in them has run). */
async function turns(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

/** `Promise.all(steps)`, resolving `rejected` as it rejects: the handler rejects at once, as `Promise.all` makes it. */
async function allOrReport(steps: Promise<unknown>[], rejected: Deferred): Promise<void> {
  try {
    await Promise.all(steps);
  } catch (error) {
    rejected.resolve();
    throw error;
  }
}

/** Waits for `step` to settle, or `n` event-loop turns, whichever comes first; never rejects. */
function outlast(step: Promise<unknown>, n = 200): Promise<unknown> {
  return Promise.race([step.catch(() => undefined), turns(n)]);
}

describe.each(DRIVER_KINDS)('steps side by side (%s)', (kind) => {
  let tdb: TestDatabase;
  let oracle: Oracle;
  let clock: TestClock;
  let app: AppTable;
  let warden: Warden | undefined;
  /** Executions of each step function that got to its end, by step name. */
  let runs: Record<string, number>;
  /** What happened, in order, across attempts. */
  let order: string[];

  beforeEach(async () => {
    runs = {};
    order = [];
    tdb = await createTestDatabase(kind);
    oracle = await openOracle(tdb);
    app = await createAppTable(tdb, oracle);
    clock = new TestClock(T0);
  });

  afterEach(async () => {
    await warden?.close();
    warden = undefined;
    await oracle?.close();
    await tdb?.cleanup();
  });

  function open(jobs: JobDefinition<any, any>[]): Warden {
    warden = makeWarden(tdb, { jobs, clock });
    warden.on('job:failed', (e) => order.push(`attempt ${e.attempt} ${e.outcome}`));
    warden.on('job:completed', (e) => order.push(`attempt ${e.attempt} completed`));
    return warden;
  }

  function ran(name: string): void {
    runs[name] = (runs[name] ?? 0) + 1;
    order.push(`${name} returned`);
  }

  /** Runs the job's attempts: drains, advances the fake clock by one retry delay, `times` times. */
  async function drainRetries(w: Warden, times: number): Promise<void> {
    for (let i = 0; i < times; i++) {
      await within(w.drain(), `attempt ${i + 1}`);
      await clock.advance(1_000);
    }
  }

  /** Enqueues `job` and runs its attempts 1, which must fail, and 2, which must complete. */
  async function failsThenCompletes(job: JobDefinition<any, any>): Promise<{ w: Warden; id: string }> {
    const w = open([job]);
    const { id } = await w.enqueue(job, {});
    await drainRetries(w, 2);
    expect(await attemptSummary(w, id)).toEqual([
      [1, 'failed', 'Error'],
      [2, 'completed', null],
    ]);
    return { w, id };
  }

  /** A `{ transaction: true }` step called once `ready` resolves (started beside another step). */
  async function stepAfter<T>(ready: Promise<void>, ctx: JobContext, name: string, fn: (tx: unknown) => Promise<T>): Promise<T> {
    await ready;
    return ctx.step(name, ({ tx }) => fn(tx), { transaction: true });
  }

  describe('the ending waits for the steps the handler called', () => {
    it('a step still running when a sibling fails is recorded before the ending; the retry replays it', async () => {
      const job = defineJob({
        name: 'validate-and-charge',
        retry: { maxAttempts: 3, backoff: RETRY_1S },
        handler: async (_payload, ctx: JobContext) => {
          const chargeStarted = deferred();
          const handlerRejected = deferred();
          const validate = ctx.step('validate', async () => {
            if (ctx.attempt > 1) return 'ok';
            await chargeStarted.promise;
            throw new Error('validation service hiccup');
          });
          const charge = ctx.step('charge', async () => {
            chargeStarted.resolve();
            // The payment call is still in flight when the handler has rejected and the attempt moved on.
            await handlerRejected.promise;
            await turns(1);
            ran('charge');
            return 'ch_1';
          });
          await allOrReport([validate, charge], handlerRejected);
        },
      });
      const { w, id } = await failsThenCompletes(job);
      expect(runs).toEqual({ charge: 1 });
      expect(order).toEqual(['charge returned', 'attempt 1 failed', 'attempt 2 completed']);
      expect((await w.jobs.steps(id)).map((s) => [s.name, s.attempt, s.result])).toEqual([
        ['charge', 1, 'ch_1'],
        ['validate', 2, 'ok'],
      ]);
    });

    it('a step left running after the handler returned is awaited; one called after it returned is refused and runs nothing', async () => {
      const handlerReturned = deferred();
      const slowRelease = deferred();
      let context: JobContext | undefined;
      const job = defineJob({
        name: 'fire-and-forget',
        retry: { maxAttempts: 1 },
        handler: async (_payload, ctx: JobContext) => {
          context = ctx;
          void ctx.step('slow', async () => {
            await slowRelease.promise;
            ran('slow');
            return 'done';
          });
          handlerReturned.resolve();
        },
      });
      const w = open([job]);
      const { id } = await w.enqueue(job, {});
      const draining = w.drain();
      await within(handlerReturned.promise, 'the handler to return');
      await turns(1);
      const late = await caught(() => context!.step('late', () => ran('late')));
      expectTyped(late, AttemptEndedError);
      expect((late as Error).message).toContain('ctx.step("late") after the handler returned');
      // The ending waits for `slow`.
      expect((await getJob(w, id)).state).toBe('running');
      slowRelease.resolve();
      await within(draining, 'the attempt to end');
      expect(await attemptSummary(w, id)).toEqual([[1, 'completed', null]]);
      expect(runs).toEqual({ slow: 1 });
      expect((await w.jobs.steps(id)).map((s) => s.name)).toEqual(['slow']);
    });

    it('waits no longer than the job’s timeout for a step that never returns', async () => {
      const handlerRejected = deferred();
      const hangRelease = deferred();
      const job = defineJob({
        name: 'hangs-beside',
        timeout: '5s',
        retry: { maxAttempts: 1 },
        handler: async (_payload, ctx: JobContext) => {
          const fails = ctx.step('fails', () => Promise.reject(new Error('fails at once')));
          // Ignores its signal.
          const hangs = ctx.step('hangs', async () => (await hangRelease.promise, 'late'));
          await allOrReport([fails, hangs], handlerRejected);
        },
      });
      const w = open([job]);
      const { id } = await w.enqueue(job, {});
      const draining = w.drain();
      await within(handlerRejected.promise, 'the handler to reject');
      await turns(1);
      expect((await getJob(w, id)).state).toBe('running');
      await clock.advance(5_000);
      await within(draining, 'the attempt to end at its timeout');
      expect(await attemptSummary(w, id)).toEqual([[1, 'timeout', 'JobTimeoutError']]);
      hangRelease.resolve();
      await turns(5);
      expect(await w.jobs.steps(id)).toEqual([]);
    });
  });

  describe('{ transaction: true } steps and batches started beside an open one join its transaction', () => {
    /**
     * A job whose `{ transaction: true }` step `a` opens a transaction that a step `b` (or a transactional batch)
     * joins while `a`'s function runs, and outlasts it. In attempt 1, `failing` (if any) throws after writing.
     * `failures` collects what `a` and the joined call threw, per attempt; the handler rethrows it.
     */
    function openerAndJoined(name: string, joined: 'step' | 'batch', failing?: 'opener' | 'joined') {
      const failures: string[] = [];
      const label = joined === 'step' ? 'b' : 'batch';
      const job = defineJob({
        name,
        retry: { maxAttempts: 3, backoff: RETRY_1S },
        handler: async (_payload, ctx: JobContext) => {
          const [jobId, n] = [ctx.job.id, ctx.attempt];
          const failIf = (who: 'opener' | 'joined') => {
            if (n === 1 && failing === who) throw new Error(`${who} failed after writing`);
          };
          const aOpen = deferred();
          const joinedStarted = deferred();
          const a = ctx.step(
            'a',
            async ({ tx }) => {
              await app.insert(tx, jobId, `a-${n}`);
              aOpen.resolve();
              await joinedStarted.promise;
              failIf('opener');
              ran('a');
              return 'a';
            },
            { transaction: true },
          );
          void a.then(() => order.push('a resolved'), () => undefined);
          const work = async (tx: unknown) => {
            await app.insert(tx, jobId, `${label}1-${n}`);
            joinedStarted.resolve();
            await outlast(a);
            await app.insert(tx, jobId, `${label}2-${n}`);
            failIf('joined');
            ran(label);
            return label;
          };
          const batches = { source: () => ({ items: [1], next: null }), batch: async (_items: number[], info: { tx: unknown }) => void (await work(info.tx)), transaction: true };
          const other = joined === 'step' ? stepAfter(aOpen.promise, ctx, 'b', work) : aOpen.promise.then(() => ctx.iterate<number, null>(batches));
          const settled = await Promise.allSettled([a, other]);
          for (const s of settled) if (s.status === 'rejected') failures.push(`attempt ${n}: ${(s.reason as Error).message}`);
          for (const s of settled) if (s.status === 'rejected') throw s.reason;
        },
      });
      return { job, failures };
    }

    /** Runs attempts 1 (failed) and 2 (completed), and checks that only attempt 2's writes and records were kept. */
    async function expectRolledBackThenCommitted(job: JobDefinition<any, any>, tags: string[], steps: [string, number][]): Promise<string> {
      const { w, id } = await failsThenCompletes(job);
      expect(await app.tags(id)).toEqual(tags);
      expect((await w.jobs.steps(id)).map((s) => [s.name, s.attempt]).sort()).toEqual(steps);
      return id;
    }

    it('the transaction waits for a step that joined it and outlasts its opener: all writes and both records commit together', async () => {
      const { job } = openerAndJoined('two-tx-steps', 'step');
      const w = open([job]);
      const { id } = await w.enqueue(job, {});
      await within(w.drain(), 'the attempt');
      expect(order).toEqual(['a returned', 'b returned', 'a resolved', 'attempt 1 completed']);
      expect(await app.tags(id)).toEqual(['a-1', 'b1-1', 'b2-1']);
      expect((await w.jobs.steps(id)).map((s) => s.name).sort()).toEqual(['a', 'b']);
    });

    it('a step that joined and fails rolls the whole transaction back: the opener’s writes and record too', async () => {
      const { job, failures } = openerAndJoined('joined-fails', 'step', 'joined');
      await expectRolledBackThenCommitted(job, ['a-2', 'b1-2', 'b2-2'], [['a', 2], ['b', 2]]);
      // The opener `a` returned in attempt 1, but its transaction rolled back with `b`: it throws b's error.
      expect(failures).toEqual(['attempt 1: joined failed after writing', 'attempt 1: joined failed after writing']);
    });

    it('an opener that fails while a step that joined still runs rolls back only once that step has finished; the step throws too', async () => {
      const { job, failures } = openerAndJoined('opener-fails', 'step', 'opener');
      await expectRolledBackThenCommitted(job, ['a-2', 'b1-2', 'b2-2'], [['a', 2], ['b', 2]]);
      // `b` got to its end in attempt 1, but its transaction was bound to roll back: it throws a's failure.
      expect(failures).toEqual(['attempt 1: opener failed after writing', 'attempt 1: opener failed after writing']);
      expect(runs).toEqual({ a: 1, b: 2 });
    });

    it('a step that joined and waits for its opener is ended by the job’s timeout: everything rolls back, and the retry commits once', async () => {
      const waiting = deferred();
      let lateUse: unknown;
      const job = defineJob({
        name: 'waits-for-its-opener',
        timeout: '5s',
        retry: { maxAttempts: 2, backoff: RETRY_1S },
        handler: async (_payload, ctx: JobContext) => {
          const jobId = ctx.job.id;
          const aOpen = deferred();
          const bJoined = deferred();
          const a = ctx.step(
            'a',
            async ({ tx }) => {
              await app.insert(tx, jobId, `a-${ctx.attempt}`);
              aOpen.resolve();
              await bJoined.promise;
              return 'a';
            },
            { transaction: true },
          );
          const b = stepAfter(aOpen.promise, ctx, 'b', async (tx) => {
            await app.insert(tx, jobId, `b-${ctx.attempt}`);
            bJoined.resolve();
            if (ctx.attempt === 1) {
              // `a` waits for this step to finish before it commits: a deadlock, until the timeout.
              waiting.resolve();
              await a.catch(() => undefined);
              lateUse = await caught(() => app.insert(tx, jobId, 'late'));
            }
            return 'b';
          });
          await Promise.all([a, b]);
        },
      });
      const w = open([job]);
      const { id } = await w.enqueue(job, {});
      const draining = w.drain();
      await within(waiting.promise, 'the steps to wait for each other');
      await clock.advance(5_000);
      await within(draining, 'the attempt to end at its timeout');
      expect(expectTyped(lateUse, TransactionEndedError).message).toContain('after its transaction ended');
      await clock.advance(1_000);
      await within(w.drain(), 'attempt 2');
      expect(await attemptSummary(w, id)).toEqual([
        [1, 'timeout', JobTimeoutError.name],
        [2, 'completed', null],
      ]);
      expect(await app.tags(id)).toEqual(['a-2', 'b-2']);
    });

    it('nested calls, awaited by the function they run in, join and commit with it', async () => {
      const job = defineJob({
        name: 'nested',
        retry: { maxAttempts: 1 },
        handler: async (_payload, ctx: JobContext) => {
          const jobId = ctx.job.id;
          const inner = (name: string) => ctx.step(name, async ({ tx }) => (await app.insert(tx, jobId, name), name), { transaction: true });
          const outer = await ctx.step(
            'outer',
            async ({ tx }) => {
              await app.insert(tx, jobId, 'outer');
              return [await inner('in-step'), 'outer'];
            },
            { transaction: true },
          );
          expect(outer).toEqual(['in-step', 'outer']);
          await ctx.transaction(async (tx) => {
            await app.insert(tx, jobId, 'completion');
            await inner('in-transaction');
          });
        },
      });
      const w = open([job]);
      const { id } = await w.enqueue(job, {});
      await within(w.drain(), 'the attempt');
      expect(await attemptSummary(w, id)).toEqual([[1, 'completed', null]]);
      expect(await app.tags(id)).toEqual(['outer', 'in-step', 'completion', 'in-transaction']);
      expect((await w.jobs.steps(id)).map((s) => s.name).sort()).toEqual(['in-step', 'in-transaction', 'outer']);
    });

    it('a transactional batch started beside an open transactional step joins it: when the batch fails, the step’s transaction rolls back too', async () => {
      const { job, failures } = openerAndJoined('batch-beside-step', 'batch', 'joined');
      const id = await expectRolledBackThenCommitted(job, ['a-2', 'batch1-2', 'batch2-2'], [['a', 2]]);
      expect(failures).toEqual(['attempt 1: joined failed after writing', 'attempt 1: joined failed after writing']);
      expect((await getJob(warden!, id)).checkpoint).toEqual({ cursor: null, finished: true });
    });
  });

  describe('transaction handles used too late', () => {
    const followUp = defineJob({ name: 'follow-up', handler: () => undefined });

    /** Asserts `error` is a TransactionEndedError of job `jobId` for `holder`, after `after`. */
    function expectEnded(error: unknown, jobId: string, holder: string, after: string): void {
      const typed = expectTyped(error, TransactionEndedError);
      expect(typed).toBeInstanceOf(InvalidTransactionError);
      expect(typed).toMatchObject({ code: 'INVALID_TX', jobId });
      expect(typed.message).toBe(`Expected tx to be used while the function of ${holder} of job ${jobId} runs in its transaction, got it used after ${after}`);
    }

    it('a step’s, a batch’s and ctx.transaction’s handle works while their function runs, and is refused once it returned', async () => {
      const errors: Record<string, unknown> = {};
      const job = defineJob({
        name: 'keeps-handles',
        retry: { maxAttempts: 1 },
        handler: async (_payload, ctx: JobContext) => {
          const jobId = ctx.job.id;
          const tryLater = async (label: string, tx: unknown) => {
            errors[`${label} write`] = await caught(() => app.insert(tx, jobId, `${label} after`));
            errors[`${label} enqueue`] = await caught(() => w.enqueue(followUp, { from: `${label} after` }, { tx }));
          };
          let stepTx: unknown;
          await ctx.step(
            's',
            async ({ tx }) => {
              stepTx = tx;
              await app.insert(tx, jobId, 'step inside');
              await w.enqueue(followUp, { from: 'step' }, { tx });
            },
            { transaction: true },
          );
          await tryLater('step', stepTx);
          let batchTx: unknown;
          await ctx.iterate<number, number>({
            source: () => ({ items: [1], next: null }),
            batch: async (_items, { tx }) => {
              batchTx = tx;
              await app.insert(tx, jobId, 'batch inside');
              await w.enqueue(followUp, { from: 'batch' }, { tx });
            },
            transaction: true,
          });
          await tryLater('batch', batchTx);
          let completionTx: unknown;
          await ctx.transaction(async (tx) => {
            completionTx = tx;
            await app.insert(tx, jobId, 'completion inside');
            await w.enqueue(followUp, { from: 'completion' }, { tx });
          });
          await tryLater('completion', completionTx);
        },
      });
      const w = open([job, followUp]);
      const { id } = await w.enqueue(job, {});
      await within(w.drain(), 'the attempt');
      expect(await attemptSummary(w, id)).toEqual([[1, 'completed', null]]);
      const holders = { step: 'step "s"', batch: 'a batch of ctx.iterate', completion: 'ctx.transaction' };
      for (const [label, holder] of Object.entries(holders)) {
        expectEnded(errors[`${label} write`], id, holder, 'its function returned');
        expectEnded(errors[`${label} enqueue`], id, holder, 'its function returned');
      }
      expect(await app.tags(id)).toEqual(['step inside', 'batch inside', 'completion inside']);
      expect((await w.jobs.list({ name: 'follow-up' })).map((j) => j.payload).reverse()).toEqual([{ from: 'step' }, { from: 'batch' }, { from: 'completion' }]);
    });

    it('the opener’s handle is refused once its function returned, while its transaction stays open for a step that joined it', async () => {
      let refused: unknown;
      const job = defineJob({
        name: 'opener-handle',
        retry: { maxAttempts: 1 },
        handler: async (_payload, ctx: JobContext) => {
          const jobId = ctx.job.id;
          const aOpen = deferred();
          let openerTx: unknown;
          const a = ctx.step(
            'a',
            async ({ tx }) => {
              openerTx = tx;
              await app.insert(tx, jobId, 'a');
              aOpen.resolve();
              return 'a';
            },
            { transaction: true },
          );
          const b = stepAfter(aOpen.promise, ctx, 'b', async (tx) => {
            // `a` returns meanwhile; its transaction waits for this step.
            await turns(1);
            refused = await caught(() => app.insert(openerTx, jobId, 'through a, after it returned'));
            await app.insert(tx, jobId, 'b');
            return 'b';
          });
          await Promise.all([a, b]);
        },
      });
      const w = open([job]);
      const { id } = await w.enqueue(job, {});
      await within(w.drain(), 'the attempt');
      expectEnded(refused, id, 'step "a"', 'its function returned');
      expect(await attemptSummary(w, id)).toEqual([[1, 'completed', null]]);
      expect(await app.tags(id)).toEqual(['a', 'b']);
    });
  });
});
