/**
 * Conformance (PostgreSQL): `jobHeartbeat` beside a job row that another transaction holds locked, as a step or
 * checkpoint written inside an attempt's open transaction (`ctx.transaction`, a transactional batch or step) does
 * until that transaction ends. The heartbeat renews the other leases without waiting, and reports the locked lease
 * neither renewed nor stale (stale aborts its attempt); the rescue skips the locked row too; the first beat after the
 * commit renews it; a lock held by a short write of the attempt itself (a checkpoint) is waited for, so a job that
 * writes back to back is renewed every beat. SQLite has no row locks: an open write transaction holds the whole file, and every write, the
 * heartbeat and the rescue alike, waits for its commit (docs/guarantees.md, "SQLite"). Declared from `job-lease.ts`,
 * inside its database lifecycle.
 * @module
 */
import { describe, expect, it } from 'vitest';
import { within } from '../runtime/helpers.js';
import type { DriverKind, TestDatabase } from '../support/test-databases.js';
import { at, claim, getJob, insertJobs, LEASE_MS, leaseOf } from './helpers.js';

/** Declares the locked-row heartbeat tests; PostgreSQL only (see the module comment). `db()` is the current test's database. */
export function exerciseHeartbeatBesideLockedRow(kind: DriverKind, db: () => TestDatabase): void {
  if (kind !== 'postgres') return;
  describe('jobHeartbeat beside a row locked by an open transaction', () => {
    it('renews the other leases at once; the locked held one is neither renewed nor stale, not rescued, and renewed after the commit', async () => {
      const { driver } = db();
      await insertJobs(driver, [{ name: 'locked' }, { name: 'free' }, { name: 'lost' }]);
      const [locked, free, lost] = await claim(driver, { limit: 3 });
      // A lease this worker no longer holds (another token), on a row that is locked too: still stale.
      const lostLease = { id: lost!.id, leaseToken: lost!.leaseToken + 1 };
      const leases = [leaseOf(locked!), leaseOf(free!), lostLease];
      await driver.transaction(async (tx) => {
        // The step's guard locks its job row FOR SHARE until this transaction ends.
        for (const job of [locked!, lost!]) {
          expect(await driver.jobStepRecord({ ...leaseOf(job), name: 'screen', resultJson: '1', attempt: 1, now: at(1_000), tx })).toBe('applied');
        }
        // The worker's heartbeat runs on another connection while the transaction is open.
        const beat = await within(driver.jobHeartbeat({ leases, leaseMs: LEASE_MS, now: at(10_000) }), 'the heartbeat not to wait on the locked rows');
        expect(beat).toEqual({ applied: [free!.id], stale: [lost!.id] });
        expect((await getJob(driver, free!.id)).leaseExpiresAt).toEqual(at(10_000 + LEASE_MS));
        expect((await getJob(driver, locked!.id)).leaseExpiresAt).toEqual(at(LEASE_MS));
        // Past the locked job's unrenewed lease: the rescue skips locked rows, so it cannot take it meanwhile.
        expect(await within(driver.jobRescue({ maxLost: 5, limit: 10, now: at(LEASE_MS + 1) }), 'the rescue not to wait on the locked rows')).toEqual([]);
      });
      expect((await getJob(driver, locked!.id)).state).toBe('running');
      const after = await driver.jobHeartbeat({ leases, leaseMs: LEASE_MS, now: at(LEASE_MS + 2) });
      expect(after).toEqual({ applied: [locked!.id, free!.id], stale: [lost!.id] });
      expect((await getJob(driver, locked!.id)).leaseExpiresAt).toEqual(at(2 * LEASE_MS + 2));
    });

    it('waits a moment for a short write of the attempt itself: a job checkpointing back to back is renewed every beat', async () => {
      const { driver } = db();
      await insertJobs(driver, [{ name: 'iterating' }]);
      const [job] = await claim(driver, { limit: 1 });
      const lease = leaseOf(job!);
      // Two checkpoint writers back to back (autocommit, each holding the row for a moment): without the wait, most
      // beats found the row locked and skipped it, and a rescue between two writes took the healthy job.
      let writing = true;
      let writes = 0;
      const writer = async (): Promise<void> => {
        while (writing) {
          expect(await driver.jobCheckpoint({ ...lease, checkpointJson: JSON.stringify({ n: writes }), progressDone: writes++, progressTotal: null, now: at(0) })).toBe('applied');
        }
      };
      const writers = [writer(), writer()];
      const beats: string[] = [];
      try {
        for (let i = 1; i <= 100; i++) {
          const beat = await driver.jobHeartbeat({ leases: [lease], leaseMs: LEASE_MS, now: at(i * 1_000) });
          beats.push(beat.applied.length === 1 ? 'renewed' : beat.stale.length === 1 ? 'stale' : 'skipped');
          // Another worker's rescue right after each beat.
          expect(await driver.jobRescue({ maxLost: 5, limit: 10, now: at(i * 1_000 + 1) })).toEqual([]);
        }
      } finally {
        writing = false;
        await Promise.all(writers);
      }
      expect(writes).toBeGreaterThan(100);
      expect(beats.filter((b) => b !== 'renewed')).toEqual([]);
    });
  });
}
