/**
 * `SqliteDriver.close()` lets the writes called before it run and refuses those called after it. Before: a
 * `migrate()` with a table rebuild pending (`writeWithoutForeignKeys`, which does not go through the write groups)
 * was not waited for, so a close() while it waited out another process's write lock closed the connection under it
 * and it failed with the closed error; a write called after close() while a group still waited for its turn was
 * taken into that group and committed.
 *
 * Another connection on the file holds the write lock (`BEGIN IMMEDIATE`) until the driver's write is retrying
 * against it (`busyRetries`) and close() has been called: the write is then in flight when close() begins.
 * @module
 */
import type Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { SqliteDriver } from '../../src/driver/sqlite/sqlite-driver.js';
import { SQLITE_MIGRATIONS } from '../../src/driver/sqlite/sqlite-migrations.js';
import { openRawSqlite } from '../conformance/helpers.js';
import { createTestDatabase, DRIVER_KINDS, makeInsert, type TestDatabase } from '../support/test-databases.js';

const CLOSED = 'Expected an open SqliteDriver, got one that was closed';
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function database(options: { migrate: boolean }): Promise<{ tdb: TestDatabase; driver: SqliteDriver }> {
  const tdb = await createTestDatabase('sqlite', options);
  cleanups.push(() => tdb.cleanup());
  if (!(tdb.driver instanceof SqliteDriver)) throw new Error(`Expected an SqliteDriver, got ${tdb.driver.kind}`);
  return { tdb, driver: tdb.driver };
}

/** Another connection holding the file's write lock, as another process would. */
function holdWriteLock(tdb: TestDatabase): Database.Database {
  const other = openRawSqlite(tdb);
  other.exec('BEGIN IMMEDIATE');
  cleanups.push(async () => {
    if (other.inTransaction) other.exec('ROLLBACK');
    other.close();
  });
  return other;
}

/** Resolves once the driver has retried a transaction against a busy lock: its write is in flight. */
async function retryingAgainstLock(driver: SqliteDriver): Promise<void> {
  while (driver.busyRetries === 0) await new Promise((resolve) => setImmediate(resolve));
}

/** Settles `call` to a value a test can compare: 'resolved', or the rejection's message. */
function outcome(call: Promise<unknown>): Promise<string> {
  return call.then(() => 'resolved', (error: unknown) => (error as Error).message);
}

describe.skipIf(!DRIVER_KINDS.includes('sqlite'))('SQLite close()', () => {
  it('waits for a write called before it that is retrying against a busy lock, which then commits', async () => {
    const { tdb, driver } = await database({ migrate: true });
    const other = holdWriteLock(tdb);
    const inserted = outcome(driver.jobInsertMany({ jobs: [makeInsert()], now: null }));
    await retryingAgainstLock(driver);
    const closing = driver.close();
    other.exec('COMMIT');
    await closing;
    expect(await inserted).toBe('resolved');
    expect(other.prepare('SELECT count(*) FROM jobs').pluck().get()).toBe(1);
  });

  it('waits for a migrate() called before it with a table rebuild pending, as for any other write', async () => {
    const { tdb, driver } = await database({ migrate: false });
    // A fresh file has every migration pending, a table rebuild among them (`writeWithoutForeignKeys`).
    expect(SQLITE_MIGRATIONS.some((m) => m.rebuildsTables === true)).toBe(true);
    // Opened first, so the retries waited for below are the migration's, not the connection's pragmas.
    await driver.dbNow();
    const other = holdWriteLock(tdb);
    const migrated = driver.migrate();
    await retryingAgainstLock(driver);
    const closing = driver.close();
    other.exec('COMMIT');
    await closing;
    expect((await migrated).applied).toEqual(SQLITE_MIGRATIONS.map((m) => m.name));
  });

  it('waits for a migrate() called just before it, with no lock to wait for, and a migrate() without a rebuild too', async () => {
    const { tdb, driver } = await database({ migrate: false });
    await driver.dbNow();
    // Closed in the same turn: the migration had not even decided whether it rebuilds tables.
    const migrated = outcome(driver.migrate());
    await driver.close();
    expect(await migrated).toBe('resolved');
    // Up to date now, so no rebuild is pending: the same holds for a migrate() that has nothing to do.
    const again = tdb.newDriver();
    await again.dbNow();
    const nothing = outcome(again.migrate());
    await again.close();
    expect(await nothing).toBe('resolved');
    const reader = tdb.newDriver();
    cleanups.push(() => reader.close());
    expect((await reader.migrationStatus()).pending).toEqual([]);
  });

  it('refuses a write called after it with the closed error, while a group called before it still commits', async () => {
    const { tdb } = await database({ migrate: true });
    const driver = tdb.newDriver();
    await driver.dbNow();
    const before = outcome(driver.jobInsertMany({ jobs: [makeInsert({ name: 'before-close' })], now: null }));
    const closing = driver.close();
    // Called in the same turn as the write before close(), whose group is still waiting for the next turn.
    const after = outcome(driver.jobInsertMany({ jobs: [makeInsert({ name: 'after-close' })], now: null }));
    await closing;
    expect({ before: await before, after: await after }).toEqual({ before: 'resolved', after: CLOSED });
    expect((await tdb.driver.jobList({})).map((j) => j.name)).toEqual(['before-close']);
  });
});
