/**
 * Array parameters of the per-batch worker statements (endings, heartbeats), written as PostgreSQL array literals
 * (`{1,2,3}`) when every element has a plain text form, instead of handing `pg` a JavaScript array. `pg` quotes
 * and escapes each element through two regular-expression replacements and grows the text one `+=` at a time:
 * for a batch of endings that was 1.4 KB of garbage and about a microsecond a job in the worker (W1 on
 * PostgreSQL). The literal is still a bound parameter, cast by the statement (`$1::bigint[]`), so nothing is ever
 * spliced into SQL. Any element without a plain form (a quote, a comma, a fraction where an integer belongs, NaN)
 * sends the array to `pg` unchanged, so a bad value fails exactly as it did before.
 * @module
 */

/** Lowercase words (outcomes, states). `null` is excluded: unquoted, an array literal reads it as SQL NULL. */
const WORD = /^[a-z_]+$/;

/** Decimal digits only, as job ids are after `isJobId`. */
const DIGITS = /^[0-9]+$/;

/** An array parameter: a literal when every element passes `plain`, else the array itself for `pg` to encode. */
function literalOr<T>(values: readonly T[], plain: (value: T) => boolean): string | readonly T[] {
  for (const value of values) if (!plain(value)) return values;
  return `{${values.join(',')}}`;
}

/** A `bigint[]` of decimal id strings. */
export function idArrayParam(ids: readonly string[]): string | readonly string[] {
  return literalOr(ids, (id) => typeof id === 'string' && DIGITS.test(id));
}

/** A `bigint[]`/`int[]` of safe integers. */
export function intArrayParam(values: readonly number[]): string | readonly number[] {
  return literalOr(values, Number.isSafeInteger);
}

/** A `float8[]` of finite numbers (JavaScript's number text, exponent included, is valid float8 input). */
export function floatArrayParam(values: readonly number[]): string | readonly number[] {
  return literalOr(values, Number.isFinite);
}

/** A `text[]` of lowercase words such as outcomes and states. */
export function wordArrayParam(values: readonly string[]): string | readonly string[] {
  return literalOr(values, (value) => typeof value === 'string' && value !== 'null' && WORD.test(value));
}

/** A `bool[]`. */
export function boolArrayParam(values: readonly boolean[]): string | readonly boolean[] {
  return literalOr(values, (value) => typeof value === 'boolean');
}

/** A `text[]` that is usually all NULL (the errors of a batch of successes); any text sends it to `pg`. */
export function nullableTextArrayParam(values: readonly (string | null)[]): string | readonly (string | null)[] {
  for (const value of values) if (value !== null) return values;
  return values.length === 0 ? '{}' : `{${'NULL,'.repeat(values.length - 1)}NULL}`;
}
