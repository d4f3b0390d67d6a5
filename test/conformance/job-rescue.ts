/**
 * Conformance: `jobRescue` — expired leases only, retrying due now with a `lost` attempt, dead-lettering
 * on exhausted attempts or poison (`maxLost`), the limit, and fencing out the old lease.
 * @module
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { RescuedJob } from '../../src/driver/driver.js';
import type { JobRow } from '../../src/job/job-record.js';
import { createTestDatabase, type DriverKind, type TestDatabase } from '../support/test-databases.js';
import { at, claim, claimExactly, finishOf, getJob, insertJob, insertJobs, LEASE_MS, leaseOf, sortIds } from './helpers.js';

/** Declares the `jobRescue` conformance tests for one driver kind. */
export function exerciseJobRescue(kind: DriverKind): void {
  describe('jobRescue', () => {
    let tdb: TestDatabase;
    beforeEach(async () => {
      tdb = await createTestDatabase(kind);
    });
    afterEach(async () => {
      await tdb.cleanup();
    });

    /** Inserts one job and claims it at `now` with worker w1 and {@link LEASE_MS}. */
    async function running(overrides: Parameters<typeof insertJob>[1] = {}, now = at(0)): Promise<JobRow> {
      const job = await insertJob(tdb.driver, overrides, now);
      return claimExactly(tdb.driver, job.id, { queues: [job.queue], now, workerId: 'w1' });
    }

    it('leaves leases that have not expired yet (expiry is strictly before now)', async () => {
      const job = await running();
      expect(await tdb.driver.jobRescue({ maxLost: 5, limit: 10, now: at(0) })).toEqual([]);
      expect(await tdb.driver.jobRescue({ maxLost: 5, limit: 10, now: at(LEASE_MS - 1) })).toEqual([]);
      expect(await tdb.driver.jobRescue({ maxLost: 5, limit: 10, now: at(LEASE_MS) })).toEqual([]);
      expect(await getJob(tdb.driver, job.id)).toEqual(job);
      expect(await tdb.driver.jobAttemptList({ id: job.id })).toEqual([]);
    });

    it('moves an expired job to retrying due now, with a lost attempt and lostCount + 1', async () => {
      const job = await running({ name: 'sync', queue: 'q', maxAttempts: 3 });
      const now = at(LEASE_MS + 1);
      const rescued = await tdb.driver.jobRescue({ maxLost: 5, limit: 10, now });
      expect(rescued).toEqual([{ id: job.id, name: 'sync', queue: 'q', attempt: 1, leaseToken: 1, state: 'retrying' } satisfies RescuedJob]);
      const row = await getJob(tdb.driver, job.id);
      expect(row).toEqual({
        ...job,
        state: 'retrying',
        runAt: now,
        lostCount: 1,
        leaseWorker: null,
        leaseExpiresAt: null,
        finishedAt: null,
        updatedAt: now,
        lastError: row.lastError, // what a lost attempt stores as its error is not part of the contract
      } satisfies JobRow);
      const attempts = await tdb.driver.jobAttemptList({ id: job.id });
      expect(attempts).toEqual([
        { jobId: job.id, attempt: 1, leaseToken: 1, workerId: 'w1', startedAt: at(0), finishedAt: now, outcome: 'lost', error: attempts[0]!.error },
      ]);
      // The job's last error is the lost attempt's error, as with any other attempt ending.
      expect(row.lastError).toEqual(attempts[0]!.error);
      // Due at once, for anyone.
      const again = await claimExactly(tdb.driver, job.id, { queues: ['q'], workerId: 'w2', now });
      expect([again.attempt, again.leaseToken, again.lostCount]).toEqual([2, 2, 1]);
    });

    it('dead-letters an expired job whose attempts are used up (attempt >= maxAttempts)', async () => {
      const job = await running({ maxAttempts: 1 });
      const now = at(LEASE_MS + 1);
      const rescued = await tdb.driver.jobRescue({ maxLost: 5, limit: 10, now });
      expect(rescued.map((r) => [r.id, r.state, r.attempt, r.leaseToken])).toEqual([[job.id, 'dead', 1, 1]]);
      const row = await getJob(tdb.driver, job.id);
      expect([row.state, row.lostCount, row.leaseWorker, row.leaseExpiresAt]).toEqual(['dead', 1, null, null]);
      expect(row.finishedAt).toEqual(now);
      expect((await tdb.driver.jobAttemptList({ id: job.id })).map((a) => a.outcome)).toEqual(['lost']);
      expect(await claim(tdb.driver, { now: at(3_600_000) })).toEqual([]);
    });

    it('dead-letters on the last allowed attempt after earlier retries', async () => {
      const job = await insertJob(tdb.driver, { maxAttempts: 2 });
      const first = await claimExactly(tdb.driver, job.id, { now: at(0) });
      await tdb.driver.jobFinishMany({ items: [finishOf(first, { outcome: 'failed', state: 'retrying', retryDelayMs: 0, error: null })], now: at(1) });
      await claimExactly(tdb.driver, job.id, { now: at(1) });
      const rescued = await tdb.driver.jobRescue({ maxLost: 5, limit: 10, now: at(LEASE_MS + 2) });
      expect(rescued.map((r) => [r.state, r.attempt, r.leaseToken])).toEqual([['dead', 2, 2]]);
      expect((await getJob(tdb.driver, job.id)).state).toBe('dead');
    });

    it('dead-letters a poison job once its lost count reaches maxLost', async () => {
      const job = await insertJob(tdb.driver, { maxAttempts: 10 });
      await claimExactly(tdb.driver, job.id, { now: at(0) });
      const firstRescue = await tdb.driver.jobRescue({ maxLost: 2, limit: 10, now: at(LEASE_MS + 1) });
      expect(firstRescue.map((r) => r.state)).toEqual(['retrying']);
      expect((await getJob(tdb.driver, job.id)).lostCount).toBe(1);

      const t1 = LEASE_MS + 1;
      await claimExactly(tdb.driver, job.id, { now: at(t1) });
      const secondRescue = await tdb.driver.jobRescue({ maxLost: 2, limit: 10, now: at(t1 + LEASE_MS + 1) });
      expect(secondRescue.map((r) => [r.id, r.state, r.attempt, r.leaseToken])).toEqual([[job.id, 'dead', 2, 2]]);
      const row = await getJob(tdb.driver, job.id);
      expect([row.state, row.lostCount, row.attempt]).toEqual(['dead', 2, 2]);
      expect(row.finishedAt).toEqual(at(t1 + LEASE_MS + 1));
      expect((await tdb.driver.jobAttemptList({ id: job.id })).map((a) => [a.attempt, a.leaseToken, a.outcome])).toEqual([
        [1, 1, 'lost'],
        [2, 2, 'lost'],
      ]);
    });

    it('dead-letters at once with maxLost 1', async () => {
      const job = await running({ maxAttempts: 10 });
      const rescued = await tdb.driver.jobRescue({ maxLost: 1, limit: 10, now: at(LEASE_MS + 1) });
      expect(rescued.map((r) => [r.id, r.state])).toEqual([[job.id, 'dead']]);
    });

    it('rescues at most limit jobs per call', async () => {
      const jobs = await insertJobs(tdb.driver, [{}, {}, {}, {}, {}]);
      expect(await claim(tdb.driver, { limit: 5 })).toHaveLength(5);
      const now = at(LEASE_MS + 1);
      const first = await tdb.driver.jobRescue({ maxLost: 5, limit: 2, now });
      expect(first).toHaveLength(2);
      expect((await tdb.driver.jobList({ state: 'running' })).length).toBe(3);
      const second = await tdb.driver.jobRescue({ maxLost: 5, limit: 2, now });
      const third = await tdb.driver.jobRescue({ maxLost: 5, limit: 2, now });
      expect([second.length, third.length]).toEqual([2, 1]);
      expect(await tdb.driver.jobRescue({ maxLost: 5, limit: 2, now })).toEqual([]);
      const ids = [...first, ...second, ...third].map((r) => r.id);
      expect(sortIds(ids)).toEqual(sortIds(jobs.map((j) => j.id)));
      expect((await tdb.driver.jobList({ state: 'retrying' })).length).toBe(5);
    });

    it('rescues only the expired ones among running jobs', async () => {
      const [early, late] = await insertJobs(tdb.driver, [{ name: 'early' }, { name: 'late' }]);
      await claimExactly(tdb.driver, early!.id, { limit: 1, now: at(0) });
      await claimExactly(tdb.driver, late!.id, { limit: 1, now: at(20_000) });
      const rescued = await tdb.driver.jobRescue({ maxLost: 5, limit: 10, now: at(LEASE_MS + 1) });
      expect(rescued.map((r) => r.id)).toEqual([early!.id]);
      expect((await getJob(tdb.driver, late!.id)).state).toBe('running');
    });

    it('does not touch queued, retrying or finished jobs', async () => {
      const [queued, done] = await insertJobs(tdb.driver, [{ name: 'queued', runAt: at(10_000_000) }, { name: 'done' }]);
      const claimed = await claimExactly(tdb.driver, done!.id);
      await tdb.driver.jobFinishMany({ items: [finishOf(claimed)], now: at(1) });
      expect(await tdb.driver.jobRescue({ maxLost: 1, limit: 10, now: at(3_600_000) })).toEqual([]);
      expect((await getJob(tdb.driver, queued!.id)).state).toBe('queued');
      expect((await getJob(tdb.driver, done!.id)).state).toBe('completed');
    });

    it('fences out the rescued lease: its heartbeat and finish are stale', async () => {
      const job = await running({ maxAttempts: 3 });
      const now = at(LEASE_MS + 1);
      await tdb.driver.jobRescue({ maxLost: 5, limit: 10, now });
      const afterRescue = await getJob(tdb.driver, job.id);
      expect(await tdb.driver.jobHeartbeat({ leases: [leaseOf(job)], leaseMs: LEASE_MS, now })).toEqual({ applied: [], stale: [job.id] });
      expect(await tdb.driver.jobFinishMany({ items: [finishOf(job)], now })).toEqual({ applied: [], stale: [job.id] });
      expect(await getJob(tdb.driver, job.id)).toEqual(afterRescue);
      expect((await tdb.driver.jobAttemptList({ id: job.id })).map((a) => a.outcome)).toEqual(['lost']);
    });

    it('does not rescue a lease that a heartbeat renewed', async () => {
      const job = await running();
      await tdb.driver.jobHeartbeat({ leases: [leaseOf(job)], leaseMs: LEASE_MS, now: at(LEASE_MS - 1) });
      expect(await tdb.driver.jobRescue({ maxLost: 5, limit: 10, now: at(LEASE_MS + 1) })).toEqual([]);
      expect((await tdb.driver.jobRescue({ maxLost: 5, limit: 10, now: at(2 * LEASE_MS) })).map((r) => r.id)).toEqual([job.id]);
    });

    it('two rescuers at once rescue each expired job exactly once', async () => {
      await insertJobs(tdb.driver, Array.from({ length: 40 }, () => ({})));
      expect(await claim(tdb.driver, { limit: 40 })).toHaveLength(40);
      const other = tdb.newDriver();
      const now = at(LEASE_MS + 1);
      const rescueAll = async (driver: typeof other) => {
        const ids: string[] = [];
        for (;;) {
          const got = await driver.jobRescue({ maxLost: 5, limit: 3, now });
          if (got.length === 0) return ids;
          ids.push(...got.map((r) => r.id));
        }
      };
      const [a, b] = await Promise.all([rescueAll(tdb.driver), rescueAll(other)]);
      const ids = [...a, ...b];
      expect(ids).toHaveLength(40);
      expect(new Set(ids).size).toBe(40);
      const retrying = await tdb.driver.jobList({ state: 'retrying', limit: 100 });
      expect(retrying).toHaveLength(40);
      expect(retrying.every((j) => j.lostCount === 1)).toBe(true);
      for (const j of retrying.slice(0, 5)) expect(await tdb.driver.jobAttemptList({ id: j.id })).toHaveLength(1);
    });
  });
}
