/**
 * Hand-off to an idle worker (PostgreSQL driver): a claim that empties the queues registers the worker; a single
 * unkeyed enqueue of a due job, outside a transaction, then inserts it leased to that worker and sends it its row;
 * every condition under which it must not (worker not listening, paused queue, a due job already waiting, a delay,
 * a transaction, a key, no slot left, another queue, an expired registration) leaves the job
 * queued and wakes the queue as before. Withdrawing waits for an enqueue handing the worker a job to commit.
 * @module
 */
import pg from 'pg';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Driver, JobInsert } from '../../src/driver/driver.js';
import { handoffLockKey } from '../../src/driver/postgres/postgres-handoff.js';
import { jobInsertOneNotifySql } from '../../src/driver/postgres/postgres-sql.js';
import type { JobRow } from '../../src/job/job-record.js';
import { HandoffListener as Listener } from '../support/handoff-listener.js';
import { createTestDatabase, makeInsert, type TestDatabase } from '../support/test-databases.js';
import { finishOf, getJob, openPgClient, rawQuery, tableRef, untilWaitingOnLock } from '../conformance/helpers.js';

const LEASE_MS = 45_000;

describe('PostgreSQL hand-off to an idle worker', () => {
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

  async function listen(workerId: string | null): Promise<Listener> {
    const listener = await Listener.open(driver, workerId);
    listeners.push(listener);
    return listener;
  }

  /** A claim by `workerId` that finds the queues empty, registering `slots`. */
  async function register(workerId: string, slots: number, options: { queues?: string[]; expiresInMs?: number; received?: number } = {}): Promise<void> {
    const claimed = await driver.jobClaim({ queues: options.queues ?? ['default'], limit: 10, workerId, leaseMs: LEASE_MS, now: null, handoff: { slots, expiresInMs: options.expiresInMs ?? 60_000, received: options.received ?? 0 } });
    expect(claimed).toEqual([]);
  }

  async function enqueue(overrides: Partial<JobInsert> = {}, tx?: unknown): Promise<JobRow> {
    const [result] = await driver.jobInsertMany({ jobs: [makeInsert(overrides)], now: null, ...(tx ? { tx } : {}) });
    return result!.job;
  }

  async function waiters(): Promise<Record<string, unknown>[]> {
    return rawQuery(tdb, `SELECT worker_id, queues, slots, lease_ms FROM ${tableRef(tdb, 'handoff_waiters')} ORDER BY worker_id`);
  }

  it('registers a worker whose claim empties its queues, and sets its slots to 0 when a claim fills its limit', async () => {
    await register('w1', 4, { queues: ['a', 'b'] });
    expect(await waiters()).toEqual([{ worker_id: 'w1', queues: ['a', 'b'], slots: 4, lease_ms: LEASE_MS }]);
    // Found 2 of 10: still waiting, with the slots those two did not take.
    await enqueue({ queue: 'a' });
    await enqueue({ queue: 'b' });
    await driver.jobClaim({ queues: ['a', 'b'], limit: 10, workerId: 'w1', leaseMs: LEASE_MS, now: null, handoff: { slots: 4, expiresInMs: 60_000, received: 0 } });
    expect(await waiters()).toEqual([{ worker_id: 'w1', queues: ['a', 'b'], slots: 2, lease_ms: LEASE_MS }]);
    // Found its limit: there may be more, so it waits for nothing (the row stays, counting what was handed).
    await enqueue({ queue: 'a' });
    expect(await driver.jobClaim({ queues: ['a'], limit: 1, workerId: 'w1', leaseMs: LEASE_MS, now: null, handoff: { slots: 4, expiresInMs: 60_000, received: 0 } })).toHaveLength(1);
    expect(await waiters()).toEqual([{ worker_id: 'w1', queues: ['a', 'b'], slots: 0, lease_ms: LEASE_MS }]);
    await register('w1', 3);
    // No free handler: no slot.
    await register('w1', 0);
    expect(await waiters()).toEqual([{ worker_id: 'w1', queues: ['default'], slots: 0, lease_ms: LEASE_MS }]);
    // A claim without `handoff` (a drain) leaves a registration alone.
    await register('w2', 3);
    await driver.jobClaim({ queues: ['default'], limit: 10, workerId: 'w2', leaseMs: LEASE_MS, now: null });
    expect((await waiters())[1]).toEqual({ worker_id: 'w2', queues: ['default'], slots: 3, lease_ms: LEASE_MS });
  });

  it('does not give back, when it registers again, a slot taken by a job handed to the worker it has not received', async () => {
    const worker = await listen('w1');
    await register('w1', 2);
    await enqueue();
    // Registering again with 2 free handlers before the hand-off arrived: one is the handed job's.
    await register('w1', 2, { received: 0 });
    expect((await waiters())[0]!.slots).toBe(1);
    await worker.until(() => worker.jobs.length === 1);
    await register('w1', 2, { received: 1 });
    expect((await waiters())[0]!.slots).toBe(2);
    // Having received more than this row counted (a row deleted and made anew) gives no extra slot.
    await register('w1', 2, { received: 5 });
    expect((await waiters())[0]!.slots).toBe(2);
  });

  it('hands a due job to the waiting worker: inserted running, leased as its claim would be, its row sent to it', async () => {
    const worker = await listen('w1');
    const bystander = await listen(null);
    await register('w1', 2);
    const job = await enqueue({ name: 'report', payloadJson: '{"deep":{"x":[1,"é"]}}', traceContext: { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' } });
    await worker.until(() => worker.jobs.length === 1);
    const stored = await getJob(driver, job.id);
    expect(stored).toMatchObject({ state: 'running', attempt: 1, leaseToken: 1, leaseWorker: 'w1', lostCount: 0 });
    expect(stored.leaseExpiresAt!.getTime() - stored.startedAt!.getTime()).toBe(LEASE_MS);
    expect(stored.startedAt).toEqual(stored.createdAt);
    // What the worker receives and what the enqueue returns are the stored row.
    expect(worker.jobs).toEqual([{ row: stored, slotsLeft: 1 }]);
    expect(job).toEqual(stored);
    expect(await waiters()).toEqual([{ worker_id: 'w1', queues: ['default'], slots: 1, lease_ms: LEASE_MS }]);
    // A hand-off is not a wake-up: listeners without it see nothing for it; the worker ends it like a claimed job.
    const second = await enqueue({ name: 'second' });
    await worker.until(() => worker.jobs.length === 2);
    expect(worker.jobs[1]).toMatchObject({ row: { id: second.id, state: 'running' }, slotsLeft: 0 });
    expect(bystander.wakes).toEqual([]);
    expect(worker.wakes).toEqual([]);
    const ended = await driver.jobFinishMany({ items: [finishOf(stored)], now: null });
    expect(ended.applied).toEqual([job.id]);
    // No slot left: the next job waits for a claim, and its queue is woken.
    const third = await enqueue({ name: 'third' });
    await bystander.until(() => bystander.wakes.length === 1);
    expect((await getJob(driver, third.id)).state).toBe('queued');
    expect(third.state).toBe('queued');
  });

  /** A raw session LISTENing on `channel`, collecting the payloads, awaited without sleeping. */
  async function eavesdrop(channel: string): Promise<{ payloads: string[]; until: (n: number) => Promise<void>; end: () => Promise<void> }> {
    const raw = await openPgClient();
    const payloads: string[] = [];
    let waiters: (() => void)[] = [];
    raw.on('notification', (n) => {
      if (n.channel !== channel) return;
      payloads.push(n.payload ?? '');
      waiters.splice(0).forEach((w) => w());
    });
    await raw.query(`LISTEN "${channel}"`);
    return {
      payloads,
      until: async (n) => {
        while (payloads.length < n) await new Promise<void>((resolve) => waiters.push(resolve));
      },
      end: async () => {
        waiters = [];
        await raw.end();
      },
    };
  }

  async function channelOf(workerId: string): Promise<string> {
    const [row] = await rawQuery(tdb, `SELECT channel FROM ${tableRef(tdb, 'handoff_waiters')} WHERE worker_id = $1`, [workerId]);
    return row!.channel as string;
  }

  it("sends the job's row on the worker's private channel only, and names a row too large to carry, read whole", async () => {
    const shared = await eavesdrop(`${tdb.schema}_jobs`);
    try {
      const worker = await listen('w1');
      await register('w1', 2);
      const channel = await channelOf('w1');
      expect(channel).toMatch(/^warden_h_[0-9a-f]{32}$/);
      // A session that can read the registrations (as one that can read the jobs) can listen there too.
      const spy = await eavesdrop(channel);
      try {
        const small = await enqueue({ payloadJson: '{"secret":"s3cr3t"}' });
        const big = JSON.stringify({ secret: 's3cr3t', blob: 'é'.repeat(100_000) });
        const large = await enqueue({ payloadJson: big });
        await worker.until(() => worker.jobs.length === 2);
        await spy.until(2);
        const [first, second] = spy.payloads.map((p) => JSON.parse(p) as [number, number, string, unknown[] | null]);
        expect(first!.slice(0, 3)).toEqual([1, LEASE_MS, small.id]);
        expect(first![3]).toEqual(expect.arrayContaining([small.id, { secret: 's3cr3t' }]));
        expect(second).toEqual([0, LEASE_MS, large.id, null]);
        expect(worker.jobs.map((j) => j.row)).toEqual([await getJob(driver, small.id), await getJob(driver, large.id)]);
        expect(worker.jobs[1]!.row.payload).toEqual(JSON.parse(big));
        expect(worker.missed).toBe(0);
        // Nothing of either on the shared channel: the next job, with no slot left, is the first thing there.
        await enqueue();
        await shared.until(1);
        expect(shared.payloads).toEqual(['default']);
      } finally {
        await spy.end();
      }
    } finally {
      await shared.end();
    }
  });

  it('starts the row its notification carries without reading it, and reads a job it is only named', async () => {
    const worker = await listen('w1');
    await register('w1', 2);
    const channel = await channelOf('w1');
    const spy = await eavesdrop(channel);
    const raw = await openPgClient();
    try {
      const handed = await enqueue();
      await spy.until(1);
      await worker.until(() => worker.jobs.length === 1);
      // The same row under an id no job has: read, it would be nothing; carried, it is started as it came.
      const [slots, leaseMs, , row] = JSON.parse(spy.payloads[0]!) as [number, number, string, unknown[]];
      const ghost = String(Number(handed.id) + 1_000);
      await raw.query('SELECT pg_notify($1, $2)', [channel, JSON.stringify([slots, leaseMs, ghost, [ghost, ...row.slice(1)]])]);
      await worker.until(() => worker.jobs.length === 2);
      expect(worker.jobs[1]!.row).toEqual({ ...worker.jobs[0]!.row, id: ghost });
      // Named only, and not readable: reported, and missed.
      await raw.query('SELECT pg_notify($1, $2)', [channel, JSON.stringify([0, LEASE_MS, 'not-an-id', null])]);
      await worker.until(() => worker.missed === 1);
      expect(worker.errors).toHaveLength(1);
      expect(worker.jobs).toHaveLength(2);
    } finally {
      await Promise.all([spy.end(), raw.end()]);
    }
  });

  it("never writes the private channel's name in a statement's text (what pg_stat_activity, pg_stat_statements and logs show)", async () => {
    const texts: string[] = [];
    // Every statement this process sends, on every connection (the pools' too): recorded, then sent as it was.
    const original = pg.Client.prototype.query as (...args: unknown[]) => unknown;
    const query = vi.spyOn(pg.Client.prototype, 'query').mockImplementation(function (this: pg.Client, ...args: unknown[]) {
      const first = args[0] as string | { text?: string };
      texts.push(typeof first === 'string' ? first : (first.text ?? ''));
      return original.apply(this, args) as never;
    });
    try {
      const worker = await listen('w1');
      await register('w1', 2);
      await enqueue();
      await enqueue({ payloadJson: JSON.stringify({ blob: 'x'.repeat(10_000) }) });
      await worker.until(() => worker.jobs.length === 2);
    } finally {
      query.mockRestore();
    }
    const channel = await channelOf('w1');
    expect(texts.some((t) => t.includes('LISTEN'))).toBe(true);
    expect(texts.filter((t) => t.includes(channel))).toEqual([]);
  });

  it('sends a registration written by an earlier version (no channel) the job id only, on the shared channel, and the worker reads it', async () => {
    const shared = await eavesdrop(`${tdb.schema}_jobs`);
    try {
      const worker = await listen('w1');
      await register('w1', 2);
      await rawQuery(tdb, `UPDATE ${tableRef(tdb, 'handoff_waiters')} SET channel = NULL`);
      const job = await enqueue({ payloadJson: '{"secret":"s3cr3t"}' });
      await worker.until(() => worker.jobs.length === 1);
      await shared.until(1);
      expect(shared.payloads).toEqual([`["w1", 1, ${LEASE_MS}, "${job.id}"]`]);
      expect(worker.jobs).toEqual([{ row: await getJob(driver, job.id), slotsLeft: 1 }]);
    } finally {
      await shared.end();
    }
  });

  it('reports a hand-off whose job cannot be read, and says it missed one', async () => {
    const worker = await listen('w1');
    const raw = await openPgClient();
    try {
      await raw.query(`SELECT pg_notify($1, $2)`, [`${tdb.schema}_jobs`, '["w1", 0, 45000, "not-an-id"]']);
    } finally {
      await raw.end();
    }
    await worker.until(() => worker.missed === 1);
    expect(worker.errors).toHaveLength(1);
    expect(worker.jobs).toEqual([]);
  });

  it('passes nothing on once unsubscribed: a read in flight as the listener stops is neither delivered nor reported', async () => {
    const worker = await listen('w1');
    await register('w1', 2);
    const handed = await enqueue();
    await worker.until(() => worker.jobs.length === 1);
    const holder = await openPgClient();
    const notifier = await openPgClient();
    try {
      // The next read of the job waits behind this lock, so it is in flight when the listener stops.
      await holder.query('BEGIN');
      await holder.query(`LOCK TABLE ${tableRef(tdb, 'jobs')} IN ACCESS EXCLUSIVE MODE`);
      await notifier.query(`SELECT pg_notify($1, $2)`, [`${tdb.schema}_jobs`, JSON.stringify(['w1', 1, LEASE_MS, handed.id])]);
      await untilWaitingOnLock(tdb.schema!);
      const stopping = worker.stop();
      await holder.query('ROLLBACK');
      await stopping;
    } finally {
      await Promise.all([holder.end(), notifier.end()]);
    }
    expect(worker.jobs).toHaveLength(1);
    expect(worker.errors).toEqual([]);
    expect(worker.missed).toBe(0);
  });

  it('hands the job to the registration with the most free slots, in the job queue only', async () => {
    const [a, b, c] = [await listen('wa'), await listen('wb'), await listen('wc')];
    await register('wa', 2);
    await register('wb', 5);
    await register('wc', 9, { queues: ['other'] });
    const job = await enqueue();
    await b.until(() => b.jobs.length === 1);
    expect((await getJob(driver, job.id)).leaseWorker).toBe('wb');
    expect([a.jobs, c.jobs]).toEqual([[], []]);
  });

  it('passes over a registration whose worker is gone (lock free) to the next, trying no more locks than needed', async () => {
    const gone = await listen('w-gone');
    const live = await listen('w-live');
    const spare = await listen('w-spare');
    await register('w-gone', 9);
    await register('w-live', 5);
    await register('w-spare', 2);
    await gone.stop();
    const job = await enqueue();
    await live.until(() => live.jobs.length === 1);
    expect((await getJob(driver, job.id)).leaseWorker).toBe('w-live');
    expect(spare.jobs).toEqual([]);
    // The lock of the gone worker was tried (and taken shared until the insert committed); the spare's was not
    // needed. Visible afterwards only as: the gone worker's registration kept its slots.
    expect((await waiters()).map((w) => [w.worker_id, w.slots])).toEqual([['w-gone', 9], ['w-live', 4], ['w-spare', 2]]);
  });

  it("tries workers' locks one registration at a time, above the scan (plan)", async () => {
    const client = await openPgClient();
    try {
      await client.query(`PREPARE handoff_insert AS ${jobInsertOneNotifySql(`"${tdb.schema}"`)}`);
      const { rows } = await client.query<{ 'QUERY PLAN': string }>(
        "EXPLAIN (COSTS OFF) EXECUTE handoff_insert('n', 'default', '{}', 0, 0, NULL, 3, NULL, NULL, NULL, NULL, 'ch', true)",
      );
      const plan = rows.map((r) => r['QUERY PLAN']);
      const lockLine = plan.findIndex((line) => line.includes('pg_try_advisory_xact_lock_shared'));
      // The condition filters the subquery's rows as the outer LIMIT pulls them, not every row of the scan.
      expect(plan[lockLine - 1]).toMatch(/Subquery Scan on c$/);
      expect(plan.filter((line) => line.includes('pg_try_advisory_xact_lock_shared'))).toHaveLength(1);
    } finally {
      await client.end();
    }
  });

  describe('leaves the job queued (and wakes its queue)', () => {
    const cases: [string, (worker: Listener) => Promise<JobRow>][] = [
      ['when the worker is not listening', async (worker) => {
        await worker.stop();
        return enqueue();
      }],
      ['when the queue is paused', async () => {
        await driver.queuePause({ queue: 'default' });
        return enqueue();
      }],
      ['when a due job already waits in the queue (no overtaking)', async () => {
        await driver.jobInsertMany({ jobs: [makeInsert({ name: 'older' }), makeInsert({ name: 'older-2' })], now: null });
        return enqueue();
      }],
      ['when the job has a delay', async () => enqueue({ delayMs: 5_000 })],
      ['when the job has a due time', async () => enqueue({ runAt: new Date(Date.now() - 1_000) })],
      ['when it has a key', async () => enqueue({ key: 'k1' })],
      ['when it is enqueued in a caller transaction', async () => {
        const client = await openPgClient();
        try {
          await client.query('BEGIN');
          const job = await enqueue({}, client);
          await client.query('COMMIT');
          return job;
        } finally {
          await client.end();
        }
      }],
      ['when the registration has expired', async () => {
        await rawQuery(tdb, `UPDATE ${tableRef(tdb, 'handoff_waiters')} SET expires_at = now() - interval '1 second'`);
        return enqueue();
      }],
    ];
    for (const [name, act] of cases) {
      it(name, async () => {
        const worker = await listen('w1');
        const bystander = await listen(null);
        await register('w1', 3);
        const job = await act(worker);
        // Whichever comes first: a wake-up, or (wrongly) the job handed to the worker.
        await Promise.race([bystander.until(() => bystander.wakes.includes('default')), worker.until(() => worker.jobs.length > 0)]);
        const stored = await getJob(driver, job.id);
        expect([stored.state, stored.leaseWorker, stored.attempt]).toEqual(['queued', null, 0]);
        expect(job).toEqual(stored);
        expect(worker.jobs).toEqual([]);
      });
    }
  });

  /** The `pg_locks` columns of the worker's hand-off lock (a bigint advisory key is split in two halves). */
  function lockRow(workerId: string): [number, number] {
    const key = BigInt(handoffLockKey(tdb.schema!, workerId));
    return [Number(BigInt.asUintN(64, key) >> 32n), Number(BigInt.asUintN(32, key))];
  }

  async function untilLockAwaited(workerId: string): Promise<void> {
    const client = await openPgClient();
    try {
      for (;;) {
        const { rows } = await client.query(`SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND classid::bigint = $1 AND objid::bigint = $2`, lockRow(workerId));
        if (rows.length > 0) return;
        await new Promise((resolve) => setImmediate(resolve));
      }
    } finally {
      await client.end();
    }
  }

  it("waits for the hand-off lock an enqueue holds while the worker's listener connects, then is handed jobs", async () => {
    const enqueuer = await openPgClient();
    try {
      // An enqueue that found the lock free (the worker reconnecting) holds it shared until it commits.
      await enqueuer.query('BEGIN');
      await enqueuer.query('SELECT pg_advisory_xact_lock_shared($1::bigint)', [handoffLockKey(tdb.schema!, 'w1')]);
      const opening = listen('w1');
      await untilLockAwaited('w1');
      await enqueuer.query('COMMIT');
      const worker = await opening;
      await register('w1', 1);
      await enqueue();
      await worker.until(() => worker.jobs.length === 1);
      expect(worker.errors).toEqual([]);
    } finally {
      await enqueuer.end();
    }
  });

  it('reports a hand-off lock held by another session for 2 s, and is handed jobs while that session holds it', async () => {
    const zombie = await openPgClient();
    try {
      // An earlier LISTEN connection of the same worker that the server has not yet seen die.
      await zombie.query('SELECT pg_advisory_lock($1::bigint)', [handoffLockKey(tdb.schema!, 'w1')]);
      const worker = await listen('w1');
      expect(worker.errors.map((e) => (e as Error).message)).toEqual(['Expected to take the hand-off lock of worker w1 within 2 s, got it held by another session']);
      await register('w1', 1);
      await enqueue();
      await worker.until(() => worker.jobs.length === 1);
    } finally {
      await zombie.end();
    }
  });

  it('withdraws a registration, waiting for an enqueue that is handing the worker a job', async () => {
    await listen('w1');
    await register('w1', 3);
    const holder = await openPgClient();
    try {
      // An enqueue handing w1 a job holds its registration's row until it commits.
      await holder.query('BEGIN');
      await holder.query(`SELECT 1 FROM ${tableRef(tdb, 'handoff_waiters')} WHERE worker_id = 'w1' FOR UPDATE`);
      let withdrawn = false;
      const withdrawal = driver.handoffWithdraw!({ workerId: 'w1' }).then(() => {
        withdrawn = true;
      });
      await untilWaitingOnLock(tdb.schema!);
      expect(withdrawn).toBe(false);
      await holder.query('COMMIT');
      await withdrawal;
    } finally {
      await holder.end();
    }
    expect(await waiters()).toEqual([]);
    expect((await enqueue()).state).toBe('queued');
  });
});
