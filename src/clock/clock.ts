/**
 * The one place Warden reads time and sets timers. Production uses {@link systemClock}; tests pass a
 * `FakeClock` from `warden/testing` and drive time forward explicitly.
 */
export interface Clock {
  /** The current time in ms since the epoch. */
  now(): number;
  /**
   * The time to pass into SQL as `now`, or `null` to let the database use its own clock. Production returns
   * `null`, so lease expiry and due times are decided by database time; a fake clock returns its time so
   * tests are deterministic.
   */
  sqlNow(): Date | null;
  /**
   * Resolves after `ms`, or early (without rejecting) when `signal` aborts. Returns `true` if the full
   * time elapsed.
   */
  sleep(ms: number, signal?: AbortSignal): Promise<boolean>;
  /** Calls `fn` after `ms`; returns a function that cancels it. */
  setTimer(ms: number, fn: () => void): () => void;
}

/** The real clock: wall time for in-process timers, database time (`sqlNow() === null`) for SQL. */
export const systemClock: Clock = {
  now: () => Date.now(),
  sqlNow: () => null,
  sleep(ms, signal) {
    return new Promise((resolve) => {
      if (signal?.aborted) return resolve(false);
      const onAbort = () => {
        clearTimeout(timer);
        resolve(false);
      };
      const timer = setTimeout(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve(true);
      }, ms);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  },
  setTimer(ms, fn) {
    const timer = setTimeout(fn, ms);
    // Timers must never keep a process alive on their own: a stopped worker has to let Node exit.
    timer.unref?.();
    return () => clearTimeout(timer);
  },
};
