import { InvalidNameError } from '../errors.js';

/** Pattern for job and queue names: lowercase ASCII, digits, `.`, `_`, `-`; 1–64 characters. */
export const NAME_PATTERN = /^[a-z0-9][a-z0-9._-]{0,63}$/;

/**
 * Pattern for a PostgreSQL schema name Warden will create and use: a plain lowercase SQL identifier, not starting
 * with `pg_` (PostgreSQL reserves that prefix for system schemas and refuses to create one, SQLSTATE 42939).
 */
export const SCHEMA_PATTERN = /^(?!pg_)[a-z_][a-z0-9_]{0,62}$/;

/**
 * Pattern for a dedup key: any printable text up to 255 characters (UTF-16 code units), no control characters.
 * {@link validateKey} also requires the text to be well-formed UTF-16, which a pattern without the `u` flag cannot
 * say (and with it, `{1,255}` would count code points instead).
 */
export const KEY_PATTERN = /^[^\u0000-\u001f\u007f]{1,255}$/;

/**
 * Checks a job or queue name against {@link NAME_PATTERN} and returns it.
 * @throws InvalidNameError naming the field, before any SQL is built.
 */
export function validateName(field: string, value: unknown): string {
  if (typeof value !== 'string' || !NAME_PATTERN.test(value)) {
    throw new InvalidNameError(field, value, `match ${NAME_PATTERN}`);
  }
  return value;
}

/**
 * Checks a PostgreSQL schema name against {@link SCHEMA_PATTERN}. Schema names are the only identifiers
 * interpolated into SQL text, so this check is what keeps that safe.
 * @throws InvalidNameError
 */
export function validateSchemaName(value: unknown): string {
  if (typeof value !== 'string' || !SCHEMA_PATTERN.test(value)) {
    // The prefix is named: such a name looks like a plain identifier, and the pattern alone does not say why.
    const reserved = typeof value === 'string' && value.startsWith('pg_') ? ' (the prefix "pg_" is reserved for PostgreSQL\'s system schemas)' : '';
    throw new InvalidNameError('schema', value, `match ${SCHEMA_PATTERN}${reserved}`);
  }
  return value;
}

/**
 * Checks a deduplication key against {@link KEY_PATTERN} and that it is well-formed UTF-16. A lone surrogate cannot
 * be encoded as UTF-8 on the way to the database: PostgreSQL would store U+FFFD for it (two different keys would
 * deduplicate against each other) and SQLite would read back another string than the key given.
 * @throws InvalidNameError
 */
export function validateKey(value: unknown): string {
  if (typeof value !== 'string' || !KEY_PATTERN.test(value)) {
    throw new InvalidNameError('key', value, 'be a string of 1-255 characters without control characters');
  }
  if (!value.isWellFormed()) throw new InvalidNameError('key', value, 'be well-formed text, without lone UTF-16 surrogates (half of a character)');
  return value;
}

/** Pattern for a lease-lock name: letters, digits and `._:/-`, 1–128 characters (room for `tenant:resource`). */
export const LOCK_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$/;

/**
 * Checks a lock name against {@link LOCK_NAME_PATTERN}.
 * @throws InvalidNameError
 */
export function validateLockName(value: unknown): string {
  if (typeof value !== 'string' || !LOCK_NAME_PATTERN.test(value)) {
    throw new InvalidNameError('lock name', value, `match ${LOCK_NAME_PATTERN}`);
  }
  return value;
}
