/**
 * Cross-process wake-ups for SQLite, which has no LISTEN/NOTIFY: `PRAGMA data_version` changes whenever another
 * connection (another process, or another driver instance) commits to the file. Reading it costs a few
 * microseconds and no I/O (it is kept in shared memory with the WAL index), so a worker can afford to look every
 * few milliseconds and claim as soon as a producer elsewhere commits, instead of waiting for its poll interval.
 * @module
 */

/** How often a listening SQLite driver reads `PRAGMA data_version`. @default 5 */
export const DEFAULT_SQLITE_WAKEUP_MS = 5;

/** What {@link watchDataVersion} needs: a way to read the counter, and where to report. */
export interface DataVersionWatch {
  /** Reads `PRAGMA data_version` on the driver's connection (throws when the driver is closed). */
  read: () => number;
  intervalMs: number;
  /** Another connection committed: something may be due (the queue is unknown). */
  onWake: () => void;
  onError: (error: unknown) => void;
}

/**
 * Polls the counter and calls `onWake` after each change. Returns a stop function. Uses a real timer on purpose:
 * this is infrastructure polling, like the busy-retry backoff, not business time, so a fake clock does not drive
 * it; a spurious wake only makes the worker look once more.
 *
 * The first reading, the baseline, is taken here, synchronously, not at the first tick: a commit between the call
 * and that tick would otherwise become the baseline and wake nobody. The driver's `listen` calls this before it
 * resolves and the worker claims only after `listen` resolved, so every commit after the worker's first claim
 * began is a change from the baseline (one before it is a spurious wake: that claim saw it). When the baseline
 * cannot be read (the driver closed), the failure is reported and the first reading that succeeds becomes it.
 */
export function watchDataVersion(watch: DataVersionWatch): () => void {
  let last: number | null = null;
  let failed = false;
  const look = (): void => {
    let version: number;
    try {
      version = watch.read();
      failed = false;
    } catch (error) {
      // Report once per outage, not every few milliseconds.
      if (!failed) watch.onError(error);
      failed = true;
      return;
    }
    if (last !== null && version !== last) watch.onWake();
    last = version;
  };
  look();
  const timer = setInterval(look, watch.intervalMs);
  // Never keep a process alive just to watch for wake-ups.
  timer.unref();
  return () => clearInterval(timer);
}
