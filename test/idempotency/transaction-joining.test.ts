/**
 * Job-context transactions another call opened, as review found them mishandled:
 *
 * - A transaction takes calls from the moment its opener asks the driver for it, before the BEGIN returned. It was
 *   registered only inside the driver's callback, so two transactional calls made in one turn (steps awaiting the
 *   same read of recorded steps) opened two transactions: side by side they did not commit or roll back together;
 *   and on PostgreSQL, where both were open at once, a batch of `ctx.iterate` that had joined the first went on into
 *   the second, which committed a checkpoint past the first one's rollback (its page never processed), or the
 *   second's checkpoint waited on the first's row lock on the job row while the first waited for the iteration,
 *   until the job's timeout.
 * - The last batch of an iteration joined a transactional step beside it, whose failure the handler caught; the
 *   handler then ended with `ctx.transaction`, which completed the job without looking at the transaction the batch
 *   joined: its rollback took the last page, and the job completed without it. Now the completion waits for that
 *   transaction's outcome and, when it rolled back, throws its failure (`ctx.transaction` rolls back), so the attempt
 *   fails and the retry processes the page.
 * - With `maxRuntime`, an iteration inside a `{ transaction: true }` step handed over by throwing through the step's
 *   function, which rolled its checkpoints back with the step's transaction: every attempt (a yield is not counted)
 *   started again from the same cursor. Now it hands over only at a boundary whose checkpoint has surely committed:
 *   inside the step it runs to its end; beside a step whose transaction its batch joined, it hands over once that
 *   committed, and fails (counted) when it rolled back.
 *
 * The database is the oracle: the application table is read through a connection of its own, each row tagged with
 * the attempt that wrote it. Elapsed time is the test clock's. No wall-clock waits: each step of an interleaving waits
 * for the event before it.
 * @module
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createWarden, type Warden } from '../../src/client/warden.js';
import { createDriver } from '../../src/driver/create-driver.js';
import type { Driver } from '../../src/driver/driver.js';
import { defineJob, type JobContext, type JobDefinition } from '../../src/job/define-job.js';
import type { TransactionHandle } from '../../src/job/job-context-options.js';
import { type Oracle, openOracle } from '../process/db-oracle.js';
import { deferred, silent, T0, TestClock, within } from '../runtime/helpers.js';
import { overrideDriver } from '../support/override-driver.js';
import { createTestDatabase, DRIVER_KINDS, type TestDatabase } from '../support/test-databases.js';
import { type AppTable, attemptSummary, createAppTable, getJob, RETRY_1S } from './helpers.js';
import { threes } from './iterate-pages.js';

/** The failure of a step, thrown in attempt 1 only. */
const STEP_FAILED = 'audit write failed';
/** The failure of the first transaction opened when asked to. */
const BEGIN_REFUSED = 'BEGIN refused';

describe.each(DRIVER_KINDS)('job-context transactions another call opened (%s)', (kind) => {
  let tdb: TestDatabase;
  let oracle: Oracle;
  let clock: TestClock;
  let app: AppTable;
  let driver: Driver;
  let warden: Warden | undefined;
  /** While set, `driver.transaction` waits for it (once), after letting `passFirst` calls through. */
  let gate: Promise<void> | null;
  let passFirst: number;
  /** While true, the next `driver.transaction` call fails before its BEGIN (once). */
  let refuseNext: boolean;
  /** The attempts that handed over, as `attempt:done`. */
  let yields: string[];

  beforeEach(async () => {
    gate = null;
    passFirst = 0;
    refuseNext = false;
    yields = [];
    tdb = await createTestDatabase(kind);
    oracle = await openOracle(tdb);
    app = await createAppTable(tdb, oracle);
    clock = new TestClock(T0);
    driver = overrideDriver(createDriver({ url: tdb.url, schema: tdb.schema }), {
      transaction: (real) => async (fn) => {
        if (refuseNext) {
          refuseNext = false;
          throw new Error(BEGIN_REFUSED);
        }
        if (gate !== null) {
          if (passFirst > 0) passFirst--;
          else {
            const held = gate;
            gate = null;
            await held;
          }
        }
        return real(fn);
      },
    });
  });

  afterEach(async () => {
    await warden?.close();
    warden = undefined;
    await driver?.close();
    await oracle?.close();
    await tdb?.cleanup();
  });

  /** Runs the job until it is done: attempt 1's drain (and any hand-overs), then the retry's, a retry delay later. */
  async function runTwoDrains(job: JobDefinition<any, any>): Promise<{ w: Warden; id: string }> {
    const w = (warden = createWarden({ database: driver, logger: silent, jobs: [job], clock }));
    w.on('job:yielded', (e) => yields.push(`${e.attempt}:${e.done}`));
    const { id } = await w.enqueue(job, {});
    await within(w.drain(), 'attempt 1');
    await clock.advance(1_000);
    await within(w.drain(), 'attempt 2');
    return { w, id };
  }

  /** Writes each item, tagged with the attempt, through `tx`. */
  async function writeItems(ctx: JobContext, items: number[], tx: TransactionHandle): Promise<void> {
    for (const item of items) await app.insert(tx, ctx.job.id, `${ctx.attempt}:${item}`);
  }

  /** A transactional step writing its tag, failing in attempt 1 when `fails`. */
  function taggedStep(ctx: JobContext, name: string, fails: boolean, ran: string[]) {
    return ctx.step(
      name,
      async ({ tx }) => {
        ran.push(`${name}-${ctx.attempt}`);
        await app.insert(tx, ctx.job.id, `${name}-${ctx.attempt}`);
        if (fails && ctx.attempt === 1) throw new Error(STEP_FAILED);
      },
      { transaction: true },
    );
  }

  it('two transactional steps started in the same turn share one transaction: one failing rolls the other’s writes and record back', async () => {
    const ran: string[] = [];
    const job = defineJob({
      name: 'same-turn-steps',
      retry: { maxAttempts: 2, backoff: RETRY_1S },
      // Both steps await the same read of the recorded steps, and so ask for a transaction in one turn.
      handler: async (_payload, ctx: JobContext) => void (await Promise.all([taggedStep(ctx, 'a', false, ran), taggedStep(ctx, 'b', true, ran)])),
    });
    const { w, id } = await runTwoDrains(job);
    expect(await attemptSummary(w, id)).toEqual([
      [1, 'failed', 'Error'],
      [2, 'completed', null],
    ]);
    // `a` rolled back with `b` in attempt 1, so attempt 2 ran it again (not a replay), in one transaction with `b`.
    expect(ran).toEqual(['a-1', 'b-1', 'a-2', 'b-2']);
    expect(await app.tags(id)).toEqual(['a-2', 'b-2']);
    expect((await w.jobs.steps(id)).map((s) => [s.name, s.attempt]).sort()).toEqual([
      ['a', 2],
      ['b', 2],
    ]);
  });

  it('a call that joined a transaction whose BEGIN then fails fails with that error, its function never run', async () => {
    const ran: string[] = [];
    const failures: string[] = [];
    const job = defineJob({
      name: 'begin-fails',
      retry: { maxAttempts: 2, backoff: RETRY_1S },
      handler: async (_payload, ctx: JobContext) => {
        refuseNext = ctx.attempt === 1;
        const settled = await Promise.allSettled([taggedStep(ctx, 'a', false, ran), taggedStep(ctx, 'b', false, ran)]);
        for (const s of settled) if (s.status === 'rejected') failures.push(`${ctx.attempt}: ${(s.reason as Error).message}`);
        for (const s of settled) if (s.status === 'rejected') throw s.reason;
      },
    });
    const { w, id } = await runTwoDrains(job);
    expect(failures).toEqual([`1: ${BEGIN_REFUSED}`, `1: ${BEGIN_REFUSED}`]);
    expect(ran).toEqual(['a-2', 'b-2']);
    expect(await attemptSummary(w, id)).toEqual([
      [1, 'failed', 'Error'],
      [2, 'completed', null],
    ]);
    expect(await app.tags(id)).toEqual(['a-2', 'b-2']);
  });

  // On SQLite transactions are serialized: the second could not begin before the first ended (so not registered there).
  if (kind === 'postgres') it.each(['after the second batch wrote', 'once the iteration returned'] as const)(
    'a batch that joined the first of two transactional steps started in one turn never goes on into the second: the first fails %s, and the retry processes every item',
    async (when) => {
      const job = defineJob({
        name: 'two-openers',
        retry: { maxAttempts: 2, backoff: RETRY_1S },
        timeout: '30s',
        handler: async (_payload, ctx: JobContext) => {
          const first = ctx.attempt === 1;
          const aOpened = deferred();
          const bOpened = deferred();
          const gateB = deferred();
          const iterationReturned = deferred();
          const batch2Wrote = deferred();
          if (first) {
            // The second transaction asked for is slow to connect: the first is open, and the second opens later.
            passFirst = 1;
            gate = gateB.promise;
          }
          const a = ctx
            .step(
              'a',
              async () => {
                aOpened.resolve();
                if (!first) return;
                await (when === 'once the iteration returned' ? iterationReturned : batch2Wrote).promise;
                throw new Error(STEP_FAILED);
              },
              { transaction: true },
            )
            .catch(() => undefined);
          const b = ctx.step(
            'b',
            async () => {
              bOpened.resolve();
              if (first) await iterationReturned.promise;
            },
            { transaction: true },
          );
          const iteration = ctx
            .iterate<number, number>({
              transaction: true,
              source: async (cursor) => {
                // The first page once `a` is open (its batch joins it); the second once `b` could be open too.
                if (first && cursor === null) await aOpened.promise;
                if (first && cursor === 3) {
                  gateB.resolve();
                  await bOpened.promise;
                }
                return threes(6)(cursor);
              },
              batch: async (items, { tx }) => {
                await writeItems(ctx, items, tx);
                if (items[0] === 4) batch2Wrote.resolve();
              },
            })
            .finally(() => iterationReturned.resolve());
          await Promise.all([a, b, iteration]);
        },
      });
      const { w, id } = await runTwoDrains(job);
      expect(await attemptSummary(w, id)).toEqual([
        [1, 'failed', 'Error'],
        [2, 'completed', null],
      ]);
      // All of attempt 1 went into `a`'s transaction and rolled back with it.
      expect(await app.tags(id)).toEqual([1, 2, 3, 4, 5, 6].map((i) => `2:${i}`));
    },
  );

  it.each(['propagates', 'catches'] as const)(
    'the last batch joined a step beside it that rolled back, and the handler then calls ctx.transaction, whose failure it %s: the job does not complete, and the retry processes the lost page',
    async (handling) => {
      const job = defineJob({
        name: `joined-then-complete-${handling}`,
        retry: { maxAttempts: 2, backoff: RETRY_1S },
        handler: async (_payload, ctx: JobContext) => {
          const lastPageDue = deferred();
          const stepOpened = deferred();
          const iterationReturned = deferred();
          // The step opens its transaction before the last page is read, so the last batch joins it; the step fails
          // (attempt 1) once the iteration returned, and the handler catches that.
          const step = lastPageDue.promise
            .then(() =>
              ctx.step(
                'audit',
                async () => {
                  stepOpened.resolve();
                  await iterationReturned.promise;
                  if (ctx.attempt === 1) throw new Error(STEP_FAILED);
                },
                { transaction: true },
              ),
            )
            .catch(() => undefined);
          const iteration = ctx
            .iterate<number, number>({
              transaction: true,
              source: async (cursor) => {
                if (cursor === 3) {
                  lastPageDue.resolve();
                  await stepOpened.promise;
                }
                return threes(6)(cursor);
              },
              batch: (items, { tx }) => writeItems(ctx, items, tx),
            })
            .finally(() => iterationReturned.resolve());
          await Promise.all([step, iteration]);
          const done = ctx.transaction((tx) => app.insert(tx, ctx.job.id, `${ctx.attempt}:done`));
          await (handling === 'catches' ? done.catch(() => undefined) : done);
        },
      });
      const { w, id } = await runTwoDrains(job);
      expect(await attemptSummary(w, id)).toEqual([
        [1, 'failed', 'Error'],
        [2, 'completed', null],
      ]);
      expect((await w.jobs.attempts(id))[0]!.error?.message).toBe(STEP_FAILED);
      // Page 1 committed on its own in attempt 1; its last page and its ctx.transaction rolled back.
      expect(await app.tags(id)).toEqual(['1:1', '1:2', '1:3', '2:4', '2:5', '2:6', '2:done']);
      expect(await getJob(w, id)).toMatchObject({ state: 'completed', checkpoint: { cursor: 3, finished: true }, progress: { done: 6 } });
    },
  );

  it.each([true, false])(
    'with maxRuntime inside a transactional step (transaction: %s), it does not hand over, which would roll its checkpoints back: it runs to its end',
    async (transactional) => {
      let handlerRuns = 0;
      const job = defineJob({
        name: `max-runtime-in-step-${transactional}`,
        retry: { maxAttempts: 2, backoff: RETRY_1S },
        handler: async (_payload, ctx: JobContext) => {
          // Each page takes 600 ms of elapsed time: maxRuntime passes after two pages. Bounded, so that the loop this
          // guards against ends (after three hand-overs) when it comes back.
          const slow = ++handlerRuns <= 3;
          await ctx.step(
            'load',
            async ({ tx: stepTx }) => {
              await ctx.iterate<number, number>({
                transaction: transactional,
                maxRuntime: '1s',
                source: async (cursor) => {
                  if (slow) await clock.advance(600);
                  return threes(30)(cursor);
                },
                // Without `transaction: true` the batch writes through the step's own transaction.
                batch: (items, { tx }) => writeItems(ctx, items, transactional ? tx : stepTx),
              });
            },
            { transaction: true },
          );
        },
      });
      const { w, id } = await runTwoDrains(job);
      expect({ handlerRuns, yields }).toEqual({ handlerRuns: 1, yields: [] });
      expect(await attemptSummary(w, id)).toEqual([[1, 'completed', null]]);
      expect(await app.tags(id)).toEqual(Array.from({ length: 30 }, (_, i) => `1:${i + 1}`));
      expect(await getJob(w, id)).toMatchObject({ state: 'completed', checkpoint: { finished: true }, progress: { done: 30 } });
    },
  );

  it.each(['commits', 'rolls back'] as const)(
    'with maxRuntime passed while its batch is in the transaction of a step beside it, it hands over only past that transaction, which %s',
    async (outcome) => {
      const job = defineJob({
        name: `max-runtime-beside-${outcome === 'commits' ? 'commits' : 'rolls-back'}`,
        retry: { maxAttempts: 2, backoff: RETRY_1S },
        handler: async (_payload, ctx: JobContext) => {
          const first = ctx.attempt === 1;
          const stepOpened = deferred();
          const secondPageRead = deferred();
          const stepSettled = deferred();
          const step = ctx
            .step(
              'audit',
              async () => {
                stepOpened.resolve();
                if (!first) return;
                await secondPageRead.promise;
                if (outcome === 'rolls back') throw new Error(STEP_FAILED);
              },
              { transaction: true },
            )
            .catch(() => undefined)
            .finally(() => stepSettled.resolve());
          const iteration = ctx.iterate<number, number>({
            transaction: true,
            maxRuntime: '1s',
            source: async (cursor) => {
              if (first && cursor === null) {
                // The first batch joins the step's transaction; maxRuntime has passed at its boundary.
                await stepOpened.promise;
                await clock.advance(1_000);
              }
              if (first && cursor === 3) {
                // The step's transaction has ended before the second page comes.
                secondPageRead.resolve();
                await stepSettled.promise;
              }
              return threes(9)(cursor);
            },
            batch: (items, { tx }) => writeItems(ctx, items, tx),
          });
          await Promise.all([step, iteration]);
        },
      });
      const { w, id } = await runTwoDrains(job);
      if (outcome === 'commits') {
        // Not handed over after page 1 (its checkpoint was still in the step's transaction), but after page 2.
        expect(yields).toEqual(['1:6']);
        expect(await attemptSummary(w, id)).toEqual([
          [1, 'yielded', null],
          [2, 'completed', null],
        ]);
        expect(await app.tags(id)).toEqual(['1:1', '1:2', '1:3', '1:4', '1:5', '1:6', '2:7', '2:8', '2:9']);
      } else {
        // The lost page 1 fails the attempt, counted: a hand-over past it would not have been.
        expect(yields).toEqual([]);
        expect(await attemptSummary(w, id)).toEqual([
          [1, 'failed', 'Error'],
          [2, 'completed', null],
        ]);
        expect((await w.jobs.attempts(id))[0]!.error?.message).toBe(STEP_FAILED);
        expect(await app.tags(id)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9].map((i) => `2:${i}`));
      }
      expect(await getJob(w, id)).toMatchObject({ state: 'completed', checkpoint: { cursor: 6, finished: true }, progress: { done: 9 } });
    },
  );
});
