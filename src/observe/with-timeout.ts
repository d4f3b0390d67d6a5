import { systemClock } from '../clock/clock.js';
import { WardenError } from '../errors.js';

/**
 * Resolves or rejects like `promise`, or rejects with a `WardenError` of code `TIMEOUT` once `ms` have passed.
 * The underlying work is not cancelled (a driver call cannot be); it is only no longer waited for, so a hung
 * database cannot hang a scrape or a probe. The timer is unref'd: it never keeps the process alive.
 * @param ms any duration Warden accepts (up to 365 days), longer than one `setTimeout` holds included.
 * @param what what was waited for, for the message: e.g. `"the database to answer dbNow()"`.
 */
export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let cancel = (): void => undefined;
  const timeout = new Promise<never>((_, reject) => {
    // The system clock's timer rather than setTimeout: it is unref'd, and waits in steps for a delay longer than
    // 2^31 − 1 ms, which setTimeout fires after 1 ms (a `collectTimeout` of "30d" would time every scrape out at once).
    cancel = systemClock.setTimer(ms, () => reject(new WardenError('TIMEOUT', `Expected ${what} within ${ms}ms, got no answer`)));
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    cancel();
  }
}
