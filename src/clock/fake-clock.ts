import { InvalidOptionError } from '../errors.js';
import type { Clock } from './clock.js';

interface PendingTimer {
  at: number;
  seq: number;
  fire: () => void;
}

/**
 * A clock that only moves when told to. Its time is also what Warden passes to SQL as `now`, so database
 * decisions (due jobs, lease expiry) follow it too.
 * @example
 * const clock = new FakeClock(Date.parse("2026-01-01T00:00:00Z"));
 * await clock.advance(30_000); // fires every timer due in the next 30 s, in order
 */
export class FakeClock implements Clock {
  #now: number;
  #seq = 0;
  #timers: PendingTimer[] = [];

  /**
   * @param start the initial time in ms since the epoch. @default Date.now() at construction
   * @throws InvalidOptionError unless `start` is a finite number.
   */
  constructor(start: number = Date.now()) {
    this.#now = finiteTime('FakeClock(start)', start);
  }

  now(): number {
    return this.#now;
  }

  sqlNow(): Date {
    return new Date(this.#now);
  }

  /** Number of timers waiting to fire. */
  get pendingTimers(): number {
    return this.#timers.length;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<boolean> {
    return new Promise((resolve) => {
      if (signal?.aborted) return resolve(false);
      const cancel = this.setTimer(ms, () => {
        signal?.removeEventListener('abort', onAbort);
        resolve(true);
      });
      const onAbort = () => {
        cancel();
        resolve(false);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  setTimer(ms: number, fn: () => void): () => void {
    const timer: PendingTimer = { at: this.#now + Math.max(0, ms), seq: this.#seq++, fire: fn };
    this.#timers.push(timer);
    return () => {
      this.#timers = this.#timers.filter((t) => t !== timer);
    };
  }

  /**
   * Sets the time (it may go backwards, to test clock reversal) and fires timers now due.
   * @throws InvalidOptionError (a rejection) unless `time` is a finite number; the time is then unchanged.
   */
  async set(time: number): Promise<void> {
    this.#now = finiteTime('clock.set(time)', time);
    await this.#fireDue();
  }

  /**
   * Moves time forward by `ms`, firing each timer at its own time in order, letting promises settle between.
   * @throws InvalidOptionError (a rejection) unless `ms` is a finite number >= 0; nothing fires then. (`NaN` would
   *   fire every timer, as none is later than a NaN target, and leave the time NaN; `"10"` would append to it.)
   */
  async advance(ms: number): Promise<void> {
    if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0) throw new InvalidOptionError('clock.advance(ms)', ms, 'a finite number of milliseconds >= 0');
    const target = this.#now + ms;
    for (;;) {
      const next = this.#earliest();
      if (!next || next.at > target) break;
      this.#now = Math.max(this.#now, next.at);
      this.#timers = this.#timers.filter((t) => t !== next);
      next.fire();
      await settle();
    }
    this.#now = target;
    await settle();
  }

  async #fireDue(): Promise<void> {
    for (;;) {
      const next = this.#earliest();
      if (!next || next.at > this.#now) break;
      this.#timers = this.#timers.filter((t) => t !== next);
      next.fire();
      await settle();
    }
  }

  #earliest(): PendingTimer | undefined {
    let best: PendingTimer | undefined;
    for (const t of this.#timers) if (!best || t.at < best.at || (t.at === best.at && t.seq < best.seq)) best = t;
    return best;
  }
}

/**
 * `value` as a time, or an `InvalidOptionError` naming `field`: anything but a finite number would make every
 * later comparison with a timer false (NaN) or turn the time into text.
 */
function finiteTime(field: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) throw new InvalidOptionError(field, value, 'a finite number of milliseconds since the epoch');
  return value;
}

/** Lets queued promise callbacks and one macrotask run, so code woken by a timer makes progress. */
function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
