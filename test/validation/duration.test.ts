import { describe, expect, it } from 'vitest';
import { InvalidDurationError } from '../../src/errors.js';
import { parseDuration } from '../../src/validation/duration.js';

describe('parseDuration', () => {
  it('parses units and whole milliseconds, rounding fractions', () => {
    expect(parseDuration('t', '250ms')).toBe(250);
    expect(parseDuration('t', '1.5s')).toBe(1_500);
    expect(parseDuration('t', '7d')).toBe(7 * 86_400_000);
    expect(parseDuration('t', 0.6)).toBe(1);
    expect(parseDuration('t', '0.4ms')).toBe(0);
  });

  it('refuses a duration that rounds to zero where zero is refused', () => {
    expect(() => parseDuration('timeout', '0.4ms', { allowZero: false })).toThrow(InvalidDurationError);
    expect(() => parseDuration('timeout', 0.49, { allowZero: false })).toThrow(/Expected timeout to be a duration .*> 0/);
    expect(parseDuration('timeout', '0.5ms', { allowZero: false })).toBe(1);
  });

  it('refuses negative, non-finite, malformed and over-365-day values', () => {
    for (const value of [-1, Number.NaN, Number.POSITIVE_INFINITY, '5 minutes', '1y', '', null, {}, 365 * 86_400_000 + 1]) {
      expect(() => parseDuration('t', value), String(value)).toThrow(InvalidDurationError);
    }
    expect(parseDuration('t', '365d')).toBe(365 * 86_400_000);
  });
});
