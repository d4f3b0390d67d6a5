/**
 * An SQLite `tx` must be a better-sqlite3 Database on the driver's own file (docs/guarantees.md), and one on another
 * database is refused with `InvalidTransactionError` naming both files, before any statement of the write: only
 * `inTransaction` was checked, so a connection to an application database without Warden's tables got a raw
 * SqliteError, and one to another Warden database got the job written there, with success reported. Files compare by
 * real path: a handle opened through a symbolic link to the driver's file is on it, one in memory is on no file.
 * @module
 */
import Database from 'better-sqlite3';
import { realpathSync } from 'node:fs';
import { mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Warden } from '../../src/client/warden.js';
import { InvalidTransactionError } from '../../src/errors.js';
import { defineJob } from '../../src/job/define-job.js';
import { countRows, expectRejects, sqliteFilename } from '../conformance/helpers.js';
import { makeWarden } from '../runtime/helpers.js';
import { createTestDatabase, DRIVER_KINDS, type TestDatabase } from '../support/test-databases.js';

const job = defineJob({ name: 'j', handler: () => undefined });

describe.skipIf(!DRIVER_KINDS.includes('sqlite'))('SQLite tx on another database', () => {
  let tdb: TestDatabase;
  let other: TestDatabase;
  let warden: Warden;
  let dir: string;
  const opened: Database.Database[] = [];

  /** A connection on `filename` with a write transaction open; closed after the test. */
  const openTx = (filename: string): Database.Database => {
    const db = new Database(filename, { timeout: 5_000 });
    opened.push(db);
    db.exec('BEGIN IMMEDIATE');
    return db;
  };

  beforeEach(async () => {
    tdb = await createTestDatabase('sqlite');
    other = await createTestDatabase('sqlite');
    warden = makeWarden(tdb, { jobs: [job], retention: false });
    dir = await mkdtemp(join(tmpdir(), 'warden-tx-file-'));
  });

  afterEach(async () => {
    for (const db of opened.splice(0)) db.close();
    await warden.close();
    await tdb.cleanup();
    await other.cleanup();
    await rm(dir, { recursive: true, force: true });
  });

  it('an application database without Warden’s tables: InvalidTransactionError naming both files, its transaction left usable', async () => {
    const app = openTx(join(dir, 'app.db'));
    const error = await expectRejects(warden.enqueue(job, {}, { tx: app }), InvalidTransactionError);
    expect(error.message).toContain('Expected tx to be a better-sqlite3 Database on the same file with an open transaction, got a Database on');
    // Real paths: the temporary directory may itself be reached through a link (macOS: /var is /private/var).
    expect(error.message).toContain(JSON.stringify(realpathSync(join(dir, 'app.db'))));
    expect(error.message).toContain(`while this driver's database is on ${JSON.stringify(realpathSync(sqliteFilename(tdb)))}`);
    await expectRejects(warden.enqueueMany([{ job, payload: {} }], { tx: app }), InvalidTransactionError);
    expect(app.inTransaction).toBe(true);
    app.exec('CREATE TABLE t (x)');
    app.exec('COMMIT');
    expect(await countRows(tdb, 'jobs')).toBe(0);
  });

  // A tx write needs no connection of the driver's own: its file is then resolved from its file name.
  for (const driverOpened of [false, true]) {
    const when = driverOpened ? 'after the driver opened its file' : 'before the driver opened its file';

    it(`another Warden database, ${when}: refused, and no job written on either`, async () => {
      if (driverOpened) await warden.jobs.list();
      const app = openTx(sqliteFilename(other));
      await expectRejects(warden.enqueue(job, {}, { tx: app }), InvalidTransactionError);
      app.exec('COMMIT');
      expect([await countRows(tdb, 'jobs'), await countRows(other, 'jobs')]).toEqual([0, 0]);
    });

    it(`the driver’s file by its name and through a symbolic link, ${when}: accepted, and the jobs commit with the transaction`, async () => {
      if (driverOpened) await warden.jobs.list();
      const link = join(dir, 'link.db');
      await symlink(sqliteFilename(tdb), link);
      const ids: string[] = [];
      for (const filename of [sqliteFilename(tdb), link]) {
        const app = openTx(filename);
        ids.push((await warden.enqueue(job, { n: 1 }, { tx: app })).id);
        // The same handle again: checked once, still accepted.
        ids.push((await warden.enqueue(job, { n: 2 }, { tx: app })).id);
        app.exec('COMMIT');
      }
      const payloads = await Promise.all(ids.map(async (id) => (await warden.jobs.get(id))?.payload));
      expect(payloads).toEqual([{ n: 1 }, { n: 2 }, { n: 1 }, { n: 2 }]);
    });
  }

  it('an in-memory database: refused', async () => {
    const memory = openTx(':memory:');
    await expectRejects(warden.enqueue(job, {}, { tx: memory }), InvalidTransactionError);
  });

  it('a handle refused once is refused again; one on the driver’s file after it is accepted', async () => {
    const app = openTx(join(dir, 'app.db'));
    await expectRejects(warden.enqueue(job, {}, { tx: app }), InvalidTransactionError);
    await expectRejects(warden.enqueue(job, {}, { tx: app }), InvalidTransactionError);
    app.exec('ROLLBACK');
    const own = openTx(sqliteFilename(tdb));
    const { id } = await warden.enqueue(job, {}, { tx: own });
    own.exec('COMMIT');
    expect(await countRows(tdb, 'jobs', id)).toBe(1);
  });
});
