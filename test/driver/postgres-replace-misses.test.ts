/**
 * A replacing (debounce) insert on PostgreSQL can find its waiting holder claimed between the round statement's
 * read and its update (a "miss"); the input is then decided again in the next round. The limit of
 * `MAX_REPLACE_MISSES` is per key, in a row: it was counted across the whole batch, so a debounce `enqueueMany` of
 * more keys than that, whose holders a worker claimed once each while it waited, failed with an untyped Error and
 * rolled every item back. One key that keeps missing still gives up, with `KeyReplaceContentionError`.
 * @module
 */
import pg from 'pg';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Warden } from '../../src/client/warden.js';
import type { JobInsertResult } from '../../src/driver/driver.js';
import { insertJobs, MAX_REPLACE_MISSES, type Run } from '../../src/driver/postgres/postgres-insert.js';
import { KeyReplaceContentionError } from '../../src/errors.js';
import { buildPostgresKeyStatements } from '../../src/driver/postgres/postgres-keys-sql.js';
import { JOB_COLUMNS } from '../../src/driver/postgres/postgres-sql.js';
import { buildPostgresStatements } from '../../src/driver/postgres/postgres-statements.js';
import { WardenError } from '../../src/errors.js';
import { defineJob } from '../../src/job/define-job.js';
import { countRows, openPgClient, untilWaitingOnLock } from '../conformance/helpers.js';
import { makeWarden } from '../runtime/helpers.js';
import { createTestDatabase, DRIVER_KINDS, makeInsert, type TestDatabase } from '../support/test-databases.js';

const task = defineJob({ name: 'task', handler: () => undefined });
const DEBOUNCE = { windowMs: null, states: ['queued', 'retrying'] as const, replace: true };

describe.runIf(DRIVER_KINDS.includes('postgres'))('replacing inserts whose holders change meanwhile (postgres)', () => {
  let tdb: TestDatabase;
  let claimer: pg.Client;

  beforeEach(async () => {
    tdb = await createTestDatabase('postgres');
    claimer = await openPgClient();
  });

  afterEach(async () => {
    await claimer.end();
    await tdb.cleanup();
  });

  it(`succeeds for a debounce batch of ${MAX_REPLACE_MISSES + 1} keys whose holders are each claimed once while it waits`, async () => {
    const warden: Warden = makeWarden(tdb, { jobs: [task], retention: false });
    try {
      const n = MAX_REPLACE_MISSES + 1;
      const item = (i: number, v: number) => ({ job: task, payload: { v }, options: { unique: { key: `k${i}`, replace: true } } });
      const holders = await warden.enqueueMany(Array.from({ length: n }, (_, i) => item(i, 1)));
      // Every holder claimed by another transaction, committed once the batch's replace waits on their rows.
      await claimer.query('BEGIN');
      await claimer.query(`UPDATE "${tdb.schema}".jobs SET state = 'running', attempt = 1, lease_token = lease_token + 1 WHERE id = ANY($1::bigint[])`, [holders.map((h) => h.id)]);
      const batch = warden.enqueueMany(Array.from({ length: n }, (_, i) => item(i, 2)));
      await untilWaitingOnLock(tdb.schema!);
      await claimer.query('COMMIT');
      const results = await batch;
      // Each key's holder runs: every input is a new job with the new payload.
      expect(results.map((r) => [r.duplicate, r.replaced, r.job.payload])).toEqual(Array.from({ length: n }, () => [false, false, { v: 2 }]));
      expect(await countRows(tdb, 'jobs')).toBe(2 * n);
    } finally {
      await warden.close();
    }
  });

  /**
   * The limit itself. A real miss leaves the holder's row locked by the inserting transaction (PostgreSQL keeps the
   * lock of an UPDATE whose re-check failed), so the next round sees the holder as it now is and cannot miss on it
   * again: the limit is a safety net that real races do not reach. These tests make misses up instead: the first
   * `misses` round statements of a key are answered with the round's miss signature (the replacing input's holder
   * returned as a duplicate still `queued`), without running them.
   */
  describe('the limit per key, in a row', () => {
    let client: pg.Client;

    beforeEach(async () => {
      client = await openPgClient();
    });

    afterEach(async () => {
      await client.end();
    });

    /**
     * Runs `insertJobs` for `inputs` (replacing inputs of key `k`, after a holder inserted now) in a transaction of
     * its own, each of the first `misses[n]` round statements that decide the n-th input answered with a miss.
     * Commits on success, rolls back on failure.
     */
    async function insertWithMisses(inputs: number, misses: number[]): Promise<{ holderId: string; results: Promise<JobInsertResult[]> }> {
      const [holder] = await tdb.driver.jobInsertMany({ jobs: [makeInsert({ key: 'k', unique: DEBOUNCE, payloadJson: '{"v":0}' })], now: null });
      const holderId = holder!.job.id;
      const sql = { ...buildPostgresStatements(tdb.schema!), ...buildPostgresKeyStatements(tdb.schema!) };
      const left = [...misses];
      let input = 0;
      const run: Run = async (text, values) => {
        if (text !== sql.jobInsertRound) return client.query(text, values);
        if ((left[input] ?? 0) === 0) {
          input++;
          return client.query(text, values);
        }
        left[input]!--;
        return client.query(`SELECT 'duplicate' AS outcome, '1' AS ord, ${JOB_COLUMNS} FROM "${tdb.schema}".jobs WHERE id = $1`, [holderId]);
      };
      const jobs = Array.from({ length: inputs }, (_, i) => makeInsert({ key: 'k', unique: DEBOUNCE, payloadJson: `{"v":${i + 1}}` }));
      await client.query('BEGIN');
      const results = insertJobs(run as Run, sql, `${tdb.schema}_jobs`, jobs, null).then(
        async (r) => {
          await client.query('COMMIT');
          return r;
        },
        async (error: unknown) => {
          await client.query('ROLLBACK');
          throw error;
        },
      );
      return { holderId, results };
    }

    it(`replaces after ${MAX_REPLACE_MISSES} misses in a row, and counts each input's misses afresh`, async () => {
      const { holderId, results } = await insertWithMisses(2, [MAX_REPLACE_MISSES, MAX_REPLACE_MISSES]);
      const [first, second] = await results;
      expect(first).toMatchObject({ duplicate: true, replaced: true, job: { id: holderId, payload: { v: 1 } } });
      expect(second).toMatchObject({ duplicate: true, replaced: true, job: { id: holderId, payload: { v: 2 } } });
    });

    it(`gives up after ${MAX_REPLACE_MISSES + 1} misses in a row with KeyReplaceContentionError; the batch is rolled back`, async () => {
      const { holderId, results } = await insertWithMisses(2, [1, MAX_REPLACE_MISSES + 1]);
      const error = await results.then(() => null, (e: unknown) => e);
      expect(error).toBeInstanceOf(KeyReplaceContentionError);
      expect(error).toBeInstanceOf(WardenError);
      expect(error).toMatchObject({ code: 'KEY_REPLACE_CONTENTION', key: 'k', index: 1, misses: MAX_REPLACE_MISSES + 1 });
      expect((error as Error).message).toBe(
        `Expected the waiting job holding the dedup key of input 1 to stay waiting long enough to replace it, got it changed by other transactions ${MAX_REPLACE_MISSES + 1} times in a row`,
      );
      expect(await countRows(tdb, 'jobs')).toBe(1);
      expect((await tdb.driver.jobGet({ id: holderId }))!.payload).toEqual({ v: 0 });
    });
  });
});
