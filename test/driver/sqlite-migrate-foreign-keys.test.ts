/**
 * SQLite migrations switch foreign keys off only for a pending table rebuild: `writeWithoutForeignKeys(fn, when)`
 * asks `when` in the same synchronous step as the transaction, and `migrate()` passes whether a rebuild is pending.
 * On a database with no rebuild pending, its transaction keeps foreign keys on, so a migration that broke a
 * reference would fail at its statement instead of passing unchecked.
 * @module
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { SqliteConnection } from '../../src/driver/sqlite/sqlite-connection.js';
import { SqliteDriver } from '../../src/driver/sqlite/sqlite-driver.js';
import { sqliteFilename } from '../process/db-oracle.js';
import { createTestDatabase, DRIVER_KINDS, type TestDatabase } from '../support/test-databases.js';

describe.skipIf(!DRIVER_KINDS.includes('sqlite'))('SQLite foreign keys around migrations', () => {
  let tdb: TestDatabase | undefined;
  afterEach(async () => {
    vi.restoreAllMocks();
    await tdb?.cleanup();
    tdb = undefined;
  });

  it('writeWithoutForeignKeys turns them off only when `when` says so, and back on after', async () => {
    tdb = await createTestDatabase('sqlite');
    const conn = new SqliteConnection({ filename: sqliteFilename(tdb.url), busyTimeoutMs: 20, synchronous: 'normal' });
    try {
      const inside = (when?: () => boolean) => conn.writeWithoutForeignKeys(() => conn.connected().pragma('foreign_keys', { simple: true }), when);
      expect(await inside(() => false)).toBe(1);
      expect(await inside(() => true)).toBe(0);
      expect(await inside()).toBe(0);
      expect(conn.connected().pragma('foreign_keys', { simple: true })).toBe(1);
    } finally {
      await conn.close();
    }
  });

  it('migrate() keeps them on when no rebuild is pending, and turns them off for one that is', async () => {
    const seen: boolean[] = [];
    const real = SqliteConnection.prototype.writeWithoutForeignKeys;
    vi.spyOn(SqliteConnection.prototype, 'writeWithoutForeignKeys').mockImplementation(function (this: SqliteConnection, fn, when) {
      return real.call(this, () => {
        seen.push(this.connected().pragma('foreign_keys', { simple: true }) === 1);
        return fn();
      }, when);
    });
    tdb = await createTestDatabase('sqlite', { migrate: false });
    const fresh = tdb.driver as SqliteDriver;
    await fresh.migrate(); // every migration pending, the rebuild among them
    const again = tdb.newDriver();
    try {
      await again.migrate(); // nothing pending
    } finally {
      await again.close();
    }
    expect(seen).toEqual([false, true]);
  });
});
