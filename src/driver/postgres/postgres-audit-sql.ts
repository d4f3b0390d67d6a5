/**
 * The SQL of the PostgreSQL driver's audit trail (`postgres-audit.ts`), and nothing else. Same conventions as
 * `postgres-sql.ts`. Appends of one chain are serialized by the row lock on the chain's `audit_heads` row, taken
 * first in every append and prune transaction and held until commit.
 * @module
 */
import { AUDIT_TIME_STRIDE } from '../audit-params.js';
import { quoteIdentifier } from './postgres-sql.js';

/** The `hash` of a chain head that holds nothing yet: 64 zeros (`GENESIS_HASH`). */
const ZEROS = `'${'0'.repeat(64)}'`;

/**
 * Creates the chain's head row if missing and locks it for the rest of the transaction (`ON CONFLICT DO UPDATE`
 * takes the same row lock as `SELECT … FOR UPDATE`, in one round trip and without a race on the first append).
 * Returns the head and the time of this append: `$2` or the database's clock read after the lock was granted
 * (`clock_timestamp()`, not the transaction start, so a later seq never gets an earlier time), in whole
 * milliseconds, and never before the head's own time. `$1` chain, `$2` now.
 */
export function auditHeadLockSql(s: string): string {
  return `INSERT INTO ${s}.audit_heads (chain, seq, hash) VALUES ($1, 0, ${ZEROS})
ON CONFLICT (chain) DO UPDATE SET chain = excluded.chain
RETURNING seq, hash, at,
  greatest(date_trunc('milliseconds', coalesce($2::timestamptz, clock_timestamp())), coalesce(at, '-infinity'::timestamptz)) AS append_at`;
}

/**
 * Inserts a sealed batch and moves the head to its last entry, in one round trip. `$3` is the batch as one JSON
 * array of rows `[seq, actor, action, subjectKind, subjectId, jobName, queue, before, after, reason, data, prevHash,
 * hash]`, `data` embedded as JSON (an object, or `null` for none). One JSON text, not thirteen parallel arrays:
 * `pg` escapes every array element in JavaScript and the server parses each array, which together cost a fifth
 * of an append (statement time 20.0 → 16.6 µs an entry). `$1` chain, `$2` at, `$3` rows, `$4` the last seq, `$5`
 * the last hash. The CTE runs although nothing reads it: PostgreSQL executes every data-modifying CTE exactly once.
 */
export function auditAppendSql(s: string): string {
  return `WITH e AS (
  INSERT INTO ${s}.audit_entries (chain, seq, at, actor, action, subject_kind, subject_id, job_name, queue, before_state, after_state, reason, data, prev_hash, hash)
  SELECT $1, (u ->> 0)::bigint, $2, u ->> 1, u ->> 2, u ->> 3, u ->> 4, u ->> 5, u ->> 6, u ->> 7, u ->> 8, u ->> 9,
         nullif(u -> 10, 'null'::jsonb), u ->> 11, u ->> 12
  FROM jsonb_array_elements($3::jsonb) AS u
  RETURNING 1
)
UPDATE ${s}.audit_heads SET seq = $4, hash = $5, at = $2 WHERE chain = $1`;
}

/** The sparse time index's condition (migration 0012), as its statements must spell it to use the index. */
const STRIDE_TERM = `seq % ${AUDIT_TIME_STRIDE} = 0`;

/**
 * A seq below every entry at or after the time parameter `param` (NULL: none): the last indexed entry (every
 * {@link AUDIT_TIME_STRIDE}th) before that time, or 0. Everything up to it is older, since `at` never decreases.
 */
function seqBefore(s: string, param: string): string {
  return `coalesce((SELECT seq FROM ${s}.audit_entries
    WHERE chain = $1 AND ${STRIDE_TERM} AND at < ${param}::timestamptz ORDER BY at DESC, seq DESC LIMIT 1), 0)`;
}

/**
 * A seq above every entry before the time parameter `param` (NULL: no bound): the first indexed entry at or after
 * that time, or the largest bigint. Everything from it on is that late or later, since `at` never decreases.
 */
function seqFrom(s: string, param: string): string {
  return `coalesce((SELECT seq FROM ${s}.audit_entries
    WHERE chain = $1 AND ${STRIDE_TERM} AND at >= ${param}::timestamptz ORDER BY at, seq LIMIT 1), 9223372036854775807)`;
}

/**
 * A page of a chain in seq order. `$1` chain, `$2` after seq, `$3` since (or NULL), `$4` until (or NULL), `$5` limit.
 * The time bounds become a seq range through the sparse time index (`at` never decreases along a chain), so the
 * primary key reads at most {@link AUDIT_TIME_STRIDE} rows outside the range at each end.
 * `data::text` so the driver parses the JSON itself and a stored value is never coerced on the way.
 */
export function auditListSql(s: string): string {
  return `SELECT chain, seq, at, actor, action, subject_kind, subject_id, job_name, queue, before_state, after_state, reason, data::text AS data, prev_hash, hash
FROM ${s}.audit_entries
WHERE chain = $1 AND seq > greatest($2, ${seqBefore(s, '$3')}) AND seq < ${seqFrom(s, '$4')}
  AND ($3::timestamptz IS NULL OR at >= $3) AND ($4::timestamptz IS NULL OR at < $4)
ORDER BY seq
LIMIT $5`;
}

/** A chain's head row. `$1` chain. */
export function auditHeadGetSql(s: string): string {
  return `SELECT chain, seq, hash, at, pruned_seq, pruned_hash FROM ${s}.audit_heads WHERE chain = $1`;
}

/** Locks a chain's head row (prune), or returns nothing for an unknown chain. `$1` chain. */
export function auditHeadLockExistingSql(s: string): string {
  return `SELECT seq FROM ${s}.audit_heads WHERE chain = $1 FOR UPDATE`;
}

/**
 * Deletes the entries older than `$2` (a prefix of the chain; the last one found backwards from the first indexed
 * entry at or after `$2`, as in {@link auditListSql}) and records the last one's seq and hash as pruned;
 * returns the number deleted. Runs after {@link auditHeadLockExistingSql} in the same transaction. `$1` chain,
 * `$2` before.
 */
export function auditPruneSql(s: string): string {
  return `WITH last AS (
  SELECT seq, hash FROM ${s}.audit_entries WHERE chain = $1 AND seq < ${seqFrom(s, '$2')} AND at < $2 ORDER BY seq DESC LIMIT 1
), d AS (
  DELETE FROM ${s}.audit_entries e USING last WHERE e.chain = $1 AND e.seq <= last.seq RETURNING 1
), h AS (
  UPDATE ${s}.audit_heads SET pruned_seq = last.seq, pruned_hash = last.hash FROM last WHERE chain = $1 RETURNING 1
)
SELECT (SELECT count(*) FROM d) AS deleted, (SELECT count(*) FROM h) AS moved`;
}

/** Every audit statement, built once per driver. */
export interface PostgresAuditStatements {
  headLock: string;
  append: string;
  list: string;
  headGet: string;
  headLockExisting: string;
  prune: string;
}

/** Builds the audit statements for a schema already checked by `validateSchemaName`. */
export function buildPostgresAuditStatements(schema: string): PostgresAuditStatements {
  const s = quoteIdentifier(schema);
  return {
    headLock: auditHeadLockSql(s),
    append: auditAppendSql(s),
    list: auditListSql(s),
    headGet: auditHeadGetSql(s),
    headLockExisting: auditHeadLockExistingSql(s),
    prune: auditPruneSql(s),
  };
}
