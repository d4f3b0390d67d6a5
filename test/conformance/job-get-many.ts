/**
 * Conformance: `jobGetMany`, the batched `jobGet` — the rows of the ids that exist, each once, in one statement by
 * primary key; ids `jobGet` answers null for have none; more than `JOB_GET_MANY_MAX_IDS` ids are refused, not cut.
 * @module
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { JOB_GET_MANY_MAX_IDS } from '../../src/driver/check-job-get-many-ids.js';
import { InvalidOptionError } from '../../src/errors.js';
import type { JobRow } from '../../src/job/job-record.js';
import { createTestDatabase, type DriverKind, type TestDatabase } from '../support/test-databases.js';
import { at, claim, errorInfo, expectRejects, finishOf, getJob, insertJobs, openRawSqlite, rawQuery, sortIds, tableRef } from './helpers.js';

/** Ids that name no job on either driver: unknown, malformed or out of range. */
const NOT_JOBS = ['987654321', 'abc', '', '-1', '1.5', '99999999999999999999999', '9223372036854775807'];

/** Declares the `jobGetMany` conformance tests for one driver kind. */
export function exerciseJobGetMany(kind: DriverKind): void {
  describe('jobGetMany', () => {
    let tdb: TestDatabase;
    beforeEach(async () => {
      tdb = await createTestDatabase(kind);
    });
    afterEach(async () => {
      await tdb.cleanup();
    });

    /** `rows` by id, as the contract promises no order. */
    function byId(rows: readonly JobRow[]): JobRow[] {
      const ids = sortIds(rows.map((r) => r.id));
      return ids.map((id) => rows.find((r) => r.id === id)!);
    }

    it('returns the row jobGet returns for each id that exists, each once, whatever its state', async () => {
      // The first is claimed (the oldest due), the second stays queued.
      const [running, queued, dead, unasked] = await insertJobs(tdb.driver, [{ name: 'a' }, { name: 'b' }, { name: 'c', queue: 'other' }, { name: 'd' }]);
      await claim(tdb.driver, { limit: 1 });
      const [claimedDead] = await claim(tdb.driver, { queues: ['other'] });
      await tdb.driver.jobFinishMany({ items: [finishOf(claimedDead!, { outcome: 'failed', state: 'dead', error: errorInfo('fatal') })], now: at(1_000) });
      const expected = [await getJob(tdb.driver, running!.id), await getJob(tdb.driver, queued!.id), await getJob(tdb.driver, dead!.id)];
      expect(expected.map((j) => j.state)).toEqual(['running', 'queued', 'dead']);

      // The id of a job not asked for, written as no job id is (as `jobGet` reads it): a leading zero, blanks.
      const notIds = [`0${unasked!.id}`, ` ${unasked!.id}`, `${unasked!.id} `, `+${unasked!.id}`];
      for (const id of notIds) expect(await tdb.driver.jobGet({ id })).toBeNull();
      const ids = [dead!.id, ...NOT_JOBS, ...notIds, queued!.id, running!.id, dead!.id, queued!.id];
      expect(byId(await tdb.driver.jobGetMany({ ids }))).toEqual(expected);
      expect(await tdb.driver.jobGetMany({ ids: [queued!.id] })).toEqual([expected[1]]);
    });

    it('returns nothing for no ids or none that names a job', async () => {
      await insertJobs(tdb.driver, [{}]);
      expect(await tdb.driver.jobGetMany({ ids: [] })).toEqual([]);
      expect(await tdb.driver.jobGetMany({ ids: NOT_JOBS })).toEqual([]);
    });

    it(`reads ${JOB_GET_MANY_MAX_IDS} ids in one call and refuses more, or anything but an array`, async () => {
      const jobs = await insertJobs(tdb.driver, Array.from({ length: 3 }, () => ({})));
      const ids = [...jobs.map((j) => j.id), ...Array.from({ length: JOB_GET_MANY_MAX_IDS - jobs.length }, (_, i) => String(10_000_000 + i))];
      expect(byId(await tdb.driver.jobGetMany({ ids }))).toEqual(jobs);
      const tooMany = await expectRejects(tdb.driver.jobGetMany({ ids: [...ids, jobs[0]!.id] }), InvalidOptionError);
      expect(tooMany.message).toBe(`Expected ids to be an array of at most ${JOB_GET_MANY_MAX_IDS} job ids, got an array of length ${JOB_GET_MANY_MAX_IDS + 1}`);
      await expectRejects(tdb.driver.jobGetMany({ ids: jobs[0]!.id as unknown as string[] }), InvalidOptionError);
    });

    it('reads each job by its primary key', async () => {
      await insertJobs(tdb.driver, Array.from({ length: 1_000 }, () => ({})));
      // With statistics, so the planner knows a scan would read 1,000 rows for 3 (on a table it thinks empty it scans).
      if (tdb.kind === 'postgres') await rawQuery(tdb, `ANALYZE ${tableRef(tdb, 'jobs')}`);
      const plan = await explainJobGetMany(tdb, ['1', '2', '3']);
      expect(plan).toMatch(tdb.kind === 'sqlite' ? /SEARCH jobs USING INTEGER PRIMARY KEY/ : /jobs_pkey/);
      expect(plan).not.toMatch(/SCAN jobs|Seq Scan/);
    });
  });
}

/** The query plan (as text) of the driver's own `jobGetMany` statement for `ids`. */
async function explainJobGetMany(tdb: TestDatabase, ids: string[]): Promise<string> {
  if (tdb.kind === 'sqlite') {
    const { JOB_GET_MANY } = await import('../../src/driver/sqlite/sqlite-job-admin-sql.js');
    const db = openRawSqlite(tdb);
    try {
      const rows = db.prepare(`EXPLAIN QUERY PLAN ${JOB_GET_MANY}`).all({ ids: JSON.stringify(ids.map(Number)) }) as { detail: string }[];
      return rows.map((r) => r.detail).join('\n');
    } finally {
      db.close();
    }
  }
  const { buildPostgresStatements } = await import('../../src/driver/postgres/postgres-statements.js');
  const rows = await rawQuery(tdb, `EXPLAIN ${buildPostgresStatements(tdb.schema!).jobGetMany}`, [`{${ids.join(',')}}`]);
  return rows.map((r) => String(r['QUERY PLAN'])).join('\n');
}
