/**
 * The fast `timestamptz` parser agrees with `pg`'s own on every form PostgreSQL prints with `DateStyle` ISO, in
 * any session time zone and at any fraction length, leaves the rest (BC, infinity, years before 100) to `pg`'s
 * parser, and reads nothing malformed.
 * @module
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FAST_TYPES, parseIsoTimestamptz, timestamptzFromJson } from '../../src/driver/postgres/postgres-timestamps.js';
import { PostgresDriver } from '../../src/driver/postgres/postgres-driver.js';
import { getJob, insertJobs } from '../conformance/helpers.js';
import { openPgClient } from '../conformance/helpers.js';
import { createTestDatabase, PG_URL } from '../support/test-databases.js';

/** Text JSON must escape, and characters outside the BMP. */
const ODD_PAYLOAD = { s: 'é😀 "q" \\ \n\t end', n: [1, -2.5, 1e21], nested: { 'key with "quotes"': null } };

const pgParse = pg.types.getTypeParser(1184, 'text') as (text: string) => unknown;

describe('fast timestamptz parsing', () => {
  let client: pg.Client;
  beforeAll(async () => {
    client = await openPgClient();
  });
  afterAll(async () => {
    await client.end();
  });

  for (const zone of ['UTC', 'Asia/Kolkata', 'America/Los_Angeles', 'Australia/Lord_Howe', 'Asia/Kathmandu']) {
    it(`matches pg's parser for values printed in time zone ${zone}`, async () => {
      await client.query(`SET TIME ZONE '${zone}'`);
      const { rows } = await client.query<{ t: string }>(
        `SELECT (timestamptz '2026-03-29 00:30:00+00' + g * interval '37 minutes 13.123457 seconds')::text AS t
               FROM generate_series(0, 2000) g
               UNION ALL SELECT unnest(ARRAY['2000-01-01 00:00:00+00', '1999-12-31 23:59:59.999999+00', '2038-01-19 03:14:08.5+00'])::timestamptz::text`,
      );
      for (const { t } of rows) {
        const fast = parseIsoTimestamptz(t);
        expect(fast, t).not.toBeNull();
        expect(fast!.getTime(), t).toBe((pgParse(t) as Date).getTime());
      }
    });
  }

  it("matches pg's parser on random instants from year 100 to 9999, at every fraction length", async () => {
    // Old instants in a zone with history print local mean time offsets with seconds (+05:53:28): those go to
    // pg's parser, so both readers are compared through FAST_TYPES, and in UTC every value must take the fast path.
    for (const zone of ['UTC', 'Asia/Kolkata']) {
      await client.query(`SET TIME ZONE '${zone}'`);
      const { rows } = await client.query<{ t: string }>(
        `SELECT (timestamptz '0100-01-01 00:00:00+00' + (random() * 9899 * 365.25 * 86400 * 1e6)::bigint * interval '1 microsecond')::text AS t
           FROM generate_series(1, 3000)
         UNION ALL SELECT (timestamptz '2026-06-01 12:00:00+00' + g * interval '1 microsecond' * 111111)::text FROM generate_series(0, 9) g`,
      );
      let fast = 0;
      for (const { t } of rows) {
        if (parseIsoTimestamptz(t) !== null) fast++;
        expect((FAST_TYPES.getTypeParser(1184, 'text')(t) as Date).getTime(), t).toBe((pgParse(t) as Date).getTime());
      }
      if (zone === 'UTC') expect(fast).toBe(rows.length);
    }
  });

  it('leaves BC dates, infinity and other forms to pg', () => {
    for (const text of ['infinity', '-infinity', '0044-03-15 12:00:00+00 BC', '0099-12-31 23:59:59+00', '12026-01-01 00:00:00+00', '1900-01-01 00:00:00+00:19:32', 'garbage']) {
      expect(parseIsoTimestamptz(text), text).toBeNull();
      expect(FAST_TYPES.getTypeParser(1184, 'text')(text)).toEqual(pgParse(text));
    }
  });

  it('reads nothing malformed: a wrong digit, separator, month or offset gives null', () => {
    for (const text of ['2026-13-01 00:00:00+00', '2026-00-10 00:00:00+00', '2026-01-32 00:00:00+00', '2026-01-01 24:00:00+00', '2026-01-01 00:60:00+00',
      '2026-01-01 00:00:60+00', '2026-0a-01 00:00:00+00', '2026/01/01 00:00:00+00', '2026-01-01T00:00:00+00', '2026-01-01 00:00:00.5', '2026-01-01 00:00:00.5+0',
      '2026-01-01 00:00:00*00', '2026-01-01 00:00:00+05-30', '2026-01-01 00:00:00+05:3x', '2026-01-01 00:00:00.12x+00']) {
      expect(parseIsoTimestamptz(text), text).toBeNull();
    }
  });

  it("reads the JSON form (the claim's) as pg reads the column, in any zone, era and fraction", async () => {
    // The claim sends timestamps inside JSON (`T` between date and time); whatever the form, the Date must be the one
    // the column's text gives: BC, infinity and offsets with seconds through pg's parser, the rest on the fast path.
    for (const zone of ['UTC', 'Europe/Amsterdam', 'Asia/Kathmandu', 'America/St_Johns']) {
      await client.query(`SET TIME ZONE '${zone}'`);
      const { rows } = await client.query<{ t: string; j: string }>(
        `SELECT t::text AS t, to_json(t) #>> '{}' AS j FROM (
           SELECT timestamptz '2026-03-29 00:30:00+00' + g * interval '37 minutes 13.123457 seconds' AS t FROM generate_series(0, 500) g
           UNION ALL SELECT unnest(ARRAY['1850-06-01 12:00:00+00', '0044-03-15 12:00:00+00 BC', 'infinity', '-infinity', '2000-01-01 00:00:00.000001+00',
                                         '0099-12-31 23:59:59.5+00', '9999-12-31 23:59:59.999999+00'])::timestamptz) v`,
      );
      let fast = 0;
      for (const { t, j } of rows) {
        expect(j.charAt(10) === 'T' || !/^\d{4}-/.test(j), j).toBe(true);
        if (parseIsoTimestamptz(j, 84) !== null) fast++;
        const expected = pgParse(t);
        const got = timestamptzFromJson(j);
        if (expected instanceof Date) expect(got!.getTime(), `${zone} ${j}`).toBe(expected.getTime());
        else expect(got, `${zone} ${j}`).toEqual(expected);
      }
      // Only the seven odd values may leave the fast path.
      expect(fast, zone).toBeGreaterThanOrEqual(rows.length - 7);
    }
    expect(timestamptzFromJson(null)).toBeNull();
  });

  it('hands every other type to pg', () => {
    expect(FAST_TYPES.getTypeParser(20, 'text')).toBe(pg.types.getTypeParser(20, 'text'));
    expect(FAST_TYPES.getTypeParser(3802, 'text')).toBe(pg.types.getTypeParser(3802, 'text'));
  });

  it('a claim returns every field as stored, read in a session far from UTC, with odd times and every optional field set', async () => {
    // The claim sends its jobs as JSON and a job read back arrives as columns: both readings must agree, whatever
    // the session's time zone (an offset with seconds for 1850 in Amsterdam), era (BC) or fraction (microseconds).
    const tdb = await createTestDatabase('postgres');
    try {
      const driver = new PostgresDriver({ connectionString: `${PG_URL}?options=${encodeURIComponent('-c TimeZone=Europe/Amsterdam')}`, schema: tdb.schema! });
      try {
        const jobs = await insertJobs(driver, [
          { name: 'old', payloadJson: JSON.stringify(ODD_PAYLOAD) },
          { name: 'bc', key: 'k-\u00e9' },
          { name: 'micro', priority: 1 },
        ], null);
        const [old, bc, micro] = jobs.map((j) => j.id);
        const jobsTable = `"${tdb.schema}".jobs`;
        await client.query(`UPDATE ${jobsTable} SET run_at = '1850-06-01 12:00:00+00', created_at = '1850-06-01 11:00:00+00', schedule_name = 'nightly', tick_at = '2026-03-29 02:30:00.123456+02',
          trace_context = '{"traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}' WHERE id = $1`, [old]);
        await client.query(`UPDATE ${jobsTable} SET run_at = '0044-03-15 12:00:00+00 BC' WHERE id = $1`, [bc]);
        await client.query(`UPDATE ${jobsTable} SET run_at = '2026-01-01 00:00:00.999999+00', created_at = '2025-12-31 23:59:59.000001+00', progress_done = 5, progress_total = 10,
          checkpoint = '{"cursor":"x"}', checkpoint_at = '2026-01-01 00:00:00.5+00', last_error = '{"name":"Error","message":"m"}' WHERE id = $1`, [micro]);
        const claimed = await driver.jobClaim({ queues: ['default'], limit: 10, workerId: 'w-ams', leaseMs: 30_000, now: null });
        expect(claimed.map((j) => j.id)).toEqual([bc, old, micro]);
        for (const job of claimed) expect(job, job.name).toEqual(await getJob(driver, job.id));
        const byName = Object.fromEntries(claimed.map((j) => [j.name, j]));
        expect(byName.bc!.runAt.getUTCFullYear()).toBe(-43);
        expect(byName.old!.runAt.toISOString()).toBe('1850-06-01T12:00:00.000Z');
        expect([byName.old!.scheduleName, byName.old!.tickAt?.toISOString(), byName.old!.traceContext]).toEqual(['nightly', '2026-03-29T00:30:00.123Z', { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' }]);
        expect(byName.old!.payload).toEqual(ODD_PAYLOAD);
        expect([byName.micro!.runAt.toISOString(), byName.micro!.progress, byName.micro!.checkpoint]).toEqual(['2026-01-01T00:00:00.999Z', { done: 5, total: 10 }, { cursor: 'x' }]);
        expect(byName.bc!.key).toBe('k-\u00e9');
      } finally {
        await driver.close();
      }
    } finally {
      await tdb.cleanup();
    }
  });
});
