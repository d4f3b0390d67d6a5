/**
 * A job's run time must lie in years 1 to 9999 UTC, the range both drivers store and read back alike
 * (`buildJobInsert`): a `runAt` outside it, or a `delay` that takes an injected clock's now outside it, is refused
 * with `InvalidOptionError` before anything is sent. Before, SQLite stored a Date PostgreSQL refused with a raw
 * database error, which inside the application's transaction aborted that transaction. Run times at both ends of
 * the range read back exactly on both drivers, in any process time zone (PostgreSQL gets them as UTC text).
 * @module
 */
import pg from 'pg';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Warden } from '../../src/client/warden.js';
import { InvalidOptionError } from '../../src/errors.js';
import { MAX_RUN_AT_MS, MIN_RUN_AT_MS } from '../../src/job/build-job-insert.js';
import { defineJob } from '../../src/job/define-job.js';
import { countRows, expectRejects } from '../conformance/helpers.js';
import { makeWarden, TestClock } from '../runtime/helpers.js';
import { createTestDatabase, DRIVER_KINDS, PG_URL, type TestDatabase } from '../support/test-databases.js';

const task = defineJob({ name: 'task', handler: () => undefined });

/** Before 4713 BC: a valid JavaScript Date that PostgreSQL's timestamptz cannot hold. */
const ANCIENT = new Date(Date.UTC(-5000, 0, 1));
/** Year 10000: PostgreSQL holds it, but only `pg`'s slow parser reads it back, and `toISOString` changes form. */
const FAR = new Date('+010000-01-01T00:00:00.000Z');

describe.each(DRIVER_KINDS)('run time range (%s)', (kind) => {
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

  it('refuses a runAt before year 1 or after year 9999 with InvalidOptionError naming runAt; nothing is written', async () => {
    for (const runAt of [ANCIENT, FAR, new Date(MIN_RUN_AT_MS - 1), new Date(MAX_RUN_AT_MS + 1)]) {
      const error = await expectRejects(warden.enqueue(task, {}, { runAt }), InvalidOptionError);
      expect(error.field).toBe('runAt');
      expect(error.value).toBe(runAt);
      expect(error.message).toContain(`this one is ${runAt.toISOString()}`);
    }
    const many = await expectRejects(warden.enqueueMany([{ job: task, payload: {} }, { job: task, payload: {}, options: { runAt: ANCIENT } }]), InvalidOptionError);
    expect(many.message).toMatch(/^items\[1\]: Expected runAt to be a Date from 0001-01-01T00:00:00\.000Z to 9999-12-31T23:59:59\.999Z/);
    expect(await countRows(tdb, 'jobs')).toBe(0);
  });

  it('stores run times at both ends of the range and reads them back exactly, in any process time zone', async () => {
    const zone = process.env.TZ;
    try {
      // Amsterdam's local mean time was UTC+00:19:32: a Date written in local time with a whole-minute offset
      // (what `pg` does) landed 30 s late on PostgreSQL.
      for (const tz of ['UTC', 'Europe/Amsterdam']) {
        process.env.TZ = tz;
        for (const runAt of [new Date(MIN_RUN_AT_MS), new Date('1850-06-01T12:00:00.123Z'), new Date(MAX_RUN_AT_MS)]) {
          const single = await warden.enqueue(task, {}, { runAt });
          const [keyed] = await warden.enqueueMany([{ job: task, payload: {}, options: { runAt, key: `at:${tz}:${runAt.getTime()}` } }]);
          for (const { id, job } of [single, keyed!]) {
            expect(job.runAt.toISOString(), `${tz}, returned`).toBe(runAt.toISOString());
            expect((await warden.jobs.get(id))!.runAt.toISOString(), `${tz}, stored`).toBe(runAt.toISOString());
          }
        }
      }
    } finally {
      if (zone === undefined) delete process.env.TZ;
      else process.env.TZ = zone;
    }
  });

  it("refuses a delay that takes an injected clock's now past year 9999, naming delay; nothing is written", async () => {
    const clock = new TestClock(MAX_RUN_AT_MS - 3_600_000);
    const late = makeWarden(tdb, { jobs: [task], retention: false, clock });
    try {
      const error = await expectRejects(late.enqueue(task, {}, { delay: '2h' }), InvalidOptionError);
      expect(error.field).toBe('delay');
      expect(error.message).toContain("the clock's now, 9999-12-31T22:59:59.999Z");
      const many = await expectRejects(late.enqueueMany([{ job: task, payload: {} }, { job: task, payload: {}, options: { delay: '2h' } }]), InvalidOptionError);
      expect(many.message).toMatch(/^items\[1\]: Expected delay/);
      expect(await countRows(tdb, 'jobs')).toBe(0);
      // Within the range it is written, due at now + delay.
      const { job } = await late.enqueue(task, {}, { delay: '30m' });
      expect(job.runAt.getTime()).toBe(MAX_RUN_AT_MS - 1_800_000);
    } finally {
      await late.close();
    }
  });

  // Only defined for PostgreSQL (not reported as skipped for SQLite): a failed statement aborts only a pg transaction.
  if (kind === 'postgres') it("refuses a bad runAt inside the application's transaction without aborting it", async () => {
    const client = new pg.Client({ connectionString: PG_URL });
    await client.connect();
    try {
      await client.query('BEGIN');
      await expectRejects(warden.enqueue(task, {}, { runAt: ANCIENT, tx: client }), InvalidOptionError);
      await expectRejects(warden.enqueue(task, {}, { runAt: ANCIENT, key: 'keyed', tx: client }), InvalidOptionError);
      // The application's transaction goes on: its next statement and a good enqueue work, and commit.
      expect((await client.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
      await warden.enqueue(task, {}, { tx: client });
      await client.query('COMMIT');
    } finally {
      await client.end();
    }
    expect(await countRows(tdb, 'jobs')).toBe(1);
  });
});
