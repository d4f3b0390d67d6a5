/**
 * Running this driver's statements on a better-sqlite3 connection: opening a connection with the driver's
 * pragmas, the asynchronous busy retry, the prepared-statement cache, parameter conversion, and the context the
 * operation modules (`sqlite-schedules.ts`, `sqlite-locks.ts`, `sqlite-lease-writes.ts`) run on.
 * @module
 */
import Database from 'better-sqlite3';
import { realpathSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { DatabaseConfigError, InvalidOptionError } from '../../errors.js';
import { int, type DbInt } from './sqlite-rows.js';
import * as SQL from './sqlite-sql.js';

/** A prepared statement, called with one named-parameter object (or nothing). */
export type Statement = Database.Statement<unknown[], unknown>;

/** Returns the prepared statement for an SQL text on one particular connection. */
export type Prepare = (sql: string) => Statement;

/** What the operation modules run on: the driver's connection, its transactions, and applications' `tx` handles. */
export interface SqliteContext {
  /** The cached prepared statement for an SQL text on the driver's own connection. */
  stmt: Prepare;
  /** Runs `fn` in one `BEGIN IMMEDIATE` transaction, retried as a whole on SQLITE_BUSY/LOCKED. */
  write: <T>(fn: () => T) => Promise<T>;
  /** Runs a single read statement, retried on SQLITE_BUSY/LOCKED. */
  read: <T>(fn: () => T) => Promise<T>;
  /**
   * Statement preparation on an application's `tx` connection.
   * @throws InvalidTransactionError when `tx` is not a better-sqlite3 Database inside a transaction on the
   *   driver's file.
   */
  txPrepare: (tx: unknown) => Prepare;
}

/** How a connection is opened; the driver's options. */
export interface SqliteConnectionOptions {
  filename: string;
  busyTimeoutMs: number;
  synchronous: 'normal' | 'full';
}

/** Total time a transaction keeps being retried on SQLITE_BUSY/LOCKED before the error is surfaced. */
export const BUSY_RETRY_BUDGET_MS = 10_000;
/** Backoff cap of the first retry; doubles per retry up to BUSY_BACKOFF_MAX_MS; the delay is jittered in [cap/2, cap]. */
const BUSY_BACKOFF_BASE_MS = 2;
const BUSY_BACKOFF_MAX_MS = 100;

/**
 * Opens a connection on the driver's file with its pragmas (foreign keys, `synchronous`, WAL) and busy timeout.
 * Both the driver's own connection and its `transaction()` connection come from here, so they behave alike.
 * @throws DatabaseConfigError when the file cannot be opened.
 */
export async function openConnection(options: SqliteConnectionOptions, onBusyRetry: () => void): Promise<Database.Database> {
  let db: Database.Database;
  try {
    // `timeout` is better-sqlite3's busy_timeout, set before any statement so the PRAGMAs below wait too.
    db = new Database(options.filename, { timeout: options.busyTimeoutMs });
  } catch (error) {
    throw new DatabaseConfigError(`Expected an SQLite database file that can be opened at ${JSON.stringify(options.filename)}, got ${(error as Error).message}`, { cause: error });
  }
  try {
    await retryBusy(() => {
      db.exec(SQL.PRAGMA_FOREIGN_KEYS_ON);
      db.exec(options.synchronous === 'full' ? SQL.PRAGMA_SYNCHRONOUS_FULL : SQL.PRAGMA_SYNCHRONOUS_NORMAL);
      // Switching to WAL needs a lock; concurrent first opens of a fresh file may see SQLITE_BUSY here.
      db.exec(SQL.PRAGMA_JOURNAL_MODE_WAL);
    }, onBusyRetry);
  } catch (error) {
    db.close();
    throw error;
  }
  return db;
}

/**
 * Runs `op` until it does not fail with SQLITE_BUSY/LOCKED, sleeping a jittered, growing delay between tries
 * (calling `onRetry` before each), for at most {@link BUSY_RETRY_BUDGET_MS} in total; then the last error is
 * thrown. `op` must be a whole transaction (or a single statement) so a retry never repeats half of one.
 * `hopAfter: false` skips the hop through the event loop after `op` (for a caller that hopped before it).
 */
export async function retryBusy<T>(op: () => T, onRetry: () => void, options: { hopAfter?: boolean } = {}): Promise<T> {
  const started = performance.now();
  for (let retry = 1; ; retry++) {
    let result: T;
    try {
      result = op();
    } catch (error) {
      if (!isBusyError(error) || performance.now() - started >= BUSY_RETRY_BUDGET_MS) throw error;
      onRetry();
      const cap = Math.min(BUSY_BACKOFF_MAX_MS, BUSY_BACKOFF_BASE_MS * 2 ** Math.min(retry - 1, 16));
      await sleep(cap / 2 + Math.random() * (cap / 2));
      continue;
    }
    // better-sqlite3 runs statements synchronously, so a promise resolved right here would let a busy worker
    // (claim, run, write endings, claim again…) go on in microtasks for as long as there is work, starving
    // timers (heartbeats), I/O (health endpoints) and signals: a 200,000-job drain once ran 3.8 s with not one
    // timer firing. One hop through the event loop per call keeps it turning.
    if (options.hopAfter !== false) await new Promise<void>((resolve) => setImmediate(resolve));
    return result;
  }
}

/** SQLITE_BUSY and SQLITE_LOCKED with their extended codes (e.g. SQLITE_BUSY_SNAPSHOT, SQLITE_LOCKED_SHAREDCACHE). */
export function isBusyError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED'));
}

/** The error of any call on a closed driver. */
export function closedError(): Error {
  return new Error('Expected an open SqliteDriver, got one that was closed');
}

/**
 * The prepared statement for `sql` on `db`, taken from `cache` or prepared now and cached. Preparing is the
 * costly part of a statement, and every SQL text here is a constant, so each is prepared once per connection.
 */
export function cachedStatement(cache: Map<string, Statement>, db: Database.Database, sql: string): Statement {
  let statement = cache.get(sql);
  if (!statement) {
    statement = db.prepare(sql) as Statement;
    cache.set(sql, statement);
  }
  return statement;
}

/** A statement whose rows come back as views over value arrays (see {@link rowViewStatement}). */
export interface RowViewStatement<T> {
  all(params: Record<string, unknown>): T[];
}

/**
 * Prepares `sql` so its rows come back as arrays (`raw` mode), each wrapped in a view whose getters, one per
 * result column, read it: better-sqlite3 builds an object row property by property, which for the claim's then 26
 * columns cost more than the statement itself (10.6 µs a row against 6.1 µs with arrays). A view reads like the
 * object row, so the row mappers take either.
 */
export function rowViewStatement<T>(db: Database.Database, sql: string): RowViewStatement<T> {
  const statement = db.prepare(sql).raw(true);
  class RowView {
    constructor(readonly values: unknown[]) {}
  }
  // Getters on the prototype, defined once: every view shares them, so property reads stay monomorphic.
  for (const [i, column] of statement.columns().entries()) {
    Object.defineProperty(RowView.prototype, column.name, { get(this: RowView) { return this.values[i]; }, enumerable: true });
  }
  return { all: (params) => (statement.all(params) as unknown[][]).map((values) => new RowView(values) as unknown as T) };
}

/**
 * `now` (ms) or, when `null`, the database clock, as integer ms. Transactions of several statements call this
 * once and bind the result everywhere, so the attempt row and the job row of one write carry the same time.
 */
export function resolveNow(prepare: Prepare, now: number | null): number {
  return int((prepare(SQL.NOW_SELECT).get({ now }) as { now: DbInt }).now);
}

/**
 * A `now`/`runAt` Date as integer ms for binding; `null` stays `null` (the database clock, or "not set").
 * @throws InvalidOptionError for something that is not a valid Date.
 */
export function toMs(value: Date | null, field: string): number | null {
  if (value === null) return null;
  const ms = value instanceof Date ? value.getTime() : Number.NaN;
  if (Number.isNaN(ms)) throw new InvalidOptionError(field, value, 'a valid Date or null');
  return ms;
}

/**
 * Whether `tx` can carry a transactional write: a better-sqlite3 Database (duck-typed, so an application's
 * own copy of the module passes too) with an open transaction. Whether it is on the driver's file is asked
 * separately ({@link sqliteMainFile}), once per handle: it costs a statement.
 */
export function isSqliteTransaction(tx: unknown): tx is Database.Database {
  if (typeof tx !== 'object' || tx === null) return false;
  const candidate = tx as { prepare?: unknown; inTransaction?: unknown };
  return typeof candidate.prepare === 'function' && candidate.inTransaction === true;
}

/** The databases of a connection, one row each (`seq`, `name`, `file`): `main` has the file it was opened on. */
const DATABASE_LIST_SQL = 'PRAGMA database_list';

/**
 * The file `db`'s main database lives in, as SQLite names it (a full path), or null when it has none (`:memory:`,
 * a temporary database). Two connections opened by one name get the same path; by different names (a symbolic link)
 * compare their {@link realFilePath}s.
 */
export function sqliteMainFile(db: Database.Database): string | null {
  const rows = db.prepare(DATABASE_LIST_SQL).all() as { name: string; file: string }[];
  const file = rows.find((row) => row.name === 'main')?.file ?? '';
  return file === '' ? null : file;
}

/**
 * `path` with symbolic links resolved (a link to the file, or to a directory on its way, names the same file). A file
 * not created yet, or deleted while open, resolves through its directory; a path that cannot be resolved at all is
 * kept as it is.
 */
export function realFilePath(path: string): string {
  try {
    return realpathSync.native(path);
  } catch {
    try {
      return join(realpathSync.native(dirname(path)), basename(path));
    } catch {
      return path;
    }
  }
}

/**
 * Runs `fn` with statements of the right connection: the application's `tx` (inside its transaction, never
 * BEGIN/COMMIT, and no busy retry: a partial retry of someone else's transaction would be wrong, and SQLITE_BUSY
 * is theirs to handle), or the driver's own connection in one `BEGIN IMMEDIATE` transaction.
 * @throws InvalidTransactionError when `tx` is given and is not a better-sqlite3 Database inside a transaction on
 *   the driver's file.
 */
export async function writeWith<T>(ctx: SqliteContext, tx: unknown, fn: (prepare: Prepare) => T): Promise<T> {
  if (tx !== undefined) return fn(ctx.txPrepare(tx));
  return ctx.write(() => fn(ctx.stmt));
}

/** Infrastructure delay for busy backoff (not business time, so not the injectable clock). */
function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
