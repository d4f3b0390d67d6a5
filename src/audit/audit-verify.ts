/**
 * Walking an audit chain and reporting its first break. Reads the chain in pages of seq order (bounded memory,
 * one query per page), so verifying millions of entries is a scan, not a load.
 *
 * What each kind of tampering looks like to the walk:
 * - an edited entry: its recomputed hash differs from its stored hash (`hash-mismatch` at that seq); an edit that
 *   also recomputed the stored hash breaks the next entry's link instead (`prev-hash-mismatch` at the next seq);
 * - a deleted entry: a gap in seq (`missing` at the deleted seq); renumbering the rest to close the gap breaks the
 *   first renumbered entry's link (`prev-hash-mismatch`), or its hash when its previous hash was rewritten too;
 * - an entry whose seq was edited, or a copy: a second entry claiming a seq (`unexpected-entry`), or the seq it left
 *   missing (`missing`) when the two are not read in one page; swapped seqs break a link (`prev-hash-mismatch`);
 * - a truncated tail: the chain ends before the seq its head row records (`truncated`); if the head row was
 *   rewritten as well, only a head exported earlier (`--head <seq>:<hash>`) shows it (`truncated`, or
 *   `head-mismatch` when the chain was rewritten from that point on).
 *
 * Read in seq order, an entry whose seq was edited sorts beside the entry whose seq it claims, not where it is stored.
 * So once the walk has found its break, {@link nameStored} reads the blocks around it again as stored
 * (`auditList({ located: true })`) and names the stored entries involved: the block and row of each, and which one
 * the chain says is the original (the entry whose hash matches it as that seq after the entry before, and which
 * the next entry follows). A driver that cannot say where entries are stored gets the break without them.
 * @module
 */
import { DEFAULT_AUDIT_PAGE, type AuditEntry, type AuditHead } from '../driver/audit-params.js';
import type { Driver } from '../driver/driver.js';
import { InvalidOptionError } from '../errors.js';
import { type AuditBreak, brk, hashOf, nameStored, previousOf } from './audit-break.js';
import { GENESIS_HASH } from './audit-hash.js';

export type { AuditBreak, AuditBreakKind, AuditEntryLocation } from './audit-break.js';

/** A head exported earlier, to check the chain still contains it. */
export interface AuditHeadRef {
  seq: number;
  hash: string;
}

/** What verify found. */
export interface AuditVerifyResult {
  /** True when no break was found. */
  ok: boolean;
  chain: string;
  /** Entries checked. */
  checked: number;
  /** The first seq expected (1, or the one after the pruned prefix). */
  firstSeq: number;
  /** The end of the chain as walked (seq 0 and the genesis hash for an empty chain), up to the first break. */
  end: AuditHeadRef;
  /** The chain's head row; null when it has none. */
  storedHead: AuditHead | null;
  /** The exported head checked against, if any. */
  exportedHead: AuditHeadRef | null;
  /** The first break; null when `ok`. */
  break: AuditBreak | null;
  /** Things that are not breaks but limit what was checked (e.g. an exported head inside the pruned prefix). */
  warnings: string[];
}

/** Options of {@link verifyAuditChain}. */
export interface AuditVerifyOptions {
  chain: string;
  /** A head exported earlier (`warden audit head`): the chain must still contain that entry with that hash. */
  head?: AuditHeadRef | null;
  /** Entries read per query (at least 2). @default 5000 ({@link DEFAULT_AUDIT_PAGE}) */
  pageSize?: number;
}

/**
 * Parses `<seq>:<hash>` as printed by `warden audit head`.
 * @throws InvalidOptionError for anything else.
 */
export function parseAuditHeadRef(text: string, field = 'head'): AuditHeadRef {
  const match = /^\s*(\d{1,15}):([0-9a-fA-F]{64})\s*$/.exec(String(text));
  if (!match) throw new InvalidOptionError(field, text, '<seq>:<sha256 hex>, as printed by `warden audit head`');
  return { seq: Number(match[1]), hash: match[2]!.toLowerCase() };
}

/** Walks a chain from its first kept entry to its end; see the module comment for what each break means. */
export async function verifyAuditChain(driver: Pick<Driver, 'auditList' | 'auditHead'>, options: AuditVerifyOptions): Promise<AuditVerifyResult> {
  const { chain } = options;
  // At least two: a page must be able to list an entry again and still move on (see the end of the walk's loop).
  const pageSize = Math.max(2, options.pageSize ?? DEFAULT_AUDIT_PAGE);
  const exported = options.head ?? null;
  const storedHead = await driver.auditHead({ chain });
  const firstSeq = (storedHead?.prunedSeq ?? 0) + 1;
  const warnings: string[] = [];
  let expectedSeq = firstSeq;
  let expectedPrev = storedHead?.prunedHash ?? GENESIS_HASH;
  let checked = 0;
  const result = (found: AuditBreak | null): AuditVerifyResult => ({
    ok: found === null, chain, checked, firstSeq, end: { seq: expectedSeq - 1, hash: expectedPrev }, storedHead, exportedHead: exported, break: found, warnings,
  });
  if (exported && exported.seq < firstSeq && exported.seq > 0) {
    warnings.push(`the exported head ${exported.seq} lies in the pruned prefix (entries up to ${firstSeq - 1} were pruned) and cannot be checked`);
  }

  // From the very start, so an entry inside the pruned prefix (prune deletes it in the same transaction) is seen.
  let afterSeq = 0;
  // The entries at the end of the last page that this page lists again (see the end of the loop).
  let walked: { seq: number; count: number } | null = null;
  for (;;) {
    const page: AuditEntry[] = await driver.auditList({ chain, afterSeq, limit: pageSize });
    let i = 0;
    if (walked) while (i < page.length && i < walked.count && page[i]!.seq === walked.seq) i += 1;
    const named = (found: AuditBreak) => nameStored(found, { driver, chain, storedHead, firstSeq, pageSize, afterSeq, page, index: i, expectedSeq, expectedPrev });
    for (; i < page.length; i++) {
      const e = page[i]!;
      if (e.seq < firstSeq) {
        return result(await named(brk(e.seq, 'unexpected-entry', `entry ${e.seq} exists although the head row records entries up to ${firstSeq - 1} as pruned`)));
      }
      // A second entry with a seq already seen: an entry's seq was edited, or an entry copied. Pages are read in seq
      // order, so it sorts beside the entry it names, not where it is stored; nameStored says which is which.
      if (e.seq < expectedSeq) {
        return result(await named(brk(e.seq, 'unexpected-entry', `a second entry claims seq ${e.seq}: an entry's seq was edited or an entry was copied`)));
      }
      if (e.seq > expectedSeq) {
        return result(await named(brk(expectedSeq, 'missing', `entry ${expectedSeq} is missing: the next stored entry is ${e.seq}`, String(expectedSeq), String(e.seq))));
      }
      if (e.prevHash !== expectedPrev) {
        return result(await named(brk(e.seq, 'prev-hash-mismatch', `entry ${e.seq} does not follow ${previousOf(e.seq, firstSeq)}: its previous hash differs (an entry was changed, removed or reordered)`, expectedPrev, e.prevHash)));
      }
      const hash = hashOf(e);
      if (hash !== e.hash) {
        return result(await named(brk(e.seq, 'hash-mismatch', `entry ${e.seq} was changed: its content does not match its hash`, hash, e.hash)));
      }
      if (exported && e.seq === exported.seq && e.hash !== exported.hash) {
        return result(await named(brk(e.seq, 'head-mismatch', `entry ${e.seq} differs from the exported head: the chain was rewritten from there on`, exported.hash, e.hash)));
      }
      expectedPrev = e.hash;
      expectedSeq += 1;
      checked += 1;
    }
    if (page.length < pageSize) break;
    // A full page can end between two entries claiming one seq (an entry and its copy, the copy stored later). The
    // next page, listing entries after that seq, would never show the copy. So it lists from that seq again and skips
    // as many entries claiming it as this page walked: one more is the copy. (The walk broke if this page held two
    // entries claiming one seq, so those are fewer than a page, and the next page moves on.)
    const last = page[page.length - 1]!.seq;
    let count = 0;
    while (count < page.length && page[page.length - 1 - count]!.seq === last) count += 1;
    walked = count < page.length ? { seq: last, count } : null;
    afterSeq = walked ? last - 1 : last;
  }

  const endSeq = expectedSeq - 1;
  const atEnd = (found: AuditBreak) => nameStored(found, { driver, chain, storedHead, firstSeq, pageSize, afterSeq, page: null, index: 0, expectedSeq, expectedPrev });
  if (storedHead) {
    if (storedHead.seq > endSeq) {
      return result(await atEnd(brk(endSeq + 1, 'truncated', `the chain ends at entry ${endSeq} but its head row records ${storedHead.seq}: entries ${endSeq + 1}-${storedHead.seq} are missing`, String(storedHead.seq), String(endSeq))));
    }
    if (storedHead.seq < endSeq || storedHead.hash !== expectedPrev) {
      return result(await atEnd(brk(Math.min(storedHead.seq + 1, endSeq), 'head-mismatch', `the chain's end (${endSeq}:${expectedPrev}) differs from its head row (${storedHead.seq}:${storedHead.hash})`, `${storedHead.seq}:${storedHead.hash}`, `${endSeq}:${expectedPrev}`)));
    }
  } else if (endSeq > 0) {
    return result(brk(1, 'head-mismatch', `the chain has ${endSeq} entries but no head row`));
  }
  if (exported && exported.seq > endSeq) {
    return result(await atEnd(brk(endSeq + 1, 'truncated', `the chain ends at entry ${endSeq}, before the exported head ${exported.seq}: the tail was removed`, `${exported.seq}:${exported.hash}`, `${endSeq}:${expectedPrev}`)));
  }
  return result(null);
}
