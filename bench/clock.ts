/**
 * One clock for every process of a run: `process.hrtime`, CLOCK_MONOTONIC on Linux, which every process of the
 * machine reads alike (a parent and its children measured within 0.05 ms of each other) with sub-microsecond
 * resolution. Not `performance.timeOrigin + performance.now()`: each process fixes its `timeOrigin` from the wall
 * clock when it starts and counts monotonic time from there, so two processes disagree by however far the wall
 * clock moved against the monotonic one between their starts. On this machine, for its first quarter hour after
 * boot, the wall clock gained 5 ms a second on it (measured 2026-12-06): a child started 40 s after the benchmark
 * read 0.2 s ahead of it, which went straight into W3's latencies and the drains' start times.
 * @module
 */
import { setTimeout as sleepFor } from 'node:timers/promises';

/** Milliseconds on the machine's monotonic clock (since boot), fractional, comparable across its processes. */
export function now(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return sleepFor(Math.max(0, ms)).then(() => undefined);
}

/** Polls `check` every `everyMs` until it returns true; throws after `timeoutMs` naming `what`. */
export async function waitFor(what: string, check: () => Promise<boolean> | boolean, timeoutMs: number, everyMs = 5): Promise<void> {
  const deadline = now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}
