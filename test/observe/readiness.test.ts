/**
 * `/readyz` against real databases, beyond the worker's phase (http-endpoints.test.ts): not ready while a migration
 * of this release is pending (every enqueue and claim would fail), ready on a database a newer release migrated,
 * the migrations not asked again once current; and not ready once the Warden is closed, without blaming the
 * database, whether its driver was passed in (and stays open) or was its own (and is closed).
 * @module
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createWarden, type Warden } from '../../src/client/warden.js';
import { MigrationRequiredError, WardenClosedError } from '../../src/errors.js';
import { defineJob } from '../../src/job/define-job.js';
import type { ReadinessResult } from '../../src/observe/readiness-check.js';
import { rawQuery, rawTime, tableRef } from '../conformance/helpers.js';
import { deferred, silent, within } from '../runtime/helpers.js';
import { overrideDriver } from '../support/override-driver.js';
import { createTestDatabase, DRIVER_KINDS, type TestDatabase } from '../support/test-databases.js';

const ok = defineJob({ name: 'ok', handler: () => undefined });

/** `/readyz` of `warden.httpHandler()`, over real HTTP. */
async function readyz(warden: Warden): Promise<{ status: number; body: ReadinessResult }> {
  const server = createServer(warden.httpHandler());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/readyz`);
    return { status: res.status, body: (await res.json()) as ReadinessResult };
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
}

describe.each(DRIVER_KINDS)('readiness (%s)', (kind) => {
  let tdb: TestDatabase | undefined;
  let warden: Warden | undefined;
  afterEach(async () => {
    await warden?.close();
    warden = undefined;
    await tdb?.cleanup();
    tdb = undefined;
  });

  it('is not ready while migrations are pending, naming them; ready once migrated, and they are not asked again', async () => {
    tdb = await createTestDatabase(kind, { migrate: false });
    let statusCalls = 0;
    const driver = overrideDriver(tdb.newDriver(), { migrationStatus: (real) => () => (statusCalls++, real()) });
    const w = (warden = createWarden({ database: driver, logger: silent, jobs: [ok], retention: false }));
    // The process cannot do its work: start() refuses.
    await expect(w.start()).rejects.toBeInstanceOf(MigrationRequiredError);
    const { pending } = await tdb.driver.migrationStatus();
    expect(pending.length).toBeGreaterThan(0);
    const before = await readyz(w);
    expect(before.status).toBe(503);
    expect(before.body).toMatchObject({ ready: false, database: 'reachable', migrations: 'pending' });
    expect(before.body.reason).toMatch(new RegExp(`^migrations pending: ${pending[0]}, `));
    // Cut to a reason's length, not a dump of every name.
    expect(before.body.reason!.length).toBeLessThanOrEqual(200);

    await w.migrate();
    const callsBefore = statusCalls;
    expect(await readyz(w)).toEqual({ status: 200, body: { ready: true, reason: null, database: 'reachable', worker: 'not-started', migrations: 'current' } });
    expect(statusCalls).toBe(callsBefore + 1);
    // Current, so no longer asked: this process's migrations cannot change.
    expect(await readyz(w)).toMatchObject({ status: 200, body: { migrations: 'current' } });
    expect(statusCalls).toBe(callsBefore + 1);
  });

  it('is ready on a database a newer release migrated (a migration this one does not know, none pending)', async () => {
    tdb = await createTestDatabase(kind);
    await rawQuery(tdb, `INSERT INTO ${tableRef(tdb, 'migrations')} (name, applied_at) VALUES (?, ?)`, ['9999_from_a_newer_release', rawTime(tdb, new Date())]);
    const w = (warden = createWarden({ database: tdb.newDriver(), logger: silent, jobs: [ok], retention: false }));
    expect(await readyz(w)).toMatchObject({ status: 200, body: { ready: true, migrations: 'current' } });
  });

  it('is not ready once the Warden is closed, its driver passed in and still open, without asking the database', async () => {
    tdb = await createTestDatabase(kind);
    let dbNowCalls = 0;
    const driver = overrideDriver(tdb.newDriver(), { dbNow: (real) => () => (dbNowCalls++, real()) });
    const w = (warden = createWarden({ database: driver, logger: silent, jobs: [ok], retention: false }));
    expect((await readyz(w)).status).toBe(200);
    expect(await readyz(w)).toMatchObject({ status: 200, body: { ready: true } });
    const asked = dbNowCalls;
    await w.close();
    await expect(w.enqueue(ok, {})).rejects.toBeInstanceOf(WardenClosedError);
    expect(await readyz(w)).toEqual({ status: 503, body: { ready: false, reason: 'closed', database: null, worker: 'not-started', migrations: 'current' } });
    expect(dbNowCalls).toBe(asked);
  });

  it('does not blame the database once the Warden closed its own driver, nor in a check the close overtook', async () => {
    tdb = await createTestDatabase(kind);
    const w = (warden = createWarden({ database: tdb.url, schema: tdb.schema, logger: silent, jobs: [ok], retention: false }));
    await w.start({ pollInterval: '50ms' });
    const stopped = w.events.next('worker:stopped');
    await w.close();
    await within(stopped, 'worker:stopped');
    // The database itself is fine:
    await expect(tdb.driver.dbNow()).resolves.toBeInstanceOf(Date);
    // Closed wins over the stopped worker: the reason says why this instance takes no traffic.
    expect(await w.readiness.check()).toEqual({ ready: false, reason: 'closed', database: null, worker: 'stopped', migrations: null });
  });

  it('a check waiting for the database when the Warden closes answers closed, not unreachable', async () => {
    tdb = await createTestDatabase(kind);
    const asked = deferred();
    const answer = deferred();
    // The answer is held until the Warden has closed, then fails as a driver closed under it does.
    const driver = overrideDriver(tdb.newDriver(), {
      migrationStatus: () => async () => {
        asked.resolve();
        await answer.promise;
        throw new Error('Cannot use a pool after calling end on the pool');
      },
    });
    const w = (warden = createWarden({ database: driver, logger: silent, jobs: [ok], retention: false }));
    const checking = w.readiness.check();
    await within(asked.promise, 'the readiness check to ask the database');
    await w.close();
    answer.resolve();
    expect(await within(checking, 'the readiness check to answer')).toMatchObject({ ready: false, reason: 'closed', database: null });
  });
});
