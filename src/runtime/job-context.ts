import type { Logger } from 'pino';
import { InvalidOptionError } from '../errors.js';
import type { JobContext } from '../job/define-job.js';
import type { TransactionHandle } from '../job/job-context-options.js';
import type { JobRow } from '../job/job-record.js';
import { redactingLogger } from '../observe/redacting-logger.js';
import type { Attempt } from './attempt.js';
import { runIteration } from './iteration.js';
import { StepRunner } from './step-runner.js';

/**
 * Builds the `ctx` a handler gets for one attempt: identity, signal, logger, fence, and the idempotency tools
 * (`step`, `transaction`, `iterate`), all bound to the attempt's lease.
 */
export function createJobContext(attempt: Attempt): JobContext {
  return new AttemptContext(attempt);
}

/**
 * One attempt's `ctx`. A class, because an object literal with getters and five closures per job was a
 * measurable share of a no-op job's CPU. Everything lazy is made on first read: the signal (Node makes an
 * AbortController's signal on first read; an abort before that still reaches it, made aborted), the logger,
 * and the idempotency tools. Those are getters returning functions bound to this attempt, so
 * `const { step, signal } = ctx` keeps working as with plain properties.
 */
class AttemptContext implements JobContext {
  readonly attempt: number;
  readonly maxAttempts: number;
  readonly job: Readonly<JobRow>;
  readonly fence: number;
  readonly #owner: Attempt;
  #log: Logger | null = null;
  #steps: StepRunner | null = null;
  #iterating = false;
  #step: JobContext['step'] | null = null;
  #transaction: JobContext['transaction'] | null = null;
  #iterate: JobContext['iterate'] | null = null;

  constructor(attempt: Attempt) {
    const row = attempt.row;
    this.#owner = attempt;
    this.attempt = row.attempt;
    this.maxAttempts = row.maxAttempts;
    this.job = row;
    this.fence = row.leaseToken;
  }

  get signal(): AbortSignal {
    return this.#owner.controller.signal;
  }

  // Made on first use: a pino child per attempt is measurable at thousands of jobs a second. A job with
  // sensitive fields gets it wrapped, so whatever the handler logs is redacted.
  get log(): Logger {
    if (this.#log) return this.#log;
    const attempt = this.#owner;
    const row = attempt.row;
    const child = attempt.deps.logger.child({ jobId: row.id, job: row.name, queue: row.queue, attempt: row.attempt });
    const redactor = attempt.redactor;
    this.#log = redactor ? redactingLogger(child, redactor) : child;
    return this.#log;
  }

  get step(): JobContext['step'] {
    return (this.#step ??= (name, fn, options) => {
      this.#steps ??= new StepRunner(this.#owner);
      return this.#steps.run(name, fn, options);
    });
  }

  get transaction(): JobContext['transaction'] {
    return (this.#transaction ??= (fn) => {
      if (typeof fn !== 'function') return Promise.reject(new InvalidOptionError('ctx.transaction(fn)', fn, 'a function (tx) => …'));
      return this.#owner.completeInTransaction(fn);
    });
  }

  get iterate(): JobContext['iterate'] {
    return (this.#iterate ??= (options) => {
      // One iteration per job: its checkpoint is the job's, so a second one would resume from the first's cursor.
      if (this.#iterating) return Promise.reject(new InvalidOptionError('ctx.iterate', 'a second call in one attempt', 'called once per attempt (one iteration per job)'));
      this.#iterating = true;
      return runIteration(this.#owner, options);
    });
  }
}

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
export function guardTransactionHandle(raw: TransactionHandle, refusal: () => Error | null): TransactionHandle {
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
