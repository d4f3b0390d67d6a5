/**
 * `Driver.transaction` for SQLite: application transactions on a second connection to the same file, so the
 * application's writes and the job writes it passes the handle to (`tx`) commit or roll back together, while the
 * driver's own connection keeps serving reads (WAL readers never block).
 *
 * - The connection is opened lazily, on the first transaction, with the main connection's pragmas, and closed by
 *   `close()` (after the transaction in progress ends).
 * - A connection holds one transaction at a time, so callers in this process are serialized by a promise-chain
 *   mutex.
 * - `BEGIN IMMEDIATE` takes the write lock up front, with the driver's asynchronous busy retry. While it is held
 *   the driver's own writes (from this or any process) get SQLITE_BUSY and retry asynchronously within their
 *   budget, so none of them blocks forever; they go through once the transaction ends.
 * @module
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type Database from 'better-sqlite3';
import { DatabaseConfigError } from '../../errors.js';
import { closedError, openConnection, retryBusy, type SqliteConnectionOptions } from './sqlite-exec.js';
import * as SQL from './sqlite-sql.js';

/** Marks the async context of a running transaction function, to refuse a nested `transaction()` call. */
interface TransactionScope {
  active: boolean;
}

/** Runs application transactions on their own connection; see the module comment. */
export class SqliteTransactionRunner {
  readonly #options: SqliteConnectionOptions;
  readonly #onBusyRetry: () => void;
  readonly #scope = new AsyncLocalStorage<TransactionScope>();
  #db: Database.Database | undefined;
  /** Settles when the last queued transaction has ended: the mutex. */
  #tail: Promise<void> = Promise.resolve();
  #closed = false;

  /** `onBusyRetry` is called for each busy retry (the driver counts them). */
  constructor(options: SqliteConnectionOptions, onBusyRetry: () => void) {
    this.#options = options;
    this.#onBusyRetry = onBusyRetry;
  }

  /**
   * Runs `fn` in `BEGIN IMMEDIATE … COMMIT` on the transaction connection, after every transaction queued before
   * it; `ROLLBACK` and rethrow when `fn` throws.
   * @throws DatabaseConfigError for an in-memory database (a second connection would open a different, empty
   * database); an Error when called from inside another transaction function of this driver (it would wait for
   * itself forever) or when `fn` committed or rolled back the transaction itself.
   */
  run<T>(fn: (tx: unknown) => Promise<T>): Promise<T> {
    if (this.#options.filename === ':memory:') {
      return Promise.reject(new DatabaseConfigError('Expected a database file for driver.transaction(), got ":memory:": a second connection cannot see an in-memory database'));
    }
    if (this.#scope.getStore()?.active === true) {
      return Promise.reject(new Error('Expected driver.transaction() to be called outside another driver.transaction() function, got a nested call: it would wait for the outer one forever; pass the outer tx handle instead'));
    }
    const result = this.#tail.then(() => this.#runNow(fn));
    this.#tail = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }

  /** Waits for the transaction in progress (and those queued, which are refused), then closes the connection. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#tail;
    this.#db?.close();
    this.#db = undefined;
  }

  async #runNow<T>(fn: (tx: unknown) => Promise<T>): Promise<T> {
    const db = await this.#connection();
    await retryBusy(() => db.exec(SQL.TX_BEGIN_IMMEDIATE), this.#onBusyRetry);
    const scope: TransactionScope = { active: true };
    let result: T;
    try {
      result = await this.#scope.run(scope, () => fn(db));
      if (!db.inTransaction) {
        throw new Error('Expected the transaction to be still open when the driver.transaction() function resolved, got it already committed or rolled back by the function');
      }
      // In WAL mode COMMIT does not wait for readers, but retry it on SQLITE_BUSY anyway: it leaves the
      // transaction open, so trying again is safe.
      await retryBusy(() => db.exec(SQL.TX_COMMIT), this.#onBusyRetry);
    } catch (error) {
      this.#rollback(db);
      throw error;
    } finally {
      // Callbacks `fn` left behind (timers, unawaited promises) keep the scope; they are no longer nested.
      scope.active = false;
    }
    return result;
  }

  /** Rolls back whatever is still open; a connection that cannot roll back is dropped so the next one is fresh. */
  #rollback(db: Database.Database): void {
    if (!db.inTransaction) return;
    try {
      db.exec(SQL.TX_ROLLBACK);
    } catch {
      db.close();
      if (this.#db === db) this.#db = undefined;
    }
  }

  async #connection(): Promise<Database.Database> {
    if (this.#closed) throw closedError();
    this.#db ??= await openConnection(this.#options, this.#onBusyRetry);
    return this.#db;
  }
}
