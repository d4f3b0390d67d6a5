import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { lockState } from '../../src/cli/commands/locks.js';
import { createWarden, type Warden } from '../../src/index.js';
import { type CliDatabase, cli, cliJson, migratedDatabase } from './cli-helpers.js';

let db: CliDatabase | undefined;
let warden: Warden | undefined;
afterEach(async () => {
  await warden?.close();
  warden = undefined;
  await db?.cleanup();
  db = undefined;
});

/** A Warden on the test database, for acquiring locks through the library. */
function openWarden(database: CliDatabase): Warden {
  const schema = database.kind === 'postgres' ? database.args[database.args.indexOf('--schema') + 1] : undefined;
  warden = createWarden({ database: database.url, schema, logger: pino({ level: 'silent' }) });
  return warden;
}

describe.each(['sqlite', 'postgres'] as const)('warden locks list (%s)', (kind) => {
  it('lists no locks, then a held lock with its holder and token 1, then the released lock as free', async () => {
    const database = (db = await migratedDatabase(kind));
    expect(await cli(['locks', 'list', ...database.args])).toEqual({ code: 0, out: 'no locks\n', err: '' });
    expect(await cliJson(['locks', 'list', ...database.args])).toEqual([]);

    const lease = await openWarden(database).locks.acquire('nightly', { ttl: '60s', holder: 'test-holder' });
    expect(lease?.token).toBe(1);

    const rows = await cliJson(['locks', 'list', ...database.args]);
    expect(rows).toEqual([{ name: 'nightly', holder: 'test-holder', token: 1, acquiredAt: expect.any(String), expiresAt: expect.any(String), state: 'held' }]);
    const ttl = new Date(rows[0].expiresAt).getTime() - new Date(rows[0].acquiredAt).getTime();
    expect(ttl).toBe(60_000);

    const text = await cli(['locks', 'list', ...database.args]);
    expect(text.code).toBe(0);
    const [header, line] = text.out.split('\n');
    expect(header).toMatch(/^NAME +HOLDER +TOKEN +ACQUIRED +EXPIRES +STATE$/);
    expect(line).toMatch(/^nightly +test-holder +1 +\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ +\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ \(in \S+\) +held$/);

    await lease!.release();
    expect(await cliJson(['locks', 'list', ...database.args])).toEqual([expect.objectContaining({ name: 'nightly', holder: null, token: 1, state: 'free' })]);
    expect((await cli(['locks', 'list', ...database.args])).out.split('\n')[1]).toMatch(/^nightly +- +1 +.*free$/);
  });
});

describe('warden locks list states', () => {
  it('shows a lease its holder stopped renewing as expired, by database time', async () => {
    const database = (db = await migratedDatabase('sqlite'));
    const w = openWarden(database);
    // Straight through the driver: no Lease object, so nothing renews it.
    const grant = await w.driver.lockAcquire({ name: 'tenant:42/report', holder: 'crashed-holder', ttlMs: 50, now: null });
    expect(grant?.token).toBe(1);
    await new Promise((r) => setTimeout(r, 120));
    expect(await cliJson(['locks', 'list', ...database.args])).toEqual([expect.objectContaining({ name: 'tenant:42/report', holder: 'crashed-holder', token: 1, state: 'expired' })]);
    expect((await cli(['locks', 'list', ...database.args])).out.split('\n')[1]).toMatch(/^tenant:42\/report +crashed-holder +1 +\S+ \S+ +\S+ \S+ \(\S+ ago\) +expired$/);

    const lease = await w.locks.acquire('tenant:42/report', { ttl: '60s', holder: 'next-holder' });
    expect(lease?.token).toBe(2);
    expect(await cliJson(['locks', 'list', ...database.args])).toEqual([expect.objectContaining({ holder: 'next-holder', token: 2, state: 'held' })]);
    await lease!.release();
  });

  it('computes the state against the given time', () => {
    const now = new Date('2024-05-01T12:00:00Z');
    const base = { name: 'n', token: 3, acquiredAt: new Date('2024-05-01T11:59:00Z') };
    expect(lockState({ ...base, holder: 'h', expiresAt: new Date('2024-05-01T12:00:01Z') }, now)).toBe('held');
    expect(lockState({ ...base, holder: 'h', expiresAt: now }, now)).toBe('expired');
    expect(lockState({ ...base, holder: null, expiresAt: null }, now)).toBe('free');
  });
});
