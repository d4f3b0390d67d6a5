/**
 * Reference scenario 1 (reliability-and-ecosystem.md §D): no loss on SIGKILL mid-job. 4 worker processes ×
 * concurrency 8, JOBS jobs; a random worker is SIGKILLed every KILL_EVERY_MS (KILLS times) and restarted. Handlers
 * write their effect through ctx.transaction (committed with the completion). Oracle: every job completed, none
 * running, count(effects) = JOBS with no duplicate job_id, each effect written by the completing attempt, and
 * every lost (killed) attempt followed by a later attempt that completed.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { createWarden, defineJob } from '../../src/index.js';
import { Child, errorEvents, killAllChildren, pollUntil, REPO_ROOT, waitForExit, waitForMessage } from './child-process.js';
import { ALL_ATTEMPTS, type Oracle, openOracle } from './db-oracle.js';
import { createTestDatabase, DRIVER_KINDS, type TestDatabase } from '../support/test-databases.js';

// The reference's size is 10,000 jobs and 10 kills (`S1_JOBS=10000 S1_KILL_MS=1500`, about 26 s a driver); the suite
// runs a smaller soak that still kills at least four workers mid-drain.
const JOBS = Number(process.env.S1_JOBS ?? 5_000);
const WORKERS = 4;
const CONCURRENCY = 8;
const KILLS = 8;
const KILL_EVERY_MS = Number(process.env.S1_KILL_MS ?? 1_000);

const mine = new Set<Child>();
function spawnMine(name: string, config: unknown): Child {
  const path = fileURLToPath(new URL('./children/soak-worker.ts', import.meta.url));
  const proc = spawn(process.execPath, ['--import', 'tsx', path, JSON.stringify(config)], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, WARDEN_LOG_LEVEL: 'silent' } });
  const child = new Child(name, proc);
  mine.add(child);
  return child;
}

let tdb: TestDatabase | undefined;
let oracle: Oracle | undefined;
afterEach(async () => {
  for (const c of mine) c.signal('SIGKILL');
  await Promise.all([...mine].map((c) => c.closed));
  mine.clear();
  await killAllChildren();
  await oracle?.close();
  oracle = undefined;
  await tdb?.cleanup();
  tdb = undefined;
});

describe.each(DRIVER_KINDS)('scenario 1: SIGKILL soak (%s)', (kind) => {
  it(`${JOBS} jobs, ${WORKERS}×${CONCURRENCY}, a random worker SIGKILLed every ${KILL_EVERY_MS} ms (${KILLS}×) and restarted: every job completed, each effect exactly once`, async () => {
    tdb = await createTestDatabase(kind);
    oracle = await openOracle(tdb);
    await oracle.exec(
      kind === 'sqlite'
        ? 'CREATE TABLE {effects} (id INTEGER PRIMARY KEY, job_id INTEGER NOT NULL, attempt INTEGER NOT NULL, worker TEXT NOT NULL)'
        : 'CREATE TABLE {effects} (id bigserial PRIMARY KEY, job_id bigint NOT NULL, attempt integer NOT NULL, worker text NOT NULL)',
    );
    const effect = defineJob({ name: 'effect', handler: (_p: { n: number }) => undefined });
    const producer = createWarden({ database: tdb.driver, jobs: [effect], logger: pino({ level: 'silent' }) });
    for (let from = 0; from < JOBS; from += 1_000) {
      await producer.enqueueMany(Array.from({ length: Math.min(1_000, JOBS - from) }, (_, i) => ({ job: effect, payload: { n: from + i } })));
    }

    const all: Child[] = [];
    const active: Child[] = [];
    const start = async (): Promise<Child> => {
      const name = `w${all.length}`;
      const c = spawnMine(name, { url: tdb!.url, schema: tdb!.schema, name, concurrency: CONCURRENCY });
      all.push(c);
      await waitForMessage(c, (m) => m.type === 'ready', 60_000);
      active.push(c);
      return c;
    };
    await Promise.all(Array.from({ length: WORKERS }, () => start()));

    const done = async () => (await oracle!.number("SELECT count(*) FROM {jobs} WHERE state = 'completed'")) === JOBS;
    const killed: Child[] = [];
    while (killed.length < KILLS && !(await done())) {
      await new Promise((r) => setTimeout(r, KILL_EVERY_MS));
      const victim = active.splice(Math.floor(Math.random() * active.length), 1)[0]!;
      victim.signal('SIGKILL');
      expect(await waitForExit(victim, 10_000)).toEqual({ code: null, signal: 'SIGKILL' });
      killed.push(victim);
      await start();
    }

    await pollUntil(`all ${JOBS} jobs completed`, () => oracle!.number("SELECT count(*) FROM {jobs} WHERE state = 'completed'"), (n) => n === JOBS, { timeoutMs: 180_000, intervalMs: 250 });
    for (const c of active) c.signal('SIGTERM');
    const exits = await Promise.all(active.map((c) => waitForExit(c, 30_000)));
    expect(exits).toEqual(active.map(() => ({ code: 0, signal: null })));

    const states = await oracle.all<{ state: string; n: unknown }>('SELECT state, count(*) AS n FROM {jobs} GROUP BY state');
    expect(states.map((s) => [s.state, Number(s.n)])).toEqual([['completed', JOBS]]);
    const effects = await oracle.number('SELECT count(*) FROM {effects}');
    const distinct = await oracle.number('SELECT count(DISTINCT job_id) FROM {effects}');
    const duplicated = await oracle.all('SELECT job_id, count(*) AS n FROM {effects} GROUP BY job_id HAVING count(*) > 1 LIMIT 10');
    const fromCompleting = await oracle.number("SELECT count(*) FROM {effects} e JOIN {jobs} j ON j.id = e.job_id WHERE j.attempt = e.attempt");
    expect({ effects, distinct, duplicated, fromCompleting }).toEqual({ effects: JOBS, distinct: JOBS, duplicated: [], fromCompleting: JOBS });

    const lost = await oracle.number(`SELECT count(*) FROM ${ALL_ATTEMPTS} a WHERE outcome = 'lost'`);
    const lostNotLast = await oracle.number(`SELECT count(*) FROM ${ALL_ATTEMPTS} a JOIN {jobs} j ON j.id = a.job_id WHERE a.outcome = 'lost' AND a.attempt >= j.attempt`);
    expect(lostNotLast).toBe(0);
    const completing = await oracle.number(`SELECT count(*) FROM ${ALL_ATTEMPTS} a WHERE outcome = 'completed'`);
    expect(completing).toBe(JOBS);
    const otherOutcomes = await oracle.all(`SELECT outcome, count(*) AS n FROM ${ALL_ATTEMPTS} a WHERE outcome NOT IN ('completed', 'lost') GROUP BY outcome`);
    expect(otherOutcomes).toEqual([]);

    // Scenario 5: no unhandled SQLITE_BUSY either (retries are internal and not reported as errors).
    const errors = all.flatMap((c) => errorEvents(c).map((e) => ({ child: c.name, context: e.context, error: (e.error as { message?: string }).message })));
    expect(errors).toEqual([]);
    expect(all.flatMap((c) => c.ofType('crash'))).toEqual([]);
    expect(killed.length).toBeGreaterThanOrEqual(4);
    expect(lost).toBeGreaterThanOrEqual(killed.length);
  }, 400_000);
});
