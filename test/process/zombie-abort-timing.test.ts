/**
 * Scenario 6's last criterion: a zombie's handler hears of its lost lease within one heartbeat interval of resuming.
 * Worker A runs a job whose handler only waits for its signal; A is stopped (SIGSTOP) for three lease lengths,
 * during which worker B rescues the job and completes it; then A is continued (SIGCONT).
 *
 * A's first heartbeat after it resumes (its timer fell due while it was stopped, so it fires at once; or, when a
 * heartbeat was in flight at the stop, the one after that reply) finds the lease gone and aborts the handler. So:
 * - order: no second heartbeat starts after the resume before the abort, the abort follows the heartbeat that
 *   reported the job stale, and no heartbeat for the job starts after it;
 * - time: the abort comes within one heartbeat interval of the resume, plus {@link ALLOWANCE_MS}.
 * Times are taken on the machine's monotonic clock by the parent (just before SIGCONT) and the child (in the abort
 * listener and around every heartbeat call), so no pipe or parent latency is in them.
 */
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { createWarden, defineJob } from '../../src/index.js';
import { createTestDatabase, DRIVER_KINDS, type TestDatabase } from '../support/test-databases.js';
import { errorEvents, killAllChildren, pollUntil, spawnChild, waitForExit, waitForMessage } from './child-process.js';
import { monotonicMs } from './children/monotonic-clock.js';
import { stopOutsideWriteLock } from './stop-outside-write-lock.js';

const LEASE_MS = 2_000;
const HEARTBEAT_MS = 500;
/**
 * Beyond the heartbeat interval, for what the resumed child does before its handler's abort listener runs: its
 * overdue timers, one heartbeat round trip (PostgreSQL) or write (SQLite), and being scheduled at all on a 2-core CI
 * host running three test files at once. Measured: under 100 ms. 1.5 s (three intervals) is generous, yet an abort
 * that waited for a second heartbeat, or for anything slower (the job's own lease, a rescue), would still miss it;
 * the ordering assertions catch a second heartbeat however fast it came.
 */
const ALLOWANCE_MS = 1_500;

let tdb: TestDatabase | undefined;

afterEach(async () => {
  await killAllChildren();
  await tdb?.cleanup();
  tdb = undefined;
});

describe.each(DRIVER_KINDS)('zombie abort after resume (%s)', (kind) => {
  it('aborts the resumed handler at its first heartbeat, within one heartbeat interval', async () => {
    tdb = await createTestDatabase(kind);
    const driver = tdb.driver;
    const stub = defineJob({ name: 'work', handler: () => undefined });
    const producer = createWarden({ database: driver, jobs: [stub], logger: pino({ level: 'silent' }) });
    const { id } = await producer.enqueue(stub, {});
    const base = { url: tdb.url, schema: tdb.schema, lease: `${LEASE_MS}ms`, heartbeat: `${HEARTBEAT_MS}ms` };

    const a = spawnChild('A', 'zombie-abort-worker.ts', { ...base, name: 'A', giveUpMs: 30_000 });
    const started = await waitForMessage(a, (m) => m.type === 'event' && m.event === 'job:started' && m.job.id === id, 60_000);
    expect(started).toMatchObject({ attempt: 1, leaseToken: 1 });
    await waitForMessage(a, (m) => m.type === 'handler' && m.jobId === id, 5_000);

    await stopOutsideWriteLock(a, tdb);
    const stoppedAt = (await driver.dbNow()).getTime();
    // B rescues the job once A's lease has expired, claims it and completes it.
    const b = spawnChild('B', 'zombie-worker.ts', { ...base, name: 'B', role: 'rescuer', rescueInterval: '250ms' });
    await pollUntil('B to complete the job', () => driver.jobGet({ id }), (row) => row?.state === 'completed', { timeoutMs: 30_000, children: [a, b] });
    // Stopped for three lease lengths (database time), as the scenario has it.
    await pollUntil('A to have been stopped for 3 leases', async () => (await driver.dbNow()).getTime(), (now) => now >= stoppedAt + 3 * LEASE_MS, { timeoutMs: 30_000, children: [a, b] });
    expect(a.ofType('aborted'), 'nothing aborted while A was stopped').toEqual([]);

    const resumedAt = monotonicMs();
    a.signal('SIGCONT');
    const report = await waitForMessage(a, (m) => m.type === 'report', 30_000);
    expect(await waitForExit(a, 15_000)).toEqual({ code: 0, signal: null });

    const aborts = a.ofType('aborted');
    expect(a.ofType('gave-up')).toEqual([]);
    expect(aborts).toEqual([expect.objectContaining({ jobId: id, reason: expect.objectContaining({ name: 'LeaseLostError' }) })]);
    const abortedAt = aborts[0]!.at as number;
    const heartbeats = a.ofType('heartbeat');
    const timeline = heartbeats.map((h) => ({ start: +(h.startedAt - resumedAt).toFixed(1), end: +(h.endedAt - resumedAt).toFixed(1), stale: h.stale, error: h.error?.message }));
    console.info(`[zombie-abort ${kind}] abort ${(abortedAt - resumedAt).toFixed(1)} ms after SIGCONT; heartbeats (ms from SIGCONT): ${JSON.stringify(timeline.slice(-4))}`);

    // Order: the abort came from the heartbeat that found the job stale, which completed after the resume; at most
    // one heartbeat started between the resume and the abort (none when a call in flight at the stop was the one).
    expect(heartbeats.filter((h) => h.error !== undefined)).toEqual([]);
    const rejecting = heartbeats.filter((h) => h.stale.length > 0);
    expect(rejecting.map((h) => h.stale)).toEqual([[id]]);
    expect(rejecting[0]!.endedAt).toBeGreaterThanOrEqual(resumedAt);
    expect(rejecting[0]!.endedAt).toBeLessThanOrEqual(abortedAt);
    const startedSinceResume = heartbeats.filter((h) => h.startedAt >= resumedAt && h.startedAt <= abortedAt);
    expect(startedSinceResume.length, 'heartbeats started between SIGCONT and the abort').toBeLessThanOrEqual(1);
    expect(heartbeats.filter((h) => h.startedAt > abortedAt), 'heartbeats after the abort').toEqual([]);

    // Time: within one heartbeat interval of the resume, plus the allowance.
    expect(abortedAt).toBeGreaterThan(resumedAt);
    expect(abortedAt - resumedAt).toBeLessThanOrEqual(HEARTBEAT_MS + ALLOWANCE_MS);

    // The rejected heartbeat was reported as one; B's attempt alone is the job's outcome.
    expect(a.ofType('event').filter((e) => e.event === 'job:stale-write-rejected').map((e) => [e.jobId, e.leaseToken, e.write])).toEqual([[id, 1, 'heartbeat']]);
    expect(report.counters.staleWritesRejected).toBe(1);
    expect(await driver.jobGet({ id })).toMatchObject({ state: 'completed', attempt: 2, leaseToken: 2, lostCount: 1 });
    expect((await driver.jobAttemptList({ id })).map((x) => [x.attempt, x.outcome])).toEqual([[1, 'lost'], [2, 'completed']]);
    expect(errorEvents(a)).toEqual([]);
    expect(errorEvents(b)).toEqual([]);
  });
});
