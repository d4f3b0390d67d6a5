/**
 * The `limit` of `Driver.jobLeasedTo`, checked the same way by both drivers.
 * @module
 */
import { integerInRange } from '../validation/integer-in-range.js';

/** Most leases one `jobLeasedTo` call returns. */
export const MAX_LEASED_TO = 10_000;

/** `limit` as a whole number from 1 to {@link MAX_LEASED_TO}. @throws InvalidOptionError otherwise. */
export function checkLeasedToLimit(limit: unknown): number {
  return integerInRange('limit', limit, MAX_LEASED_TO);
}
