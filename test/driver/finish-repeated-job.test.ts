/**
 * `jobFinishMany` with several endings of one job under different lease tokens (a stale attempt's and the live one's:
 * the job was handed back, or its lease expired, and it was claimed again), as a batch of the completer can hold.
 * One statement updates a row once, so the drivers used to send only the first item per job and report the rest
 * stale: with the stale ending first, the live one was never written and its job stayed `running` until its lease
 * expired. Each ending must be applied or found stale by its own lease, whatever its place in the batch.
 * Both drivers, through the conformance helpers; each test on a fresh database.
 * @module
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Driver, JobFinish } from '../../src/driver/driver.js';
import type { JobRow } from '../../src/job/job-record.js';
import { at, claim, countRows, errorInfo, finishOf, insertJob, insertJobs } from '../conformance/helpers.js';
import { createTestDatabase, DRIVER_KINDS, type TestDatabase } from '../support/test-databases.js';

/** How the endings of a test end their attempts: plain completions (the drivers' shorter statement) or failures. */
const ENDINGS = {
  plain: {} as Partial<JobFinish>,
  failed: { outcome: 'failed', state: 'dead', error: errorInfo('x') } as Partial<JobFinish>,
};

describe.each(DRIVER_KINDS)('jobFinishMany with endings of one job under several leases (%s)', (kind) => {
  let tdb: TestDatabase;
  let d: Driver;
  beforeEach(async () => {
    tdb = await createTestDatabase(kind);
    d = tdb.driver;
  });
  afterEach(async () => {
    await tdb.cleanup();
  });

  /** A job claimed `times` times (handed back in between): its leases, oldest first; the last one holds. */
  async function reclaimed(times: number): Promise<{ job: JobRow; tokens: number[] }> {
    const job = await insertJob(d);
    const tokens: number[] = [];
    for (let i = 0; i < times; i++) {
      const [row] = await claim(d, { now: at(i) });
      expect(row?.id).toBe(job.id);
      tokens.push(row!.leaseToken);
      if (i < times - 1) await d.jobRelease({ leases: [{ id: job.id, leaseToken: row!.leaseToken }], now: at(i) });
    }
    return { job, tokens };
  }

  describe.each(Object.entries(ENDINGS))('%s endings', (_, ending) => {
    const expectedState = ending.state ?? 'completed';

    it('applies the live ending placed after a stale one of the same job, and reports that one stale', async () => {
      const { job, tokens } = await reclaimed(2);
      const result = await d.jobFinishMany({ items: tokens.map((leaseToken) => finishOf({ id: job.id, leaseToken }, ending)), now: at(10) });
      expect(result).toEqual({ applied: [job.id], stale: [job.id] });
      expect(await d.jobGet({ id: job.id })).toMatchObject({ state: expectedState, leaseToken: 2, leaseWorker: null });
      // A failed attempt gets its row, the completing one is kept on the job row: either way the live lease's only.
      expect(await d.jobAttemptList({ id: job.id })).toEqual([expect.objectContaining({ leaseToken: 2, outcome: ending.outcome ?? 'completed' })]);
    });

    it('applies the live ending placed before a stale one, splitting a mixed batch in request order', async () => {
      const { job, tokens } = await reclaimed(3);
      const [other] = await insertJobs(d, [{ name: 'other' }]);
      const [otherLease] = await claim(d, { now: at(5) });
      expect(otherLease?.id).toBe(other!.id);
      const items = [
        finishOf({ id: job.id, leaseToken: tokens[2]! }, ending),
        finishOf({ id: job.id, leaseToken: tokens[0]! }, ending),
        finishOf(otherLease!, ending),
        finishOf({ id: job.id, leaseToken: tokens[1]! }, ending),
      ];
      const result = await d.jobFinishMany({ items, now: at(10) });
      expect(result).toEqual({ applied: [job.id, other!.id], stale: [job.id, job.id] });
      expect(await d.jobGet({ id: job.id })).toMatchObject({ state: expectedState, leaseToken: 3 });
      expect(await d.jobGet({ id: other!.id })).toMatchObject({ state: expectedState });
    });

    it('ends one lease once when it is sent twice: the repeat is stale and writes nothing', async () => {
      const { job, tokens } = await reclaimed(2);
      const live = finishOf({ id: job.id, leaseToken: tokens[1]! }, ending);
      const result = await d.jobFinishMany({ items: [finishOf({ id: job.id, leaseToken: tokens[0]! }, ending), live, live], now: at(10) });
      expect(result).toEqual({ applied: [job.id], stale: [job.id, job.id] });
      expect(await countRows(tdb, 'job_attempts', job.id)).toBe(ending.outcome === undefined ? 0 : 1);
    });

    it("does the same in an application's transaction", async () => {
      const { job, tokens } = await reclaimed(2);
      const result = await d.transaction((tx) =>
        d.jobFinishMany({ items: tokens.map((leaseToken) => finishOf({ id: job.id, leaseToken }, ending)), now: at(10), tx }),
      );
      expect(result).toEqual({ applied: [job.id], stale: [job.id] });
      expect(await d.jobGet({ id: job.id })).toMatchObject({ state: expectedState, leaseToken: 2 });
    });
  });
});
