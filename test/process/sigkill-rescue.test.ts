/**
 * Crash recovery: a worker process holding a job is SIGKILLed (no shutdown code runs). Another worker must
 * rescue the job once — and only once — its lease has expired, and run it to completion on a second attempt.
 */
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { createWarden, defineJob } from '../../src/index.js';
import { createTestDatabase, DRIVER_KINDS, type TestDatabase } from '../support/test-databases.js';
import { errorEvents, killAllChildren, pollUntil, spawnChild, waitForExit, waitForMessage } from './child-process.js';
import { type Oracle, openOracle } from './db-oracle.js';

let tdb: TestDatabase | undefined;
let oracle: Oracle | undefined;

afterEach(async () => {
  await killAllChildren();
  await oracle?.close();
  oracle = undefined;
  await tdb?.cleanup();
  tdb = undefined;
});

describe.each(DRIVER_KINDS)('SIGKILL during a job (%s)', (kind) => {
  it('rescues the job after its lease expires and completes it on a second attempt', async () => {
    tdb = await createTestDatabase(kind);
    oracle = await openOracle(tdb);
    const driver = tdb.driver;
    const stub = defineJob({ name: 'long', handler: () => undefined });
    const producer = createWarden({ database: driver, jobs: [stub], logger: pino({ level: 'silent' }) });
    const { id } = await producer.enqueue(stub, {});
    const base = { url: tdb.url, schema: tdb.schema, lease: '2s', heartbeat: '500ms' };

    const a = spawnChild('A', 'lease-worker.ts', { ...base, name: 'A', rescueInterval: '5s' });
    const started = await waitForMessage(a, (m) => m.type === 'event' && m.event === 'job:started' && m.job.id === id, 60_000);
    expect(started).toMatchObject({ attempt: 1, leaseToken: 1 });
    const workerA = started.workerId as string;

    // The job is running under A's lease. B, a second worker whose rescuer looks every 250 ms, joins while A
    // is alive: as long as A renews its lease, B must leave the job alone.
    const claimed = await driver.jobGet({ id });
    expect(claimed).toMatchObject({ state: 'running', attempt: 1, leaseToken: 1, leaseWorker: workerA });
    const b = spawnChild('B', 'lease-worker.ts', { ...base, name: 'B', rescueInterval: '250ms' });
    await waitForMessage(b, (m) => m.type === 'ready', 60_000);
    // Longer than a whole lease, measured on the database clock from when B was ready.
    const since = (await driver.dbNow()).getTime();
    await pollUntil(
      'the database clock to advance 2.5 s (more than a lease) with B running',
      async () => (await driver.dbNow()).getTime(),
      (now) => now > since + 2_500,
      { timeoutMs: 15_000, children: [a, b] },
    );
    const alive = await driver.jobGet({ id });
    expect(alive, 'the job while A still heartbeats').toMatchObject({ state: 'running', attempt: 1, leaseToken: 1, leaseWorker: workerA, lostCount: 0 });
    expect(alive!.leaseExpiresAt!.getTime()).toBeGreaterThan(since);
    expect(b.ofType('event').filter((e) => e.event === 'job:rescued' || e.event === 'job:started')).toEqual([]);

    a.signal('SIGKILL');
    expect(await waitForExit(a, 10_000)).toEqual({ code: null, signal: 'SIGKILL' });
    const orphan = await driver.jobGet({ id });
    expect(orphan).toMatchObject({ state: 'running', attempt: 1, leaseToken: 1, leaseWorker: workerA });
    const expiredAt = orphan!.leaseExpiresAt!;

    const done = await pollUntil('the job completed', () => driver.jobGet({ id }), (row) => row?.state === 'completed', { timeoutMs: 30_000, children: [b] });
    const bStarted = await waitForMessage(b, (m) => m.type === 'event' && m.event === 'job:started' && m.job.id === id, 5_000);
    await waitForMessage(b, (m) => m.type === 'event' && m.event === 'job:completed' && m.job.id === id, 5_000);
    const workerB = bStarted.workerId as string;
    expect(workerB).not.toBe(workerA);

    expect(done).toMatchObject({ state: 'completed', attempt: 2, leaseToken: 2, lostCount: 1, leaseWorker: null, leaseExpiresAt: null });
    expect(await oracle.number("SELECT count(*) FROM {jobs} WHERE state = 'running'")).toBe(0);

    const attempts = await driver.jobAttemptList({ id });
    expect(attempts.map((x) => ({ attempt: x.attempt, leaseToken: x.leaseToken, outcome: x.outcome, workerId: x.workerId, error: x.error?.name ?? null }))).toEqual([
      { attempt: 1, leaseToken: 1, outcome: 'lost', workerId: workerA, error: 'LeaseExpiredError' },
      { attempt: 2, leaseToken: 2, outcome: 'completed', workerId: workerB, error: null },
    ]);
    // Rescued only after the lease had expired (database time), never while A's lease still held.
    expect(attempts[0]!.finishedAt.getTime()).toBeGreaterThanOrEqual(expiredAt.getTime());
    expect(attempts[1]!.startedAt!.getTime()).toBeGreaterThanOrEqual(attempts[0]!.finishedAt.getTime());

    // B rescued it exactly once and ran the second attempt; nothing went wrong inside B.
    const bEvents = b.ofType('event');
    expect(bEvents.filter((e) => e.event === 'job:rescued').map((e) => ({ id: e.job.id, attempt: e.attempt, nextState: e.nextState }))).toEqual([{ id, attempt: 1, nextState: 'retrying' }]);
    expect(bEvents.filter((e) => e.event === 'job:started' || e.event === 'job:completed' || e.event === 'job:failed').map((e) => [e.event, e.attempt])).toEqual([
      ['job:started', 2],
      ['job:completed', 2],
    ]);
    expect(bEvents.filter((e) => e.event === 'job:stale-write-rejected')).toEqual([]);
    expect(errorEvents(b)).toEqual([]);
    expect(errorEvents(a)).toEqual([]);
  });
});
