/**
 * Checkpointed iteration under SIGKILL: a 100,000-item iteration (pages of 100, checkpointed every 1,000 items) in a
 * worker process killed at 5 random points of its progress, a fresh worker started after each kill. It must
 * complete; every item is processed at least once; each crash makes at most one checkpoint window (1,000 items) be
 * processed again; the final cursor is at the end.
 */
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { createWarden } from '../../src/client/warden.js';
import { defineJob } from '../../src/job/define-job.js';
import { createTestDatabase, DRIVER_KINDS, type TestDatabase } from '../support/test-databases.js';
import { type Child, errorEvents, killAllChildren, killChild, pollUntil, spawnChild, waitForMessage } from './child-process.js';
import { type Oracle, openOracle } from './db-oracle.js';

const N = 100_000;
const PAGE = 100;
const WINDOW = 1_000;
const CRASHES = 5;

let tdb: TestDatabase | undefined;
let oracle: Oracle | undefined;

afterEach(async () => {
  await killAllChildren();
  await oracle?.close();
  oracle = undefined;
  await tdb?.cleanup();
  tdb = undefined;
});

/** A small seeded PRNG (mulberry32), so a failing run's kill points can be reproduced from its seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

describe.each(DRIVER_KINDS)('SIGKILL during ctx.iterate (%s)', (kind) => {
  it(`a ${N}-item iteration killed at ${CRASHES} random points completes; each crash repeats at most one window`, async () => {
    const seed = Number(process.env.WARDEN_TEST_SEED ?? Date.now() % 1_000_000);
    const random = prng(seed);
    // Kill points: the first batch reaching each is reported, then the worker is killed (it runs on meanwhile).
    const killAt = Array.from({ length: CRASHES }, () => 3_000 + Math.floor(random() * 85_000)).sort((a, b) => a - b);
    const context = `seed ${seed}, kill points ${killAt.join(', ')}`;

    tdb = await createTestDatabase(kind);
    oracle = await openOracle(tdb);
    await oracle.exec(
      kind === 'sqlite'
        ? 'CREATE TABLE {processed} (id INTEGER PRIMARY KEY, attempt INTEGER NOT NULL, first INTEGER NOT NULL, last INTEGER NOT NULL, worker TEXT NOT NULL)'
        : 'CREATE TABLE {processed} (id bigserial PRIMARY KEY, attempt integer NOT NULL, first integer NOT NULL, last integer NOT NULL, worker text NOT NULL)',
    );
    const sweep = defineJob({ name: 'sweep', handler: () => undefined });
    const producer = createWarden({ database: tdb.driver, jobs: [sweep], logger: pino({ level: 'silent' }) });
    const { id } = await producer.enqueue(sweep, {});

    const config = { url: tdb.url, schema: tdb.schema, n: N, page: PAGE, every: WINDOW, lease: '1500ms', heartbeat: '300ms', rescueInterval: '200ms', batchDelayMs: 1 };
    const children: Child[] = [];
    const start = (i: number) => {
      const child = spawnChild(`w${i}`, 'iterate-worker.ts', { ...config, name: `w${i}` });
      children.push(child);
      return child;
    };
    let next = start(0);
    const killedAt: { attempt: number; seen: number; recorded: number }[] = [];
    for (const [i, target] of killAt.entries()) {
      const child = next;
      const batch = await waitForMessage(child, (m) => m.type === 'batch' && m.last >= target, 60_000);
      // The next worker starts now, so its start-up overlaps the wait for the lease to expire.
      child.signal('SIGKILL');
      expect(await killChild(child), context).toEqual({ code: null, signal: 'SIGKILL' });
      const recorded = await oracle.number('SELECT max(last) FROM {processed}');
      killedAt.push({ attempt: batch.attempt as number, seen: batch.last as number, recorded });
      next = start(i + 1);
    }
    const last = next;
    const done = await pollUntil('the iteration to complete', () => tdb!.driver.jobGet({ id }), (row) => row?.state === 'completed', { timeoutMs: 60_000, intervalMs: 100, children: [last] });
    expect(killedAt.map((k) => k.attempt), context).toEqual([1, 2, 3, 4, 5]);

    // Completed, with the final cursor at the end and the progress complete.
    expect(done, context).toMatchObject({ state: 'completed', attempt: CRASHES + 1, checkpoint: { cursor: N, finished: true }, progress: { done: N, total: N } });
    const attempts = await tdb.driver.jobAttemptList({ id });
    expect(attempts.map((a) => a.outcome), context).toEqual([...Array(CRASHES).fill('lost'), 'completed']);
    const iterated = await waitForMessage(last, (m) => m.type === 'iterated', 5_000);
    expect(iterated, context).toMatchObject({ attempt: CRASHES + 1, done: N, total: N, resumed: true });

    // Every item at least once; per crash, at most one window processed again.
    const ranges = await oracle.all<{ attempt: unknown; first: unknown; last: unknown }>('SELECT attempt, first, last FROM {processed} ORDER BY id');
    const seen = new Uint8Array(N + 1);
    const repeatedBy = new Map<number, number>();
    for (const r of ranges) {
      const attempt = Number(r.attempt);
      for (let i = Number(r.first); i <= Number(r.last); i++) {
        if (seen[i]! > 0) repeatedBy.set(attempt, (repeatedBy.get(attempt) ?? 0) + 1);
        seen[i]!++;
      }
    }
    const missing: number[] = [];
    for (let i = 1; i <= N; i++) if (seen[i] === 0) missing.push(i);
    expect(missing.slice(0, 10), context).toEqual([]);
    const repeats = [...repeatedBy].sort((a, b) => a[0] - b[0]);
    for (const [attempt, count] of repeats) expect(count, `items repeated by attempt ${attempt} (${context})`).toBeLessThanOrEqual(WINDOW);
    const processedTotal = ranges.reduce((n, r) => n + Number(r.last) - Number(r.first) + 1, 0);
    expect(processedTotal - N, context).toBeLessThanOrEqual(WINDOW * CRASHES);
    // Each later attempt resumed at a checkpoint: a window boundary, no later than where the killed attempt got to.
    for (let attempt = 2; attempt <= CRASHES + 1; attempt++) {
      const firstOf = ranges.find((r) => Number(r.attempt) === attempt);
      expect(firstOf, `attempt ${attempt} processed something (${context})`).toBeDefined();
      const resumedAt = Number(firstOf!.first) - 1;
      expect(resumedAt % WINDOW, context).toBe(0);
      expect(resumedAt, context).toBeLessThanOrEqual(killedAt[attempt - 2]!.recorded);
      expect(killedAt[attempt - 2]!.recorded - resumedAt, context).toBeLessThanOrEqual(WINDOW);
    }
    for (const c of children) {
      expect(c.ofType('crash'), c.describe()).toEqual([]);
      expect(errorEvents(c), c.describe()).toEqual([]);
    }
    console.log(`[${kind}] ${context}; repeated per attempt: ${JSON.stringify(repeats)}; processed ${processedTotal}`);
  }, 120_000);
});
