/**
 * Hand-off to an idle worker, end to end (PostgreSQL): an idle worker is handed single enqueues up to its free
 * handlers and runs each once, the rest are claimed; a job handed to it whose notification was lost with its
 * LISTEN connection is handed back after the reconnect and run; one not received by shutdown is handed back.
 * @module
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createWarden, type Warden } from '../../src/client/warden.js';
import { createDriver } from '../../src/driver/create-driver.js';
import type { Driver } from '../../src/driver/driver.js';
import { InvalidOptionError } from '../../src/errors.js';
import { defineJob } from '../../src/job/define-job.js';
import { openPgClient, rawQuery, tableRef } from '../conformance/helpers.js';
import { cutListenConnection } from '../support/cut-listen-connection.js';
import { Relay } from '../support/pg-relay.js';
import { createTestDatabase, DRIVER_KINDS, type TestDatabase } from '../support/test-databases.js';
import { deferred, record, silent, within } from './helpers.js';

/** Resolves once `check` holds, re-read at every turn of the event loop (a state change, not a sleep). */
async function until(what: string, check: () => Promise<boolean>): Promise<void> {
  await within((async () => {
    while (!(await check())) await new Promise((resolve) => setImmediate(resolve));
  })(), what);
}

describe.skipIf(!DRIVER_KINDS.includes('postgres'))('hand-off to an idle worker (postgres)', () => {
  let tdb: TestDatabase;
  const wardens: Warden[] = [];
  const drivers: Driver[] = [];
  beforeEach(async () => {
    tdb = await createTestDatabase('postgres');
  });
  afterEach(async () => {
    await Promise.all(wardens.splice(0).map((w) => w.close()));
    await Promise.all(drivers.splice(0).map((d) => d.close()));
    await tdb.cleanup();
  });

  /** A started Warden whose worker has registered as waiting; returns it with its worker id. */
  async function startIdle(handler: (payload: { i: number }) => unknown, concurrency: number, audit = false, url = tdb.url, heartbeat: `${number}ms` | '20m' = '20m') {
    const { warden, job, workerId } = await start(handler, concurrency, true, audit, url, heartbeat);
    await until('the worker to register as waiting', async () => (await rawQuery(tdb, `SELECT 1 FROM ${tableRef(tdb, 'handoff_waiters')} WHERE worker_id = ?`, [workerId])).length === 1);
    return { warden, job, workerId };
  }

  async function start(handler: (payload: { i: number }) => unknown, concurrency: number, handoff = true, audit = false, url = tdb.url, heartbeat: `${number}ms` | '20m' = '20m') {
    const job = defineJob({ name: 'work', handler: (payload: { i: number }) => handler(payload) });
    // Lease and rescue of an hour: a job stuck leased to the worker cannot come back by expiry within a test.
    const driver = createDriver({ url, schema: tdb.schema, handoff });
    drivers.push(driver);
    const warden = createWarden({
      database: driver, logger: silent, jobs: [job], ...(audit ? { audit: true } : {}),
      worker: { concurrency, lease: '1h', heartbeat, rescueInterval: '1h', pollInterval: '200ms' },
    });
    wardens.push(warden);
    const started = record(warden, 'worker:started');
    await warden.start();
    return { warden, job, workerId: started[0]!.workerId };
  }

  /** Inserts a job as an enqueue handing it to `workerId` would, without the notification (as if it were lost). */
  async function leasedWithoutNotice(workerId: string): Promise<string> {
    const [row] = await rawQuery(tdb, `INSERT INTO ${tableRef(tdb, 'jobs')} (name, queue, payload, state, run_at, max_attempts, attempt, lease_token,
      lease_worker, lease_expires_at, started_at, created_at, updated_at)
      VALUES ('work', 'default', '{"i":99}', 'running', now(), 5, 1, 1, ?, now() + interval '1 hour', now(), now(), now()) RETURNING id::text AS id`, [workerId]);
    return row!.id as string;
  }

  /**
   * Runs `fn` with every connection of its Warden through a relay (`startIdle(…, url)`) that holds back the reply
   * to the single enqueue's statement (`warden_4`) until `fn` releases it; closes the Wardens, then the relay.
   */
  async function withHeldEnqueueReply(fn: (url: string, hold: () => () => void) => Promise<void>): Promise<void> {
    const relay = new Relay();
    let release = () => {};
    try {
      await fn(await relay.listen(), () => (release = relay.hold('warden_4')));
    } finally {
      release();
      await Promise.all(wardens.splice(0).map((w) => w.close()));
      await Promise.all(drivers.splice(0).map((d) => d.close()));
      await relay.close();
    }
  }

  it('hands single enqueues to the idle worker up to its free handlers, and claims the rest; each runs once', async () => {
    const gate = deferred();
    const started: number[] = [];
    const { warden, job } = await startIdle(async ({ i }) => {
      started.push(i);
      await gate.promise;
    }, 2);
    const completed = record(warden, 'job:completed');
    const a = await warden.enqueue(job, { i: 1 });
    const b = await warden.enqueue(job, { i: 2 });
    const ids = [a.id, b.id];
    const state = async (id: string) => (await tdb.driver.jobGet({ id }))!.state;
    try {
      // Handed off: running under the worker's lease as soon as the enqueue returned.
      expect([await state(a.id), await state(b.id)]).toEqual(['running', 'running']);
      const c = await warden.enqueue(job, { i: 3 });
      ids.push(c.id);
    } finally {
      gate.resolve();
    }
    await within(new Promise<void>((resolve) => warden.on('job:completed', () => completed.length === 3 && resolve())), 'three jobs completed');
    expect(started.sort()).toEqual([1, 2, 3]);
    expect(warden.workerCounters).toMatchObject({ handedOff: 2, claimed: 3 });
    for (const id of ids) expect(await tdb.driver.jobGet({ id })).toMatchObject({ state: 'completed', attempt: 1, lostCount: 0 });
  });

  it('says whom a job was handed to in its enqueue event and audit entry, created running, then started there', async () => {
    const { warden, job, workerId } = await startIdle(() => {}, 2, true);
    const enqueued = record(warden, 'job:enqueued');
    const done = new Promise<void>((resolve) => warden.on('job:completed', () => resolve()));
    const { id } = await warden.enqueue(job, { i: 1 });
    await within(done, 'the handed job completed');
    expect(enqueued).toEqual([expect.objectContaining({ job: expect.objectContaining({ id }), handedTo: workerId })]);
    await warden.audit.flush();
    const entries = [];
    for await (const entry of warden.audit.entries()) if (entry.subjectId === id) entries.push(entry);
    expect(entries.map((e) => [e.action, e.before, e.after, e.data?.handedTo ?? e.data?.workerId])).toEqual([
      ['job.created', null, 'running', workerId],
      ['job.started', null, 'running', workerId],
      ['job.completed', 'running', 'completed', undefined],
    ]);
  });

  it.each(['enqueue', 'enqueueMany of one job'] as const)("starts a job handed to its own process's worker after the enqueue's event, when the enqueue's reply comes late (%s)", async (call) => {
    await withHeldEnqueueReply(async (url, hold) => {
      const { warden, job, workerId } = await startIdle(() => {}, 2, true, url);
      const order: string[] = [];
      warden.on('job:enqueued', () => order.push('enqueued'));
      warden.on('job:started', () => order.push('started'));
      const done = new Promise<void>((resolve) => warden.on('job:completed', () => resolve()));
      const release = hold();
      const enqueue = call === 'enqueue' ? warden.enqueue(job, { i: 1 }) : warden.enqueueMany([{ job, payload: { i: 1 } }]).then(([result]) => result!);
      // Committed and handed: the worker has read the job on its LISTEN connection while the reply is held.
      await until('the worker to receive the handed job', async () => warden.workerCounters?.handedOff === 1);
      expect(order).toEqual([]);
      release();
      const { id } = await within(enqueue, 'the enqueue with its reply released');
      await within(done, 'the handed job completed');
      expect(order).toEqual(['enqueued', 'started']);
      await warden.audit.flush();
      const actions = [];
      for await (const entry of warden.audit.entries()) if (entry.subjectId === id) actions.push([entry.action, entry.data?.handedTo ?? entry.data?.workerId]);
      expect(actions).toEqual([['job.created', workerId], ['job.started', workerId], ['job.completed', undefined]]);
    });
  });

  it('keeps a handed job waiting for its enqueue out of a hand-back of unreceived jobs, and runs it once', async () => {
    await withHeldEnqueueReply(async (url, hold) => {
      const ran: number[] = [];
      const { warden, job, workerId } = await startIdle(({ i }) => void ran.push(i), 2, false, url);
      const handedBack: string[] = [];
      const leasedRead = deferred();
      const driver = warden.driver;
      const jobLeasedTo = driver.jobLeasedTo.bind(driver);
      const jobRelease = driver.jobRelease.bind(driver);
      // Watched, not replaced: the real reads and writes run; the test learns when and what.
      driver.jobLeasedTo = async (params) => {
        const leases = await jobLeasedTo(params);
        leasedRead.resolve();
        return leases;
      };
      driver.jobRelease = async (params) => {
        handedBack.push(...params.leases.map((l) => l.id));
        return jobRelease(params);
      };
      const done = new Promise<void>((resolve) => warden.on('job:completed', () => resolve()));
      const release = hold();
      const enqueue = warden.enqueue(job, { i: 7 });
      await until('the worker to receive the handed job', async () => warden.workerCounters?.handedOff === 1);
      // A hand-off whose read fails: the worker looks for jobs leased to it unreceived while ours waits to be taken.
      const raw = await openPgClient();
      try {
        await raw.query('SELECT pg_notify($1, $2)', [`${tdb.schema}_jobs`, JSON.stringify([workerId, 1, 3_600_000, 'not-an-id'])]);
      } finally {
        await raw.end();
      }
      await within(leasedRead.promise, 'the jobs leased to the worker read');
      for (let turn = 0; turn < 5; turn++) await new Promise((resolve) => setImmediate(resolve));
      release();
      const { id } = await within(enqueue, 'the enqueue with its reply released');
      await within(done, 'the handed job completed');
      expect(handedBack).not.toContain(id);
      expect(ran).toEqual([7]);
      expect(await tdb.driver.jobGet({ id })).toMatchObject({ state: 'completed', attempt: 1 });
      expect(warden.workerCounters).toMatchObject({ handedOff: 1, releasedUnreceived: 0 });
    });
  });

  it('renews the lease of a handed job waiting for its enqueue, and drops it if its lease is gone meanwhile', async () => {
    await withHeldEnqueueReply(async (url, hold) => {
      const ran: number[] = [];
      // Heartbeats every 50 ms against a lease of an hour: a renewal moves the lease's expiry, nothing expires.
      const { warden, job } = await startIdle(({ i }) => void ran.push(i), 2, false, url, '50ms');
      const stale = record(warden, 'job:stale-write-rejected');
      const leaseOf = async (id: string) => (await tdb.driver.jobGet({ id }))!.leaseExpiresAt!.getTime();
      const jobIds = async () => (await rawQuery(tdb, `SELECT id::text AS id FROM ${tableRef(tdb, 'jobs')} ORDER BY id`)).map((r) => r.id as string);

      // Renewed while it waits.
      let release = hold();
      const first = warden.enqueue(job, { i: 1 });
      await until('the worker to receive the first handed job', async () => warden.workerCounters?.handedOff === 1);
      const [firstId] = await jobIds();
      const handedLease = await leaseOf(firstId!);
      await until("a heartbeat to renew the waiting job's lease", async () => (await leaseOf(firstId!)) > handedLease);
      release();
      await within(first, 'the first enqueue with its reply released');
      await until('the first job to run', async () => ran.length === 1);

      // Cancelled while it waits: the heartbeat finds its lease gone, and it is never started.
      release = hold();
      const second = warden.enqueue(job, { i: 2 });
      await until('the worker to receive the second handed job', async () => warden.workerCounters?.handedOff === 2);
      const secondId = (await jobIds())[1]!;
      await tdb.driver.jobCancel({ id: secondId, now: null });
      await until('a heartbeat to find its lease gone', async () => stale.some((e) => e.jobId === secondId));
      release();
      await within(second, 'the second enqueue with its reply released');
      // Whatever taking it would do happens within turns of the event loop after the enqueue settles.
      for (let turn = 0; turn < 10; turn++) await new Promise((resolve) => setImmediate(resolve));
      expect(ran).toEqual([1]);
      expect(await tdb.driver.jobGet({ id: secondId })).toMatchObject({ state: 'cancelled' });
      expect(stale.filter((e) => e.jobId === secondId)).toHaveLength(1);
    });
  });

  it('hands back, after its LISTEN connection is back, a job handed to it whose notification was lost, and runs it', async () => {
    const ran: number[] = [];
    const { warden, workerId } = await startIdle(({ i }) => void ran.push(i), 2);
    const id = await leasedWithoutNotice(workerId);
    const reconnected = new Promise<void>((resolve) => warden.on('error', (e) => e.context === 'listening for wake-ups' && resolve()));
    const done = new Promise<void>((resolve) => warden.on('job:completed', (e) => e.job.id === id && resolve()));
    // Cut the LISTEN connection: the one holding the worker's hand-off lock.
    await cutListenConnection(tdb.schema!, workerId);
    await within(reconnected, 'the LISTEN connection lost');
    await within(done, 'the unnoticed job run after the reconnect');
    expect(ran).toEqual([99]);
    expect(await tdb.driver.jobGet({ id })).toMatchObject({ state: 'completed', attempt: 1, lostCount: 0 });
    expect(warden.workerCounters?.releasedUnreceived).toBe(1);
  });

  it('hands nothing to a worker whose driver has hand-off turned off: it claims, after a wake-up', async () => {
    const { warden, job } = await start(() => {}, 2, false);
    const claimed = new Promise<void>((resolve) => warden.on('worker:claimed', () => resolve()));
    const done = new Promise<void>((resolve) => warden.on('job:completed', () => resolve()));
    await warden.enqueue(job, { i: 1 });
    await within(claimed, 'the job claimed');
    await within(done, 'the job completed');
    expect(warden.workerCounters).toMatchObject({ handedOff: 0, claimed: 1 });
    expect(await rawQuery(tdb, `SELECT * FROM ${tableRef(tdb, 'handoff_waiters')}`)).toEqual([]);
  });

  it('refuses a hand-off setting that is not a boolean, before any connection', () => {
    expect(() => createDriver({ url: tdb.url, schema: tdb.schema, handoff: 'yes' as never })).toThrow(InvalidOptionError);
    expect(() => createDriver({ url: tdb.url, schema: tdb.schema, handoff: 'yes' as never })).toThrow('Expected handoff to be true or false, got "yes"');
  });

  it('hands back, after a job handed to it could not be read, the jobs leased to it it does not hold, and runs them', async () => {
    const ran: number[] = [];
    const { warden, workerId } = await startIdle(({ i }) => void ran.push(i), 2);
    const id = await leasedWithoutNotice(workerId);
    const done = new Promise<void>((resolve) => warden.on('job:completed', (e) => e.job.id === id && resolve()));
    // A hand-off naming a job that cannot be read (not one an enqueue would send): the read fails, the
    // connection stays up.
    await rawQuery(tdb, 'SELECT pg_notify(?, ?)', [`${tdb.schema}_jobs`, `[${JSON.stringify(workerId)}, 1, 3600000, "not-an-id"]`]);
    await within(done, 'the unnoticed job run after the failed read');
    expect(ran).toEqual([99]);
    expect(warden.workerCounters?.releasedUnreceived).toBe(1);
  });

  it('hands back at shutdown a job handed to it whose notification it never received', async () => {
    const { warden, workerId } = await startIdle(() => {}, 2);
    const id = await leasedWithoutNotice(workerId);
    await warden.close();
    expect(await tdb.driver.jobGet({ id })).toMatchObject({ state: 'queued', attempt: 0, leaseWorker: null });
    expect(await rawQuery(tdb, `SELECT * FROM ${tableRef(tdb, 'handoff_waiters')}`)).toEqual([]);
  });
});

