/**
 * Conformance: writes racing each other from independent driver instances (like separate processes). Each
 * test checks the invariant that must hold whichever write wins: exactly one outcome, one attempt row, no
 * duplicate active key.
 * @module
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { JobStateError } from '../../src/errors.js';
import type { JobRow } from '../../src/job/job-record.js';
import { createTestDatabase, makeInsert, type DriverKind, type TestDatabase } from '../support/test-databases.js';
import { at, claim, finishOf, getJob, insertJobs, LEASE_MS } from './helpers.js';

/** Declares the race conformance tests for one driver kind. */
export function exerciseJobRaces(kind: DriverKind): void {
  describe('races between driver instances', () => {
    let tdb: TestDatabase;
    beforeEach(async () => {
      tdb = await createTestDatabase(kind);
    });
    afterEach(async () => {
      await tdb.cleanup();
    });

    it('inserting one key from 4 instances at once creates exactly one job', async () => {
      const drivers = [tdb.newDriver(), tdb.newDriver(), tdb.newDriver(), tdb.newDriver()];
      const results = (
        await Promise.all(
          drivers.flatMap((driver) =>
            Array.from({ length: 10 }, () => driver.jobInsertMany({ jobs: [makeInsert({ key: 'same' })], now: at(0) })),
          ),
        )
      ).flat();
      expect(results).toHaveLength(40);
      expect(results.filter((r) => !r.duplicate)).toHaveLength(1);
      expect(new Set(results.map((r) => r.job.id)).size).toBe(1);
      expect(await tdb.driver.jobList({})).toHaveLength(1);
    });

    it('finish and cancel of the same running jobs: exactly one wins each', async () => {
      const n = 20;
      await insertJobs(tdb.driver, Array.from({ length: n }, () => ({})));
      const running = await claim(tdb.driver, { limit: n });
      expect(running).toHaveLength(n);
      const finisher = tdb.newDriver();
      const canceller = tdb.newDriver();
      const outcomes = await Promise.all(
        running.map(async (job) => {
          const [fin, cancel] = await Promise.allSettled([
            finisher.jobFinishMany({ items: [finishOf(job)], now: at(1_000) }),
            canceller.jobCancel({ id: job.id, now: at(1_000) }),
          ]);
          return { job, fin, cancel };
        }),
      );
      for (const { job, fin, cancel } of outcomes) {
        expect(fin.status).toBe('fulfilled');
        const finished = fin.status === 'fulfilled' ? fin.value : { applied: [], stale: [] };
        const row = await getJob(tdb.driver, job.id);
        const attempts = await tdb.driver.jobAttemptList({ id: job.id });
        if (finished.applied.length === 1) {
          expect(cancel.status).toBe('rejected');
          if (cancel.status === 'rejected') expect(cancel.reason).toBeInstanceOf(JobStateError);
          expect(row.state).toBe('completed');
          expect(attempts.map((a) => a.outcome)).toEqual(['completed']);
        } else {
          expect(finished).toEqual({ applied: [], stale: [job.id] });
          expect(cancel.status).toBe('fulfilled');
          expect(row.state).toBe('cancelled');
          expect(attempts.map((a) => a.outcome)).toEqual(['cancelled']);
        }
      }
    });

    it('a late finish and a rescue of the same expired leases: exactly one wins each', async () => {
      const n = 20;
      await insertJobs(tdb.driver, Array.from({ length: n }, () => ({ maxAttempts: 5 })));
      const running = await claim(tdb.driver, { limit: n });
      expect(running).toHaveLength(n);
      const finisher = tdb.newDriver();
      const rescuer = tdb.newDriver();
      const now = at(LEASE_MS + 1);
      const rescuing = (async () => {
        const ids: string[] = [];
        for (;;) {
          const got = await rescuer.jobRescue({ maxLost: 5, limit: 3, now });
          if (got.length === 0) return ids;
          ids.push(...got.map((r) => r.id));
        }
      })();
      const finishes = await Promise.all(running.map((job) => finisher.jobFinishMany({ items: [finishOf(job)], now })));
      const rescued = new Set(await rescuing);
      for (const [i, job] of running.entries()) {
        const row = await getJob(tdb.driver, job.id);
        const attempts = await tdb.driver.jobAttemptList({ id: job.id });
        if (rescued.has(job.id)) {
          expect(finishes[i]).toEqual({ applied: [], stale: [job.id] });
          expect([row.state, row.lostCount]).toEqual(['retrying', 1]);
          expect(attempts.map((a) => a.outcome)).toEqual(['lost']);
        } else {
          expect(finishes[i]).toEqual({ applied: [job.id], stale: [] });
          expect([row.state, row.lostCount]).toEqual(['completed', 0]);
          expect(attempts.map((a) => a.outcome)).toEqual(['completed']);
        }
      }
    });

    it('claims racing cancels never leave a cancelled job running', async () => {
      const n = 30;
      const jobs = await insertJobs(tdb.driver, Array.from({ length: n }, () => ({})));
      const claimer = tdb.newDriver();
      const canceller = tdb.newDriver();
      const [claimed, cancels] = await Promise.all([
        (async () => {
          const got: JobRow[] = [];
          for (;;) {
            const batch = await claim(claimer, { limit: 2 });
            if (batch.length === 0) return got;
            got.push(...batch);
          }
        })(),
        Promise.allSettled(jobs.map((job) => canceller.jobCancel({ id: job.id, now: at(0) }))),
      ]);
      expect(cancels.every((c) => c.status === 'fulfilled')).toBe(true);
      const claimedIds = new Set(claimed.map((j) => j.id));
      for (const job of jobs) {
        const row = await getJob(tdb.driver, job.id);
        expect(row.state).toBe('cancelled');
        const attempts = await tdb.driver.jobAttemptList({ id: job.id });
        // Claimed before the cancel: its attempt was cancelled. Never claimed: no attempt.
        expect(attempts.map((a) => a.outcome)).toEqual(claimedIds.has(job.id) ? ['cancelled'] : []);
      }
      expect(await claim(tdb.driver, { now: at(3_600_000) })).toEqual([]);
    });
  });
}
