/**
 * One clock for every process of a run. `performance.timeOrigin + performance.now()` is wall-clock based
 * (so a parent and its children read the same time line) with sub-millisecond resolution, unlike `Date.now()`.
 * @module
 */
import { setTimeout as sleepFor } from 'node:timers/promises';

/** Milliseconds since the Unix epoch, fractional, comparable across processes of this machine. */
export function now(): number {
  return performance.timeOrigin + performance.now();
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
