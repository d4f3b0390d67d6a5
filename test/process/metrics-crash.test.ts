/**
 * Scenario 33 on a crash run: worker A (a child) is SIGKILLed while draining; the surviving worker, in this process
 * with metrics on, rescues A's jobs once their leases expire and finishes the rest. Its counters must agree with the
 * database: `jobs_rescued_total` = the attempts recorded `lost`, `jobs_completed_total` = the jobs it completed
 * (`completed_by`), `jobs_dead_total` = the jobs it dead-lettered, completed + dead = enqueued; and no job id may
 * appear in any label. Job ids are moved far above small numbers first, so that a bucket bound or a count can never
 * pass for one.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createWarden } from '../../src/index.js';
import { scrape, total } from '../observe/helpers.js';
import { record, silent } from '../runtime/helpers.js';
import { Cleanup } from '../support/cleanup.js';
import { createTestDatabase, DRIVER_KINDS } from '../support/test-databases.js';
import { errorEvents, killAllChildren, pollUntil, spawnChild, waitForExit, waitForMessage } from './child-process.js';
import { metered } from './children/metered-jobs.js';
import { ALL_ATTEMPTS, type Oracle, openOracle } from './db-oracle.js';

const JOBS = 60;
/** Every sixth job always fails: 3 attempts, then dead. */
const FAILING = (n: number) => n % 6 === 5;
/** A killed mid-drain: after this many completions of its own. */
const KILL_AFTER = 12;
/** Job ids start above this: 11 digits, found in no bucket bound, count or timestamp. */
const ID_BASE = 73_400_000_000;
const WORKER = { concurrency: 8, lease: '2s', heartbeat: '500ms' } as const;

const cleanup = new Cleanup();
afterEach(async () => {
  await killAllChildren();
  await cleanup.run();
});

/** Makes the next job id `ID_BASE + 1`. */
async function moveJobIds(oracle: Oracle): Promise<void> {
  if (oracle.kind === 'postgres') await oracle.all(`SELECT setval(pg_get_serial_sequence('{jobs}', 'id'), ${ID_BASE})`);
  else await oracle.exec(`DELETE FROM sqlite_sequence WHERE name = 'jobs'; INSERT INTO sqlite_sequence (name, seq) VALUES ('jobs', ${ID_BASE})`);
}

describe.each(DRIVER_KINDS)('metrics of a crash run (%s)', (kind) => {
  it("the survivor's rescued, completed and dead counters match the database; no label holds a job id", async () => {
    const tdb = cleanup.add(await createTestDatabase(kind), (t) => t.cleanup());
    const oracle = cleanup.add(await openOracle(tdb), (o) => o.close());
    await moveJobIds(oracle);
    const survivor = cleanup.add(createWarden({ database: tdb.url, schema: tdb.schema, jobs: [metered], metrics: true, logger: silent }), (w) => w.close());
    const survivorStarted = record(survivor, 'worker:started');
    const enqueued = await survivor.enqueueMany(Array.from({ length: JOBS }, (_, n) => ({ job: metered, payload: { n, fail: FAILING(n) } })));
    const ids = enqueued.map((r) => r.id);
    expect(ids.every((id) => BigInt(id) > BigInt(ID_BASE))).toBe(true);

    // A drains alone; once it has completed a dozen jobs (with more running) it is killed.
    const a = spawnChild('A', 'metered-worker.ts', { url: tdb.url, schema: tdb.schema, name: 'A', ...WORKER });
    let completedByA = 0;
    await waitForMessage(a, (m) => m.type === 'event' && m.event === 'job:completed' && ++completedByA >= KILL_AFTER, 60_000);
    a.signal('SIGKILL');
    expect(await waitForExit(a, 10_000)).toEqual({ code: null, signal: 'SIGKILL' });
    const workerA = a.ofType('event').find((e) => e.event === 'job:started')!.workerId as string;
    // Read after the kill: a completion A had sent may still commit, so this is an upper bound of what is lost.
    const orphans = await oracle.number("SELECT count(*) FROM {jobs} WHERE state = 'running' AND lease_worker = $1", [workerA]);
    expect(orphans, 'jobs A held when killed').toBeGreaterThan(0);

    await survivor.start({ ...WORKER, rescueInterval: '250ms', pollInterval: '100ms' });
    await pollUntil('every job completed or dead', () => oracle.number("SELECT count(*) FROM {jobs} WHERE state IN ('completed', 'dead')"), (n) => n === JOBS, { timeoutMs: 30_000, children: [a] });
    await survivor.stop(); // every ending written and its event emitted: the counters are final
    expect(survivorStarted).toHaveLength(1);
    const survivorId = survivorStarted[0]!.workerId;

    // The database's account.
    const states = await oracle.all<{ state: string; n: number | string }>('SELECT state, count(*) AS n FROM {jobs} GROUP BY state ORDER BY state');
    const byState = { completed: 0, dead: 0, ...Object.fromEntries(states.map((s) => [s.state, Number(s.n)])) };
    expect(Object.keys(byState).filter((s) => s !== 'completed' && s !== 'dead')).toEqual([]);
    expect(byState.dead).toBe(Array.from({ length: JOBS }, (_, n) => n).filter(FAILING).length);
    expect(byState.completed + byState.dead).toBe(JOBS);
    const attempts = await oracle.all<{ worker_id: string; outcome: string; n: number | string }>(`SELECT worker_id, outcome, count(*) AS n FROM ${ALL_ATTEMPTS} AS a GROUP BY worker_id, outcome`);
    const count = (worker: string | null, outcome: string) => attempts.filter((r) => (worker === null || r.worker_id === worker) && r.outcome === outcome).reduce((sum, r) => sum + Number(r.n), 0);
    expect(attempts.filter((r) => r.worker_id !== workerA && r.worker_id !== survivorId)).toEqual([]);
    const lost = count(null, 'lost');
    expect(count(workerA, 'lost'), 'every lost attempt was A\'s').toBe(lost);
    expect(lost).toBeGreaterThanOrEqual(1);
    expect(lost).toBeLessThanOrEqual(orphans);
    expect(count(workerA, 'completed')).toBeGreaterThanOrEqual(KILL_AFTER);
    // Dead-lettered by the survivor: its own last attempt failed, or its rescuer found the last attempt lost.
    const deadBySurvivor = await oracle.number(
      "SELECT count(*) FROM {jobs} AS j JOIN {job_attempts} AS a ON a.job_id = j.id AND a.attempt = j.attempt WHERE j.state = 'dead' AND (a.worker_id = $1 OR a.outcome = 'lost')",
      [survivorId],
    );

    // The survivor's metrics against it.
    const samples = await scrape(survivor.metrics!.registry);
    const counters = {
      enqueued: total(samples, 'warden_jobs_enqueued_total'),
      rescued: total(samples, 'warden_jobs_rescued_total'),
      completed: total(samples, 'warden_jobs_completed_total'),
      dead: total(samples, 'warden_jobs_dead_total'),
      failed: total(samples, 'warden_jobs_failed_total'),
      durations: total(samples, 'warden_job_attempt_duration_seconds_count'),
    };
    console.info(`[metrics-crash ${kind}] A completed ${count(workerA, 'completed')} and lost ${lost} (held ${orphans}); survivor metrics ${JSON.stringify(counters)}; db ${JSON.stringify(byState)}`);
    expect(counters).toEqual({
      enqueued: JOBS,
      rescued: lost,
      completed: count(survivorId, 'completed'),
      dead: deadBySurvivor,
      failed: count(survivorId, 'failed'),
      durations: count(survivorId, 'completed') + count(survivorId, 'failed'),
    });
    // Completed (the survivor's counter, and A's from the database) + dead letters = enqueued.
    expect(counters.completed + count(workerA, 'completed') + byState.dead).toBe(counters.enqueued);

    // No job id in any label (nor anywhere in the exposition).
    const labelled = samples.filter((s) => Object.keys(s.labels).length > 0);
    expect(labelled.map((s) => s.labels.job).filter((j) => j !== undefined)).toContain('metered');
    const leaks = samples.flatMap((s) => Object.entries(s.labels).filter(([, v]) => ids.some((id) => String(v).includes(id))).map(([k, v]) => `${s.name}{${k}="${v}"}`));
    expect(leaks).toEqual([]);
    const text = await survivor.metrics!.registry.metrics();
    expect(ids.filter((id) => text.includes(id))).toEqual([]);
    expect(errorEvents(a)).toEqual([]);
  });
});
