/**
 * Conformance: `Driver.transaction(fn)` and the `tx` parameter of the job writes (`jobFinishMany`,
 * `jobStepRecord`, `jobCheckpoint`, `jobInsertMany`, `lockCheck`): commit makes everything visible at once, a
 * throw rolls everything back, guarded writes stay guarded inside, and job endings commit or roll back with the
 * application's own table writes. Declared from `job-steps-checkpoint.ts`, inside its database lifecycle.
 * @module
 */
import { describe, expect, it } from 'vitest';
import { DatabaseConfigError, InvalidTransactionError } from '../../src/errors.js';
import type { JobRow } from '../../src/job/job-record.js';
import { makeInsert, type DriverKind, type TestDatabase } from '../support/test-databases.js';
import { at, claimExactly, expectRejects, finishOf, getJob, insertJob, LEASE_MS, leaseOf, rawQuery, tableRef, txQuery } from './helpers.js';

/** Declares the application-transaction conformance tests; `db()` is the current test's database. */
export function exerciseJobTransaction(kind: DriverKind, db: () => TestDatabase): void {
  describe('transaction(fn) and tx', () => {
    async function running(overrides: Parameters<typeof insertJob>[1] = {}): Promise<JobRow> {
      const job = await insertJob(db().driver, overrides);
      return claimExactly(db().driver, job.id);
    }

    /** Creates the application's own table, committed. */
    async function createAppTable(): Promise<string> {
      const table = tableRef(db(), 'app_orders');
      await db().driver.transaction((tx) => txQuery(tx, `CREATE TABLE ${table} (id integer PRIMARY KEY, note text NOT NULL)`));
      return table;
    }

    async function appRows(table: string): Promise<unknown[]> {
      return (await rawQuery(db(), `SELECT id, note FROM ${table} ORDER BY id`)).map((r) => [Number(r.id), r.note]);
    }

    it('commits: writes made through the handle are invisible until fn resolves, then all visible', async () => {
      const { driver } = db();
      const job = await running();
      const table = tableRef(db(), 'app_orders');
      let insertedId = '';
      const value = await driver.transaction(async (tx) => {
        await txQuery(tx, `CREATE TABLE ${table} (id integer PRIMARY KEY, note text NOT NULL)`);
        await txQuery(tx, `INSERT INTO ${table} (id, note) VALUES (?, ?)`, [1, 'paid']);
        const [inserted] = await driver.jobInsertMany({ jobs: [makeInsert({ name: 'receipt', key: 'order-1' })], now: at(1_000), tx });
        insertedId = inserted!.job.id;
        expect(await driver.jobStepRecord({ ...leaseOf(job), name: 'charge', resultJson: '{"ok":true}', attempt: 1, now: at(1_000), tx })).toBe('applied');
        expect(await driver.jobCheckpoint({ ...leaseOf(job), checkpointJson: '{"at":1}', progressDone: 1, progressTotal: 2, now: at(1_000), tx })).toBe('applied');
        expect(await driver.jobFinishMany({ items: [finishOf(job)], now: at(2_000), tx })).toEqual({ applied: [job.id], stale: [] });
        // Other connections still see the state before the transaction.
        expect(await driver.jobGet({ id: insertedId })).toBeNull();
        expect((await getJob(driver, job.id)).state).toBe('running');
        expect(await driver.jobStepList({ id: job.id })).toEqual([]);
        return 'done';
      });
      expect(value).toBe('done');
      expect(await appRows(table)).toEqual([[1, 'paid']]);
      expect((await getJob(driver, insertedId)).name).toBe('receipt');
      const finished = await getJob(driver, job.id);
      expect([finished.state, finished.checkpoint, finished.progress]).toEqual(['completed', { at: 1 }, { done: 1, total: 2 }]);
      expect((await driver.jobStepList({ id: job.id })).map((s) => s.result)).toEqual([{ ok: true }]);
      expect((await driver.jobAttemptList({ id: job.id })).map((a) => a.outcome)).toEqual(['completed']);
    });

    it('rolls back everything when fn throws, and rethrows its error', async () => {
      const { driver } = db();
      const job = await running();
      const table = await createAppTable();
      const boom = new Error('boom');
      const caught = await driver
        .transaction(async (tx) => {
          await txQuery(tx, `INSERT INTO ${table} (id, note) VALUES (?, ?)`, [1, 'paid']);
          await driver.jobInsertMany({ jobs: [makeInsert({ name: 'receipt', key: 'order-1' })], now: at(1_000), tx });
          await driver.jobStepRecord({ ...leaseOf(job), name: 'charge', resultJson: '1', attempt: 1, now: at(1_000), tx });
          await driver.jobCheckpoint({ ...leaseOf(job), checkpointJson: '{"at":1}', progressDone: 1, progressTotal: null, now: at(1_000), tx });
          await driver.jobFinishMany({ items: [finishOf(job)], now: at(2_000), tx });
          throw boom;
        })
        .catch((error: unknown) => error);
      expect(caught).toBe(boom);
      expect(await appRows(table)).toEqual([]);
      expect((await driver.jobList({})).map((j) => j.id)).toEqual([job.id]);
      expect(await getJob(driver, job.id)).toEqual(job);
      expect(await driver.jobStepList({ id: job.id })).toEqual([]);
      expect(await driver.jobAttemptList({ id: job.id })).toEqual([]);
      // The key was not taken either.
      const [fresh] = await driver.jobInsertMany({ jobs: [makeInsert({ key: 'order-1' })], now: at(3_000) });
      expect(fresh!.duplicate).toBe(false);
      // The lease still holds: the worker carries on.
      expect(await driver.jobHeartbeat({ leases: [leaseOf(job)], leaseMs: LEASE_MS, now: at(3_000) })).toEqual({ applied: [job.id], stale: [] });
    });

    it('returns stale for guarded writes of a lost lease inside the transaction, and commits the rest', async () => {
      const { driver } = db();
      const job = await running();
      const wrong = { id: job.id, leaseToken: job.leaseToken + 1 };
      await driver.transaction(async (tx) => {
        expect(await driver.jobStepRecord({ ...wrong, name: 's', resultJson: '1', attempt: 1, now: at(1_000), tx })).toBe('stale');
        expect(await driver.jobCheckpoint({ ...wrong, checkpointJson: '1', progressDone: 1, progressTotal: null, now: at(1_000), tx })).toBe('stale');
        expect(await driver.jobFinishMany({ items: [finishOf(wrong)], now: at(1_000), tx })).toEqual({ applied: [], stale: [job.id] });
        expect(await driver.jobStepRecord({ ...leaseOf(job), name: 's', resultJson: '2', attempt: 1, now: at(1_000), tx })).toBe('applied');
      });
      expect(await getJob(driver, job.id)).toEqual(job);
      expect((await driver.jobStepList({ id: job.id })).map((s) => s.result)).toEqual([2]);
    });

    it('commits a job ending with the application\'s own table write, and rolls it back with it', async () => {
      const { driver } = db();
      const table = await createAppTable();
      const kept = await running({ name: 'kept' });
      await driver.transaction(async (tx) => {
        await txQuery(tx, `INSERT INTO ${table} (id, note) VALUES (?, ?)`, [1, 'shipped']);
        await driver.jobFinishMany({ items: [finishOf(kept)], now: at(1_000), tx });
      });
      expect(await appRows(table)).toEqual([[1, 'shipped']]);
      expect((await getJob(driver, kept.id)).state).toBe('completed');

      const undone = await running({ name: 'undone' });
      await expect(
        driver.transaction(async (tx) => {
          await txQuery(tx, `INSERT INTO ${table} (id, note) VALUES (?, ?)`, [2, 'shipped']);
          await driver.jobFinishMany({ items: [finishOf(undone)], now: at(1_000), tx });
          // The application's own constraint fails after the ending was written: both go.
          await txQuery(tx, `INSERT INTO ${table} (id, note) VALUES (?, ?)`, [1, 'duplicate id']);
        }),
      ).rejects.toThrow();
      expect(await appRows(table)).toEqual([[1, 'shipped']]);
      expect(await getJob(driver, undone.id)).toEqual(undone);
    });

    it('accepts its handle as lockCheck tx, and rejects a handle of the wrong kind', async () => {
      const { driver } = db();
      const grant = await driver.lockAcquire({ name: 'nightly', holder: 'w1', ttlMs: 60_000, now: at(0) });
      const checked = await driver.transaction((tx) => driver.lockCheck({ name: 'nightly', token: grant!.token, now: at(1), tx }));
      expect(checked).toEqual({ held: true, currentToken: grant!.token });
      const job = await running();
      for (const tx of [{}, 'tx']) {
        await expectRejects(driver.jobFinishMany({ items: [finishOf(job)], now: at(1), tx }), InvalidTransactionError);
        await expectRejects(driver.jobStepRecord({ ...leaseOf(job), name: 's', resultJson: null, attempt: 1, now: at(1), tx }), InvalidTransactionError);
        await expectRejects(driver.jobCheckpoint({ ...leaseOf(job), checkpointJson: '1', progressDone: 0, progressTotal: null, now: at(1), tx }), InvalidTransactionError);
      }
      expect(await getJob(driver, job.id)).toEqual(job);
    });

    if (kind === 'sqlite') {
      describe('SQLite: its own connection, one transaction at a time', () => {
        it('runs callers one after another, never interleaved', async () => {
          const { driver } = db();
          const events: string[] = [];
          const tick = () => new Promise((resolve) => setTimeout(resolve, 5));
          await Promise.all(
            ['a', 'b', 'c'].map((name) =>
              driver.transaction(async () => {
                events.push(`${name}:start`);
                await tick();
                events.push(`${name}:end`);
              }),
            ),
          );
          expect(events).toEqual(['a:start', 'a:end', 'b:start', 'b:end', 'c:start', 'c:end']);
        });

        it('opens its connection with foreign keys on and WAL', async () => {
          const pragmas = await db().driver.transaction(async (tx) => [
            ...(await txQuery(tx, 'PRAGMA foreign_keys')),
            ...(await txQuery(tx, 'PRAGMA journal_mode')),
          ]);
          expect(pragmas).toEqual([{ foreign_keys: 1 }, { journal_mode: 'wal' }]);
        });

        it('lets the main connection\'s writes wait for the transaction (async busy retry), then go through', async () => {
          const { driver } = db();
          const other = db().newDriver();
          let outsideDone = false;
          let otherDone = false;
          let pending: Promise<unknown> = Promise.resolve();
          await driver.transaction(async (tx) => {
            await driver.jobInsertMany({ jobs: [makeInsert({ name: 'inside' })], now: at(0), tx });
            pending = Promise.all([
              driver.jobInsertMany({ jobs: [makeInsert({ name: 'outside' })], now: at(0) }).then(() => (outsideDone = true)),
              other.jobInsertMany({ jobs: [makeInsert({ name: 'other-instance' })], now: at(0) }).then(() => (otherDone = true)),
            ]);
            await new Promise((resolve) => setTimeout(resolve, 100));
            expect([outsideDone, otherDone]).toEqual([false, false]);
          });
          await pending;
          expect((await driver.jobList({})).map((j) => j.name).sort()).toEqual(['inside', 'other-instance', 'outside']);
          expect((driver as unknown as { busyRetries: number }).busyRetries).toBeGreaterThan(0);
        });

        it('refuses a nested transaction() instead of waiting for itself', async () => {
          const { driver } = db();
          const inner = await driver.transaction(async () => driver.transaction(async () => 'inner').catch((error: unknown) => error));
          expect(inner).toBeInstanceOf(Error);
          expect(await driver.transaction(async () => 'after')).toBe('after');
        });

        it('close() waits for the transaction in progress, which commits', async () => {
          const driver = db().newDriver();
          let release!: () => void;
          const gate = new Promise<void>((resolve) => (release = resolve));
          const running = driver.transaction(async (tx) => {
            await driver.jobInsertMany({ jobs: [makeInsert({ name: 'late' })], now: at(0), tx });
            await gate;
          });
          await new Promise((resolve) => setTimeout(resolve, 20));
          let closed = false;
          const closing = driver.close().then(() => (closed = true));
          await new Promise((resolve) => setTimeout(resolve, 20));
          expect(closed).toBe(false);
          release();
          await Promise.all([running, closing]);
          expect((await db().driver.jobList({})).map((j) => j.name)).toEqual(['late']);
          await expect(driver.transaction(async () => 1)).rejects.toThrow(/closed/);
        });

        it('refuses an in-memory database with DatabaseConfigError', async () => {
          const { SqliteDriver } = await import('../../src/driver/sqlite/sqlite-driver.js');
          const memory = new SqliteDriver({ filename: ':memory:' });
          try {
            await expectRejects(memory.transaction(async () => 1), DatabaseConfigError);
          } finally {
            await memory.close();
          }
        });
      });
    }
  });
}
