/**
 * The `limit` of `Driver.jobLeasedTo`, checked the same way by both drivers.
 * @module
 */
import { InvalidOptionError } from '../errors.js';

/** Most leases one `jobLeasedTo` call returns. */
export const MAX_LEASED_TO = 10_000;

/** `limit` as a whole number from 1 to {@link MAX_LEASED_TO}. @throws InvalidOptionError otherwise. */
export function checkLeasedToLimit(limit: unknown): number {
  if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1 || limit > MAX_LEASED_TO) {
    throw new InvalidOptionError('limit', limit, `an integer from 1 to ${MAX_LEASED_TO}`);
  }
  return limit;
}
