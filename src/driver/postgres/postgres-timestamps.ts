/**
 * A faster parser for the `timestamptz` columns of the per-job statements, handed to `pg` per query (never
 * installed globally, which would change every other `pg` user in the process). `pg`'s own parser
 * (`postgres-date`) costs about 0.75 µs a value, with five timestamps in every claimed row; this one reads the
 * digits straight into `Date.UTC`. Anything but the common form (`DateStyle` ISO): BC dates, `infinity`, years
 * before 100 or past 9999, offsets with seconds, goes to `pg`'s parser unchanged.
 * @module
 */
import pg from 'pg';

/** OID of `timestamptz`. */
const TIMESTAMPTZ_OID = 1184;
const PLUS = 43;
const MINUS = 45;
const COLON = 58;
const SPACE = 32;
const DOT = 46;
const ZERO = 48;
/** `T`, between date and time in the JSON form (`json_build_array`, `to_json`). */
const LETTER_T = 84;

/** The value of the two decimal digits at `i`, or -1 when either is not a digit. */
function twoDigits(text: string, i: number): number {
  const a = text.charCodeAt(i) - ZERO;
  const b = text.charCodeAt(i + 1) - ZERO;
  return a >= 0 && a <= 9 && b >= 0 && b <= 9 ? a * 10 + b : -1;
}

/**
 * Parses `YYYY-MM-DD HH:MM:SS[.ffffff]±HH[:MM]`, as PostgreSQL prints `timestamptz` with `DateStyle` ISO; null for
 * any other form, which the caller hands to the default parser. Read digit by digit into `Date.UTC`, without
 * building an ISO-8601 string for `Date.parse`: no text is made per value (three slices and a template were a
 * kilobyte a claimed row), and it is faster. Fractions past the millisecond are dropped, as `Date.parse` does.
 * `separator` is the character between date and time: a space in a column's text, `T` in JSON (see
 * {@link timestamptzFromJson}).
 */
export function parseIsoTimestamptz(text: string, separator = SPACE): Date | null {
  const n = text.length;
  if (n < 22 || text.charCodeAt(4) !== MINUS || text.charCodeAt(7) !== MINUS || text.charCodeAt(10) !== separator || text.charCodeAt(13) !== COLON || text.charCodeAt(16) !== COLON) return null;
  const century = twoDigits(text, 0);
  const yy = twoDigits(text, 2);
  const month = twoDigits(text, 5);
  const day = twoDigits(text, 8);
  const hour = twoDigits(text, 11);
  const minute = twoDigits(text, 14);
  const second = twoDigits(text, 17);
  // Years before 100 would be read as 19xx by Date.UTC; PostgreSQL prints them with four digits, so leave them.
  if (century < 1 || yy < 0 || month < 1 || month > 12 || day < 1 || day > 31 || hour < 0 || hour > 23 || minute < 0 || minute > 59 || second < 0 || second > 59) return null;
  let i = 19;
  let ms = 0;
  if (text.charCodeAt(i) === DOT) {
    i++;
    for (let scale = 100; i < n; i++, scale /= 10) {
      const d = text.charCodeAt(i) - ZERO;
      if (d < 0 || d > 9) break;
      if (scale >= 1) ms += d * scale;
    }
  }
  const sign = text.charCodeAt(i);
  if ((sign !== PLUS && sign !== MINUS) || (n !== i + 3 && n !== i + 6)) return null;
  const offsetHours = twoDigits(text, i + 1);
  const offsetMinutes = n === i + 6 ? (text.charCodeAt(i + 3) === COLON ? twoDigits(text, i + 4) : -1) : 0;
  if (offsetHours < 0 || offsetMinutes < 0 || offsetMinutes > 59) return null;
  const offsetMs = (offsetHours * 60 + offsetMinutes) * 60_000;
  const utc = Date.UTC(century * 100 + yy, month - 1, day, hour, minute, second, ms);
  return new Date(sign === PLUS ? utc - offsetMs : utc + offsetMs);
}

const defaultTimestamptz = pg.types.getTypeParser(TIMESTAMPTZ_OID, 'text') as (text: string) => unknown;

function timestamptz(text: string): unknown {
  return parseIsoTimestamptz(text) ?? defaultTimestamptz(text);
}

/**
 * A `timestamptz` as PostgreSQL writes it in JSON (`json_build_array`): the column's text with `T` for the space
 * between date and time, whatever the session's `DateStyle`. The common form is read by {@link parseIsoTimestamptz};
 * any other (BC, infinity, an offset with seconds) goes to `pg`'s parser as the column text it would have received,
 * so both ways of reading a row agree. JSON null is null.
 */
export function timestamptzFromJson(text: string | null): Date | null {
  if (text === null) return null;
  return parseIsoTimestamptz(text, LETTER_T) ?? (defaultTimestamptz(text.replace('T', ' ')) as Date);
}

/** Type parsers for one query: `pg`'s, except the faster `timestamptz`. Pass as the query config's `types`. */
export const FAST_TYPES = {
  getTypeParser(oid: number, format?: 'text' | 'binary'): (value: string) => unknown {
    if (oid === TIMESTAMPTZ_OID && format !== 'binary') return timestamptz;
    return pg.types.getTypeParser(oid, format ?? 'text') as (value: string) => unknown;
  },
};
