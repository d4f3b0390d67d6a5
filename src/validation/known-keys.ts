/**
 * The check that makes a misspelt option an error instead of a silently ignored key.
 * @module
 */
import { InvalidOptionError } from '../errors.js';

/**
 * Refuses a key of the options object `value` that is not one of `known`: a misspelt option (`timout`, `dealy`,
 * `retention: { complete }`) would otherwise be ignored and its default used without a word. A key whose value is
 * `undefined` sets nothing, so it is let through whatever its name (callers spread optional fields).
 * @param field the object as messages name it, e.g. `"enqueue options"` or `"alerts.sinks[0]"`.
 * @throws InvalidOptionError whose `value` is the unknown key, listing the known ones. Never the key's value: the
 *   object may hold credentials (a sink's `secret`, `headers`), and a misspelt key may be one of them.
 */
export function checkKnownKeys(field: string, value: object, known: readonly string[]): void {
  const key = unknownKey(value, known);
  if (key !== undefined) throw unknownKeyError(field, key, known);
}

/**
 * The first key of `value` that is set (not `undefined`) and not one of `known`, or undefined when there is none: the
 * test of {@link checkKnownKeys} for callers on a hot path (an `enqueueMany` item), which build the field's name
 * only when there is something to report.
 */
export function unknownKey(value: object, known: readonly string[]): string | undefined {
  for (const key of Object.keys(value)) {
    if ((value as Record<string, unknown>)[key] !== undefined && !known.includes(key)) return key;
  }
  return undefined;
}

/** The error {@link checkKnownKeys} throws for `key` in `field`. */
export function unknownKeyError(field: string, key: string, known: readonly string[]): InvalidOptionError {
  return new InvalidOptionError(`option name in ${field}`, key, `one of ${known.join(', ')}`);
}
