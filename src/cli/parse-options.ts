/**
 * Converters from command-line strings to the values Warden's API takes. They only convert; range checks are
 * left to Warden, whose errors name the field and the accepted range.
 * @module
 */
import { InvalidOptionError } from '../errors.js';
import type { Duration } from '../validation/duration.js';

/**
 * An integer option (`--concurrency 20`, `--priority -5`), or undefined when not given.
 * @throws InvalidOptionError when the text is not a whole decimal number.
 */
export function parseIntegerOption(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const text = value.trim();
  if (!/^[+-]?\d{1,15}$/.test(text)) throw new InvalidOptionError(flag, value, 'a whole number');
  return Number(text);
}

/**
 * A duration option: `30s`, `5m`, `250ms` as given, or a bare whole number as milliseconds. Warden validates
 * the result (and names the field) when it is used.
 */
export function parseDurationOption(value: string | undefined): Duration | undefined {
  if (value === undefined) return undefined;
  const text = value.trim();
  return (/^\d{1,15}$/.test(text) ? Number(text) : text) as Duration;
}

/** A comma-separated list (`--queues a,b`) as its trimmed, non-empty items, or undefined when not given. */
export function parseListOption(value: string | undefined): string[] | undefined {
  if (value === undefined) return undefined;
  return value.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
}

/**
 * A job id argument (`jobs show 42`, `--before 42`): a positive decimal integer.
 * @throws InvalidOptionError otherwise.
 */
export function parseJobIdOption(flag: string, value: string): string {
  const text = value.trim();
  if (!/^[1-9][0-9]{0,18}$/.test(text)) throw new InvalidOptionError(flag, value, 'a job id (a positive whole number)');
  return text;
}
