/**
 * The re-screening demo from start to finish, as a function (`main.ts` prints it; the test checks it):
 * reset and migrate, seed customers, start the fake screening service, trigger the hourly schedule once, run a
 * worker (in this process, or — with `crash` — in child processes, one of them SIGKILLed mid-run), wait for the
 * run to finish, and read back what happened from the database and the service.
 * @module
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { AttemptRow, JobRow, ScheduleTickRow } from '../../src/index.js';
import { generateCustomers, type RunReport, seededRandom, sqliteFile } from './app-db.js';
import { optionsToEnv, type RescreeningOptions } from './config.js';
import { printEvents } from './event-lines.js';
import { RESCREEN_SCHEDULE } from './rescreen-job.js';
import { type ScreeningServiceStats, startScreeningService } from './screening-service.js';
import { describeDatabase, openRescreeningApp, resetDatabase } from './wiring.js';

/** Everything the demo found out; `failures` lists the expectations that did not hold. */
export interface DemoSummary {
  database: string;
  runId: string;
  asOf: Date;
  customers: number;
  /** Customers due as of `asOf` when the run was triggered. */
  due: number;
  /** The run's job as it ended (state, attempts, progress). */
  job: JobRow | null;
  attempts: AttemptRow[];
  /** Memoized steps the run recorded (one `count-due`, one per chunk). */
  stepsRecorded: number;
  /** What the run left in the application's tables. */
  report: RunReport;
  service: ScreeningServiceStats;
  /** Worker processes SIGKILLed (crash demo). */
  crashes: number;
  ticks: ScheduleTickRow[];
  elapsedMs: number;
  failures: string[];
}

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const WORKER_SCRIPT = fileURLToPath(new URL('./worker.ts', import.meta.url));
const POLL_MS = 50;

/** Runs the demo; never exits the process. `say` gets one line per thing worth telling. */
export async function runRescreeningDemo(options: RescreeningOptions, say: (line: string) => void = () => {}): Promise<DemoSummary> {
  const t0 = performance.now();
  const failures: string[] = [];
  const expect = (ok: boolean, what: string) => {
    if (!ok) failures.push(what);
  };
  const where = options.reset ? await resetDatabase(options) : describeDatabase(options);
  // "Times out" means: answers only after three times the client's patience.
  const service = await startScreeningService({
    failureRate: options.failureRate,
    timeoutRate: options.timeoutRate,
    hangMs: options.requestTimeoutMs * 3,
    random: seededRandom(options.seed + 1),
  });
  const app = await openRescreeningApp(options, service.url);
  const children = new Set<ChildProcess>();
  let crashes = 0;
  try {
    say(`database: ${where}`);
    say(`screening service: ${service.url} (503 rate ${options.failureRate}, timeout rate ${options.timeoutRate}, client timeout ${options.requestTimeoutMs} ms)`);
    const migrated = await app.warden.migrate();
    say(`migrated Warden: ${migrated.applied.length > 0 ? migrated.applied.join(', ') : 'nothing to apply'}`);
    await app.appDb.createTables();
    if ((await app.appDb.countCustomers()) === 0 && options.customers > 0) {
      await app.appDb.insertCustomers(generateCustomers(options.customers, options.dueShare, seededRandom(options.seed), new Date()));
    }
    const customers = await app.appDb.countCustomers();
    printEvents(app.warden, say);

    // One run now, so the demo does not wait for the top of the hour. Triggered before any worker runs, so the
    // due count below is exactly what the run will find.
    await app.warden.schedules.sync({ names: [RESCREEN_SCHEDULE] });
    const { jobId: runId, tickAt: asOf } = await app.warden.schedules.trigger(RESCREEN_SCHEDULE, { actor: 'example' });
    const due = await app.appDb.countDue(asOf);
    say(`${due} of ${customers} customers due as of ${asOf.toISOString()}`);

    if (options.crash) {
      children.add(startWorkerChild(options, service.url, say));
    } else {
      await app.warden.start({ concurrency: 1, pollInterval: '200ms' });
    }

    // Wait for the run to end. In the crash demo, SIGKILL the worker once mid-chunk, then start a fresh one: the
    // run resumes from its checkpoint.
    const deadline = performance.now() + options.deadlineMs;
    let job: JobRow | null = null;
    let runningSince: number | null = null;
    let killAt: number | null = null;
    for (;;) {
      job = await app.warden.jobs.get(runId);
      if (job === null || ['completed', 'dead', 'cancelled'].includes(job.state)) break;
      if (performance.now() > deadline) {
        failures.push(`run #${runId} still ${job.state} after ${options.deadlineMs / 1000}s`);
        break;
      }
      const done = job.progress?.done ?? 0;
      if (options.crash && crashes === 0 && job.state === 'running') {
        runningSince ??= performance.now();
        // Half-way into the second chunk, judging by how long the first took: the worker is then most likely
        // screening it, with part of the chunk screened (and billed) and none of it committed.
        if (killAt === null && done > 0) killAt = performance.now() + (performance.now() - runningSince) / 2;
      }
      if (killAt !== null && crashes === 0 && performance.now() >= killAt && job.state === 'running' && done < due) {
        const [victim] = children;
        say(`SIGKILL worker pid ${victim!.pid} at ${done}/${due} committed`);
        await kill(victim!, 'SIGKILL');
        children.delete(victim!);
        crashes++;
        children.add(startWorkerChild(options, service.url, say));
      }
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
    // Stop the workers before reading, so every last event has been printed.
    for (const child of children) await kill(child, 'SIGTERM');
    children.clear();
    await app.warden.stop();

    const attempts = await app.warden.jobs.attempts(runId);
    const steps = await app.warden.jobs.steps(runId);
    const report = await app.appDb.report(runId, asOf);
    const stats = service.stats();
    const ticks = await app.warden.schedules.ticks(RESCREEN_SCHEDULE, { limit: 20 });

    expect(job?.state === 'completed', `run #${runId} should be completed, is ${job?.state ?? 'missing'}`);
    expect(report.rows === due && report.distinctCustomers === due, `the run should have written one result per due customer (${due}), wrote ${report.rows} rows for ${report.distinctCustomers} customers`);
    expect(report.duplicateCustomers === 0, `no customer should have two results in the run, ${report.duplicateCustomers} have`);
    expect(report.stillDue === 0, `no customer should still be due as of the run, ${report.stillDue} are`);
    expect(report.run?.screened === due, `the run's summary row should count ${due} screened, counts ${report.run?.screened ?? 'nothing (no row)'}`);
    expect(job?.progress?.done === due && job.progress.total === due, `the run's progress should be ${due}/${due}, is ${job?.progress?.done}/${job?.progress?.total}`);
    expect(stats.screenings === due && stats.distinctKeys === due, `the service should have screened each due customer once under one key (${due}), screened ${stats.screenings} under ${stats.distinctKeys} keys`);
    expect(stats.customersScreenedTwice === 0, `no customer should have been screened twice, ${stats.customersScreenedTwice} were`);
    if (options.crash) expect(crashes === 1, 'the worker should have been killed once mid-run (the run finished before it could be)');

    return { database: where, runId, asOf, customers, due, job, attempts, stepsRecorded: steps.length, report, service: stats, crashes, ticks, elapsedMs: performance.now() - t0, failures };
  } finally {
    for (const child of children) await kill(child, 'SIGKILL');
    await app.close();
    await service.close();
  }
}

/**
 * Starts `worker.ts` in a child process with the same settings (a relative SQLite path made absolute, since
 * the child runs from the repository root), its stdout lines prefixed and passed to `say`.
 */
function startWorkerChild(options: RescreeningOptions, serviceUrl: string, say: (line: string) => void): ChildProcess {
  const file = sqliteFile(options.databaseUrl);
  const env = { ...optionsToEnv(options), ...(file !== null ? { WARDEN_DATABASE_URL: `sqlite:${resolve(file)}` } : {}), RESCREEN_SERVICE_URL: serviceUrl };
  const child = spawn(process.execPath, ['--import', 'tsx', WORKER_SCRIPT], { cwd: REPO_ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  createInterface({ input: child.stdout! }).on('line', (line) => say(`  [worker pid ${child.pid}] ${line}`));
  say(`started worker process pid ${child.pid}`);
  return child;
}

/** Sends `signal` to one child (by its own handle) and waits for it to exit; SIGKILL after 15 s of SIGTERM. */
async function kill(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('close', () => r()));
  child.kill(signal);
  const timer = signal === 'SIGKILL' ? null : setTimeout(() => child.kill('SIGKILL'), 15_000);
  await exited;
  if (timer) clearTimeout(timer);
}
