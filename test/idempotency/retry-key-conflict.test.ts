/**
 * Operator retry of a keyed job (`Driver.jobRetry`, `warden.jobs.retry`) when several jobs of one key can be active
 * at once: with `unique.replace` (states `queued`, `retrying`) or custom `unique.states`, an enqueue while the
 * holder runs inserts a newer job that takes the key, and the older one keeps running. A retry conflicts exactly
 * when it would make a second active job with the key (docs/guarantees.md, "Dedup keys and windows"): a `dead` job
 * while any other job of its key is active, whichever job the key row names; never a `retrying` job, which is
 * active already. Two operators retrying jobs of one key at once cannot both win.
 * @module
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Driver, JobInsert, JobInsertResult, UniqueInsert } from '../../src/driver/driver.js';
import { KeyConflictError } from '../../src/errors.js';
import type { JobRow } from '../../src/job/job-record.js';
import { at, claimExactly, errorInfo, expectRejects, finishOf, getJob } from '../conformance/helpers.js';
import { createTestDatabase, DRIVER_KINDS, makeInsert, type TestDatabase } from '../support/test-databases.js';

/** Debounce: only a waiting holder is a duplicate, so an enqueue while it runs inserts a newer job. */
const REPLACE: UniqueInsert = { windowMs: null, states: ['queued', 'retrying'], replace: true };
/** Custom states without replace: a running holder is no duplicate either. */
const QUEUED_ONLY: UniqueInsert = { windowMs: null, states: ['queued'], replace: false };

describe.each(DRIVER_KINDS)('operator retry of a keyed job while other jobs of its key are active (%s)', (kind) => {
  let tdb: TestDatabase;

  beforeEach(async () => {
    tdb = await createTestDatabase(kind);
  });

  afterEach(async () => {
    await tdb?.cleanup();
  });

  async function put(unique: UniqueInsert, now: Date, overrides: Partial<JobInsert> = {}, driver: Driver = tdb.driver): Promise<JobInsertResult> {
    const [result] = await driver.jobInsertMany({ jobs: [makeInsert({ key: 'k', unique, ...overrides })], now });
    return result!;
  }

  /** Ends a running job's attempt at `now`: `dead`, `completed`, or `retrying` due in an hour. */
  async function finish(running: JobRow, state: 'dead' | 'completed' | 'retrying', now: Date): Promise<JobRow> {
    const item =
      state === 'completed'
        ? finishOf(running)
        : finishOf(running, { outcome: 'failed', state, retryDelayMs: 3_600_000, error: errorInfo() });
    expect(await tdb.driver.jobFinishMany({ items: [item], now })).toEqual({ applied: [running.id], stale: [] });
    return getJob(tdb.driver, running.id);
  }

  /**
   * `older` runs; `newer`, enqueued meanwhile, took the key (the key row names it) and died. The older job is
   * active with the key, and the key row does not name it.
   */
  async function olderRunsNewerDead(unique: UniqueInsert): Promise<{ older: JobRow; newer: JobRow }> {
    const first = await put(unique, at(0));
    const older = await claimExactly(tdb.driver, first.job.id, { now: at(1_000) });
    const second = await put(unique, at(2_000));
    expect([second.duplicate, second.replaced]).toEqual([false, false]);
    const running = await claimExactly(tdb.driver, second.job.id, { now: at(3_000) });
    const newer = await finish(running, 'dead', at(3_000));
    expect([older.state, newer.state]).toEqual(['running', 'dead']);
    return { older, newer };
  }

  it.each([
    ['unique.replace', REPLACE],
    ['unique.states [queued]', QUEUED_ONLY],
  ] as const)('%s: a dead job whose key an older running job still has is refused, naming that job', async (_title, unique) => {
    const { older, newer } = await olderRunsNewerDead(unique);
    const error = await expectRejects(tdb.driver.jobRetry({ id: newer.id, now: at(4_000) }), KeyConflictError);
    expect([error.key, error.existingJobId]).toEqual(['k', older.id]);
    expect(error.message).toBe(`Expected no other active job with this job's dedup key, got job ${older.id}`);
    expect(await getJob(tdb.driver, newer.id)).toEqual(newer);
    // Once the older job has ended, nothing else has the key: the retry goes through and the job holds the key.
    await finish(older, 'completed', at(5_000));
    const retried = await tdb.driver.jobRetry({ id: newer.id, now: at(6_000) });
    expect([retried.id, retried.state]).toEqual([newer.id, 'queued']);
    const again = await put(unique, at(7_000), { payloadJson: '{"v":2}' });
    expect([again.job.id, again.duplicate]).toEqual([newer.id, true]);
  });

  it('a retrying job that is not the holder is retried (it is active already); the newer holder keeps the key', async () => {
    const first = await put(REPLACE, at(0), { payloadJson: '{"v":1}' });
    const running = await claimExactly(tdb.driver, first.job.id, { now: at(1_000) });
    const holder = await put(REPLACE, at(2_000), { payloadJson: '{"v":2}' });
    expect(holder.duplicate).toBe(false);
    const retrying = await finish(running, 'retrying', at(3_000));
    expect(retrying.state).toBe('retrying');

    const retried = await tdb.driver.jobRetry({ id: retrying.id, now: at(4_000) });
    expect([retried.id, retried.state, retried.runAt]).toEqual([retrying.id, 'queued', at(4_000)]);
    // A debounced enqueue still replaces the newer job, not the retried one.
    const third = await put(REPLACE, at(5_000), { payloadJson: '{"v":3}' });
    expect([third.job.id, third.duplicate, third.replaced, third.job.payload]).toEqual([holder.job.id, true, true, { v: 3 }]);
    expect((await getJob(tdb.driver, retrying.id)).payload).toEqual({ v: 1 });
  });

  it('a retrying holder is retried while an older job of its key runs, and stays the holder', async () => {
    const first = await put(REPLACE, at(0));
    await claimExactly(tdb.driver, first.job.id, { now: at(1_000) });
    const second = await put(REPLACE, at(2_000));
    const running = await claimExactly(tdb.driver, second.job.id, { now: at(3_000) });
    await finish(running, 'retrying', at(3_000));
    const retried = await tdb.driver.jobRetry({ id: second.job.id, now: at(4_000) });
    expect(retried.state).toBe('queued');
    const third = await put(REPLACE, at(5_000), { payloadJson: '{"v":3}' });
    expect([third.job.id, third.replaced]).toEqual([second.job.id, true]);
  });

  it('two operators retrying two dead jobs of one key at once: exactly one wins, the other conflicts with it', async () => {
    const others = [tdb.newDriver(), tdb.newDriver()];
    const rounds = 4;
    const pairs: [JobRow, JobRow][] = [];
    for (let i = 0; i < rounds; i++) {
      const key = `race-${i}`;
      const a = await put(REPLACE, at(0), { key });
      const deadA = await finish(await claimExactly(tdb.driver, a.job.id, { now: at(1_000) }), 'dead', at(1_000));
      const b = await put(REPLACE, at(2_000), { key });
      const deadB = await finish(await claimExactly(tdb.driver, b.job.id, { now: at(3_000) }), 'dead', at(3_000));
      pairs.push([deadA, deadB]);
    }
    const settled = await Promise.all(
      pairs.map(([a, b]) => Promise.allSettled([others[0]!.jobRetry({ id: a.id, now: at(4_000) }), others[1]!.jobRetry({ id: b.id, now: at(4_000) })])),
    );
    for (const [i, results] of settled.entries()) {
      const won = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
      const lost = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
      expect(won, `round ${i}`).toHaveLength(1);
      expect(lost[0], `round ${i}`).toBeInstanceOf(KeyConflictError);
      expect((lost[0] as KeyConflictError).existingJobId).toBe(won[0]!.id);
      const states = await Promise.all(pairs[i]!.map((job) => getJob(tdb.driver, job.id).then((row) => row.state)));
      expect(states.filter((state) => state === 'queued'), `round ${i}`).toHaveLength(1);
    }
  });
});
