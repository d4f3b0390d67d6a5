/**
 * The SQLite driver's completion of a batch of plain completions: counted rather than returned, and undone to a
 * savepoint when a lease was lost (the conformance suite checks the results). Here: a completion that fails inside
 * an application's transaction leaves that transaction as it was, with no savepoint of the driver's left open.
 * @module
 */
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { at, claim, finishOf, getJob, insertJobs, sqliteFilename } from '../conformance/helpers.js';
import { createTestDatabase, type TestDatabase } from '../support/test-databases.js';

describe('SQLite completion of a batch of completions only', () => {
  let tdb: TestDatabase;
  beforeEach(async () => {
    tdb = await createTestDatabase('sqlite');
  });
  afterEach(async () => {
    await tdb.cleanup();
  });

  it("fails inside a caller's transaction without leaving its savepoint open or anything written", async () => {
    await insertJobs(tdb.driver, [{ name: 'a' }, { name: 'b' }]);
    const jobs = await claim(tdb.driver, { limit: 2 });
    // A read-only connection takes the savepoint and then refuses the update.
    const tx = new Database(sqliteFilename(tdb), { readonly: true });
    try {
      tx.exec('BEGIN');
      await expect(tdb.driver.jobFinishMany({ items: jobs.map((j) => finishOf(j)), now: at(5_000), tx })).rejects.toThrow(/readonly/);
      expect(tx.inTransaction).toBe(true);
      expect(() => tx.exec('RELEASE warden_complete')).toThrow(/no such savepoint/);
      tx.exec('COMMIT');
    } finally {
      tx.close();
    }
    for (const job of jobs) expect(await getJob(tdb.driver, job.id)).toEqual(job);
  });
});
