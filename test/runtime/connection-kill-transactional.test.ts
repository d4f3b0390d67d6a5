/**
 * Scenario 9 (PostgreSQL), what connection-loss.test.ts exercises but does not assert: while the worker's sessions are
 * terminated again and again (`pg_terminate_backend` of every backend with the worker's `application_name`, so its
 * pool, worker pool, LISTEN connection and open `ctx.transaction`s all die, and nothing else of the test does):
 * - each job's effect, written through `ctx.transaction` with its completion, is committed exactly once:
 *   count(effects) = count(distinct job_id) = jobs, each by the attempt that completed the job, and every job has
 *   exactly one completing attempt;
 * - a long job that runs through all the kills, across many heartbeats, never gets a `lost` attempt while its worker
 *   is alive: kills land on heartbeats in flight (held waiting behind a lock on the jobs table, so they are in the
 *   database when their sessions die), and after every kill a heartbeat renews the lease again.
 * And the same exactly-once oracle when the kill lands right after a COMMIT: a relay swallows the reply to a
 * committed COMMIT and cuts the connection, so the transaction is in the database while the handler sees an error.
 * For one such job, what the worker reports: guarantees.md ("A write that failed may still have committed") promises
 * the ending's events "instead of a `job:stale-write-rejected` for a job that this very attempt ended".
 * @module
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { createWarden, type Warden } from '../../src/client/warden.js';
import { createDriver } from '../../src/driver/create-driver.js';
import type { Driver } from '../../src/driver/driver.js';
import type { WardenEventMap } from '../../src/events/event-map.js';
import { defineJob, type JobDefinition } from '../../src/job/define-job.js';
import { pollUntil } from '../process/child-process.js';
import { ALL_ATTEMPTS, type Oracle, openOracle } from '../process/db-oracle.js';
import { Relay } from '../support/pg-relay.js';
import { overrideDriver } from '../support/override-driver.js';
import { Cleanup } from '../support/cleanup.js';
import { createTestDatabase, DRIVER_KINDS, PG_URL, type TestDatabase } from '../support/test-databases.js';
import { type Deferred, deferred, silent, within } from './helpers.js';

const JOBS = 400;
const ROUNDS = 10;
const CONCURRENCY = 8;
/** How long each effect job keeps its transaction open after its write: kills find transactions in flight. */
const HOLD_MS = 30;
/** Real-time bound on the whole run (a guard, not a pace). */
const RUN_GUARD_MS = 25_000;

/** Errors of idle pooled connections: the kills of this test cause them, and the driver survives them. */
const ignoreIdleErrors = (): void => undefined;

/** Resolves after `ms`, or rejects with the signal's reason once it aborts. */
function work(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => (clearTimeout(timer), reject(signal.reason)), { once: true });
  });
}

/** Resolves once `check` holds, re-checked at every wake-up `subscribe` delivers; the caller bounds it. */
function whenever(subscribe: (wake: () => void) => () => void, check: () => boolean): Promise<void> {
  return new Promise((resolve) => {
    if (check()) return resolve();
    const off = subscribe(() => {
      if (!check()) return;
      off();
      resolve();
    });
  });
}

describe.each(DRIVER_KINDS.filter((kind) => kind === 'postgres'))('connections killed under transactional completion (%s)', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  /** The schema, its oracle with an `effects` table, and an admin connection of the test's own. */
  async function setUp(): Promise<{ tdb: TestDatabase; oracle: Oracle; admin: pg.Client }> {
    const tdb = cleanup.add(await createTestDatabase('postgres'), (t) => t.cleanup());
    const oracle = cleanup.add(await openOracle(tdb), (o) => o.close());
    await oracle.exec('CREATE TABLE {effects} (id bigserial PRIMARY KEY, job_id bigint NOT NULL, attempt integer NOT NULL)');
    const admin = cleanup.add(new pg.Client({ connectionString: PG_URL }), (c) => c.end());
    await admin.connect();
    return { tdb, oracle, admin };
  }

  /** A producer Warden on the test database's own (direct) driver. */
  function producerOf(tdb: TestDatabase, jobs: JobDefinition<any, any>[]): Warden {
    return cleanup.add(createWarden({ database: tdb.driver, jobs, logger: silent, retention: false }), (w) => w.close());
  }

  /** Writes one effect row through the job's own transaction, keeps it open `HOLD_MS`, and completes the job in it. */
  function effectJob(schema: string) {
    return defineJob({
      name: 'effect',
      retry: { maxAttempts: 200, backoff: { type: 'fixed', base: 10, jitter: 'none' } },
      handler: async (_payload, ctx) => {
        await ctx.transaction(async (tx) => {
          await (tx as pg.ClientBase).query(`INSERT INTO "${schema}".effects (job_id, attempt) VALUES ($1, $2)`, [ctx.job.id, ctx.attempt]);
          await work(HOLD_MS, ctx.signal);
        });
      },
    });
  }

  /** A worker Warden on `driver`, closed after the test before the driver. */
  function startWorker(driver: Driver, jobs: JobDefinition<any, any>[]): Warden {
    cleanup.add(driver, (d) => d.close());
    return cleanup.add(createWarden({
      database: driver, jobs, logger: silent, retention: false,
      worker: { concurrency: CONCURRENCY, lease: '3s', heartbeat: '300ms', rescueInterval: '500ms', pollInterval: '100ms', maxLost: 100 },
    }), (w) => w.close());
  }

  /**
   * Waits until the database has every job completed. Not by `job:completed` events: a job whose COMMIT reply was lost
   * completed without its attempt knowing (its failure ending is then refused as stale).
   */
  async function allCompleted(oracle: Oracle, jobs: number): Promise<void> {
    await pollUntil(`all ${jobs} jobs completed`, () => oracle.number("SELECT count(*) FROM {jobs} WHERE state = 'completed'"), (n) => n === jobs, { timeoutMs: RUN_GUARD_MS, intervalMs: 50 });
  }

  /** The oracle's verdict: effects per job, and completing attempts per job. */
  async function exactlyOnce(oracle: Oracle, jobs: number): Promise<void> {
    const states = await oracle.all<{ state: string; n: string }>('SELECT state, count(*)::text AS n FROM {jobs} GROUP BY state');
    expect(Object.fromEntries(states.map((s) => [s.state, Number(s.n)]))).toEqual({ completed: jobs });
    const effects = await oracle.number('SELECT count(*) FROM {effects}');
    const distinct = await oracle.number('SELECT count(DISTINCT job_id) FROM {effects}');
    const duplicated = await oracle.all('SELECT job_id, count(*)::int AS n FROM {effects} GROUP BY job_id HAVING count(*) > 1 LIMIT 10');
    // Each effect row was written by the attempt that completed its job: the others rolled back with their transactions.
    const byCompletingAttempt = await oracle.number('SELECT count(*) FROM {effects} e JOIN {jobs} j ON j.id = e.job_id AND j.attempt = e.attempt');
    const completions = await oracle.all(`SELECT job_id, count(*)::int AS n FROM ${ALL_ATTEMPTS} a WHERE outcome = 'completed' GROUP BY job_id HAVING count(*) <> 1 LIMIT 10`);
    const completedJobs = await oracle.number(`SELECT count(DISTINCT job_id) FROM ${ALL_ATTEMPTS} a WHERE outcome = 'completed'`);
    expect({ effects, distinct, duplicated, byCompletingAttempt, completions, completedJobs }).toEqual({
      effects: jobs, distinct: jobs, duplicated: [], byCompletingAttempt: jobs, completions: [], completedJobs: jobs,
    });
  }

  it(`${JOBS} transactional completions and a long job under pg_terminate_backend of the worker's sessions, ${ROUNDS} times on a heartbeat in flight: every effect once, the long job never lost`, async () => {
    const { tdb, oracle, admin } = await setUp();
    const appName = `warden_kill_${randomBytes(6).toString('hex')}`;
    const effect = effectJob(tdb.schema!);

    // The long job runs until the kills are over, honouring its signal (a lost lease would abort it), then completes
    // with its effect like the others.
    const longStarted = deferred<string>();
    const releaseLong = deferred();
    const long = defineJob({
      name: 'long',
      retry: { maxAttempts: 200, backoff: { type: 'fixed', base: 10, jitter: 'none' } },
      handler: async (_payload, ctx) => {
        longStarted.resolve(ctx.job.id);
        await new Promise<void>((resolve, reject) => {
          if (ctx.signal.aborted) return reject(ctx.signal.reason);
          ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason), { once: true });
          void releaseLong.promise.then(resolve);
        });
        await ctx.transaction(async (tx) => {
          await (tx as pg.ClientBase).query(`INSERT INTO "${tdb.schema}".effects (job_id, attempt) VALUES ($1, $2)`, [ctx.job.id, ctx.attempt]);
        });
      },
    });

    // Heartbeats that renewed the long job's lease, counted as they come back.
    let longId: string | null = null;
    let longRenewals = 0;
    const renewed = new Set<() => void>();
    const url = new URL(PG_URL);
    url.searchParams.set('application_name', appName);
    /** Set by a round: the next heartbeat reports its start and whether it failed. */
    let watch: { started: Deferred; failed: Deferred<boolean> } | null = null;
    const driver = overrideDriver(createDriver({ url: url.toString(), schema: tdb.schema, onError: ignoreIdleErrors }), {
      jobHeartbeat: (real) => async (params) => {
        const watched = watch;
        watch = null;
        watched?.started.resolve();
        let result;
        try {
          result = await real(params);
        } catch (error) {
          watched?.failed.resolve(true);
          throw error;
        }
        watched?.failed.resolve(false);
        if (longId !== null && params.leases.some((l) => l.id === longId) && !result.stale.includes(longId)) {
          longRenewals++;
          for (const wake of [...renewed]) wake();
        }
        return result;
      },
    });
    const worker = startWorker(driver, [effect, long]);
    // Let the long job go before its worker is closed, should the test end early.
    cleanup.add(releaseLong, (d) => d.resolve());
    const producer = producerOf(tdb, [effect, long]);

    const errors: WardenEventMap['error'][] = [];
    const rescued: WardenEventMap['job:rescued'][] = [];
    const stale: WardenEventMap['job:stale-write-rejected'][] = [];
    let completed = 0;
    const progress = new Set<() => void>();
    worker.on('error', (e) => errors.push(e));
    worker.on('job:rescued', (e) => rescued.push(e));
    worker.on('job:stale-write-rejected', (e) => stale.push(e));
    worker.on('job:completed', () => {
      completed++;
      for (const wake of [...progress]) wake();
    });

    // The long job first, at a higher priority, so it is running before the first kill.
    await producer.enqueue(long, {}, { priority: 10 });
    await producer.enqueueMany(Array.from({ length: JOBS }, (_, i) => ({ job: effect, payload: { i } })));
    await worker.start();
    longId = await within(longStarted.promise, 'the long job to start');

    const terminate = async (): Promise<number> => {
      const { rows } = await admin.query<{ n: string }>(
        'SELECT count(pg_terminate_backend(pid))::text AS n FROM pg_stat_activity WHERE application_name = $1',
        [appName],
      );
      return Number(rows[0]!.n);
    };
    /** Resolves once a session of the worker waits for a lock (its statements queue behind the test's table lock). */
    const untilWorkerWaitsOnLock = () =>
      pollUntil(
        'a session of the worker to wait on the locked jobs table',
        async () => Number((await admin.query<{ n: string }>("SELECT count(*)::text AS n FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'", [appName])).rows[0]!.n),
        (n) => n > 0,
        { timeoutMs: RUN_GUARD_MS, intervalMs: 5 },
      );
    const onRenewal = (wake: () => void) => (renewed.add(wake), () => renewed.delete(wake));
    const onProgress = (wake: () => void) => (progress.add(wake), () => progress.delete(wake));

    const killed: number[] = [];
    let heartbeatsKilled = 0;
    const started = Date.now();
    for (let round = 0; heartbeatsKilled < ROUNDS; round++) {
      if (round >= 3 * ROUNDS) throw new Error(`Expected ${ROUNDS} kills to land on a heartbeat in flight within ${round} rounds, got ${heartbeatsKilled}`);
      // Paced by the worker's progress: some jobs completed since the last kill (while enough are left).
      const target = Math.min(JOBS - 3 * ROUNDS, completed + Math.floor(JOBS / (ROUNDS * 2)));
      await within(whenever(onProgress, () => completed >= target), `round ${round}: ${target} jobs completed (have ${completed})`, RUN_GUARD_MS);
      // Kill every session of the worker while a heartbeat is in flight: the jobs table is locked meanwhile (a row
      // lock would not do: the heartbeat skips locked rows), so the heartbeat waits in the database for the kill.
      await admin.query('BEGIN');
      await admin.query(`LOCK TABLE "${tdb.schema}".jobs IN ACCESS EXCLUSIVE MODE`);
      const heartbeat = { started: deferred(), failed: deferred<boolean>() };
      watch = heartbeat;
      await within(heartbeat.started.promise, `round ${round}: the next heartbeat`);
      await untilWorkerWaitsOnLock();
      const before = longRenewals;
      killed.push(await terminate());
      await admin.query('ROLLBACK');
      if (await within(heartbeat.failed.promise, `round ${round}: the heartbeat to end`)) heartbeatsKilled++;
      // The heartbeats resume: the long job's lease is renewed again after the kill.
      await within(whenever(onRenewal, () => longRenewals > before), `round ${round}: a heartbeat renewing the long job after the kill`, RUN_GUARD_MS);
    }
    releaseLong.resolve();

    await allCompleted(oracle, JOBS + 1);
    await worker.stop();
    const failedHeartbeats = errors.filter((e) => e.context === 'renewing leases').length;
    console.info(`[connection kills] ${killed.join('+')} backends terminated in ${Date.now() - started} ms, ${heartbeatsKilled} heartbeats killed in flight, ${longRenewals} renewals of the long job, ${errors.length} error events, ${stale.length} stale writes`);

    // The kills landed, on heartbeats in flight among others, and were survived as error events.
    expect(killed.every((n) => n > 0)).toBe(true);
    expect(failedHeartbeats).toBeGreaterThanOrEqual(ROUNDS);
    // Some transactions died open: their attempts failed and were retried, their writes rolled back.
    expect(await oracle.number(`SELECT count(*) FROM {job_attempts} WHERE outcome = 'failed'`)).toBeGreaterThan(0);

    await exactlyOnce(oracle, JOBS + 1);

    // The long job: one attempt, completed, never lost or rescued, its lease renewed after every kill.
    const longRow = (await tdb.driver.jobGet({ id: longId }))!;
    expect(longRow).toMatchObject({ state: 'completed', attempt: 1, lostCount: 0 });
    expect((await tdb.driver.jobAttemptList({ id: longId })).map((a) => [a.attempt, a.outcome])).toEqual([[1, 'completed']]);
    expect(rescued.filter((r) => r.job.id === longId)).toEqual([]);
    expect(stale.filter((s) => s.jobId === longId)).toEqual([]);
    expect(longRenewals).toBeGreaterThanOrEqual(ROUNDS);
    // And no job at all was lost: the worker stayed alive, so every lease was kept.
    expect(await oracle.number(`SELECT count(*) FROM {job_attempts} WHERE outcome = 'lost'`)).toBe(0);
  }, 60_000);

  it(`${JOBS} transactional completions with up to ${ROUNDS} COMMIT replies lost (committed, connection cut): every effect once`, async () => {
    const { tdb, oracle } = await setUp();
    const effect = effectJob(tdb.schema!);
    // Closed after the worker and its driver: it waits for their connections.
    const relay = cleanup.add(new Relay(), (r) => r.close());
    const through = await relay.listen();
    const worker = startWorker(createDriver({ url: through, schema: tdb.schema, onError: ignoreIdleErrors }), [effect]);
    const producer = producerOf(tdb, [effect]);
    const stale: WardenEventMap['job:stale-write-rejected'][] = [];
    worker.on('job:stale-write-rejected', (e) => stale.push(e));
    const remaining = () => oracle.number("SELECT count(*) FROM {jobs} WHERE state <> 'completed'");

    await producer.enqueueMany(Array.from({ length: JOBS }, (_, i) => ({ job: effect, payload: { i } })));
    await worker.start();
    for (let round = 0; round < ROUNDS; round++) {
      const cutBefore = relay.cut;
      // The next COMMIT through the relay (a ctx.transaction's, mostly) commits and loses its reply.
      relay.arm('COMMIT');
      const cut = await pollUntil(`round ${round}: a COMMIT reply lost`, async () => relay.cut > cutBefore || (await remaining()) === 0, (done) => done, { timeoutMs: RUN_GUARD_MS, intervalMs: 10 });
      if (cut && relay.cut === cutBefore) break;
    }
    relay.arm();
    await allCompleted(oracle, JOBS);
    await worker.stop();
    console.info(`[lost COMMIT replies] ${relay.cut} connections cut after their COMMIT, ${stale.length} stale writes`);
    expect(relay.cut).toBeGreaterThanOrEqual(1);
    await exactlyOnce(oracle, JOBS);
  }, 60_000);
  it('a ctx.transaction whose COMMIT reply is lost completed the job: reported completed, not as a stale write (guarantees.md, "A write that failed may still have committed")', async () => {
    const { tdb, oracle } = await setUp();
    const relay = cleanup.add(new Relay(), (r) => r.close());
    const through = await relay.listen();
    // Loses the reply to this job's own COMMIT: armed inside its transaction, after its write.
    const transactionErrors: unknown[] = [];
    const job = defineJob({
      name: 'effect',
      retry: { maxAttempts: 5, backoff: { type: 'fixed', base: 10, jitter: 'none' } },
      handler: async (_payload, ctx) => {
        await ctx.transaction(async (tx) => {
          await (tx as pg.ClientBase).query(`INSERT INTO "${tdb.schema}".effects (job_id, attempt) VALUES ($1, $2)`, [ctx.job.id, ctx.attempt]);
          if (ctx.attempt === 1) relay.arm('COMMIT');
        }).catch((error: unknown) => {
          transactionErrors.push(error);
          throw error;
        });
      },
    });
    const worker = startWorker(createDriver({ url: through, schema: tdb.schema, onError: ignoreIdleErrors }), [job]);
    const seen: string[] = [];
    const settled = deferred();
    worker.on('job:completed', () => (seen.push('completed'), settled.resolve()));
    worker.on('job:failed', (e) => (seen.push(`failed (${e.outcome})`), settled.resolve()));
    worker.on('job:stale-write-rejected', (e) => (seen.push(`stale ${e.write}`), settled.resolve()));
    const { id } = await producerOf(tdb, [job]).enqueue(job, {});
    await worker.start();
    await allCompleted(oracle, 1);
    await within(settled.promise, "the attempt's ending to be reported");
    await worker.stop();

    // The lost reply was this transaction's: its COMMIT went through, and ctx.transaction, finding its completion in
    // the job's history, returned as if the reply had come (it threw only when the completion did not commit).
    expect(relay.cut).toBe(1);
    expect(transactionErrors).toEqual([]);
    // The database: completed once, by attempt 1, with its one effect.
    await exactlyOnce(oracle, 1);
    expect(await tdb.driver.jobGet({ id })).toMatchObject({ state: 'completed', attempt: 1 });
    // What the worker said: the attempt completed the job. A stale write is an attempt whose job was rescued,
    // cancelled or claimed again (docs/state-machine.md, "The lease-token guard"); none of that happened here.
    expect({ seen, staleWritesRejected: worker.workerCounters!.staleWritesRejected }).toEqual({ seen: ['completed'], staleWritesRejected: 0 });
  });
});
