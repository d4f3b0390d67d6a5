/**
 * What every options parameter must be before its fields are read.
 * @module
 */
import { InvalidOptionError } from '../errors.js';
import { checkKnownKeys } from './known-keys.js';

/**
 * Whether `value` can be read as an object of options: an object, not `null` and not an array (whose keys are
 * indexes, not options).
 */
export function isOptionsObject(value: unknown): value is object {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * An optional object option (`misfire`, `databaseOptions`, …): `undefined` as it is, else checked to be an object
 * (see {@link isOptionsObject}) of `known` keys only (see {@link checkKnownKeys}).
 * @param expected what the option must be, for the message, e.g. `"an object { within, maxRuntime? }"`.
 * @throws InvalidOptionError naming `field`.
 */
export function optionalOptionsObject<T>(field: string, value: T | undefined, known: readonly string[], expected: string): T | undefined {
  if (value === undefined) return undefined;
  if (!isOptionsObject(value)) throw new InvalidOptionError(field, value, expected);
  checkKnownKeys(field, value, known);
  return value;
}
