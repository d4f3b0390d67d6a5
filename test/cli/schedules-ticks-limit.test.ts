/**
 * `warden schedules ticks --limit <n>`: anything but a whole number from 1 to 1,000 is one line naming the flag and
 * the accepted range, before the database is read; `--limit 1000` (the most `warden.schedules.ticks` lists) is accepted.
 * @module
 */
import { afterEach, describe, expect, it } from 'vitest';
import { type CliDatabase, cli, expectOneLineError, migratedDatabase } from './cli-helpers.js';

let db: CliDatabase;
afterEach(async () => {
  await db?.cleanup();
});

describe('warden schedules ticks --limit', () => {
  it.each([
    ['Infinity', /Expected --limit to be a whole number, got "Infinity"/],
    ['NaN', /Expected --limit to be a whole number, got "NaN"/],
    ['2.5', /Expected --limit to be a whole number, got "2.5"/],
    ['1e3', /Expected --limit to be a whole number, got "1e3"/],
    ['1001', /Expected --limit to be a whole number from 1 to 1000, got "1001"/],
    ['-1', /Expected --limit to be a whole number from 1 to 1000, got "-1"/],
  ])('rejects --limit %s in one line', async (limit, message) => {
    db = await migratedDatabase('sqlite');
    expectOneLineError(await cli(['schedules', 'ticks', 'hourly-cleanup', '--limit', limit, ...db.args]), 1, message);
  });

  it('accepts --limit 1000', async () => {
    db = await migratedDatabase('sqlite');
    // No schedule of that name: the limit passed, and the database was read.
    const result = await cli(['schedules', 'ticks', 'hourly-cleanup', '--limit', '1000', ...db.args]);
    expectOneLineError(result, 1, /hourly-cleanup/);
    expect(result.err).not.toMatch(/--limit/);
  });
});
