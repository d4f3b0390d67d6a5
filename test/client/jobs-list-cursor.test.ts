/**
 * `warden.jobs.list({ beforeId, limit })`: the cursor and the limit are checked once, in `JobOperations.list`, the
 * same on both databases. A cursor is a job id as Warden returns them (decimal, 1..2^63-1, no leading zeros); a
 * limit a whole number from 1 to 1,000 (default 50). Anything else rejects with InvalidOptionError instead of being
 * read as "no bound" (a pager would start again from the newest job) or replaced by some default. Drivers called
 * directly share one reading of both (`jobListBounds`).
 * @module
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Warden } from '../../src/client/warden.js';
import { InvalidOptionError } from '../../src/errors.js';
import type { JobRow } from '../../src/job/job-record.js';
import { caught, expectTyped } from '../idempotency/helpers.js';
import { makeWarden } from '../runtime/helpers.js';
import { createTestDatabase, DRIVER_KINDS, makeInsert, type TestDatabase } from '../support/test-databases.js';

/** Cursors that are not job ids: zero, leading zeros, past the signed 64-bit range, not decimal, not a string. */
const BAD_CURSORS: [string, unknown][] = [
  ['zero', '0'],
  ['all zeros', '000'],
  ['a leading zero', '07'],
  ['leading zeros before a real id', '0000000000000000003'],
  ['one past the bigint maximum', '9223372036854775808'],
  ['twenty digits', '99999999999999999999'],
  ['a huge number', '1'.repeat(40)],
  ['negative', '-5'],
  ['signed', '+5'],
  ['fractional', '5.0'],
  ['exponent', '5e3'],
  ['hex', '0x10'],
  ['blank-padded', ' 5'],
  ['empty', ''],
  ['words', 'abc'],
  ['a number', 5],
  ['a bigint', 5n],
  ['null', null],
];

/** Limits outside 1..1,000 or not whole numbers. */
const BAD_LIMITS: [string, unknown][] = [
  ['Infinity', Infinity],
  ['-Infinity', -Infinity],
  ['NaN', NaN],
  ['zero', 0],
  ['negative', -1],
  ['fractional', 2.5],
  ['one over the maximum', 1_001],
  ['huge', 1e12],
  ['past the safe integers', 2 ** 64],
  ['a numeric string', '5'],
  ['null', null],
];

describe.each(DRIVER_KINDS)('jobs.list cursor and limit (%s)', (kind) => {
  let tdb: TestDatabase;
  let warden: Warden;
  let jobs: JobRow[];

  beforeEach(async () => {
    tdb = await createTestDatabase(kind);
    warden = makeWarden(tdb);
    jobs = (await tdb.driver.jobInsertMany({ jobs: Array.from({ length: 60 }, (_, i) => makeInsert({ name: `j${i}` })), now: null })).map((r) => r.job);
  });

  afterEach(async () => {
    await warden?.close();
    await tdb?.cleanup();
  });

  const newestFirst = (): string[] => [...jobs].reverse().map((j) => j.id);
  const ids = (rows: JobRow[]): string[] => rows.map((r) => r.id);

  it('pages backwards from the newest job with limit and beforeId, ending with an empty page', async () => {
    const seen: string[] = [];
    let beforeId: string | undefined;
    for (;;) {
      const page = await warden.jobs.list({ limit: 25, beforeId });
      if (page.length === 0) break;
      seen.push(...ids(page));
      beforeId = page[page.length - 1]!.id;
    }
    expect(seen).toEqual(newestFirst());
  });

  it('defaults to 50; accepts 1 and 1,000; the largest id is a valid cursor', async () => {
    expect(ids(await warden.jobs.list())).toEqual(newestFirst().slice(0, 50));
    expect(ids(await warden.jobs.list({ limit: 1 }))).toEqual(newestFirst().slice(0, 1));
    expect(ids(await warden.jobs.list({ limit: 1_000 }))).toEqual(newestFirst());
    expect(ids(await warden.jobs.list({ limit: 3, beforeId: '9223372036854775807' }))).toEqual(newestFirst().slice(0, 3));
    // A cursor below every id is a bound like any other: an empty page, not the first one again.
    expect(await warden.jobs.list({ beforeId: '1' })).toEqual([]);
  });

  it.each(BAD_CURSORS)('rejects a beforeId that is %s with InvalidOptionError, never restarting from the newest job', async (_title, beforeId) => {
    const listing = warden.jobs.list({ limit: 5, beforeId: beforeId as string });
    const error = expectTyped(await caught(() => listing), InvalidOptionError);
    expect([error.field, error.value]).toEqual(['beforeId', beforeId]);
    expect(error.message).toMatch(/^Expected beforeId to be a job id \(a decimal string of a whole number from 1 to 9223372036854775807, without leading zeros\), got /);
  });

  it.each(BAD_LIMITS)('rejects a limit that is %s with InvalidOptionError instead of substituting one', async (_title, limit) => {
    const listing = warden.jobs.list({ limit: limit as number });
    const error = expectTyped(await caught(() => listing), InvalidOptionError);
    expect([error.field, error.value]).toEqual(['limit', limit]);
    expect(error.message).toMatch(/^Expected limit to be a whole number from 1 to 1000, got /);
  });

  it('rejects the promise rather than throwing at the call', async () => {
    let listing: Promise<JobRow[]> | undefined;
    expect(() => (listing = warden.jobs.list({ beforeId: '0' }))).not.toThrow();
    await expect(listing).rejects.toBeInstanceOf(InvalidOptionError);
  });

  describe('the driver, called directly, reads the bounds alike on both databases', () => {
    it.each(BAD_CURSORS)('refuses a beforeId that is %s', async (_title, beforeId) => {
      const error = expectTyped(await caught(() => tdb.driver.jobList({ beforeId: beforeId as string })), InvalidOptionError);
      expect(error.field).toBe('beforeId');
    });

    it.each([['Infinity', Infinity], ['NaN', NaN], ['fractional', 2.5], ['a numeric string', '5']] as const)('refuses a limit that is %s', async (_title, limit) => {
      const error = expectTyped(await caught(() => tdb.driver.jobList({ limit: limit as number })), InvalidOptionError);
      expect(error.field).toBe('limit');
    });

    it('clamps a whole limit to 1..1,000 and defaults to 50', async () => {
      expect(await tdb.driver.jobList({ limit: 0 })).toHaveLength(1);
      expect(await tdb.driver.jobList({ limit: -3 })).toHaveLength(1);
      expect(await tdb.driver.jobList({ limit: 1e12 })).toHaveLength(60);
      expect(await tdb.driver.jobList({})).toHaveLength(50);
    });
  });
});
