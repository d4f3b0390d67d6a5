/**
 * A `{ transaction: true }` step that starts just as the step whose transaction is open has finished (its function,
 * its record, every call that joined it) must not join that transaction: the opener is about to COMMIT. It used to:
 * its function's writes went into the opener's transaction and were committed with it, then its record found the
 * transaction ended (TransactionEndedError), so the retry ran its function again — its effect twice. Swept over the
 * number of microtask turns between the opener's function and the second step's start, which finds the window.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Warden } from '../../src/client/warden.js';
import { defineJob, type JobContext } from '../../src/job/define-job.js';
import { openOracle, type Oracle } from '../process/db-oracle.js';
import { makeWarden, T0, TestClock, within } from '../runtime/helpers.js';
import { createTestDatabase, DRIVER_KINDS, type TestDatabase } from '../support/test-databases.js';
import { createAppTable } from './helpers.js';

describe.each(DRIVER_KINDS)('a transactional step started as another one commits (%s)', (kind) => {
  let tdb: TestDatabase;
  let oracle: Oracle;
  let warden: Warden;
  beforeEach(async () => {
    tdb = await createTestDatabase(kind);
    oracle = await openOracle(tdb);
  });
  afterEach(async () => {
    await warden.close();
    await oracle.close();
    await tdb.cleanup();
  });

  it('never commits its effect without its record, so a retry does not repeat it', async () => {
    const app = await createAppTable(tdb, oracle);
    const clock = new TestClock(T0);
    const job = defineJob({
      name: 'join-window', retry: { maxAttempts: 2, backoff: { type: 'fixed', base: '1s', jitter: 'none' } },
      handler: async (payload: { turns: number }, ctx: JobContext) => {
        const jobId = ctx.job.id;
        let aFnDone!: () => void;
        const aFn = new Promise<void>((resolve) => (aFnDone = resolve));
        const a = ctx.step('a', async ({ tx }) => { await app.insert(tx!, jobId, 'a'); aFnDone(); return 'a'; }, { transaction: true });
        // A replayed `a` runs no function.
        void a.then(aFnDone, aFnDone);
        const b = (async () => {
          await aFn;
          for (let i = 0; i < payload.turns; i++) await Promise.resolve();
          return ctx.step('b', async ({ tx }) => { await app.insert(tx!, jobId, 'b'); return 'b'; }, { transaction: true });
        })();
        await Promise.all([a, b]);
      },
    });
    warden = makeWarden(tdb, { jobs: [job], clock });
    const twice: string[] = [];
    for (let turns = 0; turns < 30; turns++) {
      const { id } = await warden.enqueue(job, { turns });
      await within(warden.drain(), `the first drain (${turns} turns)`);
      await clock.advance(1_000);
      await within(warden.drain(), `the retry's drain (${turns} turns)`);
      const tags = await app.tags(id);
      if (tags.filter((t) => t === 'b').length > 1) twice.push(`${turns} turns: ${tags.join(',')}`);
    }
    expect(twice).toEqual([]);
  });
});
