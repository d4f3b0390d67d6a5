/**
 * One `jobInsertMany` call has one `now` (driver contract: `created_at = now`; a keyed input is a duplicate iff its
 * holder's `created_at > now - windowMs`); at database time (`now` null) SQLite reads its clock once per call.
 * PostgreSQL decides a key repeated in the batch in a later round, a statement of its own, and since its database
 * time became `statement_timestamp()` each round read its own time: later rounds inserted at a later time than the
 * first, and the repeated key's second input was decided against a time later by as long as the first round took, so
 * with a window shorter than that it escaped the window its first input had just opened (a second job of the key,
 * where SQLite returns the first as its duplicate). The later rounds now get the first round's time.
 * @module
 */
import type pg from 'pg';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { JobInsert, UniqueInsert } from '../../src/driver/driver.js';
import { openPgClient, openRawSqlite } from '../conformance/helpers.js';
import { createTestDatabase, DRIVER_KINDS, makeInsert, type TestDatabase } from '../support/test-databases.js';

/** How many distinct creation times the jobs have, at the precision stored (microseconds on PostgreSQL). */
async function distinctCreationTimes(tdb: TestDatabase): Promise<number> {
  if (tdb.kind === 'sqlite') {
    const db = openRawSqlite(tdb);
    try {
      return (db.prepare('SELECT COUNT(DISTINCT created_at) AS n FROM jobs').get() as { n: number }).n;
    } finally {
      db.close();
    }
  }
  const client = await openPgClient();
  try {
    return Number((await client.query<{ n: string }>(`SELECT count(DISTINCT created_at) AS n FROM "${tdb.schema}".jobs`)).rows[0]!.n);
  } finally {
    await client.end();
  }
}

/**
 * Resolves once a statement naming `schema` has waited for a lock for more than `ms` since it started, read from
 * `pg_stat_activity` (`query_start` is the statement's start: its `statement_timestamp()`) on a connection of its
 * own outside any transaction, without sleeping.
 */
async function untilWaitedLongerThan(schema: string, ms: number): Promise<void> {
  const client = await openPgClient();
  try {
    for (;;) {
      const { rows } = await client.query<{ n: string }>(
        `SELECT count(*) AS n FROM pg_stat_activity
         WHERE wait_event_type = 'Lock' AND query LIKE $1 AND clock_timestamp() - query_start > $2::float8 * interval '1 millisecond'`,
        [`%${schema}%`, ms],
      );
      if (rows[0]!.n !== '0') return;
      await new Promise((resolve) => setImmediate(resolve));
    }
  } finally {
    await client.end();
  }
}

describe.each(DRIVER_KINDS)('one jobInsertMany call, one time (%s)', (kind) => {
  let tdb: TestDatabase;

  beforeEach(async () => {
    tdb = await createTestDatabase(kind);
  });

  afterEach(async () => {
    await tdb.cleanup();
  });

  it('every job the call inserts at database time, a repeated key’s later input too, has the one creation time', async () => {
    // A queued holder is no duplicate for `states: ['running']`: the second "b" is inserted, in the second round.
    const running: UniqueInsert = { windowMs: null, states: ['running'], replace: false };
    const results = await tdb.driver.jobInsertMany({
      jobs: [makeInsert({ key: 'b', unique: running }), makeInsert(), makeInsert({ key: 'a' }), makeInsert({ key: 'b', unique: running })],
      now: null,
    });
    expect(results.map((r) => r.duplicate)).toEqual([false, false, false, false]);
    expect(await distinctCreationTimes(tdb)).toBe(1);
  });

  it('a key repeated with a window is a duplicate of its first input, however long the first round took', async () => {
    const unique: UniqueInsert = { windowMs: 5, states: ['queued', 'retrying', 'running', 'completed'], replace: false };
    const replace: UniqueInsert = { windowMs: null, states: ['queued', 'retrying'], replace: true };
    const jobs: JobInsert[] = [makeInsert({ key: 'k', unique, payloadJson: '{"n":1}' }), makeInsert({ key: 'held', unique: replace }), makeInsert({ key: 'k', unique, payloadJson: '{"n":2}' })];
    let blocker: pg.Client | null = null;
    try {
      let pending: Promise<Awaited<ReturnType<typeof tdb.driver.jobInsertMany>>>;
      if (kind === 'postgres') {
        // Another transaction holds the row of the job that the first round replaces ("held") locked, past the
        // window: the round's time is read when it starts, before that wait, and the second round starts after
        // it. (A table lock would not do: the statement waits for it when bound, before its time is read.)
        const [held] = await tdb.driver.jobInsertMany({ jobs: [makeInsert({ key: 'held' })], now: null });
        blocker = await openPgClient();
        await blocker.query('BEGIN');
        await blocker.query(`SELECT 1 FROM "${tdb.schema}".jobs WHERE id = $1 FOR UPDATE`, [held!.job.id]);
        pending = tdb.driver.jobInsertMany({ jobs, now: null });
        await untilWaitedLongerThan(tdb.schema!, 10 * unique.windowMs!);
        await blocker.query('ROLLBACK');
      } else {
        // One time per call, read before the first input: nothing to hold up.
        pending = tdb.driver.jobInsertMany({ jobs, now: null });
      }
      const [first, , last] = await pending;
      expect([last!.duplicate, last!.job.id, last!.job.payload]).toEqual([true, first!.job.id, { n: 1 }]);
    } finally {
      await blocker?.end();
    }
  });
});
