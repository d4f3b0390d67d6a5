/**
 * A zombie worker: process A is paused (SIGSTOP) while running a job, long enough for its lease to expire.
 * Process B rescues the job and completes it. When A resumes it still believes it holds the job: every write
 * it attempts must be rejected by the lease guard (changing nothing). Two ways to wake up: a handler polling
 * its signal must see it aborted with `LeaseLostError` (found by A's next heartbeat); a handler that simply
 * returns first must have its completion refused (a stale finish).
 */
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { createWarden, defineJob } from '../../src/index.js';
import { createTestDatabase, DRIVER_KINDS, type TestDatabase } from '../support/test-databases.js';
import { type Child, type ChildMessage, errorEvents, killAllChildren, pollUntil, spawnChild, processState, waitForExit, waitForMessage } from './child-process.js';
import { type Oracle, openOracle } from './db-oracle.js';
import { stopOutsideWriteLock } from './stop-outside-write-lock.js';

let tdb: TestDatabase | undefined;
let oracle: Oracle | undefined;

afterEach(async () => {
  await killAllChildren();
  await oracle?.close();
  oracle = undefined;
  await tdb?.cleanup();
  tdb = undefined;
});

describe.each(DRIVER_KINDS)('zombie worker (%s)', (kind) => {
  it("rejects a paused worker's writes after another worker took over its job; its handler sees LeaseLostError", async () => {
    const { a, report, staleWrites } = await zombieScenario(kind, 'loop');
    // The handler polling its signal saw it aborted because the lease was lost, and stopped.
    expect(report.sawAbort).toMatchObject({ name: 'LeaseLostError' });
    expect(a.ofType('handler-aborted')).toHaveLength(1);
    expect(a.ofType('handler-finished')).toEqual([]);
    expect(staleWrites.length).toBeGreaterThanOrEqual(1);
  });

  it('rejects the completion of a handler that returns after its lease was lost', async () => {
    const { a, report, staleWrites } = await zombieScenario(kind, 'release');
    // The handler's timer (1.5 s after it started) expired before the next heartbeat's (2.5 s after the worker
    // started), so on waking the handler returns first and the attempt's ending is the write that is refused.
    expect(a.ofType('handler-finished')).toEqual([expect.objectContaining({ aborted: false })]);
    expect(staleWrites.map((e) => e.write)).toEqual(['finish']);
    expect(report.sawAbort).toBeNull();
  });
});

/**
 * A claims the job and is stopped; B rescues and completes it; A is continued (in `release` mode its handler
 * is told to return first). Asserts everything common to both modes and returns what A reported.
 */
async function zombieScenario(kind: 'sqlite' | 'postgres', mode: 'loop' | 'release'): Promise<{ a: Child; report: ChildMessage; staleWrites: ChildMessage[] }> {
  tdb = await createTestDatabase(kind);
  oracle = await openOracle(tdb);
  const driver = tdb.driver;
  const stub = defineJob({ name: 'work', handler: () => undefined });
  const producer = createWarden({ database: driver, jobs: [stub], logger: pino({ level: 'silent' }) });
  const { id } = await producer.enqueue(stub, {});
  const base = mode === 'loop' ? { url: tdb.url, schema: tdb.schema, lease: '2s', heartbeat: '500ms' } : { url: tdb.url, schema: tdb.schema, lease: '3s', heartbeat: '2500ms' };

  const a = spawnChild('A', 'zombie-worker.ts', { ...base, name: 'A', role: 'zombie', mode, releaseAfterMs: 1_500, rescueInterval: '1h' });
  const started = await waitForMessage(a, (m) => m.type === 'event' && m.event === 'job:started' && m.job.id === id, 60_000);
  expect(started).toMatchObject({ attempt: 1, leaseToken: 1 });
  const workerA = started.workerId as string;
  await waitForMessage(a, (m) => m.type === 'handler' && m.jobId === id, 5_000);

  await stopOutsideWriteLock(a, tdb);
  const held = await driver.jobGet({ id });
  expect(held).toMatchObject({ state: 'running', attempt: 1, leaseToken: 1, leaseWorker: workerA });

  // B rescues the job once A's lease has expired, claims it and completes it.
  const b = spawnChild('B', 'zombie-worker.ts', { ...base, name: 'B', role: 'rescuer', rescueInterval: '250ms' });
  await pollUntil('B to complete the job', () => driver.jobGet({ id }), (row) => row?.state === 'completed', { timeoutMs: 30_000, children: [a, b] });
  const bStarted = await waitForMessage(b, (m) => m.type === 'event' && m.event === 'job:started' && m.job.id === id, 5_000);
  await waitForMessage(b, (m) => m.type === 'event' && m.event === 'job:completed' && m.job.id === id, 5_000);
  const workerB = bStarted.workerId as string;
  expect(bStarted).toMatchObject({ attempt: 2, leaseToken: 2 });
  expect(a.alive).toBe(true);
  expect(processState(a.pid), 'A is still stopped').toBe('T');

  const rowBefore = await oracle.all('SELECT * FROM {jobs} WHERE id = $1', [id]);
  const attemptsBefore = await oracle.all('SELECT * FROM {job_attempts} ORDER BY job_id, lease_token');
  expect(rowBefore).toHaveLength(1);
  expect(rowBefore[0]).toMatchObject({ state: 'completed', lease_worker: null, lease_expires_at: null });
  expect(Number(rowBefore[0]!.lease_token)).toBe(2);

  // Wake the zombie. It still believes it runs attempt 1 with token 1.
  a.signal('SIGCONT');
  const report = await waitForMessage(a, (m) => m.type === 'report', 30_000);
  expect(await waitForExit(a, 15_000)).toEqual({ code: 0, signal: null });

  // A's writes changed nothing: the job row and the attempt history are exactly as B left them.
  expect(await oracle.all('SELECT * FROM {jobs} WHERE id = $1', [id])).toEqual(rowBefore);
  expect(await oracle.all('SELECT * FROM {job_attempts} ORDER BY job_id, lease_token')).toEqual(attemptsBefore);
  const attempts = await driver.jobAttemptList({ id });
  expect(attempts.map((x) => ({ attempt: x.attempt, leaseToken: x.leaseToken, outcome: x.outcome, workerId: x.workerId }))).toEqual([
    { attempt: 1, leaseToken: 1, outcome: 'lost', workerId: workerA },
    { attempt: 2, leaseToken: 2, outcome: 'completed', workerId: workerB },
  ]);
  expect(await driver.jobGet({ id })).toMatchObject({ state: 'completed', attempt: 2, leaseToken: 2, lostCount: 1 });

  // A noticed: every rejected write was counted and reported, all for its own (old) token.
  const aEvents = a.ofType('event');
  const staleWrites = aEvents.filter((e) => e.event === 'job:stale-write-rejected');
  console.info(`[zombie ${kind} ${mode}] A's report: ${JSON.stringify(report)}; stale writes: ${JSON.stringify(staleWrites.map((e) => e.write))}`);
  expect(report.counters.staleWritesRejected).toBeGreaterThanOrEqual(1);
  expect(staleWrites.length).toBe(report.counters.staleWritesRejected);
  expect(staleWrites.every((e) => e.jobId === id && e.leaseToken === 1)).toBe(true);
  expect(aEvents.filter((e) => e.event === 'job:completed' || e.event === 'job:failed')).toEqual([]);
  expect(errorEvents(a)).toEqual([]);
  expect(b.ofType('event').filter((e) => e.event === 'job:stale-write-rejected')).toEqual([]);
  expect(errorEvents(b)).toEqual([]);
  return { a, report, staleWrites };
}
