/**
 * The `random` option feeds the retry jitter. A source that returns something outside [0, 1) (NaN, 1.5, -1, a
 * string) must not make the delay NaN (the database refuses it: the ending failed and the job stayed leased until
 * the rescue took it as lost) nor break the jitter's bounds: such a value is replaced by `Math.random()`'s.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Warden } from '../../src/client/warden.js';
import { defineJob } from '../../src/job/define-job.js';
import { retryDelayMs, DEFAULT_RETRY } from '../../src/job/retry-policy.js';
import { createTestDatabase, DRIVER_KINDS, type TestDatabase } from '../support/test-databases.js';
import { makeWarden, record, TestClock } from './helpers.js';

const fails = defineJob({ name: 'fails', handler: async () => { throw new Error('boom'); } });
const faulty: [string, () => number][] = [
  ['NaN', () => Number.NaN],
  ['1.5', () => 1.5],
  ['-1', () => -1],
  ['a string', () => '0.5' as unknown as number],
];

describe('retryDelayMs with a faulty random source', () => {
  it.each(faulty)('keeps the delay within the jitter bounds when random gives %s', (_, random) => {
    const fixed = { ...DEFAULT_RETRY, type: 'fixed' as const, baseMs: 1_000 };
    for (let i = 0; i < 50; i++) {
      const full = retryDelayMs({ ...fixed, jitter: 'full' }, 1, random);
      expect(full).toBeGreaterThanOrEqual(0);
      expect(full).toBeLessThan(1_000);
      const equal = retryDelayMs({ ...fixed, jitter: 'equal' }, 1, random);
      expect(equal).toBeGreaterThanOrEqual(500);
      expect(equal).toBeLessThan(1_000);
    }
  });

  it('uses the source’s value when it is in [0, 1)', () => {
    const fixed = { ...DEFAULT_RETRY, type: 'fixed' as const, baseMs: 1_000 };
    expect(retryDelayMs({ ...fixed, jitter: 'full' }, 1, () => 0.25)).toBe(250);
    expect(retryDelayMs({ ...fixed, jitter: 'equal' }, 1, () => 0)).toBe(500);
  });
});

describe.each(DRIVER_KINDS)('a failed attempt with a faulty random source (%s)', (kind) => {
  let tdb: TestDatabase;
  let warden: Warden;
  let clock: TestClock;
  beforeEach(async () => {
    tdb = await createTestDatabase(kind);
    clock = new TestClock();
  });
  afterEach(async () => {
    await warden.close();
    await tdb.cleanup();
  });

  it('is written as retrying, its delay within the first backoff', async () => {
    warden = makeWarden(tdb, { clock, jobs: [fails], random: () => Number.NaN });
    await warden.migrate();
    const errors = record(warden, 'error');
    const { id } = await warden.enqueue(fails, {});
    await warden.drain();
    const row = (await warden.jobs.get(id))!;
    expect(row.state).toBe('retrying');
    expect(errors).toEqual([]);
    // Equal jitter after the first failure: half to all of the 1 s base.
    const delay = row.runAt.getTime() - clock.now();
    expect(delay).toBeGreaterThanOrEqual(500);
    expect(delay).toBeLessThanOrEqual(1_000);
  });
});
