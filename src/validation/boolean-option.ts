/**
 * The check every on/off option shares.
 * @module
 */
import { InvalidOptionError } from '../errors.js';

/**
 * `value`, or `fallback` when it is undefined; an `InvalidOptionError` naming `field` for anything else that is not
 * a boolean (a string such as `"false"` is not one: it would read as true).
 * @throws InvalidOptionError
 */
export function booleanOption(field: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw new InvalidOptionError(field, value, 'a boolean');
  return value;
}
