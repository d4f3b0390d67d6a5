/**
 * A keyed `enqueueMany` gets the same ids, and its jobs are claimed in the same order, on both drivers. PostgreSQL
 * inserts in rounds (every unkeyed input and the first input of each key, then each key's second input, …), each
 * in input order; SQLite inserted keyed inputs in ascending key order instead (a mirror of PostgreSQL's key lock
 * order, which only prevents deadlocks there), so the same call gave ids, and claim order, in key order.
 * @module
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Warden } from '../../src/client/warden.js';
import type { EnqueueItem } from '../../src/client/enqueuer.js';
import { defineJob } from '../../src/job/define-job.js';
import { claim } from '../conformance/helpers.js';
import { makeWarden } from '../runtime/helpers.js';
import { createTestDatabase, DRIVER_KINDS, type TestDatabase } from '../support/test-databases.js';

const task = defineJob({ name: 'task', handler: () => undefined });

/** Input positions sorted by the ids the results got. */
function idOrder(results: { id: string }[]): number[] {
  return results.map((r, i) => [BigInt(r.id), i] as const).sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)).map(([, i]) => i);
}

describe.each(DRIVER_KINDS)('enqueueMany id and claim order (%s)', (kind) => {
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

  it('gives ids in input order to distinct keys in descending order, mixed with unkeyed items', async () => {
    const items: EnqueueItem[] = [
      { job: task, payload: { n: 0 }, options: { key: 'z-first' } },
      { job: task, payload: { n: 1 } },
      { job: task, payload: { n: 2 }, options: { key: 'm-third' } },
      { job: task, payload: { n: 3 }, options: { unique: { key: 'a-fourth', window: '1h' } } },
      { job: task, payload: { n: 4 } },
    ];
    const results = await warden.enqueueMany(items);
    expect(idOrder(results)).toEqual([0, 1, 2, 3, 4]);
    // Equal priority and due time: claimed in id order, which is input order.
    const claimed = await claim(tdb.driver, { limit: 10 });
    expect(claimed.map((j) => (j.payload as { n: number }).n)).toEqual([0, 1, 2, 3, 4]);
  });

  it('inserts a key given twice in the round after its first input, as PostgreSQL does', async () => {
    // A holder that is queued is no duplicate for `states: ['running']`: the second "b" is a job of its own.
    const unique = (key: string) => ({ unique: { key, states: ['running' as const] } });
    const results = await warden.enqueueMany([
      { job: task, payload: { n: 0 }, options: unique('b') },
      { job: task, payload: { n: 1 }, options: unique('b') },
      { job: task, payload: { n: 2 }, options: unique('a') },
      { job: task, payload: { n: 3 } },
    ]);
    expect(results.map((r) => r.duplicate)).toEqual([false, false, false, false]);
    // First round: inputs 0, 2, 3; second round: input 1.
    expect(idOrder(results)).toEqual([0, 2, 3, 1]);
  });
});
