/**
 * Shutdown through the library's `handleShutdownSignals`: on SIGTERM a worker stops claiming at once, lets
 * in-flight jobs finish within the grace period, returns the rest for retry (attempt counted, `aborted`
 * attempt row) and exits 0. A second SIGTERM exits at once with 130; the jobs it held are rescued by another
 * worker after their leases expire.
 */
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { createWarden, defineJob, type JobRow, type Warden } from '../../src/index.js';
import { createTestDatabase, DRIVER_KINDS, type TestDatabase } from '../support/test-databases.js';
import { errorEvents, killAllChildren, pollUntil, spawnChild, waitForExit, waitForMessage } from './child-process.js';
import { ALL_ATTEMPTS, type Oracle, openOracle } from './db-oracle.js';

let tdb: TestDatabase | undefined;
let oracle: Oracle | undefined;

afterEach(async () => {
  await killAllChildren();
  await oracle?.close();
  oracle = undefined;
  await tdb?.cleanup();
  tdb = undefined;
});

const quick = defineJob({ name: 'quick', handler: () => undefined });
const hang = defineJob({ name: 'hang', handler: () => undefined });

async function setUp(kind: 'sqlite' | 'postgres'): Promise<{ tdb: TestDatabase; producer: Warden }> {
  tdb = await createTestDatabase(kind);
  oracle = await openOracle(tdb);
  return { tdb, producer: createWarden({ database: tdb.driver, jobs: [quick, hang], logger: pino({ level: 'silent' }) }) };
}

async function enqueue(producer: Warden, job: typeof quick, count: number): Promise<string[]> {
  const results = await producer.enqueueMany(Array.from({ length: count }, (_, i) => ({ job, payload: { i } })));
  return results.map((r) => r.id);
}

async function rows(tdb: TestDatabase, ids: string[]): Promise<JobRow[]> {
  return Promise.all(ids.map(async (id) => (await tdb.driver.jobGet({ id }))!));
}

function countRunning(): Promise<number> {
  return oracle!.number("SELECT count(*) FROM {jobs} WHERE state = 'running'");
}

describe.each(DRIVER_KINDS)('graceful shutdown (%s)', (kind) => {
  it('stops claiming on SIGTERM, finishes what it can within the grace period, returns the rest, exits 0', async () => {
    const { tdb, producer } = await setUp(kind);
    const quickIds = await enqueue(producer, quick, 10);
    const hangIds = await enqueue(producer, hang, 10);
    const config = { url: tdb.url, schema: tdb.schema, name: 'main', role: 'main', concurrency: 20, grace: '2s', lease: '2s', heartbeat: '500ms', rescueInterval: '250ms' };
    const child = spawnChild('main', 'shutdown-worker.ts', config);
    await pollUntil('all 20 jobs running', countRunning, (n) => n === 20, { timeoutMs: 60_000, children: [child] });
    // Claimed is not yet started: the claim commits a moment before the worker hands the jobs to their handlers,
    // and a SIGTERM in between rightly hands them back unstarted (the process then exits at once). The scenario
    // is about handlers in flight, so wait until all 20 have reported in.
    await pollUntil('all 20 handlers started', async () => child.messages.filter((m) => m.type === 'handler').length, (n) => n === 20, { timeoutMs: 10_000, children: [child] });
    const workerId = (await waitForMessage(child, (m) => m.type === 'event' && m.event === 'worker:started', 5_000)).workerId as string;

    const signalledAt = Date.now();
    child.signal('SIGTERM');
    // Jobs that arrive during shutdown must not be claimed, even once the quick jobs free their slots.
    const lateIds = await enqueue(producer, quick, 5);

    const exit = await waitForExit(child, 15_000);
    const exitedAfterMs = Date.now() - signalledAt;
    expect(exit).toEqual({ code: 0, signal: null });
    expect(exitedAfterMs).toBeLessThan(10_000);
    // The hangers held the process for the whole grace period.
    expect(exitedAfterMs).toBeGreaterThanOrEqual(1_900);

    console.info(`[graceful-shutdown ${kind}] exit ${JSON.stringify(exit)} ${exitedAfterMs} ms after SIGTERM`);
    // The quick jobs finished within the grace period.
    for (const row of await rows(tdb, quickIds)) {
      expect(row, `quick job ${row.id}`).toMatchObject({ state: 'completed', attempt: 1, leaseToken: 1, leaseWorker: null });
      const attempts = await tdb.driver.jobAttemptList({ id: row.id });
      expect(attempts.map((a) => [a.attempt, a.outcome, a.workerId])).toEqual([[1, 'completed', workerId]]);
    }
    // The hangers went back to the queue with their attempt counted and an `aborted` attempt row.
    for (const row of await rows(tdb, hangIds)) {
      expect(row, `hanging job ${row.id}`).toMatchObject({ state: 'queued', attempt: 1, leaseToken: 1, leaseWorker: null, leaseExpiresAt: null, lostCount: 0 });
      expect(row.lastError).toMatchObject({ name: 'ShutdownAbortError' });
      const attempts = await tdb.driver.jobAttemptList({ id: row.id });
      expect(attempts.map((a) => [a.attempt, a.outcome, a.workerId, a.error?.name])).toEqual([[1, 'aborted', workerId, 'ShutdownAbortError']]);
    }
    // Nothing was claimed after the signal: the late jobs were never touched.
    for (const row of await rows(tdb, lateIds)) {
      expect(row, `late job ${row.id}`).toMatchObject({ state: 'queued', attempt: 0, leaseToken: 0, leaseWorker: null, startedAt: null });
    }
    expect(await countRunning()).toBe(0);
    expect(await oracle!.number(`SELECT count(*) FROM ${ALL_ATTEMPTS} a`)).toBe(20);

    // What the worker said about it.
    const events = child.ofType('event');
    const drainingAt = events.findIndex((e) => e.event === 'worker:draining');
    expect(events[drainingAt]).toMatchObject({ workerId, inFlight: 20 });
    expect(events.slice(drainingAt).filter((e) => e.event === 'worker:claimed')).toEqual([]);
    expect(events.filter((e) => e.event === 'worker:stopped')).toEqual([expect.objectContaining({ workerId, aborted: 10 })]);
    expect(events.filter((e) => e.event === 'job:completed').map((e) => e.job.id).sort()).toEqual([...quickIds].sort());
    expect(events.filter((e) => e.event === 'job:started')).toHaveLength(20);
    expect(events.filter((e) => e.event === 'job:rescued' || e.event === 'job:stale-write-rejected')).toEqual([]);
    expect(errorEvents(child)).toEqual([]);
    expect(child.ofType('signal')).toEqual([{ type: 'signal', signal: 'SIGTERM' }]);
    expect(child.ofType('crash')).toEqual([]);
  });

  it('exits at once with 130 on a second SIGTERM; another worker rescues its jobs after their leases expire', async () => {
    const { tdb, producer } = await setUp(kind);
    const hangIds = await enqueue(producer, hang, 4);
    const config = { url: tdb.url, schema: tdb.schema, role: 'main', concurrency: 10, grace: '30s', lease: '2s', heartbeat: '500ms', rescueInterval: '250ms' };
    const child = spawnChild('main', 'shutdown-worker.ts', { ...config, name: 'main' });
    await pollUntil('all 4 jobs running', countRunning, (n) => n === 4, { timeoutMs: 60_000, children: [child] });
    // Started, not only claimed (see the test above).
    await pollUntil('all 4 handlers started', async () => child.messages.filter((m) => m.type === 'handler').length, (n) => n === 4, { timeoutMs: 10_000, children: [child] });
    const workerId = (await waitForMessage(child, (m) => m.type === 'event' && m.event === 'worker:started', 5_000)).workerId as string;

    child.signal('SIGTERM');
    await waitForMessage(child, (m) => m.type === 'event' && m.event === 'worker:draining', 10_000);
    const secondAt = Date.now();
    child.signal('SIGTERM');
    expect(await waitForExit(child, 10_000)).toEqual({ code: 130, signal: null });
    expect(Date.now() - secondAt).toBeLessThan(3_000);

    // The forced exit wrote nothing: the jobs are still held by the dead worker's leases.
    const orphans = await rows(tdb, hangIds);
    for (const row of orphans) expect(row).toMatchObject({ state: 'running', attempt: 1, leaseToken: 1, leaseWorker: workerId });
    expect(await oracle!.number('SELECT count(*) FROM {job_attempts}')).toBe(0);
    const expiries = new Map(orphans.map((r) => [r.id, r.leaseExpiresAt!.getTime()]));

    const rescuer = spawnChild('rescuer', 'shutdown-worker.ts', { ...config, name: 'rescuer', role: 'rescuer' });
    await pollUntil(
      'the rescuer to complete every job',
      async () => (await rows(tdb, hangIds)).map((r) => r.state),
      (states) => states.every((s) => s === 'completed'),
      { timeoutMs: 30_000, children: [rescuer] },
    );
    const rescuerId = (await waitForMessage(rescuer, (m) => m.type === 'event' && m.event === 'worker:started', 5_000)).workerId as string;
    for (const row of await rows(tdb, hangIds)) {
      expect(row).toMatchObject({ state: 'completed', attempt: 2, leaseToken: 2, lostCount: 1 });
      const attempts = await tdb.driver.jobAttemptList({ id: row.id });
      expect(attempts.map((a) => [a.attempt, a.leaseToken, a.outcome, a.workerId])).toEqual([
        [1, 1, 'lost', workerId],
        [2, 2, 'completed', rescuerId],
      ]);
      expect(attempts[0]!.finishedAt.getTime()).toBeGreaterThanOrEqual(expiries.get(row.id)!);
    }
    expect(await countRunning()).toBe(0);
    expect(errorEvents(child)).toEqual([]);
    expect(errorEvents(rescuer)).toEqual([]);
  });
});
