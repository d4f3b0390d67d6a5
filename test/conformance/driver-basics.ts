/**
 * Conformance: the driver object itself — kind, capabilities, `dbNow`, `close`, and (PostgreSQL)
 * `listen` wake-ups that follow transaction commits.
 * @module
 */
import type pg from 'pg';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTestDatabase, makeInsert, type DriverKind, type TestDatabase } from '../support/test-databases.js';
import { at, openPgClient } from './helpers.js';

/** Declares the driver-object conformance tests for one driver kind. */
export function exerciseDriverBasics(kind: DriverKind): void {
  describe('driver basics', () => {
    let tdb: TestDatabase;
    beforeEach(async () => {
      tdb = await createTestDatabase(kind);
    });
    afterEach(async () => {
      await tdb.cleanup();
    });

    it('names its kind and capabilities', () => {
      expect(tdb.driver.kind).toBe(kind);
      expect(tdb.driver.capabilities.listenNotify).toBe(kind === 'postgres');
      expect(tdb.driver.capabilities.crossProcessWakeup).toBe(true);
      expect(tdb.driver.capabilities.multiHost).toBe(kind === 'postgres');
      expect(typeof tdb.driver.capabilities.transactionHandle).toBe('string');
      expect(tdb.driver.capabilities.transactionHandle.length).toBeGreaterThan(0);
      expect(typeof tdb.driver.listen).toBe('function');
    });

    if (kind === 'sqlite') {
      it('listen: wakes when another connection commits to the file, not for its own commits', async () => {
        const other = tdb.newDriver();
        const wakes: (string | undefined)[] = [];
        let woken: () => void = () => {};
        const unlisten = await tdb.driver.listen!({ onWake: (q) => (wakes.push(q), woken()), onReconnect: () => undefined, onError: (e) => { throw e; } });
        try {
          // Its own insert changes nothing it watches: give the watcher several intervals to (not) fire.
          await tdb.driver.jobInsertMany({ jobs: [makeInsert()], now: at(0) });
          // (A negative can only be shown by waiting: 10 watch intervals of 5 ms.)
          await new Promise((resolve) => setTimeout(resolve, 50));
          expect(wakes).toEqual([]);
          const wake = new Promise<void>((resolve) => (woken = resolve));
          await other.jobInsertMany({ jobs: [makeInsert({ queue: 'elsewhere' })], now: at(0) });
          await wake;
          expect(wakes[0]).toBeUndefined();
        } finally {
          await unlisten();
        }
      });
    }

    it('reads the database clock with dbNow', async () => {
      const before = Date.now();
      const now = await tdb.driver.dbNow();
      const after = Date.now();
      expect(now).toBeInstanceOf(Date);
      // Same machine: within a few seconds of the process clock.
      expect(now.getTime()).toBeGreaterThan(before - 5_000);
      expect(now.getTime()).toBeLessThan(after + 5_000);
    });

    it('closes safely twice', async () => {
      const driver = tdb.newDriver();
      await driver.dbNow();
      await driver.close();
      await driver.close();
    });

    describe('with now = null (the database clock)', () => {
      it('inserts, claims, heartbeats and finishes on database time, one time per write', async () => {
        const t0 = (await tdb.driver.dbNow()).getTime();
        const [inserted] = await tdb.driver.jobInsertMany({ jobs: [makeInsert()], now: null });
        const job = inserted!.job;
        expect(job.createdAt.getTime()).toBeGreaterThanOrEqual(t0);
        expect(job.runAt).toEqual(job.createdAt);

        const [claimed] = await tdb.driver.jobClaim({ queues: ['default'], limit: 1, workerId: 'w', leaseMs: 30_000, now: null });
        expect(claimed!.id).toBe(job.id);
        const started = claimed!.startedAt!.getTime();
        expect(started).toBeGreaterThanOrEqual(job.createdAt.getTime());
        expect(claimed!.leaseExpiresAt!.getTime()).toBe(started + 30_000);

        expect(await tdb.driver.jobHeartbeat({ leases: [{ id: job.id, leaseToken: 1 }], leaseMs: 60_000, now: null })).toEqual({ applied: [job.id], stale: [] });
        const beat = await tdb.driver.jobGet({ id: job.id });
        expect(beat!.leaseExpiresAt!.getTime()).toBeGreaterThanOrEqual(started + 60_000);

        const fin = await tdb.driver.jobFinishMany({
          items: [{ id: job.id, leaseToken: 1, outcome: 'failed', state: 'retrying', retryDelayMs: 5_000, error: null }],
          now: null,
        });
        expect(fin).toEqual({ applied: [job.id], stale: [] });
        const [attempt] = await tdb.driver.jobAttemptList({ id: job.id });
        const row = await tdb.driver.jobGet({ id: job.id });
        expect(attempt!.finishedAt.getTime()).toBeGreaterThanOrEqual(started);
        // The attempt row and the job update of one finish share one time.
        expect(row!.runAt.getTime()).toBe(attempt!.finishedAt.getTime() + 5_000);
        expect(row!.updatedAt).toEqual(attempt!.finishedAt);
        const t1 = (await tdb.driver.dbNow()).getTime();
        expect(attempt!.finishedAt.getTime()).toBeLessThanOrEqual(t1);
      });

      it('rescues leases that expired by the database clock', async () => {
        const dbNow = (await tdb.driver.dbNow()).getTime();
        const past = new Date(dbNow - 60_000);
        const [inserted] = await tdb.driver.jobInsertMany({ jobs: [makeInsert()], now: past });
        await tdb.driver.jobClaim({ queues: ['default'], limit: 1, workerId: 'w', leaseMs: 30_000, now: past });
        const rescued = await tdb.driver.jobRescue({ maxLost: 5, limit: 10, now: null });
        expect(rescued.map((r) => [r.id, r.state])).toEqual([[inserted!.job.id, 'retrying']]);
        const row = await tdb.driver.jobGet({ id: inserted!.job.id });
        expect(row!.runAt.getTime()).toBeGreaterThanOrEqual(dbNow);
        // A lease that has not expired by the database clock stays.
        const [second] = await tdb.driver.jobInsertMany({ jobs: [makeInsert({ queue: 'other' })], now: null });
        await tdb.driver.jobClaim({ queues: ['other'], limit: 1, workerId: 'w', leaseMs: 3_600_000, now: null });
        expect(await tdb.driver.jobRescue({ maxLost: 5, limit: 10, now: null })).toEqual([]);
        expect((await tdb.driver.jobGet({ id: second!.job.id }))!.state).toBe('running');
      });

      it('cancels and retries on database time', async () => {
        const [inserted] = await tdb.driver.jobInsertMany({ jobs: [makeInsert()], now: null });
        const cancelled = await tdb.driver.jobCancel({ id: inserted!.job.id, now: null });
        expect(cancelled.finishedAt!.getTime()).toBeGreaterThanOrEqual(inserted!.job.createdAt.getTime());
        expect(cancelled.updatedAt).toEqual(cancelled.finishedAt);
      });
    });

    if (kind === 'postgres') {
      describe('listen', () => {
        /** Collects wake-ups; `until(queue)` resolves once that queue's wake-up arrived. */
        function collector() {
          const wakes: string[] = [];
          const waiters: { queue: string; resolve: () => void }[] = [];
          return {
            wakes,
            onWake(queue: string) {
              wakes.push(queue);
              for (const w of waiters.filter((x) => x.queue === queue)) w.resolve();
            },
            until(queue: string): Promise<void> {
              if (wakes.includes(queue)) return Promise.resolve();
              return new Promise((resolve) => waiters.push({ queue, resolve }));
            },
          };
        }

        it('wakes once per distinct queue of a committed insert, in commit order', async () => {
          const c = collector();
          const errors: unknown[] = [];
          const unlisten = await tdb.driver.listen!({ onWake: (q) => c.onWake(q ?? ''), onReconnect: () => undefined, onError: (e) => errors.push(e) });
          try {
            await tdb.driver.jobInsertMany({
              jobs: [makeInsert({ queue: 'a' }), makeInsert({ queue: 'a' }), makeInsert({ queue: 'b' }), makeInsert({ queue: 'a' })],
              now: at(0),
            });
            await tdb.driver.jobInsertMany({ jobs: [makeInsert({ queue: 'marker' })], now: at(0) });
            await c.until('marker');
            expect([...c.wakes.slice(0, -1)].sort()).toEqual(['a', 'b']);
            expect(c.wakes.at(-1)).toBe('marker');
            expect(errors).toEqual([]);
          } finally {
            await unlisten();
          }
        });

        it('does not wake for an insert whose transaction rolled back', async () => {
          const c = collector();
          const unlisten = await tdb.driver.listen!({ onWake: (q) => c.onWake(q ?? ''), onReconnect: () => undefined, onError: () => undefined });
          const client: pg.Client = await openPgClient();
          try {
            await client.query('BEGIN');
            await tdb.driver.jobInsertMany({ jobs: [makeInsert({ queue: 'rolled-back' })], now: at(0), tx: client });
            await client.query('ROLLBACK');
            await client.query('BEGIN');
            await tdb.driver.jobInsertMany({ jobs: [makeInsert({ queue: 'committed' })], now: at(0), tx: client });
            await client.query('COMMIT');
            await tdb.driver.jobInsertMany({ jobs: [makeInsert({ queue: 'marker' })], now: at(0) });
            await c.until('marker');
            expect(c.wakes).toEqual(['committed', 'marker']);
          } finally {
            await client.end();
            await unlisten();
          }
        });

        it('notifies on the channel "<schema>_jobs" with the queue as payload', async () => {
          const client = await openPgClient();
          try {
            const got = new Promise<pg.Notification>((resolve) => client.on('notification', resolve));
            await client.query(`LISTEN "${tdb.schema}_jobs"`);
            await tdb.driver.jobInsertMany({ jobs: [makeInsert({ queue: 'emails' })], now: at(0) });
            const n = await got;
            expect([n.channel, n.payload]).toEqual([`${tdb.schema}_jobs`, 'emails']);
          } finally {
            await client.end();
          }
        });

        it('stops waking after unsubscribe', async () => {
          const c = collector();
          const unlisten = await tdb.driver.listen!({ onWake: (q) => c.onWake(q ?? ''), onReconnect: () => undefined, onError: () => undefined });
          await tdb.driver.jobInsertMany({ jobs: [makeInsert({ queue: 'first' })], now: at(0) });
          await c.until('first');
          await unlisten();
          // A second listener proves the later notification was sent and delivered.
          const d = collector();
          const unlisten2 = await tdb.driver.listen!({ onWake: (q) => d.onWake(q ?? ''), onReconnect: () => undefined, onError: () => undefined });
          try {
            await tdb.driver.jobInsertMany({ jobs: [makeInsert({ queue: 'second' })], now: at(0) });
            await d.until('second');
            expect(c.wakes).toEqual(['first']);
          } finally {
            await unlisten2();
          }
        });
      });
    }
  });
}
