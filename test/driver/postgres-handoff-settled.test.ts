/**
 * Hand-offs a worker never receives (PostgreSQL driver). A registration subtracts from the worker's free slots the
 * jobs handed to it and not yet settled (`handed` less the `received` its claim reports), so a hand-off the worker
 * can never receive must be reported settled, or it keeps a slot of every later registration taken. The driver's
 * part: a notice whose job, named only, is no longer the worker's is reported missed (`onMissed`), as a failed read
 * is; and a worker that reports more settled than were handed (it cannot always tell a lost hand-off from a lost
 * claim's job, both leased to it unseen) does not have that excess held against later hand-offs.
 * @module
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Driver } from '../../src/driver/driver.js';
import { HandoffListener as Listener } from '../support/handoff-listener.js';
import { createTestDatabase, DRIVER_KINDS, makeInsert, type TestDatabase } from '../support/test-databases.js';
import { openPgClient, rawQuery, tableRef } from '../conformance/helpers.js';
import { within } from '../runtime/helpers.js';

const LEASE_MS = 45_000;

describe.skipIf(!DRIVER_KINDS.includes('postgres'))('PostgreSQL hand-offs never received', () => {
  let tdb: TestDatabase;
  let driver: Driver;
  const listeners: Listener[] = [];

  beforeEach(async () => {
    tdb = await createTestDatabase('postgres');
    driver = tdb.driver;
  });
  afterEach(async () => {
    await Promise.all(listeners.splice(0).map((l) => l.stop()));
    await tdb.cleanup();
  });

  async function listen(workerId: string): Promise<Listener> {
    const listener = await Listener.open(driver, workerId);
    listeners.push(listener);
    return listener;
  }

  /** A claim by `workerId` that finds the queues empty, registering `slots` with `received` settled. */
  async function register(workerId: string, slots: number, received: number): Promise<void> {
    const claimed = await driver.jobClaim({ queues: ['default'], limit: 10, workerId, leaseMs: LEASE_MS, now: null, handoff: { slots, expiresInMs: 60_000, received } });
    expect(claimed).toEqual([]);
  }

  async function registration(workerId: string): Promise<{ slots: number; handed: number }> {
    const [row] = await rawQuery(tdb, `SELECT slots, handed::int AS handed FROM ${tableRef(tdb, 'handoff_waiters')} WHERE worker_id = ?`, [workerId]);
    return row as { slots: number; handed: number };
  }

  it('says it missed a hand-off whose job, named only, is no longer the worker\'s when read', async () => {
    const worker = await listen('w1');
    await register('w1', 2, 0);
    const [channel] = await rawQuery(tdb, `SELECT channel FROM ${tableRef(tdb, 'handoff_waiters')} WHERE worker_id = ?`, ['w1']);
    // A job that is not leased to the worker (cancelled, or handed back by it, before the notice was read).
    const [inserted] = await driver.jobInsertMany({ jobs: [makeInsert({ queue: 'elsewhere' })], now: null });
    const raw = await openPgClient();
    try {
      await raw.query('SELECT pg_notify($1, $2)', [channel!.channel, JSON.stringify([1, LEASE_MS, inserted!.job.id, null])]);
    } finally {
      await raw.end();
    }
    await within(worker.until(() => worker.missed === 1), 'the hand-off reported missed');
    // Not an error: nothing failed, the job is simply not the worker's to take.
    expect(worker.errors).toEqual([]);
    expect(worker.jobs).toEqual([]);
  });

  it('does not hold settled hand-offs reported beyond those handed against a later hand-off', async () => {
    const worker = await listen('w1');
    await register('w1', 2, 0);
    // The worker counted a job it handed back as a settled hand-off although it was a lost claim's: 1 of 0 handed.
    await register('w1', 2, 1);
    expect(await registration('w1')).toEqual({ slots: 2, handed: 1 });
    // A real hand-off, then a registration before it arrives: its slot is still taken.
    const [handed] = await driver.jobInsertMany({ jobs: [makeInsert()], now: null });
    expect(handed!.job.leaseWorker).toBe('w1');
    await register('w1', 2, 1);
    expect(await registration('w1')).toEqual({ slots: 1, handed: 2 });
    await within(worker.until(() => worker.jobs.length === 1), 'the hand-off received');
    await register('w1', 2, 2);
    expect(await registration('w1')).toEqual({ slots: 2, handed: 2 });
  });
});
