/**
 * SQLite write groups on a full disk: a write that fails with an error after which SQLite rolls back the whole
 * transaction by itself (SQLITE_FULL or SQLITE_IOERR while spilling pages) ends its group. Every write of the group
 * is rejected with that error, the ones that had succeeded before it included, and none of it is stored; no write
 * after it runs outside the group's transaction. Carrying on instead ran the later writes each in a transaction of
 * its own, which committed, and then failed the whole group with "cannot commit - no transaction is active": writes
 * reported failed were stored, and the transient error was hidden behind a permanent one.
 *
 * The child runs under `ulimit -f` (RLIMIT_FSIZE; node ignores SIGXFSZ, so a write past it fails with EFBIG): a real
 * file on a disk that is full for large writes and not for small ones.
 * @module
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { SqliteDriver } from '../../src/driver/sqlite/sqlite-driver.js';
import { Child, killChild, REPO_ROOT, waitForExit } from '../process/child-process.js';
import { DRIVER_KINDS } from '../support/test-databases.js';

const CHILD = fileURLToPath(new URL('./children/group-full.ts', import.meta.url));
/** The child's file size limit, in KiB (bash's `ulimit -f` unit): far below the large payload. */
const FSIZE_KIB = 4096;
const BIG_BYTES = 40_000_000;

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** Starts `children/group-full.ts` on `filename` with RLIMIT_FSIZE set to {@link FSIZE_KIB}. */
function spawnLimited(filename: string): Child {
  const config = JSON.stringify({ url: `sqlite:${filename}`, name: 'group-full', filename, bigBytes: BIG_BYTES });
  // The limit is set in the shell that then becomes node (exec), so only the child has it.
  const script = `ulimit -f ${FSIZE_KIB} && exec "$0" --import tsx "$1" "$2"`;
  const proc = spawn('bash', ['-c', script, process.execPath, CHILD, config], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, WARDEN_LOG_LEVEL: 'silent' },
  });
  const child = new Child('group-full', proc);
  cleanups.push(() => killChild(child));
  return child;
}

describe.skipIf(!DRIVER_KINDS.includes('sqlite'))('SQLite write group whose transaction SQLite rolled back by itself', () => {
  it('rejects every write of the group with the transient error that ended it, and stores none of them', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'warden-group-full-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const filename = join(dir, 'w.db');
    const setup = new SqliteDriver({ filename });
    await setup.migrate();
    await setup.close();

    const child = spawnLimited(filename);
    await waitForExit(child, 60_000);
    expect(child.ofType('done'), child.describe()).toHaveLength(1);
    const results = Object.fromEntries(child.ofType('result').map(({ label, ok, code, transient }) => [label, { ok, code, transient }]));

    // `first` had succeeded in the group when `big` ended it: it was rolled back with it, and is reported so.
    const big = results.big!;
    expect(big.code, child.describe()).toMatch(/^SQLITE_(FULL|IOERR)/);
    expect(results).toEqual({
      first: { ok: false, code: big.code, transient: true },
      big: { ok: false, code: big.code, transient: true },
      last: { ok: false, code: big.code, transient: true },
      // A small write in a later group fits: the connection is usable, and the condition transient indeed.
      after: { ok: true },
    });
    const db = new Database(filename, { readonly: true });
    cleanups.push(async () => db.close());
    expect(db.prepare('SELECT name FROM jobs ORDER BY id').pluck().all()).toEqual(['after']);
  });
});
