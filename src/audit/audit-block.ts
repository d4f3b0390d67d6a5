/**
 * Reading the audit trail's storage unit back. Both drivers store each append batch as one row of `audit_blocks`
 * (migration `0013_audit_blocks`): the chain, the batch's first and last seq, its time, and its entries as one
 * JSON array of rows (written by `sealBatch` in `audit-hash.ts`, fields in {@link AUDIT_ROW_FIELDS} order; chain and
 * time are the block's). One row per batch instead of one per entry: an append then costs the database one row and
 * two index entries whatever the batch size, and PostgreSQL compresses the text.
 *
 * Nothing here trusts the stored text: the hash chain is what tells whether it was changed. So a row that cannot be
 * read as an entry (edited into another shape, or a block that is no longer JSON) is returned as an entry at its
 * place in the block with empty `hash` and the unreadable text in `data.unparsable`, which `verify` reports as a
 * changed entry at that seq instead of failing on it.
 * @module
 */
import type { AuditBatchRef, AuditEntry, AuditStoredEntry, AuditSubjectKind } from '../driver/audit-params.js';
import { AUDIT_ROW_FIELDS } from './audit-hash.js';

/** A stored block as the drivers read it. */
export interface AuditBlockRow {
  /** The seq of the block's first entry (the `first_seq` column). */
  firstSeq: number;
  /** The block's time (the `at` column): every entry's `at`. */
  at: Date;
  /** The stored JSON array of entry rows. */
  entries: string;
}

const isText = (v: unknown): v is string => typeof v === 'string';
const isOptionalText = (v: unknown): v is string | null => v === null || typeof v === 'string';

/** Whether `row` is a stored entry row: {@link AUDIT_ROW_FIELDS}, each of its type. */
function isEntryRow(row: unknown): row is [number, string, string, string, string, string | null, string | null, string | null, string | null, string | null, Record<string, unknown> | null, string, string] {
  if (!Array.isArray(row) || row.length !== AUDIT_ROW_FIELDS.length) return false;
  const [seq, actor, action, subjectKind, subjectId, jobName, queue, before, after, reason, data, prevHash, hash] = row as unknown[];
  return Number.isSafeInteger(seq) && isText(actor) && isText(action) && isText(subjectKind) && isText(subjectId) && isOptionalText(jobName)
    && isOptionalText(queue) && isOptionalText(before) && isOptionalText(after) && isOptionalText(reason)
    && (data === null || (typeof data === 'object' && !Array.isArray(data))) && isText(prevHash) && isText(hash);
}

/** An entry that could not be read: at its place in the block, hash empty, so verify reports it as changed. */
function unreadable(chain: string, seq: number, at: Date, raw: unknown): AuditEntry {
  const prevHash = Array.isArray(raw) && typeof raw[11] === 'string' ? raw[11] : '';
  return {
    chain, seq, at, actor: '', action: '', subjectKind: 'job', subjectId: '', jobName: null, queue: null, before: null, after: null, reason: null,
    data: { unparsable: typeof raw === 'string' ? raw : JSON.stringify(raw) }, prevHash, hash: '',
  };
}

/** The entries of one stored block of chain `chain`, in the order stored. */
export function decodeAuditBlock(chain: string, block: AuditBlockRow): AuditEntry[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(block.entries);
  } catch {
    return [unreadable(chain, block.firstSeq, block.at, block.entries)];
  }
  if (!Array.isArray(parsed)) return [unreadable(chain, block.firstSeq, block.at, block.entries)];
  return parsed.map((row: unknown, i): AuditEntry => {
    if (!isEntryRow(row)) return unreadable(chain, block.firstSeq + i, block.at, row);
    const [seq, actor, action, subjectKind, subjectId, jobName, queue, before, after, reason, data, prevHash, hash] = row;
    return { chain, seq, at: new Date(block.at.getTime()), actor, action, subjectKind: subjectKind as AuditSubjectKind, subjectId, jobName, queue, before, after, reason, data, prevHash, hash };
  });
}

/** What a driver's list statement returns: the blocks it found, and the seq the page starts after. */
export interface AuditBlockBatch {
  /** In `first_seq` order; each with its `last_seq` column. */
  blocks: (AuditBlockRow & { lastSeq: number })[];
  /** The seq the page starts after: the caller's, or later when a time bound moved it. */
  startsAfter: number;
}

/**
 * A page of a chain: the entries after `afterSeq`, in seq order, at most `limit`, read through `fetch` (a driver's
 * list statement: the blocks holding `limit` entries from the first seq after the one given, assuming no gaps).
 * Fetches again from the last block's end while the page is short and blocks keep coming, so entries missing from
 * a block (deleted from its text) shorten no page: `verify` then sees the gap itself instead of an early end.
 * Sorted by seq rather than trusted to be in order, so an edit that moved entries around inside a block changes
 * nothing but what their own hashes show.
 */
export async function readAuditPage(chain: string, afterSeq: number, limit: number, fetch: (afterSeq: number, limit: number) => Promise<AuditBlockBatch>): Promise<AuditEntry[]> {
  const out: AuditEntry[] = [];
  let after = afterSeq;
  while (out.length < limit) {
    const { blocks, startsAfter } = await fetch(after, limit - out.length);
    if (blocks.length === 0) break;
    for (const block of blocks) for (const e of decodeAuditBlock(chain, block)) if (e.seq > startsAfter) out.push(e);
    after = Math.max(startsAfter, blocks[blocks.length - 1]!.lastSeq);
  }
  for (let i = 1; i < out.length; i++) {
    if (out[i - 1]!.seq > out[i]!.seq) {
      out.sort((a, b) => a.seq - b.seq);
      break;
    }
  }
  return out.length > limit ? out.slice(0, limit) : out;
}

/**
 * Where a prune that removes blocks up to `block` leaves the chain: the seq of that block's last entry
 * (`lastSeq`, the row's `last_seq`) and that entry's hash, which the next kept entry's `prevHash` must equal. An
 * unreadable last entry gives an empty hash, so `verify` reports the kept chain as not following the pruned part.
 */
export function prunedEnd(chain: string, block: AuditBlockRow, lastSeq: number): { seq: number; hash: string } {
  const last = decodeAuditBlock(chain, block).find((e) => e.seq === lastSeq);
  return { seq: lastSeq, hash: last?.hash ?? '' };
}

/**
 * Which of the batches a retry names (`retryOf`: earlier attempts sealed at one first seq, at most one of them
 * written) is in the chain, given the stored block starting at that seq (undefined when there is none): the one
 * whose `lastHash` is that block's last entry's hash, returned as the block's entries; null when none is. A block
 * there with another last hash is another append's, which took those seqs because none of them was written.
 * (Callers skip the read while the head is below that seq: no block can start there yet.)
 */
export function retriedBatch(chain: string, block: AuditBlockRow | undefined, retryOf: readonly AuditBatchRef[]): AuditEntry[] | null {
  if (block === undefined || !retryOf.some((b) => b.firstSeq === block.firstSeq)) return null;
  const entries = decodeAuditBlock(chain, block);
  const last = entries.at(-1)?.hash;
  return retryOf.some((b) => b.firstSeq === block.firstSeq && b.lastHash === last) ? entries : null;
}

/**
 * The entries of the blocks a page of `auditList` reads, as stored, each with where: what a driver returns for
 * `auditList({ located: true })`, given its list statement as `fetch` (the same one `readAuditPage` reads through).
 * Fetches the same blocks a page reads (reading on from the last block while fewer than `limit` entries after the
 * page's start were found), but keeps every entry of them, in the order stored: not sorted, filtered by seq or cut.
 */
export async function readAuditBlocksAsStored(chain: string, afterSeq: number, limit: number, fetch: (afterSeq: number, limit: number) => Promise<AuditBlockBatch>): Promise<AuditStoredEntry[]> {
  const out: AuditStoredEntry[] = [];
  let after = afterSeq;
  let listed = 0;
  while (listed < limit) {
    const { blocks, startsAfter } = await fetch(after, limit - listed);
    if (blocks.length === 0) break;
    for (const block of blocks) {
      const entries = decodeAuditBlock(chain, block);
      const array = isJsonArray(block.entries);
      entries.forEach((e, i) => {
        out.push({ ...e, stored: { firstSeq: block.firstSeq, lastSeq: block.lastSeq, row: array ? i + 1 : null, rows: array ? entries.length : 0 } });
        if (e.seq > startsAfter) listed += 1;
      });
    }
    after = Math.max(startsAfter, blocks[blocks.length - 1]!.lastSeq);
  }
  return out;
}

function isJsonArray(text: string): boolean {
  try {
    return Array.isArray(JSON.parse(text));
  } catch {
    return false;
  }
}
