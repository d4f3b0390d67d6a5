/**
 * `warden worker`: a second SIGTERM exits at once with 130 at every point of the shutdown, also after the worker
 * has stopped while Warden is still closing. The command's cleanup used to remove the signal handlers as soon as
 * the worker stopped, so a second signal in that window got Node's default action: the process died by the signal
 * mid-close (no exit code, the audit flush and connection close cut short).
 * @module
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { type CliDatabase, migratedDatabase, REPO_ROOT, waitFor } from './cli-helpers.js';

const SLOW_CLOSE = fileURLToPath(new URL('./fixtures/slow-pool-close.mjs', import.meta.url));

let db: CliDatabase | undefined;
let child: ChildProcess | undefined;
afterEach(async () => {
  if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  child = undefined;
  await db?.cleanup();
  db = undefined;
});

describe('warden worker: a second SIGTERM while closing', () => {
  it('exits with 130, not killed by the signal, when it comes after the worker stopped but before the close finished', async () => {
    db = await migratedDatabase('postgres');
    // Closing the database takes 1 s (the preload): the window between "stopped" and the exit is wide and certain.
    const proc = (child = spawn(process.execPath, ['--import', 'tsx', '--import', SLOW_CLOSE, 'src/cli/main.ts', 'worker', '--jobs', 'test/cli/fixtures/jobs.ts', ...db.args], {
      cwd: REPO_ROOT,
      env: { ...process.env, WARDEN_LOG_LEVEL: 'warn', WARDEN_JOBS: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    }));
    let out = '';
    let err = '';
    proc.stdout!.setEncoding('utf8').on('data', (c: string) => (out += c));
    proc.stderr!.setEncoding('utf8').on('data', (c: string) => (err += c));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
    const alive = () => proc.exitCode === null && proc.signalCode === null;
    const outputs = () => `stdout: ${out} stderr: ${err}`;

    await waitFor('the started line', async () => (/^worker \S+ started/m.test(out) ? true : alive() ? undefined : Promise.reject(new Error(`exited first. ${outputs()}`))), 30_000, 50);
    proc.kill('SIGTERM');
    await waitFor('the stopped line', async () => (/^worker \S+ stopped$/m.test(out) ? true : alive() ? undefined : Promise.reject(new Error(`exited first. ${outputs()}`))), 30_000, 10);
    expect(alive()).toBe(true);
    proc.kill('SIGTERM');
    // 130 is the second signal's own exit (the close would have ended in 0).
    expect(await exited, outputs()).toEqual({ code: 130, signal: null });
    expect(err).not.toContain('    at ');
  });
});
