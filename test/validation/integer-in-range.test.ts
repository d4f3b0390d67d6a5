/**
 * integerInRange: the shared check of bounded whole-number options (limits, batch and page sizes).
 * @module
 */
import { describe, expect, it } from 'vitest';
import { InvalidOptionError } from '../../src/errors.js';
import { integerInRange } from '../../src/validation/integer-in-range.js';

describe('integerInRange', () => {
  it('returns an integer within the bounds, both bounds included', () => {
    expect(integerInRange('limit', 1, 10)).toBe(1);
    expect(integerInRange('limit', 10, 10)).toBe(10);
    expect(integerInRange('limit', 0, 10, 0)).toBe(0);
  });

  it.each([0, 11, 2.5, Number.NaN, Number.POSITIVE_INFINITY, '5', null, undefined])('refuses %p, naming the field and the range', (value) => {
    expect(() => integerInRange('retention.batchSize', value, 10)).toThrow(InvalidOptionError);
    expect(() => integerInRange('retention.batchSize', value, 10)).toThrow(/retention\.batchSize.*an integer from 1 to 10|an integer from 1 to 10.*retention\.batchSize/s);
  });
});
