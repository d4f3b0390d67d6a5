/**
 * The SQL of the SQLite driver's audit trail (`sqlite-audit.ts`), and nothing else. Same conventions as
 * `sqlite-sql.ts`: named parameters only, times as integer ms. Every write runs inside the driver's
 * `BEGIN IMMEDIATE`, which holds the file's write lock: that is what serializes the appends of one chain across
 * processes, so the head read and the entries written cannot interleave with another append.
 * @module
 */
import { AUDIT_TIME_STRIDE } from '../audit-params.js';
import { NOW } from './sqlite-sql.js';

/** The head row of a chain, or none. Params: `@chain`. */
export const AUDIT_HEAD_GET = `SELECT chain, seq, hash, at, pruned_seq, pruned_hash FROM audit_heads WHERE chain = @chain`;

/**
 * The time of an append: `@now` or the database clock, never earlier than the chain's last entry (a clock stepped
 * back must not make `at` go backwards along the chain). Params: `@now, @lastAt` (ms or NULL).
 */
export const AUDIT_APPEND_TIME = `SELECT max(${NOW}, coalesce(@lastAt, 0)) AS at`;

/**
 * A sealed batch in one statement: `@entries` is a JSON array of `[seq, actor, action, subjectKind, subjectId,
 * jobName, queue, before, after, reason, data, prevHash, hash]` (data as JSON text or null), all of chain `@chain` at
 * time `@at`. One statement per batch instead of one per entry: with the full trail on, three entries per job, the
 * per-statement cost was the largest share of an append. `jsonb_each`: the array is parsed once into SQLite's
 * binary JSON, and the thirteen `->>` of each entry read that instead of re-parsing its text (10.3 → 3.8 µs an
 * entry).
 */
export const AUDIT_ENTRIES_INSERT = `
INSERT INTO audit_entries (chain, seq, at, actor, action, subject_kind, subject_id, job_name, queue, before_state, after_state, reason, data, prev_hash, hash)
SELECT @chain, e.value ->> 0, @at, e.value ->> 1, e.value ->> 2, e.value ->> 3, e.value ->> 4, e.value ->> 5, e.value ->> 6,
       e.value ->> 7, e.value ->> 8, e.value ->> 9, e.value ->> 10, e.value ->> 11, e.value ->> 12
FROM jsonb_each(@entries) AS e`;

/** Moves (or creates) the chain's head to its new last entry. Params: `@chain, @seq, @hash, @at`. */
export const AUDIT_HEAD_SET = `
INSERT INTO audit_heads (chain, seq, hash, at) VALUES (@chain, @seq, @hash, @at)
ON CONFLICT (chain) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, at = excluded.at`;

/** The sparse time index's condition (migration 0012), as its statements must spell it to use the index. */
const STRIDE_TERM = `seq % ${AUDIT_TIME_STRIDE} = 0`;

/**
 * A seq below every entry at or after the time parameter `param`: the last indexed entry (every
 * {@link AUDIT_TIME_STRIDE}th) before that time, or 0. Everything up to it is older, since `at` never decreases.
 */
function seqBefore(param: string): string {
  return `coalesce((SELECT seq FROM audit_entries INDEXED BY audit_entries_time_idx
    WHERE chain = @chain AND ${STRIDE_TERM} AND at < @${param} ORDER BY at DESC, seq DESC LIMIT 1), 0)`;
}

/**
 * A seq above every entry before the time parameter `param`: the first indexed entry at or after that time, or
 * the largest safe integer. Everything from it on is that late or later, since `at` never decreases.
 */
function seqFrom(param: string): string {
  return `coalesce((SELECT seq FROM audit_entries INDEXED BY audit_entries_time_idx
    WHERE chain = @chain AND ${STRIDE_TERM} AND at >= @${param} ORDER BY at, seq LIMIT 1), ${Number.MAX_SAFE_INTEGER})`;
}

/**
 * A page of a chain in seq order. Bounds are always bound (`@since` 0 and `@until` the largest integer when
 * unset), so one prepared statement serves every call. The time bounds become a seq range through the sparse time
 * index (`at` never decreases along a chain), so the primary key reads at most {@link AUDIT_TIME_STRIDE} rows
 * outside the range at each end. Params: `@chain, @afterSeq, @since, @until, @limit`.
 */
export const AUDIT_LIST = `
SELECT * FROM audit_entries
WHERE chain = @chain AND seq > max(@afterSeq, ${seqBefore('since')}) AND seq < ${seqFrom('until')}
  AND at >= @since AND at < @until
ORDER BY seq
LIMIT @limit`;

/**
 * The newest entry older than `@before`: the last one a prune removes, read backwards from the first indexed entry
 * at or after `@before`. Params: `@chain, @before`.
 */
export const AUDIT_PRUNE_LAST = `
SELECT seq, hash FROM audit_entries
WHERE chain = @chain AND seq < ${seqFrom('before')} AND at < @before
ORDER BY seq DESC LIMIT 1`;

/** Removes a chain's entries up to `@seq`. Params: `@chain, @seq`. */
export const AUDIT_PRUNE_DELETE = `DELETE FROM audit_entries WHERE chain = @chain AND seq <= @seq`;

/** Records how far a chain was pruned. Params: `@chain, @seq, @hash`. */
export const AUDIT_HEAD_PRUNED = `UPDATE audit_heads SET pruned_seq = @seq, pruned_hash = @hash WHERE chain = @chain`;
