/**
 * The array literals the PostgreSQL driver writes for its batch statements read back, on the real server, as
 * exactly the arrays given; and any element without a plain text form sends the array to `pg` unchanged (so it
 * is escaped, or refused, as before).
 * @module
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  boolArrayParam, floatArrayParam, idArrayParam, intArrayParam, nullableTextArrayParam, wordArrayParam,
} from '../../src/driver/postgres/postgres-array-params.js';
import { openPgClient } from '../conformance/helpers.js';

describe('postgres array parameters', () => {
  let client: pg.Client;
  beforeAll(async () => {
    client = await openPgClient();
  });
  afterAll(async () => {
    await client.end();
  });

  /** What the server reads a parameter as, cast to `type`, returned as text so nothing is parsed on the way. */
  async function read(param: unknown, type: string): Promise<string | null> {
    const { rows } = await client.query<{ v: string | null }>(`SELECT $1::${type}::text AS v`, [param]);
    return rows[0]!.v;
  }

  it('writes literals the server reads as the same arrays', async () => {
    const cases: [unknown, unknown, string][] = [
      [idArrayParam(['1', '42', '9223372036854775807']), ['1', '42', '9223372036854775807'], 'bigint[]'],
      [intArrayParam([0, -3, 2 ** 53 - 1]), [0, -3, 2 ** 53 - 1], 'bigint[]'],
      [floatArrayParam([0, 1.5, -2.25, 1e21, 5e-7]), [0, 1.5, -2.25, 1e21, 5e-7], 'float8[]'],
      [wordArrayParam(['completed', 'retrying', 'dead_letter']), ['completed', 'retrying', 'dead_letter'], 'text[]'],
      [boolArrayParam([true, false]), [true, false], 'bool[]'],
      [nullableTextArrayParam([null, null, null]), [null, null, null], 'text[]'],
      [nullableTextArrayParam([]), [], 'text[]'],
    ];
    for (const [param, values, type] of cases) {
      expect(typeof param, String(values)).toBe('string');
      expect(await read(param, type), String(values)).toBe(await read(values, type));
    }
  });

  it('hands arrays without a plain form to pg as they are', async () => {
    const quoted = ['a,b', 'x"y', 'null'];
    expect(wordArrayParam(quoted)).toBe(quoted);
    expect(wordArrayParam(['NULL'])).toEqual(['NULL']);
    expect(idArrayParam(['1', '2 ', '3'])).toEqual(['1', '2 ', '3']);
    expect(intArrayParam([1, 1.5])).toEqual([1, 1.5]);
    expect(floatArrayParam([1, Number.NaN])).toEqual([1, Number.NaN]);
    expect(nullableTextArrayParam([null, '{"a":"b,c"}'])).toEqual([null, '{"a":"b,c"}']);
    // What pg then sends is escaped: the word "null" stays a string, not SQL NULL.
    expect(await read(wordArrayParam(quoted), 'text[]')).toBe('{"a,b","x\\"y","null"}');
    // And a value the column type cannot hold is refused by the server, as it was before.
    await expect(read(intArrayParam([1, 1.5]), 'bigint[]')).rejects.toThrow(/invalid input syntax for type bigint/);
  });
});
