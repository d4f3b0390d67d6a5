import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { type Clock, elapsedSince, markClock } from '../clock/clock.js';
import type { Driver } from '../driver/driver.js';
import type { LockAcquireParams, LockCheckResult, LockGrant, LockRow } from '../driver/lock-params.js';
import { FenceError, InvalidDurationError, InvalidOptionError } from '../errors.js';
import type { TypedEmitter } from '../events/typed-emitter.js';
import { type Duration, parseDuration } from '../validation/duration.js';
import { checkKnownKeys } from '../validation/known-keys.js';
import { validateLockName } from '../validation/names.js';
import { isOptionsObject } from '../validation/options-object.js';
import { Lease } from './lease.js';

/** Options for {@link LockManager.acquire}. */
export interface LockAcquireOptions {
  /** How long the lease lasts without renewal (renewed automatically while held). At least 50 ms. */
  ttl: Duration;
  /** How long to keep trying while another holder has it. @default 0 (one try) */
  wait?: Duration;
  /**
   * Who holds it, shown by `warden locks list`: 1–200 characters, without control characters or lone UTF-16
   * surrogates. @default "<host>/<pid>"
   */
  holder?: string;
}

/** Every key of {@link LockAcquireOptions}, checked against the interface so an option added there is known here. */
const ACQUIRE_OPTION_KEYS = Object.keys({ ttl: true, wait: true, holder: true } satisfies Record<keyof LockAcquireOptions, true>);

/** A lock holder: printable text of 1–200 characters (UTF-16 code units), the length `audit.actor` has. */
const HOLDER_PATTERN = /^[^\u0000-\u001f\u007f]{1,200}$/;

/**
 * Checks a lock `holder` before any SQL. The drivers would each take anything else their own way: an object is a
 * TypeError on SQLite and stored as "{}" by PostgreSQL, the number 42 is stored as "42.0" by SQLite and "42" by
 * PostgreSQL, a NUL is stored by SQLite and a database error on PostgreSQL, and a lone surrogate cannot be encoded
 * as UTF-8 (PostgreSQL would store U+FFFD).
 * @throws InvalidOptionError
 */
function validateHolder(holder: unknown): string {
  if (typeof holder !== 'string' || !HOLDER_PATTERN.test(holder) || !holder.isWellFormed()) {
    throw new InvalidOptionError('holder', holder, 'a string of 1-200 characters without control characters or lone UTF-16 surrogates');
  }
  return holder;
}

/**
 * Refuses a fencing token that no grant can have: grants count up from 1, one per grant, so a token is a positive
 * safe integer. Checked here because the drivers would each read anything else their own way (SQLite's integer
 * affinity matches the text `'1'` to token 1; PostgreSQL's driver matches it to nothing). The text of a token (what
 * `pg` returns for a `bigint` column) is refused too, rather than converted: the message says how to pass it.
 * @throws InvalidOptionError
 */
function validateFenceToken(token: unknown): asserts token is number {
  if (Number.isSafeInteger(token) && (token as number) >= 1) return;
  const asText = typeof token === 'bigint' || (typeof token === 'string' && /^\s*\d+\s*$/.test(token));
  throw new InvalidOptionError('token', token, asText ? 'a positive whole number, as a number (pass Number(token))' : 'a positive whole number');
}

/**
 * Lease locks with fencing tokens, stored in the database: for code paths that must have a single runner across
 * every process. A crashed holder's lock frees itself at expiry (database time). Locks are advisory: a paused
 * holder can outlive its lease, which is why writes that matter check the token (`assertFence`).
 */
export class LockManager {
  readonly #driver: Driver;
  readonly #clock: Clock;
  readonly #events: TypedEmitter;

  constructor(deps: { driver: Driver; clock: Clock; events: TypedEmitter }) {
    this.#driver = deps.driver;
    this.#clock = deps.clock;
    this.#events = deps.events;
  }

  /**
   * Takes the lock, or returns null if another holder has it (after trying for `wait`). An attempt that fails with
   * a transient error (a lost connection) is made once more at once under the same grant id: if the first was
   * granted and only its reply lost, the second takes that grant up (token + 1) instead of the lock staying held,
   * unknown to anyone, until it expires.
   * @throws InvalidNameError, InvalidDurationError, InvalidOptionError (options that are not an object or hold an
   *   unknown key, a bad `holder`) before touching the database; the database's error when the attempt made again
   *   fails too.
   */
  async acquire(name: string, options: LockAcquireOptions): Promise<Lease | null> {
    validateLockName(name);
    if (!isOptionsObject(options)) throw new InvalidOptionError('lock options', options, 'an object { ttl, wait?, holder? }');
    checkKnownKeys('lock options', options, ACQUIRE_OPTION_KEYS);
    const ttlMs = parseDuration('ttl', options.ttl, { allowZero: false });
    if (ttlMs < 50) throw new InvalidDurationError('ttl', options.ttl, 'a duration of at least 50ms');
    const waitMs = options.wait === undefined ? 0 : parseDuration('wait', options.wait);
    const holder = options.holder === undefined ? `${hostname()}/${process.pid}` : validateHolder(options.holder);
    // One per call: only this call's retry may take its grant up again.
    const grantId = randomUUID();
    // Measured as elapsed time: a wall clock stepped back meanwhile would otherwise lengthen the wait by the step. The
    // pauses slept count too, as time the clock's timers measured: a clock without monotonicNow() still ends the wait.
    const started = markClock(this.#clock);
    let slept = 0;
    let pause = 25;
    for (;;) {
      const requestedAt = markClock(this.#clock);
      const grant = await this.#tryAcquire({ name, holder, ttlMs, grantId });
      if (grant) {
        this.#events.emit('lock:acquired', { name, token: grant.token, holder });
        return new Lease({ driver: this.#driver, clock: this.#clock, events: this.#events }, { name, ...grant }, ttlMs, requestedAt);
      }
      const left = waitMs - Math.max(slept, elapsedSince(this.#clock, started));
      if (left <= 0) return null;
      const sleep = Math.min(pause, left);
      await this.#clock.sleep(sleep);
      slept += sleep;
      pause = Math.min(1_000, pause * 2);
    }
  }

  /** One attempt, made again once under the same grant id after a transient error (see {@link LockManager.acquire}). */
  async #tryAcquire(params: Omit<LockAcquireParams, 'now'>): Promise<LockGrant | null> {
    try {
      return await this.#driver.lockAcquire({ ...params, now: this.#clock.sqlNow() });
    } catch (error) {
      if (!this.#driver.isTransientError(error)) throw error;
      return this.#driver.lockAcquire({ ...params, now: this.#clock.sqlNow() });
    }
  }

  /**
   * Runs `fn` while holding the lock, renewing it meanwhile, and releases it afterwards. Returns `fn`'s result
   * (or throws its error), or `null` when the lock could not be acquired. `fn` should stop when `lease.signal`
   * aborts. A release that fails (a lost connection) is an `error` event: the lock then expires at its TTL.
   * @throws InvalidOptionError when `fn` is not a function, before the lock is taken; the errors of
   *   {@link LockManager.acquire}.
   */
  async withLock<T>(name: string, options: LockAcquireOptions, fn: (lease: Lease) => Promise<T>): Promise<T | null> {
    // Checked first: found only after acquiring, the lock would be taken (and its token used up) for nothing.
    if (typeof fn !== 'function') throw new InvalidOptionError('fn', fn, 'a function (lease) => Promise');
    const lease = await this.acquire(name, options);
    if (!lease) return null;
    try {
      return await fn(lease);
    } finally {
      // Not thrown: `fn` has run, and its outcome (a result, or its own error) is what the caller must act on. The
      // lock is only held on until its TTL, by a lease that no longer renews it.
      await lease.release().catch((error: unknown) => this.#events.emit('error', { error, context: `releasing lock ${name} after withLock` }));
    }
  }

  /**
   * Whether `token` is still the live holder of `name`. With `tx` (the application's transaction, as for
   * enqueue), the check runs inside it and, on PostgreSQL, holds the lock row until that transaction ends.
   * @throws InvalidNameError, InvalidOptionError (a token that is not a positive whole number: pass a token read
   *   back as text, as `pg` returns `bigint`, through `Number(token)`) before touching the database.
   */
  async check(name: string, token: number, options: { tx?: unknown } = {}): Promise<LockCheckResult> {
    validateLockName(name);
    validateFenceToken(token);
    return this.#driver.lockCheck({ name, token, now: this.#clock.sqlNow(), tx: options.tx });
  }

  /**
   * Throws unless `token` is still the live holder of `name`. Call it inside the application's transaction,
   * before its writes, so a stale holder's writes never commit.
   * @throws FenceError; InvalidNameError, InvalidOptionError before touching the database (see {@link LockManager.check}).
   */
  async assertFence(name: string, token: number, options: { tx?: unknown } = {}): Promise<void> {
    const result = await this.check(name, token, options);
    if (!result.held) throw new FenceError(name, token, result.currentToken);
  }

  /** Every lock with its holder, newest token and expiry. */
  list(): Promise<LockRow[]> {
    return this.#driver.lockList();
  }
}
