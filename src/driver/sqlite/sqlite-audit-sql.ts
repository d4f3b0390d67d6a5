/**
 * The SQL of the SQLite driver's audit trail (`sqlite-audit.ts`), and nothing else. Same conventions as
 * `sqlite-sql.ts`: named parameters only, times as integer ms. Every write runs inside the driver's
 * `BEGIN IMMEDIATE`, which holds the file's write lock: that is what serializes the appends of one chain across
 * processes, so the head read and the entries written cannot interleave with another append.
 * @module
 */
import { NOW } from './sqlite-sql.js';

/** The head row of a chain, or none. Params: `@chain`. */
export const AUDIT_HEAD_GET = `SELECT chain, seq, hash, at, pruned_seq, pruned_hash FROM audit_heads WHERE chain = @chain`;

/**
 * The time of an append: `@now` or the database clock, never earlier than the chain's last entry (a clock stepped
 * back must not make `at` go backwards along the chain). Params: `@now, @lastAt` (ms or NULL).
 */
export const AUDIT_APPEND_TIME = `SELECT max(${NOW}, coalesce(@lastAt, 0)) AS at`;

/** The block sealed at a seq (an append checking whether its earlier, unconfirmed batch is there). */
export const AUDIT_BLOCK_AT = `SELECT first_seq, at, entries FROM audit_blocks WHERE chain = @chain AND first_seq = @seq`;

/**
 * A sealed batch as one block: its entries (`SealedBatch.block`), all of chain `@chain` at time `@at`, seq `@firstSeq`
 * to `@lastSeq`. One row per batch: the per-row and per-index-entry costs were most of an append.
 * Params: `@chain, @firstSeq, @lastSeq, @at, @entries`.
 */
export const AUDIT_BLOCK_INSERT = `
INSERT INTO audit_blocks (chain, first_seq, last_seq, at, entries) VALUES (@chain, @firstSeq, @lastSeq, @at, @entries)`;

/** Moves (or creates) the chain's head to its new last entry. Params: `@chain, @seq, @hash, @at`. */
export const AUDIT_HEAD_SET = `
INSERT INTO audit_heads (chain, seq, hash, at) VALUES (@chain, @seq, @hash, @at)
ON CONFLICT (chain) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, at = excluded.at`;

/** Larger than any seq or time: the bound of an empty range. */
const NO_SEQ = Number.MAX_SAFE_INTEGER;

/**
 * The blocks holding a page of a chain, in seq order, and the seq the page starts after (`after_seq`). The page
 * starts after the larger of `@afterSeq` and the entry before the first block at or after `@since` (NULL: no bound;
 * at never decreases along a chain, so a time bound is a seq bound). It runs from the first stored entry after that
 * (`next_seq`: the first block left after a prune, or after a gap, starts there) to `next_seq + @limit - 1`: the
 * blocks are the one holding `next_seq` and those starting up to the page's last seq, a range of the primary key at
 * both ends. The driver cuts the page out of them (`readAuditPage`, which reads on from the last block while a page
 * is short). `@until` is always bound (the largest integer when unset), so one prepared statement serves every call.
 * Params: `@chain, @afterSeq, @since, @until, @limit`.
 */
export const AUDIT_LIST = `
WITH bound AS (
  SELECT max(@afterSeq, CASE WHEN @since IS NULL THEN 0 ELSE coalesce(
    (SELECT first_seq - 1 FROM audit_blocks WHERE chain = @chain AND at >= @since ORDER BY at, first_seq LIMIT 1), ${NO_SEQ}) END) AS after_seq
), first AS (
  SELECT b.first_seq, max(b.first_seq, bound.after_seq + 1) AS next_seq
  FROM audit_blocks b, bound
  WHERE b.chain = @chain
    AND b.first_seq >= coalesce((SELECT first_seq FROM audit_blocks
      WHERE chain = @chain AND first_seq <= (SELECT after_seq + 1 FROM bound) ORDER BY first_seq DESC LIMIT 1), 0)
    AND b.last_seq > bound.after_seq
  ORDER BY b.first_seq LIMIT 1
)
SELECT b.first_seq, b.last_seq, b.at, b.entries, bound.after_seq
FROM audit_blocks b, bound, first
WHERE b.chain = @chain AND b.first_seq >= first.first_seq AND b.first_seq <= first.next_seq + @limit - 1
  AND b.last_seq > bound.after_seq
  AND b.at < @until
ORDER BY b.first_seq`;

/** The newest block older than `@before`: the last one a prune removes. Params: `@chain, @before`. */
export const AUDIT_PRUNE_LAST = `
SELECT first_seq, last_seq, at, entries FROM audit_blocks WHERE chain = @chain AND at < @before ORDER BY at DESC, first_seq DESC LIMIT 1`;

/** Removes a chain's blocks up to the one starting at `@firstSeq`; returns each one's entry count. Params: `@chain, @firstSeq`. */
export const AUDIT_PRUNE_DELETE = `DELETE FROM audit_blocks WHERE chain = @chain AND first_seq <= @firstSeq RETURNING last_seq - first_seq + 1 AS n`;

/** Records how far a chain was pruned. Params: `@chain, @seq, @hash`. */
export const AUDIT_HEAD_PRUNED = `UPDATE audit_heads SET pruned_seq = @seq, pruned_hash = @hash WHERE chain = @chain`;
