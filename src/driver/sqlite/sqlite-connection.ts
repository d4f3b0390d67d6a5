/**
 * The SQLite driver's connection to its file: opened on first use, closed once; its prepared statements; its
 * writes, grouped per turn of the event loop into one `BEGIN IMMEDIATE` transaction (`SqliteWriteBatcher`); its
 * reads; statements prepared on applications' `tx` connections; and the second connection that `transaction()`
 * runs on (`SqliteTransactionRunner`). The driver class (`sqlite-driver.ts`) holds one and hands its operations
 * the context built from it.
 * @module
 */
import type Database from 'better-sqlite3';
import { resolve } from 'node:path';
import { InvalidTransactionError } from '../../errors.js';
import {
  cachedStatement, closedError, isSqliteTransaction, openConnection, realFilePath, retryBusy, rowViewStatement,
  sqliteMainFile, type Prepare, type RowViewStatement, type SqliteConnectionOptions, type SqliteContext, type Statement,
} from './sqlite-exec.js';
import * as SQL from './sqlite-sql.js';
import { SqliteTransactionRunner } from './sqlite-transaction.js';
import { SqliteWriteBatcher } from './sqlite-write-batcher.js';

/**
 * One driver instance's connections to an SQLite file. Every method that needs the connection opens it first;
 * after {@link SqliteConnection.close} they fail with the driver's closed error.
 */
export class SqliteConnection {
  readonly #options: SqliteConnectionOptions;
  #db: Database.Database | undefined;
  #opening: Promise<Database.Database> | undefined;
  #closed = false;
  /** `db.transaction` wrapper created once; `.immediate(fn)` runs `fn` inside `BEGIN IMMEDIATE … COMMIT`. */
  #inTransaction: Database.Transaction<(fn: () => unknown) => unknown> | undefined;
  readonly #statements = new Map<string, Statement>();
  /** Statements prepared to return rows as views (`rowViewStatement`), by SQL text; dropped with the connection. */
  readonly #rowViews = new Map<string, RowViewStatement<unknown>>();
  /** Statements prepared on applications' `tx` connections, dropped with the connection. */
  readonly #txStatements = new WeakMap<Database.Database, Map<string, Statement>>();
  /** {@link SqliteConnection.#ownFile} once read from the open connection. */
  #file: { path: string; real: string } | null | undefined;
  #busyRetries = 0;
  /** `transaction()`'s own connection and mutex. */
  readonly #transactions: SqliteTransactionRunner;
  /** The driver's own writes, grouped per turn of the event loop into one transaction. */
  readonly #writes: SqliteWriteBatcher;
  /** The {@link SqliteConnection.writeWithoutForeignKeys} calls still running (settled, never rejecting). */
  readonly #rebuilds = new Set<Promise<void>>();

  constructor(options: SqliteConnectionOptions) {
    this.#options = options;
    this.#transactions = new SqliteTransactionRunner(options, this.#countBusyRetry);
    this.#writes = new SqliteWriteBatcher({
      connect: () => this.connection(),
      transaction: () => {
        if (!this.#inTransaction) throw closedError();
        return this.#inTransaction;
      },
      retryBusy: (op) => retryBusy(op, this.#countBusyRetry, { hopAfter: false }),
      inTransaction: () => this.#db?.inTransaction ?? false,
    });
  }

  /** Whether {@link SqliteConnection.close} was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /** How many times a transaction was retried after SQLITE_BUSY/LOCKED escaped `busy_timeout`. */
  get busyRetries(): number {
    return this.#busyRetries;
  }

  /** What the driver's operations run on: its statements, writes, reads and `tx` preparation. */
  context(): SqliteContext {
    return { stmt: this.stmt, write: (fn) => this.write(fn), read: (fn) => this.read(fn), txPrepare: (tx) => this.#txPrepare(tx) };
  }

  /**
   * Lets writes called before this still run (grouped ones and table rebuilds, which may be waiting out a busy
   * lock), then closes the `transaction()` connection (a transaction in progress may still use the main one) and
   * the main connection. Safe to call twice.
   */
  async close(): Promise<void> {
    this.#closed = true;
    // Writes called from now on are refused (see `write`), so these sets only shrink.
    await Promise.all([this.#writes.drained(), ...this.#rebuilds]);
    await this.#transactions.close();
    // An open in flight sees #closed and closes its own connection; wait so nothing outlives close().
    await this.#opening?.catch(() => undefined);
    this.#db?.close();
    this.#db = undefined;
    this.#inTransaction = undefined;
    this.#statements.clear();
    this.#rowViews.clear();
  }

  /** The cached prepared statement for `sql` on the open connection. An arrow so it can be passed on. */
  readonly stmt: Prepare = (sql) => cachedStatement(this.#statements, this.connected(), sql);

  /** `sql` prepared once on the open connection to return rows as views (`rowViewStatement`). */
  rowView<T>(sql: string): RowViewStatement<T> {
    let statement = this.#rowViews.get(sql);
    if (!statement) this.#rowViews.set(sql, (statement = rowViewStatement<unknown>(this.connected(), sql)));
    return statement as RowViewStatement<T>;
  }

  /** The open connection. @throws the driver's closed error when it is not open. */
  connected(): Database.Database {
    if (!this.#db) throw closedError();
    return this.#db;
  }

  /**
   * Runs `fn` in a `BEGIN IMMEDIATE` transaction, retried as a whole on SQLITE_BUSY/LOCKED, shared with the other
   * writes called in this turn of the event loop, each in a savepoint of its own (`SqliteWriteBatcher`).
   * @throws the driver's closed error when called after {@link SqliteConnection.close}.
   */
  write<T>(fn: () => T): Promise<T> {
    // Checked at the call: the group still waiting for its turn when close() was called would take the write in
    // and commit it, on a driver closed before the call.
    if (this.#closed) return Promise.reject(closedError());
    return this.#writes.write(fn);
  }

  /**
   * {@link SqliteConnection.write} with foreign keys off for the transaction (a table rebuild). Switching them off
   * and back on happens in the same synchronous step as the transaction, so no other statement of this connection
   * runs without them; other connections keep theirs. Not grouped, so close() waits for it on its own.
   * @param when - Asked in that same step, just before: whether foreign keys must be off at all (a migration that
   *   rebuilds tables is pending). Read there rather than by a read before the call, so that one call, tracked from
   *   the moment it is made, decides and writes: a close() called between a read and its write would refuse the
   *   write. @default always
   * @throws the driver's closed error when called after {@link SqliteConnection.close}.
   */
  writeWithoutForeignKeys<T>(fn: () => T, when: () => boolean = () => true): Promise<T> {
    if (this.#closed) return Promise.reject(closedError());
    const result = this.#writeWithoutForeignKeys(fn, when);
    const settled = result.then(() => undefined, () => undefined);
    this.#rebuilds.add(settled);
    void settled.then(() => this.#rebuilds.delete(settled));
    return result;
  }

  async #writeWithoutForeignKeys<T>(fn: () => T, when: () => boolean): Promise<T> {
    await this.connection();
    return retryBusy(() => {
      const inTransaction = this.#inTransaction;
      if (!inTransaction) throw closedError();
      if (!when()) return inTransaction.immediate(fn) as T;
      const db = this.connected();
      db.exec(SQL.PRAGMA_FOREIGN_KEYS_OFF);
      try {
        return inTransaction.immediate(fn) as T;
      } finally {
        db.exec(SQL.PRAGMA_FOREIGN_KEYS_ON);
      }
    }, this.#countBusyRetry);
  }

  /** Runs a single read statement (its own implicit transaction, a consistent snapshot in WAL mode). */
  async read<T>(fn: () => T): Promise<T> {
    await this.connection();
    return retryBusy(fn, this.#countBusyRetry);
  }

  /**
   * Runs `fn` in `BEGIN IMMEDIATE … COMMIT` on the second connection (see `sqlite-transaction.ts`).
   * @throws the driver's closed error after close.
   */
  transaction<T>(fn: (tx: unknown) => Promise<T>): Promise<T> {
    if (this.#closed) return Promise.reject(closedError());
    return this.#transactions.run(fn);
  }

  /** The main connection, opened on first use. @throws the driver's closed error after close. */
  async connection(): Promise<Database.Database> {
    if (this.#db) return this.#db;
    if (this.#closed) throw closedError();
    this.#opening ??= this.#open().finally(() => {
      this.#opening = undefined;
    });
    return this.#opening;
  }

  async #open(): Promise<Database.Database> {
    const db = await openConnection(this.#options, this.#countBusyRetry);
    if (this.#closed) {
      db.close();
      throw closedError();
    }
    this.#db = db;
    this.#inTransaction = db.transaction((fn: () => unknown) => fn());
    return db;
  }

  /**
   * Statement preparation on an application's `tx` connection (cached per connection).
   * @throws InvalidTransactionError when `tx` is not a better-sqlite3 Database inside a transaction on this
   *   driver's file.
   */
  #txPrepare(tx: unknown): Prepare {
    if (!isSqliteTransaction(tx)) throw new InvalidTransactionError(TRANSACTION_HANDLE, tx);
    let cache = this.#txStatements.get(tx);
    if (!cache) {
      // Once per handle (a connection's main file never changes): the statement cache marks it checked.
      this.#assertOnOwnFile(tx);
      this.#txStatements.set(tx, (cache = new Map()));
    }
    const txCache = cache;
    return (sql) => cachedStatement(txCache, tx, sql);
  }

  /**
   * Refuses a handle on another database: one without Warden's tables failed with a raw SqliteError, and one on
   * another Warden database took the job there and reported success. A handle with no file (`:memory:`, a
   * temporary database) is on no database this driver's connections can share. The path SQLite names is compared
   * first (the handle `transaction()` gives, and most applications' connections, were opened by the driver's own
   * file name): one statement and no file system call. Another path may still be a link to the file.
   * @throws InvalidTransactionError naming both files.
   */
  #assertOnOwnFile(tx: Database.Database): void {
    const file = sqliteMainFile(tx);
    const own = this.#ownFile();
    if (file !== null && own !== null && (file === own.path || realFilePath(file) === own.real)) return;
    const on = (path: string | null) => (path === null ? 'no file (in memory or temporary)' : JSON.stringify(realFilePath(path)));
    throw new InvalidTransactionError(TRANSACTION_HANDLE, tx, `a Database on ${on(file)}, while this driver's database is on ${on(own?.path ?? null)}`);
  }

  /**
   * This driver's file (null in memory), as SQLite names it and its real path: read from its open connection, as a
   * handle's is, and kept; before that connection is open (a `tx` write needs none), from the file name it will open.
   */
  #ownFile(): { path: string; real: string } | null {
    if (this.#file !== undefined) return this.#file;
    const read = (path: string | null) => (path === null ? null : { path, real: realFilePath(path) });
    if (this.#db) return (this.#file = read(sqliteMainFile(this.#db)));
    const { filename } = this.#options;
    return read(filename === ':memory:' ? null : resolve(filename));
  }

  readonly #countBusyRetry = (): void => {
    this.#busyRetries++;
  };
}

/** What an application passes as `tx` to the SQLite driver (its `capabilities.transactionHandle`). */
export const TRANSACTION_HANDLE = 'a better-sqlite3 Database on the same file with an open transaction';
