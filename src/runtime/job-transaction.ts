import { TransactionEndedError } from '../errors.js';
import type { TransactionHandle } from '../job/job-context-options.js';
import { settledUnlessAborted } from './settled-unless-aborted.js';

/**
 * A transaction of the job context: opened by `ctx.transaction`, a `{ transaction: true }` step or a transactional
 * batch (its opener), and joined by such calls made while it is open, nested in the opener's function or beside it
 * (`Promise.all`). It commits or rolls back only once the opener and every call that joined it have finished, their
 * functions and their records (each call's `after`), so all their writes and records go together; and any of them
 * failing rolls it all back. Each function gets a handle of its own, refused once that function returned or the
 * transaction ended (see {@link guardTransactionHandle}).
 *
 * The opener waits for the calls that joined, bounded by the attempt's abort (its timeout, a lost lease, the end of a
 * shutdown's grace), then rolls back: a call that joined and waits for its opener to return would otherwise wait
 * for ever.
 *
 * A call that joined returns before the commit, so its writes may still roll back after it returned. Whoever moves
 * on from its result past this transaction (ctx.iterate, whose next checkpoint would commit elsewhere) reads how it
 * ended: {@link JobTransaction.outcome}, {@link JobTransaction.committed}.
 *
 * It exists, and takes calls, from the moment its opener asks the driver for it, before the BEGIN returned (see
 * {@link JobTransaction.begin}): calls made meanwhile join it rather than open a second transaction beside it, whose
 * commit could not wait for this one's outcome (and, on PostgreSQL, whose writes could wait on its row locks).
 */
export class JobTransaction {
  /** The driver's transaction handle, once the BEGIN returned ({@link JobTransaction.begin}). */
  #raw: TransactionHandle;
  #begun = false;
  readonly #jobId: string;
  readonly #opener: string;
  #open = true;
  /**
   * No call may join any more: set, in the same turn, when the opener's last wait found no joined call running, so
   * nothing can join between that check and the COMMIT (a call made then opens a transaction of its own).
   */
  #sealed = false;
  /** The work of the calls that joined (function, then `after`) still running: the opener waits for it. */
  readonly #joined = new Set<Promise<unknown>>();
  /** Why it will roll back: the first failure of its opener or of a call that joined it. */
  #failure: { error: unknown } | null = null;
  /** How it ended, once its COMMIT or ROLLBACK returned (see {@link JobTransaction.settle}); null until then. */
  #outcome: TransactionOutcome | null = null;
  /**
   * Callers waiting for the BEGIN (calls that joined before it returned) or for the outcome
   * ({@link JobTransaction.committed}), woken by either: each looks again at what it waits for. Made on first use.
   */
  #waiting: (() => void)[] | null = null;

  /**
   * @param jobId the job, named in the errors of handles used too late.
   * @param opener what opened it (`ctx.transaction`, `step "charge"`), named in the errors of its own handle.
   */
  constructor(jobId: string, opener: string) {
    this.#jobId = jobId;
    this.#opener = opener;
  }

  /**
   * Called once the BEGIN returned, with the driver's handle (open until the driver's transaction function returns):
   * the calls that joined meanwhile run their functions from now on.
   */
  begin(raw: TransactionHandle): void {
    this.#raw = raw;
    this.#begun = true;
    this.#wake();
  }

  /**
   * The connection itself, for Warden's own writes in it (records, checkpoints, the completion). Not guarded: each
   * is sent as soon as it is asked for, and the driver keeps its prepared statements per handle object.
   * @throws TransactionEndedError once it ended
   */
  get handle(): TransactionHandle {
    if (!this.#open) throw new TransactionEndedError(this.#jobId, this.#opener, 'that transaction ended');
    return this.#raw;
  }

  /**
   * The opener's part, inside the driver's transaction: `body`, then the calls that joined, then `after`; the
   * transaction commits when this resolves and rolls back when it rejects, never before those calls finished (or
   * the attempt was aborted).
   */
  async run<T, R>(body: (tx: TransactionHandle) => Promise<T> | T, after: AfterBody<T, R>, signal: AbortSignal): Promise<R> {
    try {
      const value = await this.#body(this.#opener, body);
      await this.#joinedSettled(signal);
      const result = await after(value, this.handle, this);
      // A step or batch opener's record: calls may have joined while it was written. The wait resumes turns after
      // the last joined call settled, and a call may join in those: checked again, then sealed in this same turn.
      do await this.#joinedSettled(signal);
      while (this.#joined.size > 0);
      this.#sealed = true;
      return result;
    } catch (error) {
      this.#sealed = true;
      this.#failure ??= { error };
      // Rolled back only once the calls that joined have finished: until then they may still write through it.
      await settledUnlessAborted(this.#joined, signal);
      throw error;
    }
  }

  /**
   * A call made while the transaction is open: runs in it, and resolves once its function and `after` are done,
   * before the transaction commits (its opener may be waiting for it). Refused, without running `body`, when the
   * transaction is bound to roll back already; rejects with that failure when it became so meanwhile.
   */
  async join<T, R>(holder: string, body: (tx: TransactionHandle) => Promise<T> | T, after: AfterBody<T, R>): Promise<R> {
    this.#throwIfFailed();
    // Joined before the BEGIN returned: its function runs once it did, and never when the transaction could not be
    // opened or is bound to roll back by then. Counted at once, so the opener waits for it.
    const work = (this.#begun ? this.#body(holder, body) : this.#begunOrFailed().then(() => this.#body(holder, body))).then((value) => after(value, this.handle, this));
    this.#joined.add(work);
    try {
      const result = await work;
      // Its writes and record go with the transaction's rollback: it did not succeed.
      this.#throwIfFailed();
      return result;
    } catch (error) {
      this.#failure ??= { error };
      throw error;
    } finally {
      this.#joined.delete(work);
    }
  }

  /** Whether calls may still join it (see {@link JobTransaction.#sealed}). */
  get joinable(): boolean {
    return !this.#sealed && this.#open;
  }

  /** Marks it ended, before its COMMIT or ROLLBACK: every handle it gave out refuses use from now on. */
  end(): void {
    this.#open = false;
  }

  /**
   * Records how it ended, once the driver's transaction returned: committed (`rollback` null), or rolled back for
   * the first failure of its opener or of a call that joined it, else for `rollback.error` (a failed COMMIT, which
   * counts as rolled back: whoever waits on it then resumes from what surely committed; or a BEGIN that failed, which
   * the calls that joined before it then fail with).
   */
  settle(rollback: { error: unknown } | null): void {
    if (rollback !== null) this.#failure ??= rollback;
    this.#open = false;
    this.#outcome = rollback === null ? { committed: true } : { committed: false, error: this.#failure!.error };
    this.#wake();
  }

  /** How it ended: null until its COMMIT or ROLLBACK returned. */
  get outcome(): TransactionOutcome | null {
    return this.#outcome;
  }

  /**
   * Resolves once it committed; rejects with the failure it rolled back for, at once when it is bound to roll back.
   * Waiting on one that calls may still join (see {@link JobTransaction.joinable}) can wait for ever when the caller is
   * nested in its opener's function: wait only on one that is sealed or ended.
   */
  async committed(): Promise<void> {
    this.#throwIfFailed();
    while (this.#outcome === null) await this.#wait();
    if (!this.#outcome.committed) throw this.#outcome.error;
  }

  /** Settles once the BEGIN returned; throws when it failed, or when the transaction is bound to roll back by then. */
  async #begunOrFailed(): Promise<void> {
    while (!this.#begun && this.#outcome === null) await this.#wait();
    this.#throwIfFailed();
  }

  /** Settles at the next {@link JobTransaction.begin} or {@link JobTransaction.settle}. */
  #wait(): Promise<void> {
    return new Promise<void>((resolve) => (this.#waiting ??= []).push(resolve));
  }

  #wake(): void {
    const waiting = this.#waiting;
    this.#waiting = null;
    if (waiting !== null) for (const wake of waiting) wake();
  }

  /** Runs `body` with a handle of its own, refused once `body` settled or the transaction ended. */
  async #body<T>(holder: string, body: (tx: TransactionHandle) => Promise<T> | T): Promise<T> {
    let returned = false;
    const tx = guardTransactionHandle(this.#raw, () => {
      if (returned) return new TransactionEndedError(this.#jobId, holder, 'its function returned');
      return this.#open ? null : new TransactionEndedError(this.#jobId, holder, 'its transaction ended');
    });
    try {
      return await body(tx);
    } catch (error) {
      // At once: a call that joined and finishes from now on must not report success.
      this.#failure ??= { error };
      throw error;
    } finally {
      returned = true;
    }
  }

  /** Waits for the calls that joined; throws the first failure, or the abort reason when aborted first. */
  async #joinedSettled(signal: AbortSignal): Promise<void> {
    if (this.#joined.size > 0 && !(await settledUnlessAborted(this.#joined, signal))) throw signal.reason;
    this.#throwIfFailed();
  }

  /** Whether it will roll back: a call that would join it is refused with that failure. */
  get failed(): boolean {
    return this.#failure !== null;
  }

  /** Throws the failure the transaction will roll back for, if any. */
  #throwIfFailed(): void {
    if (this.#failure !== null) throw this.#failure.error;
  }
}

/** How a {@link JobTransaction} ended: committed, or rolled back for `error`. */
export type TransactionOutcome = { committed: true } | { committed: false; error: unknown };

/**
 * Warden's own writes in a transaction after a call's function (a record, a checkpoint, the completion): gets the
 * function's value, the transaction's handle, and the transaction itself (whose {@link JobTransaction.outcome} tells a
 * call that joined it whether its writes committed).
 */
export type AfterBody<T, R> = (value: T, tx: TransactionHandle, transaction: JobTransaction) => Promise<R>;

type Method = (this: unknown, ...args: unknown[]) => unknown;

/**
 * The transaction handle user code gets: `raw` behind a proxy that refuses every use (property read, write or call)
 * once `refusal` returns an error: its function returned, or its transaction ended. Without it, a handle kept past
 * that point runs on a connection that carries no transaction any more, or another caller's (the pool's next
 * borrower on PostgreSQL, the next transaction on SQLite's transaction connection).
 *
 * Methods run on `raw` itself, whatever `this` they are called with: better-sqlite3's are native and refuse any other
 * receiver. What better-sqlite3 builds from the connection to run on it later, statements (`prepare`) and
 * transaction functions (`transaction`), is guarded alike. Symbol-keyed reads and `then` pass: they describe the
 * handle (`util.inspect`, an `await` of a returned value) without touching its connection.
 */
function guardTransactionHandle(raw: TransactionHandle, refusal: () => Error | null): TransactionHandle {
  if (typeof raw !== 'function' && (typeof raw !== 'object' || raw === null)) return raw;
  const target = raw as object;
  // One wrapper per method, made on first use: `tx.query === tx.query` holds, and a hot loop allocates nothing.
  const methods = new Map<Method, Method>();
  const check = (): void => {
    const refused = refusal();
    if (refused !== null) throw refused;
  };
  const wrap = (method: Method, key: string): Method =>
    function guarded(this: unknown, ...args: unknown[]): unknown {
      check();
      const result = Reflect.apply(method, target, args);
      // Chained calls (`statement.pluck()`) return their receiver: hand back the guarded one.
      if (result === target) return proxy;
      return key === 'prepare' || key === 'transaction' ? guardTransactionHandle(result, refusal) : result;
    };
  const proxy: object = new Proxy(target, {
    get(object, key) {
      if (typeof key === 'symbol' || key === 'then') return Reflect.get(object, key, object);
      check();
      // The target as receiver: native getters (better-sqlite3's `inTransaction`) refuse the proxy.
      const value: unknown = Reflect.get(object, key, object);
      if (typeof value !== 'function') return value;
      let method = methods.get(value as Method);
      if (method === undefined) methods.set(value as Method, (method = wrap(value as Method, key)));
      return method;
    },
    set(object, key, value) {
      if (typeof key !== 'symbol') check();
      return Reflect.set(object, key, value, object);
    },
    apply(fn, thisArg, args) {
      check();
      return Reflect.apply(fn as Method, thisArg, args);
    },
  });
  return proxy;
}
