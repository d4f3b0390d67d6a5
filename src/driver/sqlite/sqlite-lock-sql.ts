/**
 * The SQL of the SQLite driver's lease locks (`sqlite-locks.ts`), and nothing else. Same conventions as
 * `sqlite-sql.ts`. A lock row is never deleted, so its fencing token only ever grows.
 * @module
 */
import { NOW } from './sqlite-sql.js';

/**
 * Grants a lease lock if it is new (token 1), released, expired, or held under this call's grant id `@grantId`
 * and holder (token + 1; NULL matches nothing, so only a retry of the call that made the grant takes it up again;
 * the holder too, since a version before migration 0016 taking the lock over leaves the column as it was): one
 * statement, so two acquirers can never both get a row back. No row returned: someone else holds it. A lock row is
 * never deleted, so the token only grows. Params: `@name, @holder, @ttlMs, @now, @grantId`.
 */
export const LOCK_ACQUIRE = `
INSERT INTO locks (name, token, holder, acquired_at, expires_at, grant_id)
VALUES (@name, 1, @holder, ${NOW}, ${NOW} + @ttlMs, @grantId)
ON CONFLICT (name) DO UPDATE
SET token = locks.token + 1,
    holder = excluded.holder,
    acquired_at = excluded.acquired_at,
    expires_at = excluded.expires_at,
    grant_id = excluded.grant_id
WHERE locks.holder IS NULL OR locks.expires_at <= ${NOW} OR (locks.grant_id = excluded.grant_id AND locks.holder = excluded.holder)
RETURNING token, expires_at`;

/** Extends an unexpired lease still held with `@token`; no row when it was lost. Params: `@name, @token, @ttlMs, @now`. */
export const LOCK_RENEW = `
UPDATE locks SET expires_at = ${NOW} + @ttlMs
WHERE name = @name AND token = @token AND holder IS NOT NULL AND expires_at > ${NOW}
RETURNING token, expires_at`;

/** Frees a lock held with `@token`, keeping the token (`changes` = 1 when released). Params: `@name, @token`. */
export const LOCK_RELEASE = `
UPDATE locks SET holder = NULL, expires_at = NULL
WHERE name = @name AND token = @token AND holder IS NOT NULL`;

/**
 * Fence check: the newest token of a lock and whether `@token` is it, still held and unexpired (`held` 0/1).
 * No row when the lock was never granted. Params: `@name, @token, @now`.
 */
export const LOCK_CHECK = `
SELECT token, coalesce(token = @token AND holder IS NOT NULL AND expires_at > ${NOW}, 0) AS held
FROM locks WHERE name = @name`;

/** Every lock row, by name. No params. */
export const LOCK_LIST = `SELECT * FROM locks ORDER BY name`;
