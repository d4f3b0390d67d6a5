/**
 * Parameter and row types of the audit-trail methods of {@link Driver} (`auditAppend`, `auditList`, `auditHead`,
 * `auditPrune`). The hash chain itself is defined in `src/audit/audit-hash.ts`; drivers call its `sealBatch`
 * inside their append transaction, once they hold the chain's head row. See docs/audit.md.
 * @module
 */
import { InvalidOptionError } from '../errors.js';
import { integerInRange } from '../validation/integer-in-range.js';
import type { Driver } from './driver.js';

/** What the subject of an audit entry is (`chain`: the trail itself, e.g. a prune). */
export type AuditSubjectKind = 'job' | 'queue' | 'schedule' | 'chain';

/** One entry to append, before the chain gives it a sequence number, a time and a hash. */
export interface AuditEntryInput {
  /** Who did it: an operator (`"cli:alice"`, `"api"`) or this process (`"system:host/123"`, `"worker:…"`). */
  actor: string;
  /** What happened, e.g. `"job.completed"`, `"job.cancelled"`, `"queue.paused"`, `"schedule.missed"`. */
  action: string;
  subjectKind: AuditSubjectKind;
  /** The job id (decimal), queue name, schedule name or chain name. */
  subjectId: string;
  /** The job's name (for schedules: the schedule's job), when known. */
  jobName: string | null;
  /** The queue, when known. */
  queue: string | null;
  /** The state before the change, when known (`"running"`, `"paused"`, …). */
  before: string | null;
  /** The state after the change (`null`: the subject is gone, or not a state change). */
  after: string | null;
  /** The operator's free-text reason, or the system's. */
  reason: string | null;
  /**
   * Details as plain JSON (objects, arrays, strings, integers, booleans, null), already redacted. Stored as given
   * after normalization (see `normalizeAuditValue`). @default null
   */
  data: Record<string, unknown> | null;
}

/** An entry as stored in the chain. */
export interface AuditEntry extends AuditEntryInput {
  chain: string;
  /** 1, 2, 3, … per chain, without gaps. */
  seq: number;
  /** Database time of the append transaction (milliseconds), never earlier than the previous entry's. */
  at: Date;
  /** The previous entry's hash; 64 zeros for the first entry of a chain. */
  prevHash: string;
  /** sha256 (lowercase hex) of `prevHash` followed by the entry's canonical JSON. */
  hash: string;
}

/** The newest entry of a chain, as recorded in the chain-head row; and what was pruned off its start. */
export interface AuditHead {
  chain: string;
  /** The last appended seq (0 for a chain whose head row exists but holds nothing). */
  seq: number;
  /** The last appended entry's hash (64 zeros when none). */
  hash: string;
  /** The last appended entry's time; null when none. */
  at: Date | null;
  /** Entries up to this seq were pruned (0: none). The first kept entry's `prevHash` must equal `prunedHash`. */
  prunedSeq: number;
  /** The hash of entry `prunedSeq` (64 zeros when nothing was pruned). */
  prunedHash: string;
}

export interface AuditAppendParams {
  chain: string;
  /** Appended in this order, in one transaction; all get the same `at`. Never empty in practice; empty is a no-op. */
  entries: AuditEntryInput[];
  /** `null`: the database's clock (production); a Date stands in for it (tests with a fake clock). */
  now: Date | null;
  /**
   * Earlier appends of these entries whose outcome is unknown (each call failed with `AuditAppendUnconfirmedError`,
   * which names where it sealed its batch), all sealed at one first seq: attempts at the same first entries, of as
   * many entries or more or fewer. Each was sealed onto the same head and writes only if the head is still that one,
   * so at most one of them can be in the chain. Checked while the append holds the chain's head: when one of them is
   * in the chain (the block sealed at `firstSeq` ends with its `lastHash`), nothing is written and the call returns
   * that batch as stored, so the caller learns which one and how many entries it holds. Otherwise the entries are
   * appended; once that commits, none of them can be written any more (the head they were sealed onto has moved).
   * A retry whose own reply is lost is one more attempt at that seq, or the first at a later one: the caller names
   * every attempt still in doubt the next time. @default []
   */
  retryOf?: readonly AuditBatchRef[];
}

/** Where an append sealed its batch: its first seq and its last entry's hash. */
export interface AuditBatchRef {
  firstSeq: number;
  lastHash: string;
}

/**
 * The first seq the batches of {@link AuditAppendParams.retryOf} were sealed at; null when there are none.
 * @throws InvalidOptionError when they were sealed at different seqs (attempts at different entries).
 */
export function retriedSeq(retryOf: readonly AuditBatchRef[] | undefined): number | null {
  if (retryOf === undefined || retryOf.length === 0) return null;
  const seq = retryOf[0]!.firstSeq;
  if (retryOf.some((b) => b.firstSeq !== seq)) throw new InvalidOptionError('retryOf', retryOf, 'batches sealed at one first seq');
  return seq;
}

export interface AuditListParams {
  chain: string;
  /** Only entries with `seq > afterSeq`. @default 0 */
  afterSeq?: number;
  /** Only entries with `at >= since`. @default no lower bound */
  since?: Date;
  /** Only entries with `at < until`. @default no upper bound */
  until?: Date;
  /** At most this many, in seq order. 1 to 10,000. */
  limit: number;
  /**
   * Read the page's blocks as stored instead, for `verify` to name the stored entry a break is in: every entry of
   * every block the page is read from, in storage order (blocks by `first_seq`, each block's entries in the order of
   * its array), each with where it is stored ({@link AuditStoredEntry}). Not sorted, not filtered by seq or cut to
   * `limit`, so entries whose seq was edited, copies and unreadable text are all there, where they are. @default false
   */
  located?: boolean;
}

/** Where a stored entry is: its block (the `audit_blocks` row, primary key `(chain, first_seq)`) and its place in it. */
export interface AuditStoredAt {
  /** The block's `first_seq` column. */
  firstSeq: number;
  /** The block's `last_seq` column. */
  lastSeq: number;
  /** The entry's place in the block's `entries` array, from 1 (its JSON index is `row - 1`); null when the block's text is not a JSON array at all. */
  row: number | null;
  /** How many entries the block's array holds (0 when its text is not an array). */
  rows: number;
}

/** An entry as `auditList({ located: true })` returns it: with where it is stored. */
export interface AuditStoredEntry extends AuditEntry {
  stored: AuditStoredAt;
}

export interface AuditPruneParams {
  chain: string;
  /** Deletes the entries with `at < before` (a prefix of the chain, since `at` never decreases along it). */
  before: Date;
  /**
   * The entry that records the prune, built from what it deleted. It is sealed onto the head and appended in the
   * prune's own transaction, under the serialization it already holds (as `auditAppend` seals), so the deletion and
   * its record commit together or not at all: a prune that failed either left everything in place or is recorded,
   * and running it again records what that run deletes. Not called when nothing is deleted. @default none
   */
  record?: (pruned: AuditPruned) => AuditEntryInput;
  /** The time of the recording entry (as `auditAppend`'s `now`): null, the database's clock. @default null */
  now?: Date | null;
}

/** What a prune deleted, for the entry that records it. */
export interface AuditPruned {
  /** Entries deleted. */
  deleted: number;
  /** The last entry deleted: the head's `prunedSeq` and `prunedHash` from now on. */
  prunedSeq: number;
  prunedHash: string;
}

/** The audit methods, as they appear on {@link Driver}. */
export type AuditDriver = Pick<Driver, 'auditAppend' | 'auditList' | 'auditHead' | 'auditPrune'>;

/**
 * Entries read per `auditList` call by `verify`, `entries` and `export` unless told otherwise. As large as the largest
 * append (`audit.maxBatch` is at most 5,000), so a page decodes each stored block at most twice: verifying 200,000
 * entries stored 2,000 an append took 1.5–1.6 s on PostgreSQL in pages of 5,000 against 2.3–2.6 s in pages of 1,000.
 */
export const DEFAULT_AUDIT_PAGE = 5_000;

/** Most entries one `auditList` call returns. */
export const MAX_AUDIT_PAGE = 10_000;

/**
 * Checks an `auditList` limit and returns it as an integer.
 * @throws InvalidOptionError outside 1..{@link MAX_AUDIT_PAGE}.
 */
export function checkAuditListLimit(limit: unknown): number {
  return integerInRange('limit', limit, MAX_AUDIT_PAGE);
}
