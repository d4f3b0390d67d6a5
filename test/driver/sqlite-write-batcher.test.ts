/**
 * The SQLite driver's write groups (`SqliteWriteBatcher`): writes called in one turn of the event loop share one
 * transaction, each in its own savepoint, so one that fails is rolled back and rejected alone, unless SQLite rolled
 * back the whole transaction with it: then the whole group is rejected; a busy database retries the whole group,
 * each write running once; the driver runs the writes called before `close()`. Real
 * SQLite files: a second connection sees what was committed and when.
 * @module
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { createDriver } from '../../src/driver/create-driver.js';
import { retryBusy } from '../../src/driver/sqlite/sqlite-exec.js';
import { SqliteWriteBatcher } from '../../src/driver/sqlite/sqlite-write-batcher.js';
import { makeInsert } from '../support/test-databases.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A WAL file with table `t(v)`, the batcher's connection and another connection ("other") on it. */
async function open(): Promise<{ batcher: SqliteWriteBatcher; db: Database.Database; other: Database.Database; retries: () => number }> {
  const dir = await mkdtemp(join(tmpdir(), 'warden-batcher-'));
  const file = join(dir, 'b.db');
  const db = new Database(file, { timeout: 0 });
  db.pragma('journal_mode = WAL');
  db.exec('CREATE TABLE t (v TEXT NOT NULL UNIQUE)');
  const other = new Database(file, { timeout: 0 });
  cleanups.push(async () => {
    db.close();
    other.close();
    await rm(dir, { recursive: true, force: true });
  });
  const transaction = db.transaction((fn: () => unknown) => fn());
  let retried = 0;
  const batcher = new SqliteWriteBatcher({
    connect: async () => undefined,
    transaction: () => transaction,
    retryBusy: (op) => retryBusy(op, () => retried++, { hopAfter: false }),
    inTransaction: () => db.inTransaction,
  });
  return { batcher, db, other, retries: () => retried };
}

const committed = (other: Database.Database): string[] => (other.prepare('SELECT v FROM t ORDER BY v').pluck().all() as string[]);

describe('SQLite write groups', () => {
  it('runs the writes of one turn in one transaction, and those of a later turn in another', async () => {
    const { batcher, db, other } = await open();
    const seenByOther: string[][] = [];
    const first = batcher.write(() => db.prepare('INSERT INTO t (v) VALUES (?)').run('a'));
    // Runs after the insert of `a`, before its commit: the other connection does not see it yet.
    const second = batcher.write(() => {
      seenByOther.push(committed(other));
      return db.prepare('INSERT INTO t (v) VALUES (?)').run('b').changes;
    });
    await Promise.all([first, second]);
    expect(seenByOther).toEqual([[]]);
    expect(committed(other)).toEqual(['a', 'b']);
    // Called after the group resolved: a group of its own, which sees the first one committed.
    await batcher.write(() => seenByOther.push(committed(other)));
    expect(seenByOther[1]).toEqual(['a', 'b']);
  });

  it('rolls back and rejects a failing write alone; the rest of its group commits', async () => {
    const { batcher, db, other } = await open();
    const insert = (v: string) => db.prepare('INSERT INTO t (v) VALUES (?)').run(v).changes;
    const results = await Promise.allSettled([
      batcher.write(() => insert('a')),
      batcher.write(() => {
        insert('b');
        return insert('a'); // UNIQUE: throws after `b` was written
      }),
      batcher.write(() => insert('c')),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(String((results[1] as PromiseRejectedResult).reason)).toMatch(/UNIQUE constraint failed/);
    expect(committed(other)).toEqual(['a', 'c']);
    expect(db.inTransaction).toBe(false);
  });

  it('rejects the whole group with the error of a write after which SQLite rolled back the transaction, running none after it', async () => {
    const { batcher, db, other } = await open();
    const insert = (v: string) => db.prepare('INSERT INTO t (v) VALUES (?)').run(v).changes;
    const ran: string[] = [];
    // What SQLite does on SQLITE_FULL/IOERR while spilling pages, or SQLITE_NOMEM: it rolls back the whole
    // transaction by itself, and the statement fails.
    const full = Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' });
    const results = await Promise.allSettled([
      batcher.write(() => (ran.push('a'), insert('a'))),
      batcher.write(() => {
        ran.push('b');
        insert('b');
        db.exec('ROLLBACK');
        throw full;
      }),
      batcher.write(() => (ran.push('c'), insert('c'))),
    ]);
    // `a` had succeeded, but its transaction is gone: its caller is not told it was written.
    expect(results).toEqual([
      { status: 'rejected', reason: full },
      { status: 'rejected', reason: full },
      { status: 'rejected', reason: full },
    ]);
    // `c` did not run outside the group's transaction (on its own, committed).
    expect(ran).toEqual(['a', 'b']);
    expect(committed(other)).toEqual([]);
    expect(db.inTransaction).toBe(false);
    // The next group runs as usual.
    await batcher.write(() => insert('d'));
    expect(committed(other)).toEqual(['d']);
  });

  it('rolls back a write that runs alone and fails', async () => {
    const { batcher, db, other } = await open();
    await batcher.write(() => db.prepare('INSERT INTO t (v) VALUES (?)').run('a'));
    await expect(batcher.write(() => {
      db.prepare('INSERT INTO t (v) VALUES (?)').run('b');
      throw new Error('handler failed');
    })).rejects.toThrow('handler failed');
    expect(committed(other)).toEqual(['a']);
  });

  it('retries a group as a whole while another connection holds the write lock, running each write once', async () => {
    const { batcher, db, other, retries } = await open();
    other.exec('BEGIN IMMEDIATE');
    const runs: string[] = [];
    const group = Promise.all(['a', 'b'].map((v) => batcher.write(() => {
      runs.push(v);
      return db.prepare('INSERT INTO t (v) VALUES (?)').run(v).changes;
    })));
    // Until the lock is given back the group cannot begin: its writes have not run.
    while (retries() === 0) await new Promise((resolve) => setImmediate(resolve));
    expect(runs).toEqual([]);
    other.exec('COMMIT');
    expect(await group).toEqual([1, 1]);
    expect(runs).toEqual(['a', 'b']);
    expect(committed(other)).toEqual(['a', 'b']);
  });

  it('retries the whole group when a write inside it meets a busy lock, so none of it is half-applied', async () => {
    const { batcher, db, other, retries } = await open();
    let tries = 0;
    const results = await Promise.all([
      batcher.write(() => db.prepare('INSERT INTO t (v) VALUES (?)').run('a').changes),
      batcher.write(() => {
        // The first try writes through another connection, which waits on this group's own lock: SQLITE_BUSY.
        if (++tries === 1) other.prepare('INSERT INTO t (v) VALUES (?)').run('x');
        return db.prepare('INSERT INTO t (v) VALUES (?)').run('b').changes;
      }),
    ]);
    expect(results).toEqual([1, 1]);
    expect(tries).toBe(2);
    expect(retries()).toBe(1);
    expect(committed(other)).toEqual(['a', 'b']);
  });

  it('resolves drained() once every write called so far has run', async () => {
    const { batcher, db, other } = await open();
    void batcher.write(() => db.prepare('INSERT INTO t (v) VALUES (?)').run('a'));
    void batcher.write(() => db.prepare('INSERT INTO t (v) VALUES (?)').run('b'));
    await batcher.drained();
    expect(committed(other)).toEqual(['a', 'b']);
  });

  it('runs the writes called before close() (the driver waits for them)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'warden-batcher-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const url = `sqlite:${join(dir, 'd.db')}`;
    const driver = createDriver({ url });
    await driver.migrate();
    const inserted = driver.jobInsertMany({ jobs: [makeInsert(), makeInsert()], now: null });
    await driver.close();
    expect((await inserted).map((r) => r.duplicate)).toEqual([false, false]);
    const reopened = createDriver({ url });
    cleanups.push(() => reopened.close());
    expect(await reopened.jobList({ limit: 10 })).toHaveLength(2);
  });
});
