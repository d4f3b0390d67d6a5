/**
 * Transactional completion under SIGKILL: 1,000 jobs each write one effect row through `ctx.transaction`; for every
 * tenth job (by id) the worker process kills itself on the job's first attempt between the row's insert and the
 * commit. Workers are respawned until every job completed. The application table must hold exactly one effect row
 * per job, written by the attempt that completed it: the killed attempts' rows were rolled back with their
 * transactions.
 */
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { createWarden } from '../../src/client/warden.js';
import { defineJob } from '../../src/job/define-job.js';
import { createTestDatabase, DRIVER_KINDS, type DriverKind, type TestDatabase } from '../support/test-databases.js';
import { type Bundle, bundleChild, killAllBundled, spawnBundled } from './bundled-child.js';
import { type Child, errorEvents, pollUntil, waitForExit, waitForMessage } from './child-process.js';
import { ALL_ATTEMPTS, type Oracle, openOracle } from './db-oracle.js';

// 1,000, not more: the file is the suite's longest (100 deaths and respawns), and CI must finish within 10 minutes on a
// slow 2-core host.
const JOBS = 1_000;
const CRASH_DIGIT = 3;
const WORKERS: Record<DriverKind, number> = { sqlite: 5, postgres: 5 };
/** Processes started ahead, standing by to replace one that died. */
const STANDBY = 2;
const CONCURRENCY: Record<DriverKind, number> = { sqlite: 4, postgres: 8 };
/** PostgreSQL: a process dies 200 ms after its first transaction reached the crash point, with any others open. */
const PARK_MS: Record<DriverKind, number> = { sqlite: 0, postgres: 200 };

let tdb: TestDatabase | undefined;
let oracle: Oracle | undefined;
let bundle: Bundle | undefined;

afterEach(async () => {
  await killAllBundled();
  await oracle?.close();
  oracle = undefined;
  await tdb?.cleanup();
  tdb = undefined;
  await bundle?.remove();
  bundle = undefined;
});

describe.each(DRIVER_KINDS)('SIGKILL inside ctx.transaction (%s)', (kind) => {
  it(`${JOBS} jobs, every tenth killed between its write and the commit on its first attempt: exactly one effect row per job`, async () => {
    tdb = await createTestDatabase(kind);
    oracle = await openOracle(tdb);
    bundle = await bundleChild('transaction-crash-worker.ts');
    await oracle.exec(
      kind === 'sqlite'
        ? 'CREATE TABLE {effects} (id INTEGER PRIMARY KEY, job_id INTEGER NOT NULL, attempt INTEGER NOT NULL, worker TEXT NOT NULL)'
        : 'CREATE TABLE {effects} (id bigserial PRIMARY KEY, job_id bigint NOT NULL, attempt integer NOT NULL, worker text NOT NULL)',
    );

    const effect = defineJob({ name: 'effect', handler: () => undefined });
    const producer = createWarden({ database: tdb.driver, jobs: [effect], logger: pino({ level: 'silent' }) });
    const enqueued = await producer.enqueueMany(Array.from({ length: JOBS }, (_, n) => ({ job: effect, payload: { n } })));
    const designated = new Set(enqueued.map((r) => r.id).filter((id) => Number(BigInt(id) % 10n) === CRASH_DIGIT));
    expect(designated.size).toBe(JOBS / 10);

    // Keep WORKERS processes working until every job completed: each one that dies is replaced at once by a process
    // standing by (loaded and connected, waiting for SIGUSR1), and a new one is started to stand by in its place.
    const children: Child[] = [];
    const standby: Child[] = [];
    let finished = false;
    const config = { url: tdb.url, schema: tdb.schema, concurrency: CONCURRENCY[kind], parkMs: PARK_MS[kind], lease: '2s', heartbeat: '500ms', rescueInterval: '250ms', crashDigit: CRASH_DIGIT };
    const prepare = (): void => {
      const name = `w${children.length}`;
      const child = spawnBundled(name, bundle!, { ...config, name });
      children.push(child);
      standby.push(child);
      void child.closed.then(() => {
        const waiting = standby.indexOf(child);
        if (waiting >= 0) standby.splice(waiting, 1);
        if (!finished && waiting < 0) activate();
      });
    };
    const activate = (): void => {
      prepare();
      // The oldest standby is the likeliest to be ready; a signal before its handler exists would kill it, so wait
      // for its `standby` line.
      const next = standby.shift()!;
      void waitForMessage(next, (m) => m.type === 'standby', 60_000).then(
        () => next.signal('SIGUSR1'),
        () => undefined,
      );
    };
    for (let i = 0; i < STANDBY; i++) prepare();
    for (let i = 0; i < WORKERS[kind]; i++) activate();

    try {
      await pollUntil(
        `all ${JOBS} jobs completed`,
        () => oracle!.number("SELECT count(*) FROM {jobs} WHERE state = 'completed'"),
        (n) => n === JOBS,
        { timeoutMs: 150_000, intervalMs: 200 },
      );
    } catch (error) {
      const states = await oracle.all('SELECT state, count(*) AS n FROM {jobs} GROUP BY state');
      throw new Error(`${(error as Error).message}\nstates: ${JSON.stringify(states)}\n${children.slice(-3).map((c) => c.describe()).join('\n')}`);
    }
    finished = true;
    // Stop the working processes gracefully; kill those still standing by (or not started yet) unused.
    standby.length = 0;
    const alive = children.filter((c) => c.alive);
    const working = alive.filter((c) => c.ofType('ready').length > 0);
    const unused = new Set(alive.filter((c) => !working.includes(c)));
    for (const c of working) c.signal('SIGTERM');
    for (const c of unused) c.signal('SIGKILL');
    const exits = await Promise.all(working.map((c) => waitForExit(c, 20_000)));
    await Promise.all([...unused].map((c) => waitForExit(c, 20_000)));

    // Every child either crashed on purpose (SIGKILL after `crashing`) or was stopped gracefully at the end.
    const crashed = children.filter((c) => c.ofType('crashing').length > 0);
    for (const c of children) {
      if (unused.has(c)) continue;
      if (c.ofType('crashing').length > 0) expect(c.exitInfo, c.describe()).toEqual({ code: null, signal: 'SIGKILL' });
      else if (c.exitInfo?.signal !== null || c.exitInfo.code !== 0) expect.fail(`unexpected exit\n${c.describe()}`);
      expect(c.ofType('crash'), c.describe()).toEqual([]);
      expect(errorEvents(c).filter((e) => !/SQLITE_BUSY|terminat/i.test(JSON.stringify(e))), c.describe()).toEqual([]);
    }
    expect(exits.every((e) => e.code === 0)).toBe(true);
    const crashedJobs = crashed.flatMap((c) => c.ofType('crashing').map((m) => String(m.jobId)));
    expect(crashedJobs.every((id) => designated.has(id))).toBe(true);
    expect(new Set(crashedJobs).size).toBe(crashedJobs.length);
    // Most designated jobs are killed inside their own transaction; the rest lost their first attempt to another
    // job's crash before reaching it.
    expect(crashedJobs.length).toBeGreaterThanOrEqual(designated.size / 2);

    // The oracle: exactly one effect per job, written by the attempt that completed it.
    const effects = await oracle.number('SELECT count(*) FROM {effects}');
    const distinct = await oracle.number('SELECT count(DISTINCT job_id) FROM {effects}');
    const duplicated = await oracle.all('SELECT job_id, count(*) AS n FROM {effects} GROUP BY job_id HAVING count(*) > 1 LIMIT 10');
    const fromCompletingAttempt = await oracle.number(
      "SELECT count(*) FROM {effects} e JOIN {jobs} j ON j.id = e.job_id WHERE j.state = 'completed' AND j.attempt = e.attempt",
    );
    expect({ effects, distinct, duplicated, fromCompletingAttempt }).toEqual({ effects: JOBS, distinct: JOBS, duplicated: [], fromCompletingAttempt: JOBS });

    // Every crashed job lost its first attempt and completed on a later one; no designated job completed on attempt 1.
    const firstTry = await oracle.all<{ id: unknown }>("SELECT id FROM {jobs} WHERE attempt = 1 AND state = 'completed'");
    expect(firstTry.map((r) => String(r.id)).filter((id) => designated.has(id))).toEqual([]);
    for (const id of crashedJobs.slice(0, 20)) {
      const attempts = await tdb.driver.jobAttemptList({ id });
      expect(attempts[0]).toMatchObject({ attempt: 1, outcome: 'lost' });
      expect(attempts.at(-1)).toMatchObject({ outcome: 'completed' });
    }
    const attemptRows = await oracle.number(`SELECT count(*) FROM ${ALL_ATTEMPTS} a`);
    // Context for the report: the share of attempts that were killed inside their transaction (~10%).
    console.log(`[${kind}] ${children.length} worker processes, ${crashed.length} killed with ${crashedJobs.length} attempts inside ctx.transaction, ${attemptRows} attempts`);
  }, 240_000);
});
