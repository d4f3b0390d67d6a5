/**
 * A poison job (reference scenario 10): its handler crashes the process (`process.abort()`); it is enqueued with 7
 * ordinary jobs that are still running each time it does. The worker process is restarted after every crash. The
 * poison job must reach the dead letters by `maxLost` (3, the default) and nothing else: the ordinary jobs are lost
 * with it on its first two crashes, then, one loss from the dead letters, run alone (`isolateLost`) and complete.
 * Before `isolateLost`, every crash was charged to all 8 and all 8 ended dead.
 */
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { createWarden, defineJob } from '../../src/index.js';
import { createTestDatabase, DRIVER_KINDS, type TestDatabase } from '../support/test-databases.js';
import { type Child, killAllChildren, pollUntil, spawnChild } from './child-process.js';

const SCRIPT = 'poison-worker.ts';
let tdb: TestDatabase | undefined;

afterEach(async () => {
  await killAllChildren();
  await tdb?.cleanup();
  tdb = undefined;
});

describe.each(DRIVER_KINDS)('poison message crashing its worker (%s)', (kind) => {
  it('dead-letters the poison job after 3 losses; the 7 jobs lost beside it complete', async () => {
    tdb = await createTestDatabase(kind);
    const poison = defineJob({ name: 'poison', handler: () => undefined });
    const innocent = defineJob({ name: 'innocent', handler: () => undefined });
    const producer = createWarden({ database: tdb.driver, jobs: [poison, innocent], logger: pino({ level: 'silent' }) });
    const [p, ...others] = await producer.enqueueMany([
      { job: poison, payload: {} },
      ...Array.from({ length: 7 }, (_, i) => ({ job: innocent, payload: { i } })),
    ]);

    // Keep one worker process alive: restart it whenever it dies.
    const children: Child[] = [];
    let done = false;
    const spawn = (): void => {
      const c = spawnChild(`w${children.length}`, SCRIPT, { url: tdb!.url, schema: tdb!.schema, name: `w${children.length}` });
      children.push(c);
      void c.closed.then(() => {
        if (!done) spawn();
      });
    };
    spawn();

    const settled = (s: string | undefined) => s === 'completed' || s === 'dead' || s === 'cancelled';
    const ids = [p!.id, ...others.map((o) => o.id)];
    try {
      await pollUntil(
        'every job settled',
        async () => Promise.all(ids.map(async (id) => (await tdb!.driver.jobGet({ id }))?.state)),
        (states) => states.every(settled),
        { timeoutMs: 90_000, intervalMs: 200 },
      );
    } finally {
      done = true;
    }
    const crashes = children.filter((c) => c.exitInfo?.signal === 'SIGABRT').length;

    const poisonRow = await tdb.driver.jobGet({ id: p!.id });
    const poisonAttempts = await tdb.driver.jobAttemptList({ id: p!.id });
    const others_ = await Promise.all(others.map(async (o) => {
      const row = (await tdb!.driver.jobGet({ id: o.id }))!;
      const attempts = await tdb!.driver.jobAttemptList({ id: o.id });
      return { id: o.id, state: row.state, lostCount: row.lostCount, outcomes: attempts.map((a) => a.outcome), error: row.lastError?.name ?? null };
    }));

    // The poison job: dead after exactly 3 attempts, each lost to the crash it caused (maxLost, not maxAttempts).
    expect(crashes).toBe(3);
    expect(poisonRow).toMatchObject({ state: 'dead', attempt: 3, lostCount: 3 });
    expect(poisonAttempts.map((a) => a.outcome)).toEqual(['lost', 'lost', 'lost']);
    // The other jobs never failed: lost at most with its first two crashes, then completed, not dead-lettered with it.
    expect(others_.filter((o) => o.state !== 'completed' || o.lostCount > 2)).toEqual([]);
    for (const o of others_) expect(o.outcomes.at(-1)).toBe('completed');
  }, 120_000);
});
