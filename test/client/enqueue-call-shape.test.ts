/**
 * `enqueue` and `enqueueMany` refuse arguments that are not what they take with `InvalidOptionError` naming the
 * position, and write nothing: a null (or non-object) item or options object was dereferenced into a TypeError, and
 * a `tx` given in an item's options (its type omits it; JavaScript callers and casts do not) was silently ignored:
 * on PostgreSQL the job was written outside the application's transaction and survived its rollback; on SQLite the
 * write waited on the application's own lock and failed with SQLITE_BUSY after 10 s.
 * @module
 */
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Warden } from '../../src/client/warden.js';
import { InvalidOptionError } from '../../src/errors.js';
import { defineJob } from '../../src/job/define-job.js';
import { countRows, expectRejects, sqliteFilename } from '../conformance/helpers.js';
import { makeWarden } from '../runtime/helpers.js';
import { createTestDatabase, DRIVER_KINDS, PG_URL, type TestDatabase } from '../support/test-databases.js';

const task = defineJob({ name: 'task', handler: () => undefined });

describe.each(DRIVER_KINDS)('enqueue call shapes (%s)', (kind) => {
  let tdb: TestDatabase;
  let warden: Warden;

  beforeEach(async () => {
    tdb = await createTestDatabase(kind);
    warden = makeWarden(tdb, { jobs: [task], retention: false });
  });

  afterEach(async () => {
    await warden.close();
    await tdb.cleanup();
  });

  it('refuses enqueue options that are not an object, naming them', async () => {
    for (const options of [null, 'urgent', 5, ['a']]) {
      const error = await expectRejects(warden.enqueue(task, {}, options as never), InvalidOptionError);
      expect(error.field).toBe('options');
      expect(error.message).toMatch(/^Expected options to be an object of enqueue options, or left out, got /);
    }
    expect(await countRows(tdb, 'jobs')).toBe(0);
  });

  it('refuses an enqueueMany item or item options that are not objects, naming the position', async () => {
    const good = { job: task, payload: {} };
    for (const item of [null, undefined, 'task', 7, [task, {}]]) {
      const error = await expectRejects(warden.enqueueMany([good, item as never]), InvalidOptionError);
      expect(error.field).toBe('items[1]');
      expect(error.message).toMatch(/^Expected items\[1\] to be an object \{ job, payload, options\? \}, got /);
    }
    for (const options of [null, 'x', ['a']]) {
      const error = await expectRejects(warden.enqueueMany([good, good, { job: task, payload: {}, options: options as never }]), InvalidOptionError);
      expect(error.field).toBe('items[2].options');
    }
    const many = await expectRejects(warden.enqueueMany([good], null as never), InvalidOptionError);
    expect(many.field).toBe('enqueueMany(items, options)');
    expect(await countRows(tdb, 'jobs')).toBe(0);
  });

  it("refuses a tx in an item's options instead of writing outside the application's transaction", async () => {
    const started = Date.now();
    let refusal: InvalidOptionError;
    if (kind === 'postgres') {
      const client = new pg.Client({ connectionString: PG_URL });
      await client.connect();
      try {
        await client.query('BEGIN');
        refusal = await expectRejects(warden.enqueueMany([{ job: task, payload: {} }, { job: task, payload: {}, options: { tx: client } as never }]), InvalidOptionError);
        // The transaction is untouched, and enqueueMany's own tx is the way.
        await warden.enqueueMany([{ job: task, payload: {} }], { tx: client });
        await client.query('ROLLBACK');
      } finally {
        await client.end();
      }
    } else {
      const db = new Database(sqliteFilename(tdb));
      try {
        db.exec('BEGIN IMMEDIATE');
        refusal = await expectRejects(warden.enqueueMany([{ job: task, payload: {} }, { job: task, payload: {}, options: { tx: db } as never }]), InvalidOptionError);
        await warden.enqueueMany([{ job: task, payload: {} }], { tx: db });
        db.exec('ROLLBACK');
      } finally {
        db.close();
      }
    }
    expect(refusal.field).toBe('items[1].options.tx');
    expect(refusal.message).toMatch(/^Expected items\[1\]\.options\.tx to be left out: every item is written in one transaction, so pass it once as enqueueMany\(items, \{ tx \}\), got /);
    // Refused up front, not after waiting on the application's lock (SQLite's busy timeout is 10 s).
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(await countRows(tdb, 'jobs')).toBe(0);
  });

  it('accepts an item whose options leave tx undefined', async () => {
    const [result] = await warden.enqueueMany([{ job: task, payload: {}, options: { tx: undefined } as never }]);
    expect(result!.duplicate).toBe(false);
  });
});
