/**
 * The one place Warden reads time and sets timers. Production uses {@link systemClock}; tests pass a
 * `FakeClock` from `warden/testing` and drive time forward explicitly.
 */
export interface Clock {
  /** The current time in ms since the epoch. */
  now(): number;
  /**
   * Elapsed time in ms from an arbitrary origin, which never steps back with the wall clock (an NTP step, a resumed
   * VM); only the difference of two readings means anything. Local deadlines and waits (a lease's renewal deadline,
   * `acquire`'s `wait`), attempt and step durations, and `ctx.iterate`'s checkpoint cadence and `maxRuntime` are
   * measured with it, through {@link elapsedSince}, so a wall clock stepped back an hour
   * does not stretch them by an hour. Optional, so that a clock written before it existed keeps working: without it
   * they are measured on `now()`, where a step back counts as no time passing (never as less): a lease's deadline
   * then comes late by as long as the renewal the step fell into took, and `acquire`'s `wait` is counted by the
   * pauses it slept.
   * @default now()
   */
  monotonicNow?(): number;
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

/** A moment read on both of a clock's scales, to measure from with {@link elapsedSince}. */
export interface ClockMark {
  /** `now()` when it was read. */
  readonly wall: number;
  /** `monotonicNow()` (or `now()` for a clock without it) when it was read. */
  readonly elapsed: number;
}

/** The current moment on both of `clock`'s scales. */
export function markClock(clock: Clock): ClockMark {
  return { wall: clock.now(), elapsed: clock.monotonicNow ? clock.monotonicNow() : clock.now() };
}

/**
 * The time since `mark`, in ms, never less than 0: the longer of the two readings. The monotonic one makes a wall
 * clock stepped back count for nothing; the wall one counts a system suspend, during which monotonic time (and with
 * it every `setTimeout`) stands still on Linux. A wall clock stepped forward makes it too long, so deadlines measured
 * with it come early: for a lease that is the safe side, given up before the database lets it expire.
 */
export function elapsedSince(clock: Clock, mark: ClockMark): number {
  const now = markClock(clock);
  return Math.max(0, now.elapsed - mark.elapsed, now.wall - mark.wall);
}

/**
 * The real clock: wall time for in-process measurements, `performance.now()` for elapsed time, database time
 * (`sqlNow() === null`) for SQL. Its timers, Node's, run on monotonic time too.
 */
export const systemClock: Clock = {
  now: () => Date.now(),
  monotonicNow: () => performance.now(),
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
