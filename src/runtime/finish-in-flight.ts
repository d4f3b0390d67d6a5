/**
 * The end of a worker's shutdown: the grace period of the attempts still in flight, and what happens to the rest.
 * @module
 */
import type { Clock } from '../clock/clock.js';
import { ShutdownAbortError } from '../errors.js';
import type { Attempt } from './attempt.js';
import type { Completer } from './completer.js';

/** What {@link finishInFlight} works on. */
export interface FinishInFlightParams {
  /** The worker's attempts started and not yet ended, with the promise of {@link Attempt.run}. */
  inFlight: ReadonlyMap<Attempt, Promise<void>>;
  /** Closed here, once no more endings can come (it writes the aborted attempts' endings first). */
  completer: Completer;
  clock: Clock;
  /** The worker option `grace` (ms). */
  graceMs: number;
  /**
   * Told how many attempts were aborted as soon as they are (before their endings are written and the completer
   * closes, which can take up to its close deadline), so the worker's counter says so meanwhile.
   */
  onAborted: (count: number) => void;
}

/** How long (ms) the completer may keep retrying the endings it still holds when it is closed. */
const CLOSE_DEADLINE_MS = 5_000;

/**
 * Gives the attempts in flight `graceMs` to end; those still running then are aborted through their signal with a
 * `ShutdownAbortError` and ended `aborted` (returned for retry with the attempt counted, `dead` on their last
 * attempt). Then closes the completer.
 * @returns How many attempts were aborted.
 */
export async function finishInFlight({ inFlight, completer, clock, graceMs, onAborted }: FinishInFlightParams): Promise<number> {
  const graceOver = new AbortController();
  const everyoneDone = Promise.all(inFlight.values());
  const finishedInTime = await Promise.race([everyoneDone.then(() => true), clock.sleep(graceMs, graceOver.signal).then(() => false)]);
  graceOver.abort();
  if (finishedInTime) {
    await completer.close(CLOSE_DEADLINE_MS);
    return 0;
  }
  let aborted = 0;
  const error = new ShutdownAbortError(graceMs);
  const endings: Promise<unknown>[] = [];
  for (const attempt of inFlight.keys()) {
    if (attempt.done) continue;
    aborted++;
    attempt.controller.abort(error);
    const state = attempt.row.attempt >= attempt.row.maxAttempts ? 'dead' : 'queued';
    endings.push(attempt.end('aborted', state, 0, { name: error.name, message: error.message }));
  }
  onAborted(aborted);
  // Closed alongside, not after: while the database refuses endings the completer retries them until its close
  // deadline makes it give up, and only then do these settle (given up: their leases expire and are rescued).
  const closing = completer.close(CLOSE_DEADLINE_MS);
  await Promise.all(endings);
  await closing;
  return aborted;
}
