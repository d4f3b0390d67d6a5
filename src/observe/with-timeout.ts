import { WardenError } from '../errors.js';

/**
 * Resolves or rejects like `promise`, or rejects with a `WardenError` of code `TIMEOUT` once `ms` have passed.
 * The underlying work is not cancelled (a driver call cannot be); it is only no longer waited for, so a hung
 * database cannot hang a scrape or a probe. The timer is unref'd: it never keeps the process alive.
 * @param what what was waited for, for the message: e.g. `"the database to answer dbNow()"`.
 */
export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new WardenError('TIMEOUT', `Expected ${what} within ${ms}ms, got no answer`)), ms);
    timer.unref?.();
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
