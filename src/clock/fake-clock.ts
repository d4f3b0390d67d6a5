import { InvalidOptionError } from '../errors.js';
import type { Clock } from './clock.js';

interface PendingTimer {
  at: number;
  seq: number;
  fire: () => void;
}

/**
 * A clock that only moves when told to. Its time is also what Warden passes to SQL as `now`, so database
 * decisions (due jobs, lease expiry) follow it too. Besides that wall time it keeps elapsed time
 * (`monotonicNow()`), on which its timers run, as Node's do: `advance` and a forward `set` move both, a backward
 * `set` only the wall time, as a wall-clock step back (NTP, a resumed VM) does to a real process.
 * @example
 * const clock = new FakeClock(Date.parse("2026-01-01T00:00:00Z"));
 * await clock.advance(30_000); // fires every timer due in the next 30 s, in order
 */
export class FakeClock implements Clock {
  #now: number;
  /** Elapsed time: starts at the wall time and never goes back. Timers are due by it. */
  #elapsed: number;
  #seq = 0;
  #timers: PendingTimer[] = [];

  /**
   * @param start the initial time in ms since the epoch. @default Date.now() at construction
   * @throws InvalidOptionError unless `start` is a finite number.
   */
  constructor(start: number = Date.now()) {
    this.#now = finiteTime('FakeClock(start)', start);
    this.#elapsed = this.#now;
  }

  now(): number {
    return this.#now;
  }

  /** Elapsed time: moved by `advance` and by `set` forward, never back. */
  monotonicNow(): number {
    return this.#elapsed;
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
    const timer: PendingTimer = { at: this.#elapsed + Math.max(0, ms), seq: this.#seq++, fire: fn };
    this.#timers.push(timer);
    return () => {
      this.#timers = this.#timers.filter((t) => t !== timer);
    };
  }

  /**
   * Sets the wall time and fires timers now due. Forward, elapsed time moves as much (a test jumping ahead); backward
   * (to test a wall clock stepped back), elapsed time and the timers stay where they are.
   * @throws InvalidOptionError (a rejection) unless `time` is a finite number; the time is then unchanged.
   */
  async set(time: number): Promise<void> {
    const to = finiteTime('clock.set(time)', time);
    this.#elapsed += Math.max(0, to - this.#now);
    this.#now = to;
    await this.#fireDue();
  }

  /**
   * Moves time forward by `ms`, firing each timer at its own time in order, letting promises settle between.
   * @throws InvalidOptionError (a rejection) unless `ms` is a finite number >= 0; nothing fires then. (`NaN` would
   *   fire every timer, as none is later than a NaN target, and leave the time NaN; `"10"` would append to it.)
   */
  async advance(ms: number): Promise<void> {
    if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0) throw new InvalidOptionError('clock.advance(ms)', ms, 'a finite number of milliseconds >= 0');
    const target = this.#elapsed + ms;
    for (;;) {
      const next = this.#earliest();
      if (!next || next.at > target) break;
      this.#moveElapsed(next.at);
      this.#timers = this.#timers.filter((t) => t !== next);
      next.fire();
      await settle();
    }
    this.#moveElapsed(target);
    await settle();
  }

  async #fireDue(): Promise<void> {
    for (;;) {
      const next = this.#earliest();
      if (!next || next.at > this.#elapsed) break;
      this.#timers = this.#timers.filter((t) => t !== next);
      next.fire();
      await settle();
    }
  }

  /** Moves elapsed time forward to `to` (never back), and the wall time with it. */
  #moveElapsed(to: number): void {
    if (to <= this.#elapsed) return;
    this.#now += to - this.#elapsed;
    this.#elapsed = to;
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
