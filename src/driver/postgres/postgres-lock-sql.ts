/**
 * The SQL of the PostgreSQL driver's lease locks (migration `0002_schedules_and_locks`), and nothing else.
 * Same conventions as `postgres-sql.ts`. A lock row is never deleted, so its fencing token only ever grows.
 * @module
 */
import { msAt, nowAt, quoteIdentifier } from './postgres-sql.js';

/**
 * Grants the lock in one statement when it is new (token 1), released, expired, or held under this call's grant id
 * `$5` (token + 1). A concurrent acquirer waits on the row (or on the other's insert of it) and then re-checks the
 * committed row, so two callers are never both granted; a transaction that checked the lock `FOR SHARE` makes it
 * wait until that transaction ends. The grant id matches only the call that made the grant (NULL matches nothing):
 * an acquire retried after its reply was lost takes its grant up again, under a new token, waiting first for the
 * lost statement if it is still running. The holder must match too: a version before migration 0016 taking the lock
 * over leaves the column as it was. Params: `$1` name, `$2` holder, `$3` ttl (ms), `$4` now, `$5` grant id.
 * No row: held elsewhere.
 */
export function lockAcquireSql(s: string): string {
  return `INSERT INTO ${s}.locks AS l (name, token, holder, acquired_at, expires_at, grant_id)
VALUES ($1, 1, $2, ${nowAt(4)}, ${nowAt(4)} + ${msAt(3)}, $5)
ON CONFLICT (name) DO UPDATE
SET token = l.token + 1, holder = excluded.holder, acquired_at = excluded.acquired_at, expires_at = excluded.expires_at,
    grant_id = excluded.grant_id
WHERE l.holder IS NULL OR l.expires_at <= excluded.acquired_at OR (l.grant_id = excluded.grant_id AND l.holder = excluded.holder)
RETURNING token, expires_at`;
}

/**
 * Extends an unexpired lease still held with this token. Params: `$1` name, `$2` token, `$3` ttl (ms), `$4` now.
 * No row: the lease was lost (expired, released or taken over).
 */
export function lockRenewSql(s: string): string {
  return `UPDATE ${s}.locks SET expires_at = ${nowAt(4)} + ${msAt(3)}
WHERE name = $1 AND token = $2 AND holder IS NOT NULL AND expires_at > ${nowAt(4)}
RETURNING token, expires_at`;
}

/** Frees the lock if this token holds it; the token stays, so the next grant is higher. Params: `$1` name, `$2` token. */
export function lockReleaseSql(s: string): string {
  return `UPDATE ${s}.locks SET holder = NULL, expires_at = NULL
WHERE name = $1 AND token = $2 AND holder IS NOT NULL
RETURNING name`;
}

/**
 * Whether a token is the live holder, and the newest token. Params: `$1` name, `$2` token, `$3` now.
 * With `forShare`, the row is locked `FOR SHARE` until the caller's transaction ends, so no new grant (which
 * updates the row) can commit before the caller's fenced write does.
 */
export function lockCheckSql(s: string, forShare: boolean): string {
  // clock_timestamp(), not now(): inside the caller's transaction now() is when that transaction began, and a lease
  // that expired since then must not pass.
  return `SELECT token, (token = $2 AND holder IS NOT NULL AND expires_at > coalesce($3::timestamptz, clock_timestamp())) AS held
FROM ${s}.locks WHERE name = $1${forShare ? '\nFOR SHARE' : ''}`;
}

/** Every lock row, by name (bytewise). No parameters. */
export function lockListSql(s: string): string {
  return `SELECT name, token, holder, acquired_at, expires_at FROM ${s}.locks ORDER BY name COLLATE "C"`;
}

/** Every lock statement, built once per driver (see {@link buildPostgresLockStatements}). */
export interface PostgresLockStatements {
  lockAcquire: string;
  lockRenew: string;
  lockRelease: string;
  lockCheck: string;
  lockCheckForShare: string;
  lockList: string;
}

/** Builds every lock statement for a schema already checked by `validateSchemaName`. */
export function buildPostgresLockStatements(schema: string): PostgresLockStatements {
  const s = quoteIdentifier(schema);
  return {
    lockAcquire: lockAcquireSql(s),
    lockRenew: lockRenewSql(s),
    lockRelease: lockReleaseSql(s),
    lockCheck: lockCheckSql(s, false),
    lockCheckForShare: lockCheckSql(s, true),
    lockList: lockListSql(s),
  };
}
