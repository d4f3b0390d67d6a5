import { type Clock, type ClockMark, elapsedSince, markClock } from '../clock/clock.js';
import type { Driver } from '../driver/driver.js';
import { LockLostError } from '../errors.js';
import type { TypedEmitter } from '../events/typed-emitter.js';

/** What a {@link Lease} needs from its manager. */
export interface LeaseDeps {
  driver: Driver;
  clock: Clock;
  events: TypedEmitter;
}

/**
 * A held lease lock. Renewed automatically (every third of its TTL) until released; when a renewal is refused, or
 * cannot be confirmed before the lease would have expired, `signal` aborts with a `LockLostError`.
 * `await using lease = await warden.locks.acquire(…)` releases it at the end of the block.
 */
export class Lease implements AsyncDisposable {
  /** The lock's name. */
  readonly name: string;
  /**
   * The fencing token: strictly increasing per lock name across all processes. Pass it to
   * `warden.locks.assertFence` or store it with fenced writes (see docs/guarantees.md).
   */
  readonly token: number;
  readonly #deps: LeaseDeps;
  readonly #ttlMs: number;
  readonly #controller = new AbortController();
  #expiresAt: Date;
  /**
   * When the last confirmed request (the grant, then each renewal) was sent: a renewal must be confirmed within one TTL
   * of it. Conservative, since the database counts the TTL from a later moment. Measured with `elapsedSince`, on
   * elapsed time rather than the wall clock alone, so a wall clock stepped back does not stretch the deadline.
   */
  #confirmedRequest: ClockMark;
  #cancelTimer: () => void = () => {};
  /** Cancels the timer that gives the lease up one TTL after {@link Lease.#confirmedRequest} unless a renewal moves it. */
  #cancelDeadline: () => void = () => {};
  #released: Promise<void> | null = null;

  /** @param requestedAt when the request that granted it was sent (`markClock` before the request). */
  constructor(deps: LeaseDeps, grant: { name: string; token: number; expiresAt: Date }, ttlMs: number, requestedAt: ClockMark) {
    this.#deps = deps;
    this.name = grant.name;
    this.token = grant.token;
    this.#expiresAt = grant.expiresAt;
    this.#ttlMs = ttlMs;
    this.#confirmedRequest = requestedAt;
    this.#armDeadline();
    this.#schedule();
  }

  /** Aborted (reason `LockLostError`) when the lease is lost or released. */
  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  /** When the lease expires unless renewed (database time). */
  get expiresAt(): Date {
    return this.#expiresAt;
  }

  /** True until the lease is lost or released. */
  get held(): boolean {
    return !this.#controller.signal.aborted;
  }

  /**
   * Releases the lock and stops renewing. Safe to call twice. A lease already lost is released in the database
   * too: a renewal still in flight when it was given up may have landed since, leaving the lock held, by nobody,
   * until that renewal runs out. The release matches only this token, so it frees nothing another holder has.
   * @throws the database's error when a lease still held could not be released (the lock then expires at its
   *   TTL); for a lease already lost that error is an `error` event instead, since its holder already knows.
   */
  release(): Promise<void> {
    this.#released ??= (async () => {
      this.#cancelTimer();
      this.#cancelDeadline();
      const wasHeld = this.held;
      if (wasHeld) this.#controller.abort(new LockLostError(this.name, this.token, 'a lease released by its holder'));
      let released: boolean;
      try {
        released = await this.#deps.driver.lockRelease({ name: this.name, token: this.token });
      } catch (error) {
        if (wasHeld) throw error;
        this.#deps.events.emit('error', { error, context: `releasing lock ${this.name}, lost before its release` });
        return;
      }
      if (released) this.#deps.events.emit('lock:released', { name: this.name, token: this.token });
    })();
    return this.#released;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.release();
  }

  /**
   * Gives the lease up when its deadline passes unconfirmed: not only when a renewal fails, since a renewal that
   * never answers (a connection the pool waits on) or one retried every third of the TTL could otherwise leave the
   * lease reporting itself held after it expired and another holder was granted it.
   */
  #armDeadline(): void {
    const { clock } = this.#deps;
    this.#cancelDeadline();
    this.#cancelDeadline = clock.setTimer(Math.max(0, this.#ttlMs - elapsedSince(clock, this.#confirmedRequest)), () => this.#lose('no confirmed renewal before the lease could expire'));
  }

  #schedule(): void {
    this.#cancelTimer = this.#deps.clock.setTimer(Math.max(1, Math.floor(this.#ttlMs / 3)), () => void this.#renew());
  }

  async #renew(): Promise<void> {
    if (!this.held) return;
    const { driver, clock, events } = this.#deps;
    const requestedAt = markClock(clock);
    try {
      const grant = await driver.lockRenew({ name: this.name, token: this.token, ttlMs: this.#ttlMs, now: clock.sqlNow() });
      if (!this.held) return;
      if (!grant) return this.#lose('a renewal refused: the lease expired or a newer token was granted');
      this.#expiresAt = grant.expiresAt;
      this.#confirmedRequest = requestedAt;
      this.#armDeadline();
    } catch (error) {
      events.emit('error', { error, context: `renewing lock ${this.name}` });
      // Unconfirmed: once the lease may have expired, stop trusting it.
      if (elapsedSince(clock, this.#confirmedRequest) >= this.#ttlMs) return this.#lose('no confirmed renewal before the lease could expire');
    }
    if (this.held) this.#schedule();
  }

  #lose(reason: string): void {
    if (!this.held) return;
    this.#cancelTimer();
    this.#cancelDeadline();
    this.#controller.abort(new LockLostError(this.name, this.token, reason));
    this.#deps.events.emit('lock:lost', { name: this.name, token: this.token, reason });
  }
}
