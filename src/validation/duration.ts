import { InvalidDurationError } from '../errors.js';

/** A duration: milliseconds as a number, or a string such as `"250ms"`, `"30s"`, `"5m"`, `"1h"`, `"7d"`. */
export type Duration = number | `${number}${'ms' | 's' | 'm' | 'h' | 'd'}`;

const UNIT_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const DURATION_PATTERN = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/;
/** Longest accepted duration: 365 days, which keeps every derived timestamp far inside Date's range. */
const MAX_MS = 365 * UNIT_MS.d;

/**
 * Parses a {@link Duration} into whole milliseconds.
 * @param field the option's name, used in the error message.
 * @param options.allowZero whether 0 is accepted. @default true
 * @throws InvalidDurationError for anything else, naming the field.
 */
export function parseDuration(field: string, value: unknown, options: { allowZero?: boolean } = {}): number {
  const allowZero = options.allowZero ?? true;
  const expected = `a duration such as "30s", "5m", "1h" or a whole number of milliseconds, ${allowZero ? '>= 0' : '> 0'} and at most 365d`;
  let ms: number;
  if (typeof value === 'number') {
    ms = value;
  } else if (typeof value === 'string') {
    const match = DURATION_PATTERN.exec(value.trim());
    if (!match) throw new InvalidDurationError(field, value, expected);
    ms = Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS];
  } else {
    throw new InvalidDurationError(field, value, expected);
  }
  // Checked after rounding: "0.4ms" where zero is refused would otherwise pass as 0.4 and be used as 0.
  const rounded = Math.round(ms);
  if (!Number.isFinite(ms) || ms < 0 || rounded > MAX_MS || (!allowZero && rounded === 0)) {
    throw new InvalidDurationError(field, value, expected);
  }
  return rounded;
}
