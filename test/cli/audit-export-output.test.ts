/**
 * `warden audit export` and its reader. It keeps to the reader's pace: while the output is full (`io.out` returned
 * false) it reads no further page until the output drained (it used to drop `write`'s answer and read on, queueing
 * the whole chain in memory: ~300 MB for a 26 MB export to a paused reader). A reader that closes the pipe early
 * (`| head`) stops it quietly with exit 0 (it used to crash with Node's unhandled `EPIPE` stack trace); another
 * failure to write is one line and exit 1. Both drivers; the closed pipe also with the real CLI in a child process.
 * @module
 */
import { spawn } from 'node:child_process';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { CliOutputError, type CliIo, streamIo } from '../../src/cli/cli-io.js';
import { runCli } from '../../src/cli/run-cli.js';
import { DEFAULT_AUDIT_PAGE } from '../../src/driver/audit-params.js';
import { createDriver } from '../../src/driver/create-driver.js';
import { PostgresDriver } from '../../src/driver/postgres/postgres-driver.js';
import { SqliteDriver } from '../../src/driver/sqlite/sqlite-driver.js';
import { deferred, within } from '../runtime/helpers.js';
import { type CliDatabase, migratedDatabase, REPO_ROOT } from './cli-helpers.js';

/** A page and a half: the export reads two pages. */
const TOTAL = DEFAULT_AUDIT_PAGE + DEFAULT_AUDIT_PAGE / 2;
const BATCH = 500;

/** A stdout whose writes fail with `code` from the `failAt`-th on, as a pipe whose reader has gone does. */
function failingStdout(code: string, failAt: number): Writable & { chunks: number } {
  let chunks = 0;
  const stream = new Writable({
    write(_chunk, _encoding, callback) {
      chunks++;
      callback(chunks >= failAt ? Object.assign(new Error(`write ${code}`), { code }) : null);
    },
  });
  return Object.assign(stream, {
    get chunks() {
      return chunks;
    },
  });
}

/** A stderr collecting what is written to it. */
function collectingStderr(): Writable & { text: string } {
  const stream = Object.assign(new Writable({ write: (chunk, _encoding, callback) => ((stream.text += String(chunk)), callback()) }), { text: '' });
  return stream;
}

describe.each(['sqlite', 'postgres'] as const)('warden audit export and its reader (%s)', (kind) => {
  let db: CliDatabase;

  beforeAll(async () => {
    db = await migratedDatabase(kind);
    const schema = kind === 'postgres' ? db.args[db.args.indexOf('--schema') + 1] : undefined;
    const driver = createDriver({ url: db.url, schema });
    for (let start = 0; start < TOTAL; start += BATCH) {
      const entries = Array.from({ length: BATCH }, (_, k) => ({
        actor: 'system:test', action: 'job.completed', subjectKind: 'job' as const, subjectId: String(start + k + 1),
        jobName: 'send-email', queue: 'default', before: 'running', after: 'completed', reason: null, data: { pad: 'y'.repeat(200) },
      }));
      await driver.auditAppend({ chain: 'default', entries, now: null });
    }
    await driver.close();
  });
  afterAll(async () => {
    await db?.cleanup();
  });

  it('reads no further page while the output is full, and reads on once it drained', async () => {
    const pageReads = vi.spyOn(kind === 'sqlite' ? SqliteDriver.prototype : PostgresDriver.prototype, 'auditList');
    try {
      let lines = 0;
      const drained = deferred();
      const drainAsked = deferred();
      // Full once the first page has been written, so that the export would read the second page next.
      const io: CliIo = {
        out: (text) => {
          lines += text.split('\n').length - 1;
          return lines !== DEFAULT_AUDIT_PAGE;
        },
        err: (text) => expect.fail(text),
        drain: () => {
          drainAsked.resolve();
          return drained.promise;
        },
      };
      const exported = runCli(['audit', 'export', ...db.args], io);
      await within(Promise.race([drainAsked.promise, exported]), 'the export to wait for the output to drain');
      // The export is parked on drain(): nothing of it can run, so what it has read by now is all it reads until then.
      expect(drainAsked.settled).toBe(true);
      expect({ lines, pageReads: pageReads.mock.calls.length }).toEqual({ lines: DEFAULT_AUDIT_PAGE, pageReads: 1 });

      drained.resolve();
      expect(await within(exported, 'the export to finish')).toBe(0);
      expect({ lines, pageReads: pageReads.mock.calls.length }).toEqual({ lines: TOTAL, pageReads: 2 });
    } finally {
      pageReads.mockRestore();
    }
  });

  it('stops quietly with exit 0 when the reader closes the pipe, and stops with one line and exit 1 when writing fails otherwise', async () => {
    const closed = failingStdout('EPIPE', 2);
    const closedErr = collectingStderr();
    expect(await runCli(['audit', 'export', ...db.args], streamIo(closed, closedErr))).toBe(0);
    expect(closedErr.text).toBe('');
    // It stopped there: far fewer writes than entries.
    expect(closed.chunks).toBeLessThan(TOTAL / 10);

    const broken = failingStdout('EIO', 2);
    const brokenErr = collectingStderr();
    expect(await runCli(['audit', 'export', ...db.args], streamIo(broken, brokenErr))).toBe(1);
    expect(brokenErr.text).toBe('warden: Expected to write the output, got EIO\n');
    expect(broken.chunks).toBeLessThan(TOTAL / 10);
  });

  it('`warden audit export | head`: the CLI process stops at the closed pipe with exit 0 and no stack trace', async () => {
    const proc = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'audit', 'export', ...db.args], {
      cwd: REPO_ROOT,
      env: { ...process.env, WARDEN_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let err = '';
    proc.stderr.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
    // Like `| head -c 100`: read the first chunk, then close the pipe.
    await within(new Promise<void>((resolve) => proc.stdout.once('data', () => resolve())), 'the first chunk of the export');
    proc.stdout.destroy();
    expect({ exit: await within(exited, 'the CLI to exit', 30_000), err }).toEqual({ exit: { code: 0, signal: null }, err: '' });
  });
});

describe('streamIo', () => {
  it('after a failed write, out throws CliOutputError and drain rejects with it; a failing stderr is ignored', async () => {
    const stdout = failingStdout('EPIPE', 1);
    const stderr = new Writable({ write: (_chunk, _encoding, callback) => callback(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' })) });
    const io = streamIo(stdout, stderr);
    io.err('lost\n');
    io.out('first\n');
    await new Promise((resolve) => setImmediate(resolve));
    expect(() => io.out('second\n')).toThrow(CliOutputError);
    const rejection = await io.drain!().catch((error: unknown) => error);
    expect(rejection).toBeInstanceOf(CliOutputError);
    expect(rejection).toMatchObject({ code: 'EPIPE', readerClosed: true });
    io.err('also lost\n');
  });

  it('out reports a full output, and drain resolves once it has drained', async () => {
    const release: (() => void)[] = [];
    const slow = new Writable({ highWaterMark: 4, write: (_chunk, _encoding, callback) => void release.push(() => callback()) });
    const io = streamIo(slow, collectingStderr());
    expect(io.out('12345678')).toBe(false);
    let drained = false;
    const waiting = io.drain!().then(() => (drained = true));
    await new Promise((resolve) => setImmediate(resolve));
    expect(drained).toBe(false);
    release.shift()!();
    await waiting;
    expect(drained).toBe(true);
    await expect(io.drain!()).resolves.toBeUndefined();
  });
});
