/**
 * Enqueue inside the application's own transaction (`enqueue(job, payload, { tx })`): the job exists if and
 * only if that transaction commits. The database is the oracle: a second connection (Warden's own) must not
 * see the job while the transaction is open, must never see it after a rollback, and a worker must run a
 * committed job exactly once.
 * @module
 */
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { Warden } from '../../src/client/warden.js';
import { defineJob } from '../../src/job/define-job.js';
import { createTestDatabase, DRIVER_KINDS, PG_URL, type TestDatabase } from '../support/test-databases.js';
import { makeWarden, record, within } from './helpers.js';

/** The application's side of a transaction, the same shape for both databases. */
interface AppTx {
  /** The handle passed as `tx`. */
  handle: unknown;
  begin(): Promise<void>;
  /** Creates the application's table and writes one row, inside the transaction. */
  writeOrder(note: string): Promise<void>;
  commit(): Promise<void>;
  rollback(): Promise<void>;
  /** Orders visible to a fresh read after the transaction ended; null when the table does not exist. */
  committedOrders(): Promise<string[] | null>;
  close(): Promise<void>;
}

function sqliteApp(tdb: TestDatabase): AppTx {
  const db = new Database(tdb.url.slice('sqlite:'.length), { timeout: 5_000 });
  return {
    handle: db,
    begin: async () => void db.exec('BEGIN IMMEDIATE'),
    writeOrder: async (note) => {
      db.exec('CREATE TABLE app_orders (id INTEGER PRIMARY KEY, note TEXT NOT NULL)');
      db.prepare('INSERT INTO app_orders (note) VALUES (?)').run(note);
    },
    commit: async () => void db.exec('COMMIT'),
    rollback: async () => void db.exec('ROLLBACK'),
    committedOrders: async () => {
      const table = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'app_orders'").get();
      if (!table) return null;
      return (db.prepare('SELECT note FROM app_orders ORDER BY id').all() as { note: string }[]).map((r) => r.note);
    },
    close: async () => void db.close(),
  };
}

function postgresApp(tdb: TestDatabase): AppTx & { connect(): Promise<void> } {
  const client = new pg.Client({ connectionString: PG_URL });
  const table = `"${tdb.schema!}".app_orders`;
  return {
    handle: client,
    connect: async () => {
      await client.connect();
    },
    begin: async () => void (await client.query('BEGIN')),
    writeOrder: async (note) => {
      await client.query(`CREATE TABLE ${table} (id serial PRIMARY KEY, note text NOT NULL)`);
      await client.query(`INSERT INTO ${table} (note) VALUES ($1)`, [note]);
    },
    commit: async () => void (await client.query('COMMIT')),
    rollback: async () => void (await client.query('ROLLBACK')),
    committedOrders: async () => {
      const exists = await client.query('SELECT to_regclass($1) AS t', [`${tdb.schema!}.app_orders`]);
      if (exists.rows[0].t === null) return null;
      return (await client.query<{ note: string }>(`SELECT note FROM ${table} ORDER BY id`)).rows.map((r) => r.note);
    },
    close: () => client.end(),
  };
}

async function openApp(tdb: TestDatabase): Promise<AppTx> {
  if (tdb.kind === 'sqlite') return sqliteApp(tdb);
  const app = postgresApp(tdb);
  await app.connect();
  return app;
}

describe.each(DRIVER_KINDS)('transactional enqueue (%s)', (kind) => {
  let tdb: TestDatabase;
  let warden: Warden;
  let app: AppTx;
  let handled: { orderId: number }[];

  const fulfil = defineJob({
    name: 'fulfil-order',
    schema: z.object({ orderId: z.number().int() }),
    retry: { maxAttempts: 3 },
    handler: (payload) => {
      handled.push(payload);
    },
  });

  beforeEach(async () => {
    handled = [];
    tdb = await createTestDatabase(kind);
    warden = makeWarden(tdb, { jobs: [fulfil] });
    app = await openApp(tdb);
  });

  afterEach(async () => {
    await app?.close().catch(() => undefined);
    await warden?.close();
    await tdb?.cleanup();
  });

  it('a rolled-back transaction leaves no job, and nothing ever runs', async () => {
    await app.begin();
    await app.writeOrder('order 1');
    const result = await warden.enqueue(fulfil, { orderId: 1 }, { tx: app.handle });
    expect(result.duplicate).toBe(false);
    expect(result.job.state).toBe('queued');
    // Not visible to any other connection while the transaction is open.
    expect(await warden.jobs.get(result.id)).toBeNull();
    await app.rollback();

    expect(await app.committedOrders()).toBeNull();
    expect(await warden.jobs.get(result.id)).toBeNull();
    expect(await tdb.driver.jobList({})).toEqual([]);
    expect(await warden.drain()).toEqual({ attempts: 0 });
    expect(handled).toEqual([]);
    expect(await tdb.driver.jobList({})).toEqual([]);
  });

  it('a committed transaction makes the job run exactly once', async () => {
    await app.begin();
    await app.writeOrder('order 2');
    const result = await warden.enqueue(fulfil, { orderId: 2 }, { tx: app.handle });
    expect(await warden.jobs.get(result.id)).toBeNull();
    expect(handled).toEqual([]);
    await app.commit();

    expect(await app.committedOrders()).toEqual(['order 2']);
    const visible = await warden.jobs.get(result.id);
    expect(visible).toMatchObject({ id: result.id, name: 'fulfil-order', state: 'queued', attempt: 0, payload: { orderId: 2 } });

    expect(await warden.drain()).toEqual({ attempts: 1 });
    expect(await warden.drain()).toEqual({ attempts: 0 });
    expect(handled).toEqual([{ orderId: 2 }]);
    const done = await warden.jobs.get(result.id);
    expect(done).toMatchObject({ state: 'completed', attempt: 1 });
    const attempts = await warden.jobs.attempts(result.id);
    expect(attempts.map((a) => [a.attempt, a.outcome])).toEqual([[1, 'completed']]);
    expect(await tdb.driver.jobList({})).toHaveLength(1);
  });

  it('several jobs enqueued in one transaction commit or vanish together', async () => {
    await app.begin();
    await warden.enqueue(fulfil, { orderId: 10 }, { tx: app.handle });
    await warden.enqueueMany(
      [
        { job: fulfil, payload: { orderId: 11 } },
        { job: fulfil, payload: { orderId: 12 } },
      ],
      { tx: app.handle },
    );
    expect(await tdb.driver.jobList({})).toEqual([]);
    await app.rollback();
    expect(await tdb.driver.jobList({})).toEqual([]);

    await app.begin();
    await warden.enqueue(fulfil, { orderId: 20 }, { tx: app.handle });
    await warden.enqueueMany([{ job: fulfil, payload: { orderId: 21 } }], { tx: app.handle });
    await app.commit();
    expect(await warden.drain()).toEqual({ attempts: 2 });
    expect(handled.map((p) => p.orderId).sort()).toEqual([20, 21]);
  });
});

describe.runIf(DRIVER_KINDS.includes('postgres'))('transactional enqueue wake-up (postgres)', () => {
  let tdb: TestDatabase;
  let warden: Warden;
  let app: AppTx;
  let handled: number[];

  const fulfil = defineJob({
    name: 'fulfil-order',
    schema: z.object({ orderId: z.number().int() }),
    handler: (payload) => {
      handled.push(payload.orderId);
    },
  });

  beforeEach(async () => {
    handled = [];
    tdb = await createTestDatabase('postgres');
    warden = makeWarden(tdb, { jobs: [fulfil] });
    app = await openApp(tdb);
  });

  afterEach(async () => {
    await app?.close().catch(() => undefined);
    await warden?.close();
    await tdb?.cleanup();
  });

  it('a worker that only LISTENs runs the job promptly once the transaction commits', async () => {
    // An hour between polls and a long rescue interval: within this test only a NOTIFY can wake the worker.
    await warden.start({ pollInterval: '1h', rescueInterval: '1h' });
    const started = record(warden, 'job:started');

    await app.begin();
    await app.writeOrder('order 3');
    const result = await warden.enqueue(fulfil, { orderId: 3 }, { tx: app.handle });
    const completed = warden.events.next('job:completed', (e) => e.job.id === result.id);
    expect(await warden.jobs.get(result.id)).toBeNull();
    expect(started).toEqual([]);

    await app.commit();
    const done = await within(completed, 'job:completed after COMMIT (delivered by NOTIFY)', 10_000);
    expect(done.attempt).toBe(1);
    expect(handled).toEqual([3]);
    expect(await warden.jobs.get(result.id)).toMatchObject({ state: 'completed', attempt: 1 });
    expect(started.map((e) => e.job.id)).toEqual([result.id]);
  });

  it('a rolled-back transaction sends no wake-up and its job never runs on a started worker', async () => {
    await warden.start({ pollInterval: '1h', rescueInterval: '1h' });

    await app.begin();
    const rolledBack = await warden.enqueue(fulfil, { orderId: 4 }, { tx: app.handle });
    await app.rollback();

    // A second transaction commits a sentinel job. NOTIFYs are delivered in commit order, so once the
    // sentinel has run, a wake-up for the rolled-back job would already have arrived.
    await app.begin();
    const sentinel = await warden.enqueue(fulfil, { orderId: 5 }, { tx: app.handle });
    const sentinelDone = warden.events.next('job:completed', (e) => e.job.id === sentinel.id);
    await app.commit();
    await within(sentinelDone, 'the sentinel job to complete', 10_000);

    expect(handled).toEqual([5]);
    expect(await warden.jobs.get(rolledBack.id)).toBeNull();
    expect((await tdb.driver.jobList({})).map((j) => j.id)).toEqual([sentinel.id]);
  });
});
