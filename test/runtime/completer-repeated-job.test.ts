/**
 * The completer and two endings of one job queued together: a stale attempt's (its job handed back, or its lease
 * expired, and claimed again) and the live attempt's. The driver reports applied and stale by job id, so in one
 * batch the two could not be told apart and both were settled alike: the live attempt was told its ending was stale
 * (no `job:completed`, a stale write counted) although it was written. Each must be settled by its own lease: the
 * applied one is the ending under the newest lease.
 * Real databases, both kinds.
 * @module
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/clock/clock.js';
import { Completer } from '../../src/runtime/completer.js';
import { at, claim, finishOf, insertJob } from '../conformance/helpers.js';
import { overrideDriver } from '../support/override-driver.js';
import { createTestDatabase, DRIVER_KINDS, type TestDatabase } from '../support/test-databases.js';

describe.each(DRIVER_KINDS)('Completer with two endings of one job (%s)', (kind) => {
  let tdb: TestDatabase;
  beforeEach(async () => {
    tdb = await createTestDatabase(kind);
  });
  afterEach(async () => {
    await tdb.cleanup();
  });

  it.each([
    ['the stale one first', [0, 1]],
    ['the live one first', [1, 0]],
  ] as const)('settles each by its own lease, %s', async (_, order) => {
    const d = tdb.driver;
    const job = await insertJob(d);
    const [first] = await claim(d);
    await d.jobRelease({ leases: [{ id: job.id, leaseToken: first!.leaseToken }], now: at(1) });
    const [second] = await claim(d, { now: at(2) });
    const leases = [first!, second!];
    const batches: number[] = [];
    const driver = overrideDriver(d, {
      jobFinishMany: (real) => (params) => {
        batches.push(params.items.length);
        return real(params);
      },
    });
    const completer = new Completer({ driver, clock: systemClock, onError: (error) => { throw error; } });
    // Queued in the same turn: they share one batch.
    const results = order.map((i) => completer.finish(finishOf(leases[i]!)));
    const settled = await Promise.all(results);
    expect(order.map((i, n) => [leases[i]!.leaseToken, settled[n]])).toEqual(order.map((i) => [leases[i]!.leaseToken, i === 1 ? 'applied' : 'stale']));
    // Both in one batch: two endings of one job cost no second batch.
    expect(batches).toEqual([2]);
    expect(await d.jobGet({ id: job.id })).toMatchObject({ state: 'completed', leaseToken: 2 });
  });
});
