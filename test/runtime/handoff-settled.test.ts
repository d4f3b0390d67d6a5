/**
 * Hand-offs a worker never receives, end to end (PostgreSQL). Its registration subtracts from its free slots the jobs
 * handed to it and not yet settled: `handed` (counted by the enqueues) less what its claims report as received. A
 * hand-off it never receives (its read lost with the LISTEN connection, its notification lost, or its job gone
 * before it was read) used to be counted as neither, so it kept a slot of every later registration taken: with one
 * handler, the worker was never handed a job again. Each must count as settled once the worker handed it back or
 * learned it will not come, so the next registration offers the slot again and the next enqueue is handed to it.
 * @module
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createWarden, type Warden } from '../../src/client/warden.js';
import { createDriver } from '../../src/driver/create-driver.js';
import type { Driver } from '../../src/driver/driver.js';
import { handoffLockKey } from '../../src/driver/postgres/postgres-handoff.js';
import { defineJob, type JobDefinition } from '../../src/job/define-job.js';
import { openPgClient, rawQuery, tableRef } from '../conformance/helpers.js';
import { Relay } from '../support/pg-relay.js';
import { createTestDatabase, DRIVER_KINDS, type TestDatabase } from '../support/test-databases.js';
import { makeWarden, record, silent, within } from './helpers.js';

/** Resolves once `check` holds, re-read at every turn of the event loop (a state change, not a sleep). */
async function until(what: string, check: () => Promise<boolean>): Promise<void> {
  await within((async () => {
    while (!(await check())) await new Promise((resolve) => setImmediate(resolve));
  })(), what);
}

describe.skipIf(!DRIVER_KINDS.includes('postgres'))('hand-offs never received (postgres)', () => {
  let tdb: TestDatabase;
  let relay: Relay | null = null;
  const closers: { close(): Promise<void> }[] = [];
  beforeEach(async () => {
    tdb = await createTestDatabase('postgres');
  });
  afterEach(async () => {
    for (const c of closers.splice(0).reverse()) await c.close();
    await relay?.close();
    relay = null;
    await tdb.cleanup();
  });

  type Payload = { i: number; pad?: string };

  /** A started worker with one handler, registered with its one slot; a producer Warden (another process's). */
  async function startIdle(url = tdb.url): Promise<{ warden: Warden; producer: Warden; job: JobDefinition<unknown, Payload>; workerId: string; ran: number[] }> {
    const ran: number[] = [];
    const job = defineJob({ name: 'work', handler: (p: Payload) => void ran.push(p.i) });
    const driver: Driver = createDriver({ url, schema: tdb.schema, handoff: true });
    closers.push(driver);
    // Lease and rescue of an hour: a job stuck leased to the worker cannot come back by expiry within a test.
    const warden = createWarden({
      database: driver, logger: silent, jobs: [job],
      worker: { concurrency: 1, lease: '1h', heartbeat: '20m', rescueInterval: '1h', pollInterval: '200ms' },
    });
    closers.push(warden);
    const producer = makeWarden(tdb, { jobs: [job] });
    closers.push(producer);
    const started = record(warden, 'worker:started');
    await warden.start();
    const workerId = started[0]!.workerId;
    await until('the worker to register with its one slot', async () => (await registration(workerId))?.slots === 1);
    return { warden, producer, job, workerId, ran };
  }

  async function registration(workerId: string): Promise<{ slots: number; handed: number; expires_at: Date } | undefined> {
    const [row] = await rawQuery(tdb, `SELECT slots, handed::int AS handed, expires_at FROM ${tableRef(tdb, 'handoff_waiters')} WHERE worker_id = ?`, [workerId]);
    return row as { slots: number; handed: number; expires_at: Date } | undefined;
  }

  /**
   * What an enqueue handing a job to `workerId` writes, without its notification (as if lost): the job leased to
   * the worker as a hand-off leases it (attempt 1, lease token 1), and one slot of the registration taken.
   */
  async function handedWithoutNotice(workerId: string): Promise<string> {
    await rawQuery(tdb, `UPDATE ${tableRef(tdb, 'handoff_waiters')} SET slots = slots - 1, handed = handed + 1 WHERE worker_id = ?`, [workerId]);
    const [row] = await rawQuery(tdb, `INSERT INTO ${tableRef(tdb, 'jobs')} (name, queue, payload, state, run_at, max_attempts, attempt, lease_token,
      lease_worker, lease_expires_at, started_at, created_at, updated_at)
      VALUES ('work', 'default', '{"i":99}', 'running', now(), 5, 1, 1, ?, now() + interval '1 hour', now(), now(), now()) RETURNING id::text AS id`, [workerId]);
    return row!.id as string;
  }

  /** The idle worker registers again (its next poll) with its one slot, and the next single enqueue is handed to it. */
  async function expectSlotBack(warden: Warden, producer: Warden, job: JobDefinition<unknown, Payload>, workerId: string): Promise<void> {
    const before = (await registration(workerId))!.expires_at;
    await until('the idle worker to register again', async () => (await registration(workerId))!.expires_at.getTime() > before.getTime());
    expect((await registration(workerId))!.slots).toBe(1);
    const enqueued = record(producer, 'job:enqueued');
    const done = warden.events.next('job:completed');
    await producer.enqueue(job, { i: 2 });
    expect(enqueued[0]!.handedTo).toBe(workerId);
    await within(done, 'the next job, handed to the worker, completed');
  }

  it('settles a hand-off whose read was lost with the LISTEN connection, once it is handed back', async () => {
    relay = new Relay();
    const { warden, producer, job, workerId, ran } = await startIdle(await relay.listen());
    // A row too large for the notification: the worker reads it on its LISTEN connection (the prepared read,
    // `warden_handoff`), and that read is lost with the connection.
    relay.arm('warden_handoff');
    const enqueued = record(producer, 'job:enqueued');
    const done = warden.events.next('job:completed');
    await producer.enqueue(job, { i: 1, pad: 'x'.repeat(9_000) });
    expect(enqueued[0]!.handedTo).toBe(workerId);
    await within(done, 'the unreceived job handed back, claimed and run');
    expect(ran).toEqual([1]);
    expect(warden.workerCounters).toMatchObject({ handedOff: 0, releasedUnreceived: 1 });
    await expectSlotBack(warden, producer, job, workerId);
    expect(ran).toEqual([1, 2]);
  });

  it('settles a hand-off whose notification was lost, once it is handed back after the reconnect', async () => {
    const { warden, producer, job, workerId, ran } = await startIdle();
    const id = await handedWithoutNotice(workerId);
    const done = warden.events.next('job:completed', (e) => e.job.id === id);
    // Cut the LISTEN connection: the one holding the worker's hand-off lock.
    const key = BigInt(handoffLockKey(tdb.schema!, workerId));
    const admin = await openPgClient();
    try {
      const { rows } = await admin.query<{ ok: boolean }>(
        `SELECT pg_terminate_backend(pid) AS ok FROM pg_locks WHERE locktype = 'advisory' AND granted
           AND classid::bigint = $1 AND objid::bigint = $2`,
        [Number(BigInt.asUintN(64, key) >> 32n), Number(BigInt.asUintN(32, key))],
      );
      expect(rows).toEqual([{ ok: true }]);
    } finally {
      await admin.end();
    }
    await within(done, 'the unnoticed job handed back after the reconnect, and run');
    expect(ran).toEqual([99]);
    expect(warden.workerCounters).toMatchObject({ handedOff: 0, releasedUnreceived: 1 });
    await expectSlotBack(warden, producer, job, workerId);
    expect(ran).toEqual([99, 2]);
  });

  it('settles a hand-off whose job, named only, was cancelled before the worker read it', async () => {
    const { warden, producer, job, workerId, ran } = await startIdle();
    const id = await handedWithoutNotice(workerId);
    await tdb.driver.jobCancel({ id, now: null });
    // Its notice, naming the job only (a row too large to carry), on the worker's private channel.
    const [reg] = await rawQuery(tdb, `SELECT channel FROM ${tableRef(tdb, 'handoff_waiters')} WHERE worker_id = ?`, [workerId]);
    const errors = record(warden, 'error');
    await rawQuery(tdb, 'SELECT pg_notify(?, ?)', [reg!.channel, JSON.stringify([0, 3_600_000, id, null])]);
    await expectSlotBack(warden, producer, job, workerId);
    expect(ran).toEqual([2]);
    expect(errors).toEqual([]);
    expect(await tdb.driver.jobGet({ id })).toMatchObject({ state: 'cancelled' });
  });
});
