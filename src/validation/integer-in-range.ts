/**
 * The check every bounded whole-number option and driver parameter shares (limits, batch sizes, page sizes).
 * @module
 */
import { InvalidOptionError } from '../errors.js';

/**
 * `value` as an integer from `min` to `max`, or an `InvalidOptionError` naming `field` ("Expected an integer from 1
 * to 10000 …"). A value that is not a number at all (a string, `NaN`) is refused the same way.
 * @throws InvalidOptionError
 */
export function integerInRange(field: string, value: unknown, max: number, min = 1): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new InvalidOptionError(field, value, `an integer from ${min} to ${max}`);
  }
  return value;
}
