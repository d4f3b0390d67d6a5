/**
 * A keyed enqueue in the application's transaction runs the keyed insert's statements prepared on the application's
 * own client (`PostgresConnection.callerTransaction`). Their names were unique only per driver (`warden_k1`, …), so
 * a client that already held such a name for another driver's text (a second Warden on another schema) failed with
 * pg's "Prepared statements must be unique". On a client not of the driver's pool the names now carry a hash of the
 * statement text; on the driver's own connections (`ctx.transaction`, `driver.transaction`) the short names stay.
 * @module
 */
import pg from 'pg';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Warden } from '../../src/client/warden.js';
import { defineJob } from '../../src/job/define-job.js';
import { makeWarden } from '../runtime/helpers.js';
import { createTestDatabase, DRIVER_KINDS, PG_URL, type TestDatabase } from '../support/test-databases.js';

const task = defineJob({ name: 'task', handler: () => undefined });

/** The names prepared on `client`'s session, sorted. */
async function preparedNames(client: pg.ClientBase): Promise<string[]> {
  const { rows } = await client.query<{ name: string }>('SELECT name FROM pg_prepared_statements ORDER BY name');
  return rows.map((r) => r.name);
}

describe.runIf(DRIVER_KINDS.includes('postgres'))('prepared keyed statements on an application client (postgres)', () => {
  let a: TestDatabase;
  let b: TestDatabase;
  let wa: Warden;
  let wb: Warden;
  let client: pg.Client;

  beforeEach(async () => {
    a = await createTestDatabase('postgres');
    b = await createTestDatabase('postgres');
    wa = makeWarden(a, { jobs: [task], retention: false });
    wb = makeWarden(b, { jobs: [task], retention: false });
    client = new pg.Client({ connectionString: PG_URL });
    await client.connect();
  });

  afterEach(async () => {
    await client.end();
    await wa.close();
    await wb.close();
    await a.cleanup();
    await b.cleanup();
  });

  it('lets two Wardens on two schemas enqueue keyed jobs through one application client, again and again', async () => {
    for (let round = 0; round < 2; round++) {
      await client.query('BEGIN');
      const first = await wa.enqueue(task, {}, { key: `invoice:${round}`, tx: client });
      const second = await wb.enqueue(task, {}, { key: `invoice:${round}`, tx: client });
      const [many] = await wb.enqueueMany([{ job: task, payload: {}, options: { key: `invoice:${round}` } }], { tx: client });
      await client.query('COMMIT');
      expect([first.duplicate, second.duplicate, many!.duplicate, many!.id]).toEqual([false, false, true, second.id]);
    }
    expect((await wa.stats()).totals.queued).toBe(2);
    expect((await wb.stats()).totals.queued).toBe(2);
    // Each driver's key lock and insert round, under names that say which text they are (short name + hash).
    const names = await preparedNames(client);
    expect(names).toHaveLength(4);
    for (const name of names) expect(name).toMatch(/^warden_k[12]_[0-9a-f]{16}$/);
  });

  it("keeps the short names on the driver's own connections", async () => {
    await wa.driver.transaction(async (tx) => {
      await wa.enqueue(task, {}, { key: 'own', tx });
      expect((await preparedNames(tx as pg.PoolClient)).filter((n) => n.startsWith('warden_k'))).toEqual(['warden_k1', 'warden_k2']);
    });
  });
});
