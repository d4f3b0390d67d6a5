/**
 * A transactional batch of `ctx.iterate` that joins another call's open transaction (a `{ transaction: true }` step
 * beside the iteration, or the one it runs inside) returns before that transaction commits. Found by review: the
 * iteration moved its cursor on that return. When the transaction then rolled back (its opener failed, and the
 * handler caught that failure), the batch's writes and checkpoint were gone, yet the next batch opened a transaction
 * of its own and committed a checkpoint past the lost page, or the iteration had returned already and the job
 * completed: the page's items were never processed, breaking "every item is processed at least once".
 *
 * Now the iteration goes on into another transaction only once the one its last batch joined committed (it throws
 * the failure that one rolled back for otherwise), and an attempt whose iteration's last batch was rolled back that
 * way fails, whatever its handler caught: the next attempt resumes from the last committed checkpoint.
 *
 * The database is the oracle: the application table is read through a connection of its own. Each item is written
 * tagged `attempt:item`, so a tag shows which attempt's writes were kept. No wall-clock waits: each step of the
 * interleaving waits for the event that must come before it.
 * @module
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Warden } from '../../src/client/warden.js';
import { defineJob, type JobContext, type JobDefinition } from '../../src/job/define-job.js';
import type { TransactionHandle } from '../../src/job/job-context-options.js';
import { type Oracle, openOracle } from '../process/db-oracle.js';
import { deferred, makeWarden, T0, TestClock, within } from '../runtime/helpers.js';
import { createTestDatabase, DRIVER_KINDS, type TestDatabase } from '../support/test-databases.js';
import { type AppTable, attemptSummary, createAppTable, getJob, RETRY_1S } from './helpers.js';
import { threes } from './iterate-pages.js';

/** The failure of the step, thrown in attempt 1 only. */
const AUDIT_FAILED = 'audit write failed';

describe.each(DRIVER_KINDS)('a transactional batch that joined another call’s transaction (%s)', (kind) => {
  let tdb: TestDatabase;
  let oracle: Oracle;
  let clock: TestClock;
  let app: AppTable;
  let warden: Warden | undefined;
  /** What ctx.iterate threw, per attempt. */
  let iterateErrors: string[];

  beforeEach(async () => {
    iterateErrors = [];
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

  /** Writes each item, tagged with the attempt, through the batch's transaction. */
  function writeItems(ctx: JobContext) {
    return async (items: number[], { tx }: { tx: TransactionHandle }) => {
      for (const item of items) await app.insert(tx, ctx.job.id, `${ctx.attempt}:${item}`);
    };
  }

  /** Records what `iteration` threw (and rethrows it). */
  function noted<T>(iteration: Promise<T>): Promise<T> {
    return iteration.catch((error: unknown) => {
      iterateErrors.push((error as Error).message);
      throw error;
    });
  }

  /** Runs the job's attempts 1 and 2, a retry delay apart. */
  async function runTwoAttempts(job: JobDefinition<any, any>): Promise<{ w: Warden; id: string }> {
    const w = (warden = makeWarden(tdb, { jobs: [job], clock }));
    const { id } = await w.enqueue(job, {});
    await within(w.drain(), 'attempt 1');
    await clock.advance(1_000);
    await within(w.drain(), 'attempt 2');
    return { w, id };
  }

  it('the step beside it fails after the batch returned: the iteration throws that failure instead of checkpointing past the page; the retry processes every item', async () => {
    const job = defineJob({
      name: 'joined-first-page',
      retry: { maxAttempts: 2, backoff: RETRY_1S },
      handler: async (_payload, ctx: JobContext) => {
        const stepOpened = deferred();
        const firstBatchReturned = deferred();
        const stepSettled = deferred();
        // A best-effort transactional step beside the iteration, whose failure the handler catches.
        const step = ctx
          .step(
            'audit',
            async () => {
              stepOpened.resolve();
              await firstBatchReturned.promise;
              if (ctx.attempt === 1) throw new Error(AUDIT_FAILED);
            },
            { transaction: true },
          )
          .catch(() => undefined)
          .finally(() => stepSettled.resolve());
        const iteration = ctx.iterate<number, number>({
          transaction: true,
          // The first page once the step's transaction is open (its batch joins it); the second once the first
          // batch returned and the step's transaction ended.
          source: async (cursor) => {
            if (cursor === null) await stepOpened.promise;
            if (cursor === 3) {
              firstBatchReturned.resolve();
              await stepSettled.promise;
            }
            return threes(9)(cursor);
          },
          batch: writeItems(ctx),
        });
        await Promise.all([step, noted(iteration)]);
      },
    });
    const { w, id } = await runTwoAttempts(job);
    expect(await attemptSummary(w, id)).toEqual([
      [1, 'failed', 'Error'],
      [2, 'completed', null],
    ]);
    expect(iterateErrors).toEqual([AUDIT_FAILED]);
    // Attempt 1's first page rolled back with the step, and it checkpointed nothing past it: attempt 2 did it all.
    expect(await app.tags(id)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9].map((i) => `2:${i}`));
    expect(await getJob(w, id)).toMatchObject({ state: 'completed', checkpoint: { cursor: 6, finished: true }, progress: { done: 9 } });
  });

  it.each(['beside', 'around'] as const)(
    'the step %s the iteration fails after its last batch returned and the handler catches that: the attempt fails, and the retry processes the lost page',
    async (where) => {
      const job = defineJob({
        name: `joined-last-page-${where}`,
        retry: { maxAttempts: 2, backoff: RETRY_1S },
        handler: async (_payload, ctx: JobContext) => {
          const failIfFirst = () => {
            if (ctx.attempt === 1) throw new Error(AUDIT_FAILED);
          };
          if (where === 'around') {
            // Every batch joins the step's transaction, the iteration returns inside it, then the step fails.
            await ctx
              .step(
                'audit',
                async () => {
                  await noted(ctx.iterate<number, number>({ transaction: true, source: threes(6), batch: writeItems(ctx) }));
                  failIfFirst();
                },
                { transaction: true },
              )
              .catch(() => undefined);
            return;
          }
          // The first batch commits on its own; the step opens its transaction before the last page is read, so the
          // last batch joins it; the step fails once the iteration returned.
          const lastPageDue = deferred();
          const stepOpened = deferred();
          const iterationReturned = deferred();
          const step = lastPageDue.promise
            .then(() =>
              ctx.step(
                'audit',
                async () => {
                  stepOpened.resolve();
                  await iterationReturned.promise;
                  failIfFirst();
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
              batch: writeItems(ctx),
            })
            .finally(() => iterationReturned.resolve());
          await Promise.all([step, noted(iteration)]);
        },
      });
      const { w, id } = await runTwoAttempts(job);
      // ctx.iterate itself returned: the rollback came after. The attempt failed with the step's failure.
      expect(iterateErrors).toEqual([]);
      expect(await attemptSummary(w, id)).toEqual([
        [1, 'failed', 'Error'],
        [2, 'completed', null],
      ]);
      expect((await w.jobs.attempts(id))[0]!.error?.message).toBe(AUDIT_FAILED);
      // Beside: page 1 committed on its own in attempt 1, and attempt 2 resumed after it. Around: nothing of attempt 1
      // committed.
      const kept = where === 'beside' ? ['1:1', '1:2', '1:3', '2:4', '2:5', '2:6'] : [1, 2, 3, 4, 5, 6].map((i) => `2:${i}`);
      expect(await app.tags(id)).toEqual(kept);
      expect(await getJob(w, id)).toMatchObject({ state: 'completed', checkpoint: { cursor: 3, finished: true }, progress: { done: 6 } });
    },
  );
});
