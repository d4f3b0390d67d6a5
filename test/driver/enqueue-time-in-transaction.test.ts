/**
 * Database time is the time of the statement that writes, on both drivers: a `delay` counts from the enqueue, not
 * from the start of the transaction it runs in. PostgreSQL's statements read `now()`, the start of the transaction,
 * so a job enqueued with a delay inside an application's transaction, or by a keyed enqueue that first waited on its
 * key's lock, was due that much early: at once on commit, in a transaction older than the delay. SQLite's time was
 * already the statement's. Compared in the database, at microseconds on PostgreSQL, against a time read after the
 * transaction began: no sleep needed, since `now()` lies before any later statement.
 * @module
 */
import type pg from 'pg';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Warden } from '../../src/client/warden.js';
import { defineJob } from '../../src/job/define-job.js';
import { openPgClient, openRawSqlite, untilWaitingOnLock } from '../conformance/helpers.js';
import { makeWarden } from '../runtime/helpers.js';
import { createTestDatabase, DRIVER_KINDS, type TestDatabase } from '../support/test-databases.js';

const later = defineJob({ name: 'later', handler: () => undefined });

/**
 * Milliseconds from `before` (a `timestamptz` as text, microseconds kept) to the job's `run_at` less `delayMs`:
 * when the delay was counted from the enqueue, at or after `before`, this is never negative.
 */
async function pgDelayBaseAfter(client: pg.Client, schema: string, id: string, delayMs: number, before: string): Promise<number> {
  const { rows } = await client.query<{ ms: number }>(
    `SELECT extract(epoch FROM run_at - $3::float8 * interval '1 millisecond' - $2::timestamptz)::float8 * 1000 AS ms FROM "${schema}".jobs WHERE id = $1`,
    [id, before, delayMs],
  );
  return rows[0]!.ms;
}

describe.each(DRIVER_KINDS)('a delay inside the caller’s transaction counts from the enqueue (%s)', (kind) => {
  let tdb: TestDatabase;
  let warden: Warden;

  beforeEach(async () => {
    tdb = await createTestDatabase(kind);
    warden = makeWarden(tdb, { jobs: [later], retention: false });
  });

  afterEach(async () => {
    await warden.close();
    await tdb.cleanup();
  });

  for (const keyed of [false, true]) {
    it(`a ${keyed ? 'keyed' : 'plain'} enqueue is due no earlier than its delay after a time read inside the transaction before it`, async () => {
      const options = { delay: '2s' as const, ...(keyed ? { key: 'k' } : {}) };
      if (kind === 'postgres') {
        const client = await openPgClient();
        try {
          await client.query('BEGIN');
          const before = (await client.query<{ t: string }>('SELECT clock_timestamp()::text AS t')).rows[0]!.t;
          const { id } = await warden.enqueue(later, {}, { ...options, tx: client });
          await client.query('COMMIT');
          expect(await pgDelayBaseAfter(client, tdb.schema!, id, 2_000, before)).toBeGreaterThanOrEqual(0);
        } finally {
          await client.end();
        }
      } else {
        const db = openRawSqlite(tdb);
        try {
          db.exec('BEGIN IMMEDIATE');
          const before = (db.prepare("SELECT CAST(unixepoch('subsec') * 1000 AS INTEGER) AS t").get() as { t: number }).t;
          const { id } = await warden.enqueue(later, {}, { ...options, tx: db });
          db.exec('COMMIT');
          const { run_at: runAt } = db.prepare('SELECT run_at FROM jobs WHERE id = ?').get(Number(id)) as { run_at: number };
          expect(runAt - 2_000).toBeGreaterThanOrEqual(before);
        } finally {
          db.close();
        }
      }
    });
  }
});

describe.skipIf(!DRIVER_KINDS.includes('postgres'))('a keyed enqueue that waited on its key’s lock (postgres)', () => {
  let tdb: TestDatabase;
  let warden: Warden;

  beforeEach(async () => {
    tdb = await createTestDatabase('postgres');
    warden = makeWarden(tdb, { jobs: [later], retention: false });
  });

  afterEach(async () => {
    await warden.close();
    await tdb.cleanup();
  });

  it('counts its delay from after the wait, not from the start of its own transaction', async () => {
    const holder = await openPgClient();
    try {
      // The application's transaction takes the key's lock (a keyed enqueue of its own), then rolls back.
      await holder.query('BEGIN');
      await warden.enqueue(later, {}, { key: 'k', tx: holder });
      const waiting = warden.enqueue(later, {}, { key: 'k', delay: '2s' });
      await untilWaitingOnLock(tdb.schema!);
      const before = (await holder.query<{ t: string }>('SELECT clock_timestamp()::text AS t')).rows[0]!.t;
      await holder.query('ROLLBACK');
      const { id, duplicate } = await waiting;
      expect(duplicate).toBe(false);
      expect(await pgDelayBaseAfter(holder, tdb.schema!, id, 2_000, before)).toBeGreaterThanOrEqual(0);
    } finally {
      await holder.end();
    }
  });
});
