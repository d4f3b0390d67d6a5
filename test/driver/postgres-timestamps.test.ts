/**
 * The fast `timestamptz` parser agrees with `pg`'s own on every form PostgreSQL prints with `DateStyle` ISO, in
 * any session time zone and at any fraction length, leaves the rest (BC, infinity, years before 100) to `pg`'s
 * parser, and reads nothing malformed.
 * @module
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FAST_TYPES, parseIsoTimestamptz } from '../../src/driver/postgres/postgres-timestamps.js';
import { openPgClient } from '../conformance/helpers.js';

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

  it('hands every other type to pg', () => {
    expect(FAST_TYPES.getTypeParser(20, 'text')).toBe(pg.types.getTypeParser(20, 'text'));
    expect(FAST_TYPES.getTypeParser(3802, 'text')).toBe(pg.types.getTypeParser(3802, 'text'));
  });
});
