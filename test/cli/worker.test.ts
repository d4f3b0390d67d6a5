import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { workerCommand } from '../../src/cli/commands/worker.js';
import { type CliDatabase, cli, cliJson, expectOneLineError, JOBS, migratedDatabase, postgresDatabase, REPO_ROOT, sqliteDatabase, waitFor } from './cli-helpers.js';

const EMAIL = JSON.stringify({ to: 'a@example.com', template: 'welcome' });

let db: CliDatabase | undefined;
let child: ChildProcess | undefined;
beforeEach(() => {
  delete process.env.WARDEN_JOBS;
});
afterEach(async () => {
  if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  child = undefined;
  await db?.cleanup();
  db = undefined;
});

/** A `warden worker` process started from the sources, with its output collected. */
interface WorkerProcess {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves when the output matches (or rejects when the process exits first or the deadline passes). */
  waitForOutput(stream: 'stdout' | 'stderr', pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function startWorker(args: string[]): WorkerProcess {
  const proc = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'worker', ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, WARDEN_LOG_LEVEL: 'warn', WARDEN_JOBS: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child = proc;
  const output = { stdout: '', stderr: '' };
  proc.stdout!.setEncoding('utf8').on('data', (chunk: string) => (output.stdout += chunk));
  proc.stderr!.setEncoding('utf8').on('data', (chunk: string) => (output.stderr += chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  let done = false;
  void exited.then(() => (done = true));
  return {
    child: proc,
    stdout: () => output.stdout,
    stderr: () => output.stderr,
    exited,
    waitForOutput: (stream, pattern, timeoutMs = 30_000) =>
      waitFor(`${stream} to match ${pattern}`, async () => {
        const match = pattern.exec(output[stream]);
        if (match) return match;
        if (done) throw new Error(`Expected ${stream} to match ${pattern}, got an exit first. stdout: ${output.stdout} stderr: ${output.stderr}`);
        return undefined;
      }, timeoutMs, 50),
  };
}

async function jobStates(database: CliDatabase): Promise<string[]> {
  return (await cliJson(['jobs', 'list', ...database.args])).map((j: any) => j.state);
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([promise, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`Expected ${what} within ${ms}ms, got a timeout`)), ms))]);
}

describe('warden worker (process)', () => {
  it('runs jobs enqueued through the CLI and exits 0 on SIGTERM', async () => {
    const database = (db = await sqliteDatabase());
    const worker = startWorker(['--jobs', 'test/cli/fixtures/jobs.ts', '--database', database.url, '--migrate', '--poll-interval', '100ms']);
    const started = await worker.waitForOutput('stdout', /^worker (\S+) started: queues (.+), concurrency 10$/m);
    expect(started[2]!.split(', ').sort()).toEqual(['default', 'email']);

    for (let i = 0; i < 3; i++) {
      const result = await cli(['enqueue', 'send-email', EMAIL, '--jobs', JOBS, ...database.args]);
      expect(result.code).toBe(0);
    }
    await waitFor('3 completed jobs', async () => {
      const states = await jobStates(database);
      return states.length === 3 && states.every((s) => s === 'completed') ? states : undefined;
    });

    worker.child.kill('SIGTERM');
    const exit = await withTimeout(worker.exited, 20_000, 'the worker to exit');
    expect(exit).toEqual({ code: 0, signal: null });
    expect(worker.stdout()).toMatch(new RegExp(`^worker ${started[1]!.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} stopped$`, 'm'));
    expect(worker.stderr()).toContain('received SIGTERM');
    expect(worker.stderr()).not.toContain('    at ');
  });

  it('exits at once with 130 on a second SIGTERM while a job blocks shutdown', async () => {
    const database = (db = await sqliteDatabase());
    const worker = startWorker(['--jobs', 'test/cli/fixtures/jobs.ts', '--database', database.url, '--migrate', '--poll-interval', '100ms', '--grace', '60s']);
    await worker.waitForOutput('stdout', /started/);
    expect((await cli(['enqueue', 'slow', '{"ms":60000}', '--jobs', JOBS, ...database.args])).code).toBe(0);
    await waitFor('the slow job to run', async () => ((await jobStates(database))[0] === 'running' ? true : undefined));

    worker.child.kill('SIGTERM');
    await worker.waitForOutput('stderr', /received SIGTERM/, 10_000);
    const firstSignalAt = Date.now();
    worker.child.kill('SIGTERM');
    const exit = await withTimeout(worker.exited, 10_000, 'the worker to exit after a second SIGTERM');
    expect(exit).toEqual({ code: 130, signal: null });
    expect(Date.now() - firstSignalAt).toBeLessThan(10_000);
  });
});

describe('warden worker (in-process)', () => {
  it('starts, runs a job and stops when its signal is aborted', async () => {
    db = await migratedDatabase('sqlite');
    let out = '';
    let err = '';
    const controller = new AbortController();
    const running = workerCommand(
      { database: db.url, schema: 'warden', jobs: JOBS, pollInterval: '50ms', queues: 'email', concurrency: '2', signal: controller.signal, handleSignals: false },
      { out: (t) => void (out += t), err: (t) => void (err += t) },
    );
    await waitFor('the started line', async () => (out.includes('started') ? true : undefined));
    expect(out).toMatch(/^worker \S+ started: queues email, concurrency 2\n$/);
    expect((await cli(['enqueue', 'send-email', EMAIL, '--jobs', JOBS, ...db.args])).code).toBe(0);
    const database = db;
    await waitFor('a completed job', async () => ((await jobStates(database))[0] === 'completed' ? true : undefined));
    controller.abort();
    expect(await running).toBe(0);
    expect(out).toMatch(/^worker \S+ stopped$/m);
    expect(err).toBe('');
  });

  it('returns when its signal is aborted while the worker is still starting', async () => {
    const pgdb = await postgresDatabase();
    db = pgdb;
    expect((await cli(['migrate', ...pgdb.args])).code).toBe(0);
    let out = '';
    const controller = new AbortController();
    const running = workerCommand(
      { database: pgdb.url, schema: pgdb.schema, jobs: JOBS, queues: 'email', metricsPort: '0', signal: controller.signal, handleSignals: false },
      {
        out: (t) => void (out += t),
        // Written just before `start()` is called: aborting a microtask later lands while the worker opens its
        // connections (PostgreSQL: a round trip at least). That worker never starts: no "started" line.
        err: (t) => void (t.startsWith('serving /metrics') && queueMicrotask(() => controller.abort())),
      },
    );
    expect(await running).toBe(0);
    expect(out).toMatch(/^worker \S+ stopped\n$/);
  });

  it('starts nothing when its signal is aborted while the metrics server opens', async () => {
    db = await migratedDatabase('sqlite');
    let out = '';
    const controller = new AbortController();
    const running = workerCommand(
      { database: db.url, schema: 'warden', jobs: JOBS, queues: 'email', metricsPort: '0', signal: controller.signal, handleSignals: false },
      // The abort lands right after the server is listening, before `start()` is called.
      { out: (t) => void (out += t), err: (t) => void (t.startsWith('serving /metrics') && controller.abort()) },
    );
    expect(await running).toBe(0);
    expect(out).toBe('');
  });

  it('prints one JSON document when started with --json', async () => {
    db = await migratedDatabase('sqlite');
    let out = '';
    const controller = new AbortController();
    const running = workerCommand({ database: db.url, schema: 'warden', json: true, jobs: JOBS, signal: controller.signal, handleSignals: false }, { out: (t) => void (out += t), err: () => {} });
    await waitFor('the started document', async () => (out.length > 0 ? true : undefined));
    controller.abort();
    expect(await running).toBe(0);
    expect(JSON.parse(out)).toMatchObject({ workerId: expect.any(String), queues: expect.arrayContaining(['email', 'default']), concurrency: 10 });
  });

  it.each([
    [[], /^warden: Expected --jobs <module> \(or WARDEN_JOBS\) naming the jobs this worker runs, got none\n$/],
    [['--jobs', 'test/cli/fixtures/missing.ts'], /Expected --jobs to name a jobs module file, got "test\/cli\/fixtures\/missing.ts" \(no such file/],
    [['--jobs', fileURLToPath(new URL('./fixtures/no-jobs.ts', import.meta.url))], /to export job definitions .*got none/],
    [['--jobs', JOBS, '--concurrency', '0'], /Expected concurrency to be an integer from 1 to 10000, got 0/],
    [['--jobs', JOBS, '--lease', '5s', '--heartbeat', '10s'], /Expected heartbeat to be a duration shorter than lease/],
    [['--jobs', JOBS, '--grace', 'soon'], /Expected grace to be a duration/],
    [['--jobs', JOBS, '--queues', 'a;drop'], /Expected queues\[\] to match/],
  ])('fails in one line for %j', async (args, message) => {
    db = await migratedDatabase('sqlite');
    expectOneLineError(await cli(['worker', ...args, ...db.args]), 1, message);
  });

  it('requires migrations unless --migrate is given', async () => {
    db = await postgresDatabase();
    expectOneLineError(await cli(['worker', '--jobs', JOBS, ...db.args]), 1, /Expected the database schema to be migrated.*Run `warden migrate`/);
  });
});
