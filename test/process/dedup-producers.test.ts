/**
 * Deduplication under concurrent producers in many processes: 50 producers spread over 4 processes enqueue the same
 * key 100 times each, all starting at once. The database must hold exactly one job, and every one of the 5,000
 * enqueues must return that job's id (one of them as the insert, the rest as duplicates).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createTestDatabase, DRIVER_KINDS, type TestDatabase } from '../support/test-databases.js';
import { killAllChildren, spawnChild, waitForExit, waitForMessage } from './child-process.js';
import { type Oracle, openOracle } from './db-oracle.js';

const PROCESSES = 4;
const PRODUCERS = 50;
const ENQUEUES = 100;
const KEY = 'order:4711';

let tdb: TestDatabase | undefined;
let oracle: Oracle | undefined;

afterEach(async () => {
  await killAllChildren();
  await oracle?.close();
  oracle = undefined;
  await tdb?.cleanup();
  tdb = undefined;
});

describe.each(DRIVER_KINDS)('concurrent producers, one key (%s)', (kind) => {
  it(`${PRODUCERS} producers in ${PROCESSES} processes × ${ENQUEUES} enqueues of one key: exactly 1 job, every caller gets its id`, async () => {
    tdb = await createTestDatabase(kind);
    oracle = await openOracle(tdb);

    // 13 + 13 + 12 + 12 = 50 producers.
    const split = Array.from({ length: PROCESSES }, (_, i) => Math.floor(PRODUCERS / PROCESSES) + (i < PRODUCERS % PROCESSES ? 1 : 0));
    expect(split.reduce((a, b) => a + b, 0)).toBe(PRODUCERS);
    const children = split.map((producers, i) =>
      spawnChild(`p${i}`, 'dedup-producer.ts', { url: tdb!.url, schema: tdb!.schema, name: `p${i}`, producers, enqueues: ENQUEUES, key: KEY }),
    );
    await Promise.all(children.map((c) => waitForMessage(c, (m) => m.type === 'ready', 60_000)));
    // Start every process at once.
    for (const c of children) c.signal('SIGUSR1');
    // PostgreSQL serializes every enqueue of one key on its job_keys row lock (a transaction of several round trips
    // each), so 5,000 enqueues of one hot key take tens of seconds there; SQLite takes a few.
    const results = await Promise.all(children.map((c) => waitForMessage(c, (m) => m.type === 'result', 150_000)));
    const exits = await Promise.all(children.map((c) => waitForExit(c, 20_000)));
    expect(exits).toEqual(children.map(() => ({ code: 0, signal: null })));

    const reports = results.flatMap((r) => r.reports as { producer: string; ids: Record<string, number>; inserted: number; replaced: number; errors: unknown[] }[]);
    expect(reports).toHaveLength(PRODUCERS);
    expect(reports.flatMap((r) => r.errors)).toEqual([]);

    // The database: exactly one job, holding the key.
    const jobs = await oracle.all<{ id: unknown; key: string; state: string }>('SELECT id, key, state FROM {jobs}');
    expect(jobs).toHaveLength(1);
    const jobId = String(jobs[0]!.id);
    expect(jobs[0]).toMatchObject({ key: KEY, state: 'queued' });
    const keys = await oracle.all<{ key: string; job_id: unknown }>('SELECT key, job_id FROM {job_keys}');
    expect(keys.map((k) => ({ key: k.key, jobId: String(k.job_id) }))).toEqual([{ key: KEY, jobId }]);

    // Every caller learned that id, on every one of its enqueues; exactly one enqueue inserted it.
    for (const r of reports) expect(r.ids, `ids seen by producer ${r.producer}`).toEqual({ [jobId]: ENQUEUES });
    expect(reports.reduce((n, r) => n + r.inserted, 0)).toBe(1);
    expect(reports.reduce((n, r) => n + r.replaced, 0)).toBe(0);
    // The stored payload is the inserting producer's first enqueue.
    const winner = reports.find((r) => r.inserted === 1)!;
    const [stored] = await oracle.all<{ payload: unknown }>('SELECT payload FROM {jobs}');
    const payload = typeof stored!.payload === 'string' ? JSON.parse(stored!.payload) : stored!.payload;
    expect(payload).toEqual({ producer: winner.producer, i: 0 });
  }, 180_000);
});
