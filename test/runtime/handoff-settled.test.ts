/**
 * Hand-offs a worker never receives, end to end (PostgreSQL). Its registration subtracts from its free slots the jobs
 * handed to it and not yet settled: `handed` (counted by the enqueues) less what its claims report as received. A
 * hand-off it never receives (its read lost with the LISTEN connection, its notification lost, or its job gone
 * before it was read) used to be counted as neither, so it kept a slot of every later registration taken: with one
 * handler, the worker was never handed a job again. Each must count as settled once the worker handed it back or
 * learned it will not come, so the next registration offers the slot again and the next enqueue is handed to it.
 * And each only once: a hand-off counted twice (missed, and handed back too) has a later registration offer the slot
 * of a hand-off still on its way, whose job then waits in a busy worker's buffer.
 * @module
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createWarden, type Warden } from '../../src/client/warden.js';
import { createDriver } from '../../src/driver/create-driver.js';
import type { Driver } from '../../src/driver/driver.js';
import { defineJob, type JobDefinition } from '../../src/job/define-job.js';
import { rawQuery, tableRef } from '../conformance/helpers.js';
import { cutListenConnection } from '../support/cut-listen-connection.js';
import { Relay } from '../support/pg-relay.js';
import { createTestDatabase, DRIVER_KINDS, type TestDatabase } from '../support/test-databases.js';
import { overrideDriver, type DriverOverrides } from '../support/override-driver.js';
import { deferred, makeWarden, record, silent, within } from './helpers.js';

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

  /**
   * A started worker with one handler (or `concurrency`), registered with all its slots; a producer Warden (another
   * process's). With `hold`, job `hold.i` holds its handler until `hold.until` settles; `overrides` replace driver
   * methods.
   */
  async function startIdle(url = tdb.url, { hold, overrides = {}, concurrency = 1 }: { hold?: { i: number; until: Promise<void> }; overrides?: DriverOverrides; concurrency?: number } = {}):
  Promise<{ warden: Warden; producer: Warden; job: JobDefinition<unknown, Payload>; workerId: string; ran: number[] }> {
    const ran: number[] = [];
    const job = defineJob({ name: 'work', handler: async (p: Payload) => {
      ran.push(p.i);
      if (p.i === hold?.i) await hold.until;
    } });
    const real = createDriver({ url, schema: tdb.schema, handoff: true });
    closers.push(real);
    const driver: Driver = overrideDriver(real, overrides);
    // Lease and rescue of an hour: a job stuck leased to the worker cannot come back by expiry within a test.
    const warden = createWarden({
      database: driver, logger: silent, jobs: [job],
      worker: { concurrency, lease: '1h', heartbeat: '20m', rescueInterval: '1h', pollInterval: '200ms' },
    });
    closers.push(warden);
    const producer = makeWarden(tdb, { jobs: [job] });
    closers.push(producer);
    const started = record(warden, 'worker:started');
    await warden.start();
    const workerId = started[0]!.workerId;
    await until('the worker to register with all its slots', async () => (await registration(workerId))?.slots === concurrency);
    return { warden, producer, job, workerId, ran };
  }

  async function registration(workerId: string): Promise<{ slots: number; handed: number; expires_at: Date; channel: string } | undefined> {
    const [row] = await rawQuery(tdb, `SELECT slots, handed::int AS handed, expires_at, channel FROM ${tableRef(tdb, 'handoff_waiters')} WHERE worker_id = ?`, [workerId]);
    return row as { slots: number; handed: number; expires_at: Date; channel: string } | undefined;
  }

  /** The notice of a hand-off of job `id` to `workerId` that names the job only (a row too large to carry). */
  async function noticeNamingOnly(workerId: string, id: string): Promise<void> {
    await rawQuery(tdb, 'SELECT pg_notify(?, ?)', [(await registration(workerId))!.channel, JSON.stringify([0, 3_600_000, id, null])]);
  }

  /**
   * What an enqueue handing a job to `workerId` writes, without its notification (as if lost): the job leased to
   * the worker as a hand-off leases it (attempt 1, lease token 1), and one slot of the registration taken.
   */
  async function handedWithoutNotice(workerId: string, i = 99): Promise<string> {
    await rawQuery(tdb, `UPDATE ${tableRef(tdb, 'handoff_waiters')} SET slots = slots - 1, handed = handed + 1 WHERE worker_id = ?`, [workerId]);
    const [row] = await rawQuery(tdb, `INSERT INTO ${tableRef(tdb, 'jobs')} (name, queue, payload, state, run_at, max_attempts, attempt, lease_token,
      lease_worker, lease_expires_at, started_at, created_at, updated_at)
      VALUES ('work', 'default', ?::jsonb, 'running', now(), 5, 1, 1, ?, now() + interval '1 hour', now(), now(), now()) RETURNING id::text AS id`,
    [JSON.stringify({ i }), workerId]);
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
    await cutListenConnection(tdb.schema!, workerId);
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

  // Without the late notice (control), nothing is counted twice either way.
  for (const lateNotice of [false, true]) {
    it(`counts a hand-off handed back, then missed as its late notice names it only, once (late notice: ${lateNotice})`, async () => {
      let workerId = '';
      let armed = false;
      let lookedSinceArmed = false;
      let y: string | null = null;
      const registered = deferred<{ slots: number; handed: number }>();
      const gate = deferred();
      const started = await startIdle(tdb.url, {
        hold: { i: 2, until: gate.promise },
        overrides: {
          jobLeasedTo: (leasedTo) => async (params) => {
            if (armed) lookedSinceArmed = true;
            return leasedTo(params);
          },
          jobClaim: (claim) => async (params) => {
            // The first registering claim after the missed notice's look (or, as control, the next one): an enqueue
            // hands the worker y just before it, y's notice still on its way.
            if (!armed || !params.handoff || (lateNotice && !lookedSinceArmed)) return claim(params);
            armed = false;
            y = await handedWithoutNotice(workerId, 2);
            const rows = await claim(params);
            registered.resolve((await registration(workerId))!);
            return rows;
          },
        },
      });
      const { warden, producer, job } = started;
      workerId = started.workerId;
      // x: a hand-off whose notice is late; the LISTEN connection drops, and the worker hands x back unreceived.
      const x = await handedWithoutNotice(workerId, 1);
      const done = warden.events.next('job:completed', (e) => e.job.id === x);
      await cutListenConnection(tdb.schema!, workerId);
      await within(done, 'x handed back, claimed again and completed');
      expect(warden.workerCounters).toMatchObject({ handedOff: 0, releasedUnreceived: 1 });
      await until('the idle worker to register again with its one slot', async () => (await registration(workerId))?.slots === 1);
      expect((await registration(workerId))!.handed).toBe(1);

      armed = true;
      // x's notice comes now, naming x only: its read finds x no longer the worker's, which the hand-back counted.
      if (lateNotice) await noticeNamingOnly(workerId, x);
      const after = await within(registered.promise, 'the registering claim with y on its way');
      const yStarted = warden.events.next('job:started', (e) => e.job.id === y);
      await noticeNamingOnly(workerId, y!);
      await within(yStarted, 'y received and started');
      const enqueued = record(producer, 'job:enqueued');
      await producer.enqueue(job, { i: 3 });
      gate.resolve();
      // y was on its way and the worker has one handler: no slot was free, so the next job is not handed to the
      // worker busy with y (it would wait in its buffer while another worker could run it).
      expect({ slots: after.slots, handedTo: enqueued[0]!.handedTo ?? null }).toEqual({ slots: 0, handedTo: null });
    });
  }

  it('counts a hand-off whose read was lost, then handed back, once', async () => {
    relay = new Relay();
    let workerId = '';
    let y: string | null = null;
    const registered = deferred<{ slots: number; handed: number }>();
    // Two handlers: a slot is still free for y once x took one.
    const started = await startIdle(await relay.listen(), {
      concurrency: 2,
      overrides: {
        jobRelease: (release) => async (params) => {
          const result = await release(params);
          // Right after the hand-back of x (counted missed already): an enqueue hands the worker y, its notice
          // still on its way, before the claim that follows registers.
          if (y === null && params.leases.length > 0) y = await handedWithoutNotice(workerId, 3);
          return result;
        },
        jobClaim: (claim) => async (params) => {
          const rows = await claim(params);
          if (y !== null && !registered.settled) registered.resolve((await registration(workerId))!);
          return rows;
        },
      },
    });
    const { warden, producer, job, ran } = started;
    workerId = started.workerId;
    const completed = record(warden, 'job:completed');
    // x's row is too large for the notification: its read on the LISTEN connection is lost with the connection.
    relay.arm('warden_handoff');
    await producer.enqueue(job, { i: 1, pad: 'x'.repeat(9_000) });
    // x and y handed; x settled (once), y on its way: the claim that took x back left no slot free.
    expect(await within(registered.promise, 'the claim after the hand-back of x')).toMatchObject({ slots: 0, handed: 2 });
    await noticeNamingOnly(workerId, y!);
    await until('x and y run', async () => completed.length === 2);
    expect([...ran].sort()).toEqual([1, 3]);
    // Both settled, once each: the idle worker's next registration offers both slots.
    const before = (await registration(workerId))!.expires_at;
    await until('the idle worker to register again', async () => (await registration(workerId))!.expires_at.getTime() > before.getTime());
    expect(await registration(workerId)).toMatchObject({ slots: 2, handed: 2 });
  });

  // With the reply kept (control), the hand-back counts the hand-off as it always did.
  for (const lost of [false, true]) {
    it(`settles a hand-off handed back by a release whose reply was lost after it committed (reply lost: ${lost})`, async () => {
      relay = new Relay();
      const { warden, producer, job, workerId, ran } = await startIdle(await relay.listen());
      const x = await handedWithoutNotice(workerId);
      const done = warden.events.next('job:completed', (e) => e.job.id === x);
      // The release is the one statement taking a first attempt back (`jobReleaseSql`).
      if (lost) relay.arm('j.attempt = 1 THEN NULL ELSE j.started_at');
      await cutListenConnection(tdb.schema!, workerId);
      await within(done, 'x handed back, claimed again and completed');
      expect(relay.cut).toBe(lost ? 1 : 0);
      // The retry's look no longer finds x leased to the worker: x is settled all the same, and its slot free.
      await expectSlotBack(warden, producer, job, workerId);
      expect(ran).toEqual([99, 2]);
    });
  }
});
