/**
 * Closing while the LISTEN connection is being set up (PostgreSQL driver). `close()` used to resolve while a
 * reconnect attempt was still connecting: the unsubscribe neither cut nor awaited it (the attempt checks whether it
 * was stopped only once its set-up ends), so that connection stayed open, keeping the process alive, until the
 * server answered or `connectTimeoutMs` passed. The same held for a first `listen()` still connecting when the driver
 * was closed. A connection is open here while its socket is: every `pg.Client` that sends a LISTEN is recorded, and
 * none may still have one once `close()` resolved.
 * @module
 */
import pg from 'pg';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { createWarden } from '../../src/client/warden.js';
import { createDriver } from '../../src/driver/create-driver.js';
import { defineJob } from '../../src/job/define-job.js';
import { RelayedDatabase } from '../support/pg-relay.js';
import { PG_URL } from '../support/test-databases.js';
import { silent, waitFor, within } from '../runtime/helpers.js';

const db = new RelayedDatabase();
let release: (() => void) | null = null;
let admin: pg.Client;
/** Every pg.Client that sent a LISTEN while the test ran: the driver's LISTEN connections. */
let clients: pg.Client[] = [];
const query = pg.Client.prototype.query;

beforeEach(async () => {
  await db.open();
  clients = [];
  pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
    const text = typeof args[0] === 'string' ? args[0] : (args[0] as { text?: unknown } | undefined)?.text;
    if (typeof text === 'string' && text.startsWith('LISTEN') && !clients.includes(this)) clients.push(this);
    return (query as (...a: unknown[]) => unknown).apply(this, args);
  } as typeof query;
  admin = new pg.Client({ connectionString: PG_URL });
  await admin.connect();
});
afterEach(async () => {
  pg.Client.prototype.query = query;
  release?.();
  release = null;
  await admin.end();
  await db.close();
});

/** The LISTEN connections whose socket is still open. */
function openClients(): pg.Client[] {
  return clients.filter((c) => !(c as unknown as { connection: { stream: { destroyed: boolean } } }).connection.stream.destroyed);
}

/** The sessions of the test's schema whose last statement is its LISTEN (the relay may hold the reply back). */
async function listening(): Promise<number[]> {
  const { rows } = await admin.query<{ pid: number }>(`SELECT pid FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND query LIKE 'LISTEN%' AND query LIKE '%' || $1 || '%'`, [db.tdb.schema]);
  return rows.map((r) => r.pid);
}

it('close() during a reconnect cuts the connection being set up before it resolves', async () => {
  const url = await db.relay.listen();
  const job = defineJob({ name: 'j', handler: () => {} });
  const warden = db.track(createWarden({ database: url, schema: db.tdb.schema, jobs: [job], logger: silent, worker: { pollInterval: '1h' } }));
  warden.on('error', () => {});
  await warden.start();
  // The sessions before (the LISTEN connection's last statement may be its hand-off set-up, not the LISTEN).
  const before = (await admin.query<{ pid: number }>('SELECT pid FROM pg_stat_activity')).rows.map((r) => r.pid);
  // The server goes away and comes back; the reconnect's LISTEN is answered only when released.
  release = db.relay.hold('LISTEN');
  db.relay.down();
  db.relay.up();
  await within(waitFor(async () => (await listening()).some((pid) => !before.includes(pid))), 'the reconnect to send LISTEN');
  await within(warden.close(), 'close');
  expect(clients).toHaveLength(2); // the first connection and the reconnect's
  expect(openClients()).toEqual([]);
});

it("close() while the first listen() is connecting resolves only once that connection is closed", async () => {
  const driver = db.track(createDriver({ url: await db.relay.listen(), schema: db.tdb.schema, connectTimeoutMs: 1_000 }));
  release = db.relay.hold('LISTEN');
  const order: string[] = [];
  const subscribing = driver.listen!({ onWake: () => {}, onReconnect: () => {}, onError: () => {} }).then(
    async (unsubscribe) => {
      order.push('listen');
      await unsubscribe();
    },
    () => order.push('listen'),
  );
  await within(waitFor(async () => (await listening()).length > 0), 'listen() to send LISTEN');
  // Not answered: the LISTEN fails after connectTimeoutMs, and listen() with it.
  await within(driver.close().then(() => order.push('close')), 'close');
  expect(clients).toHaveLength(1);
  expect(openClients()).toEqual([]);
  await subscribing;
  expect(order).toEqual(['listen', 'close']);
});
