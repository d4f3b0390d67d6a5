/**
 * One timeline for the test process and its children: `process.hrtime` reads CLOCK_MONOTONIC, which on Linux is
 * system-wide, so a time taken in the parent (just before it sends SIGCONT) and one taken in a child (when its
 * handler sees the abort) can be subtracted. It never jumps with the wall clock and keeps counting while a process
 * is stopped.
 * @module
 */

/** Milliseconds (microsecond precision) on the machine's monotonic clock. */
export function monotonicMs(): number {
  return Number(process.hrtime.bigint() / 1000n) / 1000;
}
