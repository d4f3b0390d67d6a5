/**
 * Walking an audit chain and reporting its first break. Reads the chain in pages of seq order (bounded memory,
 * one query per page), so verifying millions of entries is a scan, not a load.
 *
 * What each kind of tampering looks like to the walk:
 * - an edited entry: its recomputed hash differs from its stored hash (`hash-mismatch` at that seq); an edit that
 *   also recomputed the stored hash breaks the next entry's link instead (`prev-hash-mismatch` at the next seq);
 * - a deleted entry: a gap in seq (`missing` at the deleted seq); renumbering the rest to close the gap changes
 *   their hashed seq (`hash-mismatch`);
 * - reordered or swapped entries: the link to the previous hash breaks (`prev-hash-mismatch`);
 * - a truncated tail: the chain ends before the seq its head row records (`truncated`); if the head row was
 *   rewritten as well, only a head exported earlier (`--head <seq>:<hash>`) shows it (`truncated`, or
 *   `head-mismatch` when the chain was rewritten from that point on).
 * @module
 */
import { DEFAULT_AUDIT_PAGE, type AuditEntry, type AuditHead } from '../driver/audit-params.js';
import type { Driver } from '../driver/driver.js';
import { InvalidOptionError } from '../errors.js';
import { entryHash, GENESIS_HASH } from './audit-hash.js';

/** How a chain is broken. */
export type AuditBreakKind = 'hash-mismatch' | 'prev-hash-mismatch' | 'missing' | 'unexpected-entry' | 'truncated' | 'head-mismatch';

/** The first break found. */
export interface AuditBreak {
  /** The seq of the first entry that is not as it should be (for `missing` and `truncated`: the absent seq). */
  seq: number;
  kind: AuditBreakKind;
  /** One line for people. */
  message: string;
  /** What was expected there (a hash or a seq), when it applies. */
  expected: string | null;
  /** What was found, when it applies. */
  actual: string | null;
}

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
  /** Entries read per query. @default 5000 ({@link DEFAULT_AUDIT_PAGE}) */
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

/** The entry's hash; a row whose content has no canonical form (edited to hold a fraction) gets none. */
function hashOf(e: AuditEntry): string {
  try {
    return entryHash(e.prevHash, e);
  } catch {
    return '(content has no canonical form)';
  }
}

function brk(seq: number, kind: AuditBreakKind, message: string, expected: string | null = null, actual: string | null = null): AuditBreak {
  return { seq, kind, message, expected, actual };
}

/** Walks a chain from its first kept entry to its end; see the module comment for what each break means. */
export async function verifyAuditChain(driver: Pick<Driver, 'auditList' | 'auditHead'>, options: AuditVerifyOptions): Promise<AuditVerifyResult> {
  const { chain } = options;
  const pageSize = options.pageSize ?? DEFAULT_AUDIT_PAGE;
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
  for (;;) {
    const page: AuditEntry[] = await driver.auditList({ chain, afterSeq, limit: pageSize });
    for (const e of page) {
      if (e.seq < firstSeq) {
        return result(brk(e.seq, 'unexpected-entry', `entry ${e.seq} exists although the head row records entries up to ${firstSeq - 1} as pruned`));
      }
      // A second entry with a seq already seen: an entry's seq was edited, or an entry copied. Pages are read in seq
      // order, so the copy sorts beside the entry it names, not where it is stored: the seq reported is the one it
      // claims.
      if (e.seq < expectedSeq) {
        return result(brk(e.seq, 'unexpected-entry', `a second entry claims seq ${e.seq}: an entry's seq was edited or an entry was copied`));
      }
      if (e.seq > expectedSeq) {
        return result(brk(expectedSeq, 'missing', `entry ${expectedSeq} is missing: the next stored entry is ${e.seq}`, String(expectedSeq), String(e.seq)));
      }
      if (e.prevHash !== expectedPrev) {
        const previous = expectedSeq === firstSeq ? (firstSeq === 1 ? 'the start of the chain' : 'the pruned prefix') : `entry ${expectedSeq - 1}`;
        return result(brk(e.seq, 'prev-hash-mismatch', `entry ${e.seq} does not follow ${previous}: its previous hash differs (an entry was changed, removed or reordered)`, expectedPrev, e.prevHash));
      }
      const hash = hashOf(e);
      if (hash !== e.hash) {
        return result(brk(e.seq, 'hash-mismatch', `entry ${e.seq} was changed: its content does not match its hash`, hash, e.hash));
      }
      if (exported && e.seq === exported.seq && e.hash !== exported.hash) {
        return result(brk(e.seq, 'head-mismatch', `entry ${e.seq} differs from the exported head: the chain was rewritten from there on`, exported.hash, e.hash));
      }
      expectedPrev = e.hash;
      expectedSeq += 1;
      checked += 1;
    }
    if (page.length < pageSize) break;
    afterSeq = page[page.length - 1]!.seq;
  }

  const endSeq = expectedSeq - 1;
  if (storedHead) {
    if (storedHead.seq > endSeq) {
      return result(brk(endSeq + 1, 'truncated', `the chain ends at entry ${endSeq} but its head row records ${storedHead.seq}: entries ${endSeq + 1}-${storedHead.seq} are missing`, String(storedHead.seq), String(endSeq)));
    }
    if (storedHead.seq < endSeq || storedHead.hash !== expectedPrev) {
      return result(brk(Math.min(storedHead.seq + 1, endSeq), 'head-mismatch', `the chain's end (${endSeq}:${expectedPrev}) differs from its head row (${storedHead.seq}:${storedHead.hash})`, `${storedHead.seq}:${storedHead.hash}`, `${endSeq}:${expectedPrev}`));
    }
  } else if (endSeq > 0) {
    return result(brk(1, 'head-mismatch', `the chain has ${endSeq} entries but no head row`));
  }
  if (exported && exported.seq > endSeq) {
    return result(brk(endSeq + 1, 'truncated', `the chain ends at entry ${endSeq}, before the exported head ${exported.seq}: the tail was removed`, `${exported.seq}:${exported.hash}`, `${endSeq}:${expectedPrev}`));
  }
  return result(null);
}
