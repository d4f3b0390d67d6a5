/**
 * SIGSTOP for a worker child that must not be stopped while holding SQLite's write lock (the zombie tests).
 * @module
 */
import Database from 'better-sqlite3';
import type { TestDatabase } from '../support/test-databases.js';
import { type Child, stopChild } from './child-process.js';
import { sqliteFilename } from './db-oracle.js';

/**
 * Stops `child` (SIGSTOP). On SQLite a process stopped inside a write transaction would hold the file's write
 * lock for as long as it stays stopped (an SQLite property, not Warden's), so make sure it was stopped
 * outside one: take the lock briefly ourselves; if it is held, let the child run on until it has released
 * it, and stop it again.
 */
export async function stopOutsideWriteLock(child: Child, tdb: TestDatabase): Promise<void> {
  if (tdb.kind !== 'sqlite') return stopChild(child);
  const db = new Database(sqliteFilename(tdb.url), { timeout: 500 });
  const lockIsFree = (): boolean => {
    try {
      db.exec('BEGIN IMMEDIATE; COMMIT');
      return true;
    } catch (error) {
      if (String((error as { code?: unknown }).code).startsWith('SQLITE_BUSY')) return false;
      throw error;
    }
  };
  try {
    for (let tries = 1; ; tries++) {
      await stopChild(child);
      if (lockIsFree()) return;
      if (tries >= 5) throw new Error(`Expected to stop ${child.name} outside a write transaction, it held the lock ${tries} times`);
      child.signal('SIGCONT');
      lockIsFree(); // waits (up to 500 ms) for the child to finish that transaction
    }
  } finally {
    db.close();
  }
}
