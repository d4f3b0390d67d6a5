/**
 * The SQL of the PostgreSQL driver's audit trail (`postgres-audit.ts`), and nothing else. Same conventions as
 * `postgres-sql.ts`. Appends of one chain are serialized by the row lock on the chain's `audit_heads` row: taken
 * first in every locked append and prune transaction and held until commit, and by the one statement of an
 * optimistic append, which writes only if the head is still the one it sealed onto.
 * @module
 */
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
 * Inserts a sealed batch as one block and moves the head to its last entry, in one round trip. `$1` chain, `$2` at,
 * `$3` first seq, `$4` last seq, `$5` the block (`SealedBatch.block`), `$6` the last hash. The CTE runs although
 * nothing reads it: PostgreSQL executes every data-modifying CTE exactly once.
 */
export function auditAppendSql(s: string): string {
  return `WITH b AS (
  INSERT INTO ${s}.audit_blocks (chain, first_seq, last_seq, at, entries) VALUES ($1, $3, $4, $2, $5)
  RETURNING 1
)
UPDATE ${s}.audit_heads SET seq = $4, hash = $6, at = $2 WHERE chain = $1`;
}

/**
 * The chain's head and the time of an append made now, read without a lock (the first step of an optimistic
 * append): the time as {@link auditHeadLockSql} computes it. No row for a chain never appended to. `$1` chain, `$2` now.
 */
export function auditHeadReadSql(s: string): string {
  return `SELECT seq, hash,
  greatest(date_trunc('milliseconds', coalesce($2::timestamptz, clock_timestamp())), coalesce(at, '-infinity'::timestamptz)) AS append_at
FROM ${s}.audit_heads WHERE chain = $1`;
}

/**
 * {@link auditAppendSql} on its own, in one statement and one transaction: moves the head to the batch's last entry
 * only if it is still the head the batch was sealed onto (`$7` seq, `$8` hash), and inserts the block only if it
 * did. A concurrent append holding the head row makes the update wait, then re-check its condition on the newest
 * head, which no longer matches: nothing is written (no row returned) and the caller seals again under the lock.
 * `$1` chain, `$2` at, `$3` first seq, `$4` last seq, `$5` the block, `$6` the last hash, `$7`, `$8` the head.
 */
export function auditAppendIfHeadSql(s: string): string {
  return `WITH h AS (
  UPDATE ${s}.audit_heads SET seq = $4, hash = $6, at = $2 WHERE chain = $1 AND seq = $7 AND hash = $8
  RETURNING chain
)
INSERT INTO ${s}.audit_blocks (chain, first_seq, last_seq, at, entries) SELECT h.chain, $3, $4, $2, $5 FROM h
RETURNING first_seq`;
}

/** Larger than any seq (2^53 - 1), small enough that adding a page size to it stays a bigint. */
const NO_SEQ = Number.MAX_SAFE_INTEGER;

/**
 * The blocks holding a page of a chain, in seq order, and the seq the page starts after (`after_seq`). `$1` chain,
 * `$2` after seq, `$3` since (or NULL), `$4` until (or NULL), `$5` limit. The page starts after the larger of `$2`
 * and the entry before the first block at or after `$3` (at never decreases along a chain, so a time bound is a seq
 * bound). It runs from the first stored entry after that (`next_seq`: the first block left after a prune, or after
 * a gap, starts there) to `next_seq + $5 - 1`: the blocks are the one holding `next_seq` and those starting up to
 * the page's last seq, a range of the primary key at both ends. The driver cuts the page out of them
 * (`readAuditPage`, which reads on from the last block while a page is short).
 */
export function auditListSql(s: string): string {
  return `WITH bound AS (
  SELECT greatest($2::bigint, CASE WHEN $3::timestamptz IS NULL THEN 0 ELSE coalesce(
    (SELECT first_seq - 1 FROM ${s}.audit_blocks WHERE chain = $1 AND at >= $3 ORDER BY at, first_seq LIMIT 1), ${NO_SEQ}) END) AS after_seq
), first AS (
  SELECT b.first_seq, greatest(b.first_seq, bound.after_seq + 1) AS next_seq
  FROM ${s}.audit_blocks b, bound
  WHERE b.chain = $1
    AND b.first_seq >= coalesce((SELECT first_seq FROM ${s}.audit_blocks
      WHERE chain = $1 AND first_seq <= (SELECT after_seq + 1 FROM bound) ORDER BY first_seq DESC LIMIT 1), 0)
    AND b.last_seq > bound.after_seq
  ORDER BY b.first_seq LIMIT 1
)
SELECT b.first_seq, b.last_seq, b.at, b.entries, bound.after_seq
FROM ${s}.audit_blocks b, bound, first
WHERE b.chain = $1 AND b.first_seq >= first.first_seq AND b.first_seq <= first.next_seq + $5 - 1
  AND b.last_seq > bound.after_seq
  AND ($4::timestamptz IS NULL OR b.at < $4)
ORDER BY b.first_seq`;
}

/** The block sealed at a seq (an append checking whether its earlier, unconfirmed batch is there). `$1` chain, `$2` seq. */
export function auditBlockAtSql(s: string): string {
  return `SELECT first_seq, at, entries FROM ${s}.audit_blocks WHERE chain = $1 AND first_seq = $2`;
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
 * The newest block older than `$2`: the last one a prune removes (through the time index, read backwards). `$1`
 * chain, `$2` before.
 */
export function auditPruneLastSql(s: string): string {
  return `SELECT first_seq, last_seq, at, entries FROM ${s}.audit_blocks WHERE chain = $1 AND at < $2 ORDER BY at DESC, first_seq DESC LIMIT 1`;
}

/**
 * Deletes a chain's blocks up to the one starting at `$2` and records `$3`, `$4` (that block's last seq and hash) as
 * pruned; returns the number of entries deleted. Runs after {@link auditHeadLockExistingSql} in the same
 * transaction. `$1` chain, `$2` first seq of the last block deleted, `$3` pruned seq, `$4` pruned hash.
 */
export function auditPruneSql(s: string): string {
  return `WITH d AS (
  DELETE FROM ${s}.audit_blocks WHERE chain = $1 AND first_seq <= $2 RETURNING last_seq - first_seq + 1 AS n
), h AS (
  UPDATE ${s}.audit_heads SET pruned_seq = $3, pruned_hash = $4 WHERE chain = $1 RETURNING 1
)
SELECT (SELECT coalesce(sum(n), 0) FROM d) AS deleted, (SELECT count(*) FROM h) AS moved`;
}

/** Every audit statement, built once per driver. */
export interface PostgresAuditStatements {
  headLock: string;
  append: string;
  headRead: string;
  appendIfHead: string;
  blockAt: string;
  list: string;
  headGet: string;
  headLockExisting: string;
  pruneLast: string;
  prune: string;
}

/** Builds the audit statements for a schema already checked by `validateSchemaName`. */
export function buildPostgresAuditStatements(schema: string): PostgresAuditStatements {
  const s = quoteIdentifier(schema);
  return {
    headLock: auditHeadLockSql(s),
    append: auditAppendSql(s),
    headRead: auditHeadReadSql(s),
    appendIfHead: auditAppendIfHeadSql(s),
    blockAt: auditBlockAtSql(s),
    list: auditListSql(s),
    headGet: auditHeadGetSql(s),
    headLockExisting: auditHeadLockExistingSql(s),
    pruneLast: auditPruneLastSql(s),
    prune: auditPruneSql(s),
  };
}
