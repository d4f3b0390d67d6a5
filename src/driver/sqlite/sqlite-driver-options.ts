/**
 * The options of the SQLite driver, and their validation.
 * @module
 */
import { InvalidOptionError } from '../../errors.js';
import type { SqliteConnectionOptions } from './sqlite-exec.js';
import { DEFAULT_SQLITE_WAKEUP_MS } from './sqlite-wakeup.js';

/** Options of `SqliteDriver`. */
export interface SqliteDriverOptions {
  /** Path of the database file (created if missing), or `":memory:"`. */
  filename: string;
  /**
   * How long SQLite itself waits for the write lock before reporting SQLITE_BUSY, after which the driver retries
   * asynchronously. Short, because better-sqlite3 waits synchronously: a long wait would freeze the event loop,
   * and deadlock a process whose own application transaction holds the lock. @default 20
   */
  busyTimeoutMs?: number;
  /** `PRAGMA synchronous`: `normal` is safe in WAL mode against process crashes; `full` also against power loss. @default 'normal' */
  synchronous?: 'normal' | 'full';
  /** How often a listening worker reads `PRAGMA data_version` to notice other processes' commits. @default 5 */
  wakeupMs?: number;
}

/**
 * `value` as the interval of the `data_version` watch, or an `InvalidOptionError` naming `field` as its caller calls
 * it (`wakeupMs` of `SqliteDriver`, `sqliteWakeupMs` of `createDriver` and `databaseOptions`).
 * @throws InvalidOptionError for anything but an integer from 1 to 60,000.
 */
export function checkSqliteWakeupMs(field: string, value: unknown): void {
  if (!Number.isInteger(value) || (value as number) < 1 || (value as number) > 60_000) {
    throw new InvalidOptionError(field, value, 'an integer number of milliseconds from 1 to 60000');
  }
}

/**
 * `options` checked, with every default filled in.
 * @throws InvalidOptionError for a missing file name or an out-of-range option.
 */
export function resolveSqliteDriverOptions(options: SqliteDriverOptions): SqliteConnectionOptions & { wakeupMs: number } {
  const { filename, busyTimeoutMs = 20, synchronous = 'normal', wakeupMs = DEFAULT_SQLITE_WAKEUP_MS } = options ?? ({} as SqliteDriverOptions);
  checkSqliteWakeupMs('wakeupMs', wakeupMs);
  if (typeof filename !== 'string' || filename.length === 0) {
    throw new InvalidOptionError('filename', filename, 'a non-empty SQLite file path');
  }
  if (!Number.isInteger(busyTimeoutMs) || busyTimeoutMs < 0 || busyTimeoutMs > 2 ** 31 - 1) {
    throw new InvalidOptionError('busyTimeoutMs', busyTimeoutMs, 'an integer number of milliseconds >= 0');
  }
  if (synchronous !== 'normal' && synchronous !== 'full') {
    throw new InvalidOptionError('synchronous', synchronous, '"normal" or "full"');
  }
  return { filename, busyTimeoutMs, synchronous, wakeupMs };
}
