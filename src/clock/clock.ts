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

/**
 * The longest delay `setTimeout` keeps (2^31 − 1 ms, about 24.8 days). Node fires a longer one after 1 ms, yet
 * durations are accepted up to 365 days (a lock's `ttl`, `retention.interval`): {@link systemClock} waits for those in
 * steps of at most this.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * `setTimeout` for any delay, in steps of at most {@link MAX_TIMER_MS}; `unref` as for `setTimeout`'s `unref()`.
 * Returns the function that cancels it, whichever step it is in.
 */
function longTimeout(ms: number, fn: () => void, unref: boolean): () => void {
  // Nearly every delay fits one timer (job timeouts are set per job): no closures for them.
  if (!(ms > MAX_TIMER_MS)) {
    const single = setTimeout(fn, ms);
    if (unref) single.unref?.();
    return () => clearTimeout(single);
  }
  let timer: ReturnType<typeof setTimeout>;
  const arm = (left: number): void => {
    timer = setTimeout(() => (left > MAX_TIMER_MS ? arm(left - MAX_TIMER_MS) : fn()), Math.min(left, MAX_TIMER_MS));
    if (unref) timer.unref?.();
  };
  arm(ms);
  return () => clearTimeout(timer);
}

/** The real clock: wall time for in-process timers, database time (`sqlNow() === null`) for SQL. */
export const systemClock: Clock = {
  now: () => Date.now(),
  sqlNow: () => null,
  sleep(ms, signal) {
    return new Promise((resolve) => {
      if (signal?.aborted) return resolve(false);
      const onAbort = () => {
        cancel();
        resolve(false);
      };
      const cancel = longTimeout(ms, () => {
        signal?.removeEventListener('abort', onAbort);
        resolve(true);
      }, false);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  },
  setTimer(ms, fn) {
    // Timers must never keep a process alive on their own: a stopped worker has to let Node exit.
    return longTimeout(ms, fn, true);
  },
};
