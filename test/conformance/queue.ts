/**
 * Conformance: queues — `queueList` counts, pause flag and lag; `queueActivity`, the same without finished jobs;
 * `queuePause` / `queueResume`.
 * @module
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { JobState, QueueStats } from '../../src/job/job-record.js';
import { createTestDatabase, type DriverKind, type TestDatabase } from '../support/test-databases.js';
import { at, claim, claimExactly, errorInfo, finishOf, insertJob, insertJobs, rawQuery, tableRef } from './helpers.js';

function counts(partial: Partial<Record<JobState, number>> = {}): Record<JobState, number> {
  return { queued: 0, retrying: 0, running: 0, completed: 0, dead: 0, cancelled: 0, ...partial };
}

function byQueue(stats: QueueStats[]): QueueStats[] {
  return [...stats].sort((a, b) => (a.queue < b.queue ? -1 : a.queue > b.queue ? 1 : 0));
}

/** Declares the queue conformance tests for one driver kind. */
export function exerciseQueue(kind: DriverKind): void {
  describe('queues', () => {
    let tdb: TestDatabase;
    beforeEach(async () => {
      tdb = await createTestDatabase(kind);
    });
    afterEach(async () => {
      await tdb.cleanup();
    });

    it('lists nothing for an empty database', async () => {
      expect(await tdb.driver.queueList()).toEqual([]);
      expect(await tdb.driver.queueActivity()).toEqual([]);
    });

    it('counts jobs per state, with all six states present', async () => {
      // Six jobs in queue "alpha", one per state, plus a second queued one; one "other" job.
      const [completed, dead, retrying, running] = await insertJobs(tdb.driver, [
        { name: 'completed', queue: 'alpha' },
        { name: 'dead', queue: 'alpha' },
        { name: 'retrying', queue: 'alpha' },
        { name: 'running', queue: 'alpha' },
      ]);
      const claimed = await claim(tdb.driver, { queues: ['alpha'], limit: 4 });
      expect(claimed.map((j) => j.id)).toEqual([completed!.id, dead!.id, retrying!.id, running!.id]);
      await tdb.driver.jobFinishMany({
        items: [
          finishOf(claimed[0]!),
          finishOf(claimed[1]!, { outcome: 'failed', state: 'dead', error: errorInfo() }),
          finishOf(claimed[2]!, { outcome: 'failed', state: 'retrying', retryDelayMs: 60_000, error: errorInfo() }),
        ],
        now: at(1_000),
      });
      const cancelled = await insertJob(tdb.driver, { name: 'cancelled', queue: 'alpha' }, at(2_000));
      await tdb.driver.jobCancel({ id: cancelled.id, now: at(2_000) });
      await insertJobs(tdb.driver, [{ name: 'q1', queue: 'alpha' }, { name: 'q2', queue: 'alpha', delayMs: 3_600_000 }], at(3_000));
      await insertJob(tdb.driver, { queue: 'other' }, at(3_000));

      // Every job is due in 2040, after the database clock: no lag.
      expect(byQueue(await tdb.driver.queueList())).toEqual([
        { queue: 'alpha', paused: false, counts: counts({ queued: 2, retrying: 1, running: 1, completed: 1, dead: 1, cancelled: 1 }), lagMs: 0 },
        { queue: 'other', paused: false, counts: counts({ queued: 1 }), lagMs: 0 },
      ]);
    });

    it('lists a paused queue that has no jobs, with zero counts', async () => {
      await tdb.driver.queuePause({ queue: 'empty' });
      expect(await tdb.driver.queueList()).toEqual([{ queue: 'empty', paused: true, counts: counts(), lagMs: 0 }]);
    });

    it('reports the paused flag per queue', async () => {
      await insertJobs(tdb.driver, [{ queue: 'a' }, { queue: 'b' }]);
      await tdb.driver.queuePause({ queue: 'b' });
      expect(byQueue(await tdb.driver.queueList()).map((q) => [q.queue, q.paused, q.counts.queued])).toEqual([
        ['a', false, 1],
        ['b', true, 1],
      ]);
    });

    it('makes pause and resume idempotent', async () => {
      const job = await insertJob(tdb.driver, { queue: 'q' });
      await tdb.driver.queuePause({ queue: 'q' });
      await tdb.driver.queuePause({ queue: 'q' });
      expect(await tdb.driver.queueList()).toEqual([{ queue: 'q', paused: true, counts: counts({ queued: 1 }), lagMs: 0 }]);
      expect(await claim(tdb.driver, { queues: ['q'] })).toEqual([]);
      await tdb.driver.queueResume({ queue: 'q' });
      await tdb.driver.queueResume({ queue: 'q' });
      expect(await tdb.driver.queueList()).toEqual([{ queue: 'q', paused: false, counts: counts({ queued: 1 }), lagMs: 0 }]);
      await claimExactly(tdb.driver, job.id, { queues: ['q'] });
      // Resuming a queue that was never paused is not an error, and pausing only affects that queue.
      await tdb.driver.queueResume({ queue: 'never-paused' });
      await tdb.driver.queuePause({ queue: 'p' });
      await tdb.driver.queueResume({ queue: 'p' });
      const p = (await tdb.driver.queueList()).find((s) => s.queue === 'p');
      if (p) expect(p).toEqual({ queue: 'p', paused: false, counts: counts(), lagMs: 0 });
      const q = (await tdb.driver.queueList()).find((s) => s.queue === 'q');
      expect(q).toEqual({ queue: 'q', paused: false, counts: counts({ running: 1 }), lagMs: 0 });
    });

    it('reports lagMs as the age of the oldest due waiting job, by the database clock', async () => {
      // queueList takes no `now`: lag is measured against the database clock, so due times are set relative to it.
      const dbNow = (await tdb.driver.dbNow()).getTime();
      const ago = (ms: number) => new Date(dbNow - ms);
      await insertJob(tdb.driver, { queue: 'lagging', name: 'oldest' }, ago(60_000));
      await insertJob(tdb.driver, { queue: 'lagging', name: 'newer' }, ago(10_000));
      await insertJob(tdb.driver, { queue: 'lagging', name: 'future', runAt: new Date(dbNow + 3_600_000) }, ago(120_000));
      // A running job long overdue does not count: it is not waiting.
      const stuck = await insertJob(tdb.driver, { queue: 'busy' }, ago(600_000));
      await claimExactly(tdb.driver, stuck.id, { queues: ['busy'], now: ago(600_000) });
      // A retrying job that became due counts.
      const retry = await insertJob(tdb.driver, { queue: 'retry' }, ago(300_000));
      const claimed = await claimExactly(tdb.driver, retry.id, { queues: ['retry'], now: ago(300_000) });
      await tdb.driver.jobFinishMany({
        items: [finishOf(claimed, { outcome: 'failed', state: 'retrying', retryDelayMs: 100_000, error: errorInfo() })],
        now: ago(290_000),
      });
      // retrying is due at dbNow - 190_000

      const stats = byQueue(await tdb.driver.queueList());
      expect(stats.map((s) => s.queue)).toEqual(['busy', 'lagging', 'retry']);
      const [busy, lagging, retrying] = stats;
      const slack = 30_000; // time passing between dbNow() and queueList() on a slow machine
      expect(busy).toEqual({ queue: 'busy', paused: false, counts: counts({ running: 1 }), lagMs: 0 });
      expect(lagging!.counts).toEqual(counts({ queued: 3 }));
      expect(lagging!.lagMs).toBeGreaterThanOrEqual(60_000);
      expect(lagging!.lagMs).toBeLessThan(60_000 + slack);
      expect(retrying!.counts).toEqual(counts({ retrying: 1 }));
      expect(retrying!.lagMs).toBeGreaterThanOrEqual(190_000);
      expect(retrying!.lagMs).toBeLessThan(190_000 + slack);
      expect(Number.isInteger(lagging!.lagMs)).toBe(true);
    });

    it('reports lagMs of a paused queue too', async () => {
      const dbNow = (await tdb.driver.dbNow()).getTime();
      await insertJob(tdb.driver, { queue: 'held' }, new Date(dbNow - 45_000));
      await tdb.driver.queuePause({ queue: 'held' });
      const [held] = await tdb.driver.queueList();
      expect([held!.queue, held!.paused, held!.counts.queued]).toEqual(['held', true, 1]);
      expect(held!.lagMs).toBeGreaterThanOrEqual(45_000);
      expect(held!.lagMs).toBeLessThan(75_000);
    });

    it('queueActivity: queueList without finished jobs, and without queues that only have finished jobs', async () => {
      const dbNow = (await tdb.driver.dbNow()).getTime();
      const ago = (ms: number) => new Date(dbNow - ms);
      const [done, dead, retry] = await insertJobs(tdb.driver, [{ queue: 'alpha' }, { queue: 'alpha' }, { queue: 'alpha' }, { queue: 'alpha' }], ago(400_000));
      const claimed = await claim(tdb.driver, { queues: ['alpha'], limit: 4, now: ago(400_000) });
      expect(claimed.map((j) => j.id).slice(0, 3)).toEqual([done!.id, dead!.id, retry!.id]);
      await tdb.driver.jobFinishMany({
        items: [
          finishOf(claimed[0]!),
          finishOf(claimed[1]!, { outcome: 'failed', state: 'dead', error: errorInfo() }),
          finishOf(claimed[2]!, { outcome: 'failed', state: 'retrying', retryDelayMs: 100_000, error: errorInfo() }),
        ],
        now: ago(390_000),
      });
      await insertJobs(tdb.driver, [{ queue: 'alpha' }, { queue: 'alpha', runAt: new Date(dbNow + 3_600_000) }], ago(60_000));
      const cancelled = await insertJob(tdb.driver, { queue: 'alpha' }, ago(50_000));
      await tdb.driver.jobCancel({ id: cancelled.id, now: ago(50_000) });
      // Only finished jobs: listed by queueList, not by queueActivity.
      const [old] = await insertJobs(tdb.driver, [{ queue: 'finished-only' }], ago(30_000));
      await tdb.driver.jobFinishMany({ items: [finishOf(await claimExactly(tdb.driver, old!.id, { queues: ['finished-only'], now: ago(30_000) }))], now: ago(20_000) });
      await insertJob(tdb.driver, { queue: 'held' }, ago(45_000));
      await tdb.driver.queuePause({ queue: 'held' });
      await tdb.driver.queuePause({ queue: 'empty' });

      const list = await tdb.driver.queueList();
      const activity = await tdb.driver.queueActivity();
      expect(list.map((q) => q.queue)).toEqual(['alpha', 'empty', 'finished-only', 'held']);
      expect(activity.map((q) => q.queue)).toEqual(['alpha', 'empty', 'held']);
      for (const a of activity) {
        const full = list.find((q) => q.queue === a.queue)!;
        expect(a.paused, a.queue).toBe(full.paused);
        expect(a.counts, a.queue).toEqual({ queued: full.counts.queued, retrying: full.counts.retrying, running: full.counts.running });
        // Read a moment apart, both by the database clock.
        expect(Math.abs(a.lagMs - full.lagMs), a.queue).toBeLessThan(5_000);
      }
      const [alpha, empty, held] = activity;
      expect(alpha!.counts).toEqual({ queued: 2, retrying: 1, running: 1 });
      // The retrying job became due at -290 s, the older of the waiting ones.
      expect(alpha!.lagMs).toBeGreaterThanOrEqual(290_000);
      expect(alpha!.lagMs).toBeLessThan(320_000);
      expect(empty).toEqual({ queue: 'empty', paused: true, counts: { queued: 0, retrying: 0, running: 0 }, lagMs: 0 });
      expect([held!.paused, held!.counts.queued, held!.lagMs >= 45_000]).toEqual([true, 1, true]);
    });

    it('queueActivity reads the jobs not yet ended through their own indexes, never the finished ones', async () => {
      // Statistics that saw a table of finished jobs (as after months of retention) must not make it scan them.
      await insertJobs(tdb.driver, Array.from({ length: 2_000 }, () => ({ queue: 'q' })));
      const jobs = tableRef(tdb, 'jobs');
      await rawQuery(tdb, `UPDATE ${jobs} SET state = 'completed', finished_at = created_at`);
      await rawQuery(tdb, kind === 'postgres' ? `ANALYZE ${jobs}` : 'ANALYZE');
      await insertJobs(tdb.driver, [{ queue: 'q' }, { queue: 'q' }]);
      await claim(tdb.driver, { queues: ['q'], limit: 1 });
      expect(await tdb.driver.queueActivity()).toMatchObject([{ queue: 'q', counts: { queued: 1, retrying: 0, running: 1 } }]);
      const plan = await activityPlan(tdb);
      expect(plan).toContain('jobs_claim_idx');
      expect(plan).toContain('jobs_lease_idx');
      if (kind === 'postgres') expect(plan).not.toMatch(/Seq Scan on jobs/);
      else expect(plan).not.toMatch(/SCAN jobs(?! USING)/);
    });
  });
}

/** The plan of the driver's `queueActivity` statement on this database, as text. */
async function activityPlan(tdb: TestDatabase): Promise<string> {
  if (tdb.kind === 'postgres') {
    const { queueActivitySql } = await import('../../src/driver/postgres/postgres-job-admin-sql.js');
    return (await rawQuery(tdb, `EXPLAIN ${queueActivitySql(`"${tdb.schema}"`)}`)).map((r) => String(r['QUERY PLAN'])).join('\n');
  }
  const { QUEUE_ACTIVITY } = await import('../../src/driver/sqlite/sqlite-job-admin-sql.js');
  return (await rawQuery(tdb, `EXPLAIN QUERY PLAN ${QUEUE_ACTIVITY.replace('@now', 'NULL')}`)).map((r) => String(r.detail)).join('\n');
}
