/**
 * An audit chain's break and the stored entries it is about. The walk (`audit-verify.ts`) reads the chain in seq
 * order, where an entry whose seq was edited sorts beside the entry whose seq it claims, not where it is stored; so
 * once it has found its break, {@link nameStored} reads the blocks around it again as stored
 * (`auditList({ located: true })`) and names the stored entries involved: the block and row of each, and which one
 * the chain says is the original (the entry whose hash matches it as that seq after the entry before, and which the
 * next entry follows). A driver that cannot say where entries are stored gets the break without them.
 * @module
 */
import { MAX_AUDIT_PAGE, type AuditEntry, type AuditHead, type AuditStoredEntry } from '../driver/audit-params.js';
import type { Driver } from '../driver/driver.js';
import { entryHash, GENESIS_HASH } from './audit-hash.js';

/** How a chain is broken. */
export type AuditBreakKind = 'hash-mismatch' | 'prev-hash-mismatch' | 'missing' | 'unexpected-entry' | 'truncated' | 'head-mismatch';

/** Where a stored entry a break names is, and which entry of the chain its hash says it is. */
export interface AuditEntryLocation {
  /** The `audit_blocks` row holding it: its `first_seq` and `last_seq` columns (the primary key is `(chain, first_seq)`). */
  block: { firstSeq: number; lastSeq: number };
  /** Its place in that block's `entries` array, from 1 (its JSON index is `row - 1`); null when the block's text is not a JSON array. */
  row: number | null;
  /** The seq it claims: its stored `seq` (for stored text that is not an entry, the seq of its place). */
  claimedSeq: number;
  /**
   * The seq its hash matches it as, over its stored previous hash: `claimedSeq` when that was not edited, the seq it
   * was sealed with when it was; null when it matches as none (its content was changed, or it is not an entry).
   */
  sealedSeq: number | null;
}

/** The first break found. */
export interface AuditBreak {
  /** The seq of the first entry that is not as it should be (for `missing` and `truncated`: the absent seq). */
  seq: number;
  kind: AuditBreakKind;
  /** One line for people. */
  message: string;
  /**
   * What was expected there (a hash or a seq), when it applies. For a seq claimed twice (`unexpected-entry`): the
   * entry of the chain with that seq, and where it is stored.
   */
  expected: string | null;
  /** What was found, when it applies. For a seq claimed twice: the extra entry, where it is stored and what it is. */
  actual: string | null;
  /**
   * Where the stored entry that was tampered with is: the one changed, moved to another seq, inserted, or the extra
   * one of two claiming `seq`. Null when there is no such stored entry (a deleted entry, a truncated tail), or the
   * driver cannot say where entries are stored.
   */
  stored: AuditEntryLocation | null;
  /**
   * Where entry `seq` of the chain itself is, when it is stored and is not `stored`: the original beside an extra
   * entry claiming its seq (`unexpected-entry`), or the entry found elsewhere claiming another seq. Null otherwise.
   */
  original: AuditEntryLocation | null;
}

/** The entry's hash; a row whose content has no canonical form (edited to hold a fraction) gets none. */
export function hashOf(e: AuditEntry): string {
  try {
    return entryHash(e.prevHash, e);
  } catch {
    return '(content has no canonical form)';
  }
}

/** A break with nothing stored named yet ({@link nameStored} adds that). */
export function brk(seq: number, kind: AuditBreakKind, message: string, expected: string | null = null, actual: string | null = null): AuditBreak {
  return { seq, kind, message, expected, actual, stored: null, original: null };
}

/** What entry `seq` follows, in words: the entry before it, or the start of the chain, or the pruned prefix. */
export function previousOf(seq: number, firstSeq: number): string {
  if (seq !== firstSeq) return `entry ${seq - 1}`;
  return firstSeq === 1 ? 'the start of the chain' : 'the pruned prefix';
}

/** What the walk knew where it broke. */
export interface Walk {
  driver: Pick<Driver, 'auditList'>;
  chain: string;
  storedHead: AuditHead | null;
  firstSeq: number;
  pageSize: number;
  /** The page the walk broke in: where it started and what it listed (null past the last page). */
  afterSeq: number;
  page: AuditEntry[] | null;
  /** The index in `page` of the entry the walk broke at. */
  index: number;
  /** The seq the walk expected next, and the previous hash it expected that entry to have. */
  expectedSeq: number;
  expectedPrev: string;
}

/** Stored entries read for naming, in storage order; each block once. */
interface Rows {
  list: AuditStoredEntry[];
  /** False once the driver answered a located read with entries that do not say where they are stored. */
  readonly located: boolean;
  /** Adds the blocks a located `auditList` from `afterSeq` reads. */
  read(afterSeq: number, limit: number): Promise<void>;
}

function rowsOf(driver: Pick<Driver, 'auditList'>, chain: string): Rows {
  const list: AuditStoredEntry[] = [];
  const blocks = new Set<number>();
  let located = true;
  return {
    list,
    get located() {
      return located;
    },
    async read(afterSeq, limit) {
      const read = await driver.auditList({ chain, afterSeq: Math.max(0, afterSeq), limit: Math.min(Math.max(1, limit), MAX_AUDIT_PAGE), located: true });
      // A driver that does not know `located` lists a page as usual.
      if (read.length > 0 && !read.some(isStored)) located = false;
      const fresh = read.filter((e): e is AuditStoredEntry => isStored(e) && !blocks.has(e.stored.firstSeq));
      for (const e of fresh) blocks.add(e.stored.firstSeq);
      list.push(...fresh);
      list.sort((a, b) => a.stored.firstSeq - b.stored.firstSeq || (a.stored.row ?? 0) - (b.stored.row ?? 0));
    },
  };
}

function isStored(e: AuditEntry): e is AuditStoredEntry {
  const at = (e as Partial<AuditStoredEntry>).stored;
  return typeof at === 'object' && at !== null && Number.isSafeInteger(at.firstSeq);
}

/** An entry's stored fields as one string: equal for two reads of one stored entry, and for a copy of it. */
function keyOf(e: AuditEntry): string {
  return JSON.stringify([e.seq, e.actor, e.action, e.subjectKind, e.subjectId, e.jobName, e.queue, e.before, e.after, e.reason, e.data, e.prevHash, e.hash, e.at.getTime()]);
}

/**
 * The stored entry that `page[index]` was read from. A page lists the entries of its blocks in storage order, sorted
 * by seq (keeping that order among equal seqs), so the n-th entry of the page with these fields is the n-th such
 * stored entry.
 */
function storedOf(page: AuditEntry[], index: number, rows: AuditStoredEntry[]): AuditStoredEntry | undefined {
  const key = keyOf(page[index]!);
  let n = 0;
  for (let j = 0; j < index; j++) if (keyOf(page[j]!) === key) n += 1;
  return rows.filter((r) => keyOf(r) === key)[n];
}

/** `e`'s hash recomputed as if it claimed `seq` (and, if given, had `prevHash`). */
function hashAs(e: AuditEntry, seq: number, prevHash = e.prevHash): string {
  return hashOf({ ...e, seq, prevHash });
}

/** Whether `e` is entry `seq` of the chain as sealed after an entry whose hash is `prevHash`, whatever seq it claims. */
function isEntryAt(e: AuditEntry, seq: number, prevHash: string): boolean {
  return e.hash !== '' && e.prevHash === prevHash && hashAs(e, seq) === e.hash;
}

/**
 * The seq `e`'s hash matches it as, over its stored previous hash: the one it claims, or one its place suggests (its
 * row counted from its block's first seq, or back from its last), or the one after the entry its previous hash names.
 */
function sealedSeqOf(e: AuditStoredEntry, rows: AuditStoredEntry[], head: AuditHead | null): number | null {
  if (e.hash === '') return null;
  const { firstSeq, lastSeq, row, rows: count } = e.stored;
  const candidates = [e.seq];
  if (row !== null) candidates.push(firstSeq + row - 1, lastSeq - (count - row));
  const before = rows.find((r) => r !== e && r.hash === e.prevHash);
  if (before) candidates.push(before.seq + 1);
  if (e.prevHash === GENESIS_HASH) candidates.push(1);
  if (head && head.prunedSeq > 0 && e.prevHash === head.prunedHash) candidates.push(head.prunedSeq + 1);
  return candidates.find((seq) => Number.isSafeInteger(seq) && seq >= 1 && hashAs(e, seq) === e.hash) ?? null;
}

function locationOf(e: AuditStoredEntry, rows: AuditStoredEntry[], head: AuditHead | null): AuditEntryLocation {
  return { block: { firstSeq: e.stored.firstSeq, lastSeq: e.stored.lastSeq }, row: e.stored.row, claimedSeq: e.seq, sealedSeq: sealedSeqOf(e, rows, head) };
}

/** Where `e` is stored, in words: `block 1-8, row 6`. */
function where(e: AuditStoredEntry): string {
  const block = `block ${e.stored.firstSeq}-${e.stored.lastSeq}`;
  return e.stored.row === null ? `${block}, whose text is not a JSON array of entries` : `${block}, row ${e.stored.row}`;
}

/**
 * In words, where absent entry `seq` should be: the block whose seqs include it and how many entries that holds, or
 * that no block's seqs do (the block was deleted, or the tail).
 */
function absentFrom(seq: number, rows: AuditStoredEntry[]): string {
  const block = rows.find((r) => r.stored.firstSeq <= seq && seq <= r.stored.lastSeq)?.stored;
  if (!block) return `no stored block's seqs include ${seq}`;
  const seqs = block.lastSeq - block.firstSeq + 1;
  const holds = block.row === null ? 'its text is not a JSON array of entries' : `it holds ${block.rows} entr${block.rows === 1 ? 'y' : 'ies'} for its ${seqs} seq${seqs === 1 ? '' : 's'}`;
  return `block ${block.firstSeq}-${block.lastSeq}, whose seqs include ${seq}, holds no entry ${seq} (${holds})`;
}

/**
 * `found` with the stored entries it is about named (`stored`, `original`, and in words in `message`, or for a seq
 * claimed twice in `expected` and `actual`), read again as stored from the blocks the walk read them from.
 */
export async function nameStored(found: AuditBreak, walk: Walk): Promise<AuditBreak> {
  const rows = rowsOf(walk.driver, walk.chain);
  const { page, index, expectedSeq: n, expectedPrev, storedHead: head } = walk;
  const location = (e: AuditStoredEntry) => locationOf(e, rows.list, head);

  if (page === null) {
    // Past the last page: the chain ends early (truncated), or goes on past its head row (head-mismatch).
    // From the entry before: a block's entries past its `last_seq` are read with the block that holds that entry.
    await rows.read(found.seq - 2, 3);
    if (!rows.located) return found;
    if (found.kind === 'truncated') return { ...found, message: `${found.message}; ${absentFrom(found.seq, rows.list)}` };
    // Entries past the head row: appended without moving it, or the head row was moved back; which, the chain cannot
    // tell, so the entry is named but not blamed.
    const beyond = rows.list.find((r) => r.seq === found.seq);
    return beyond ? { ...found, message: `${found.message} (entry ${found.seq}: ${where(beyond)})` } : found;
  }

  await rows.read(walk.afterSeq, walk.pageSize);
  // The blocks holding the entries around the break, which the page may not have read (a break at its start).
  await rows.read(found.seq - 2, 3);
  if (!rows.located) return found;
  const list = rows.list;
  const e = storedOf(page, index, list);
  if (found.kind === 'missing') {
    // The entry the walk expected, sealed after the one before, may be stored claiming another seq.
    const entry = list.find((r) => isEntryAt(r, n, expectedPrev));
    if (entry) {
      return { ...found, message: `${found.message}; entry ${n} is stored (${where(entry)}) but claims seq ${entry.seq}: its seq was edited`, stored: location(entry) };
    }
    return { ...found, message: `${found.message}${e ? ` (${where(e)})` : ''}; ${absentFrom(n, list)}` };
  }
  if (!e) return found;

  if (found.kind === 'unexpected-entry' && found.seq < walk.firstSeq) {
    return { ...found, message: `${found.message} (${where(e)})`, stored: location(e) };
  }
  if (found.kind === 'unexpected-entry') return nameSecondClaim(found, walk, e, list, location);

  const seq = found.seq;
  const other = list.find((r) => r !== e && isEntryAt(r, seq, expectedPrev));
  const elsewhere = other ? `entry ${seq} itself is stored (${where(other)})${other.seq !== seq ? `, claiming seq ${other.seq}` : ''}` : null;
  const named = { stored: location(e), original: other ? location(other) : null };
  if (found.kind === 'hash-mismatch') {
    const what = e.hash === '' ? `${where(e)}, which is no longer an entry` : where(e);
    return { ...found, ...named, message: `${found.message} (${what})${elsewhere ? `; ${elsewhere}, so this one was inserted or changed` : ''}` };
  }
  if (found.kind === 'head-mismatch') return { ...found, ...named, message: `${found.message} (${where(e)})` };

  // prev-hash-mismatch: what the entry claiming `seq` is, by its hash.
  const follows = `entry ${seq} does not follow ${previousOf(seq, walk.firstSeq)}`;
  const sealed = named.stored.sealedSeq;
  let why: string;
  if (e.stored.row === null) {
    why = `${where(e)}, so none of its entries can be read`;
  } else if (e.hash === '') {
    why = `${where(e)} is no longer an entry`;
  } else if (hashAs(e, seq, expectedPrev) === e.hash) {
    const fits = seq !== walk.firstSeq ? `entry ${seq - 1}'s hash` : walk.firstSeq === 1 ? 'the start of the chain (64 zeros)' : "the head row's pruned hash";
    why = `its previous hash was edited (${where(e)}): with ${fits} in its place, its content matches its hash`;
  } else if (sealed !== null && sealed !== seq) {
    why = `the entry claiming seq ${seq} (${where(e)}) is entry ${sealed} with its seq edited: its hash matches it as seq ${sealed}`;
    if (!other) why += `; no stored entry is entry ${seq}`;
  } else if (sealed === seq) {
    why = `its previous hash differs while its content matches its hash (${where(e)}): `;
    if (seq !== walk.firstSeq) {
      const before = list.find((r) => r.seq === seq - 1 && r.hash === expectedPrev);
      why += `entry ${seq - 1}${before ? ` (${where(before)})` : ''} was changed and its hash recomputed, or this entry's previous hash was changed and its hash recomputed`;
    } else {
      why += walk.firstSeq === 1 ? 'its previous hash was changed and its hash recomputed' : "the head row's pruned hash was changed, or this entry's previous hash was changed and its hash recomputed";
    }
  } else {
    why = `its previous hash differs and its content does not match its hash either (${where(e)})`;
  }
  return { ...found, ...named, message: `${follows}: ${why}${elsewhere && e.stored.row !== null ? `; ${elsewhere}` : ''}` };
}

/**
 * Names the two stored entries claiming one seq: which is entry `seq` of the chain (the original) and what the other
 * is. The chain decides: the original's hash matches it as that seq after the entry before, and the next entry
 * follows it (names its hash); failing that, the one whose place in its block is that seq's. Two identical entries
 * are the same entry stored twice, and only their places can tell which is the copy.
 */
function nameSecondClaim(found: AuditBreak, walk: Walk, e: AuditStoredEntry, rows: AuditStoredEntry[], location: (e: AuditStoredEntry) => AuditEntryLocation): AuditBreak {
  const page = walk.page!;
  const seq = found.seq;
  const firstIndex = page.findIndex((p) => p.seq === seq);
  const first = storedOf(page, firstIndex, rows);
  if (!first) return found;
  // The first claimant passed the walk's checks, so its previous hash is the hash of the entry before.
  const prevHash = page[firstIndex]!.prevHash;
  const followed = (x: AuditStoredEntry) => x.hash !== '' && rows.some((r) => r !== x && r.prevHash === x.hash);
  const inPlace = (x: AuditStoredEntry) => x.stored.row !== null && (x.stored.firstSeq + x.stored.row - 1 === seq || x.stored.lastSeq - (x.stored.rows - x.stored.row) === seq);
  const score = (x: AuditStoredEntry) => (isEntryAt(x, seq, prevHash) ? 4 : 0) + (followed(x) ? 2 : 0) + (inPlace(x) ? 1 : 0);
  const identical = keyOf(first) === keyOf(e);
  const [original, extra] = score(e) > score(first) ? [e, first] : [first, e];
  const tie = score(e) === score(first);
  const extraAt = location(extra);
  const why = [isEntryAt(original, seq, prevHash) ? `its hash matches it as seq ${seq} after ${previousOf(seq, walk.firstSeq)}` : null, followed(original) ? `entry ${seq + 1} follows it` : null]
    .filter((s) => s !== null).join(', and ');
  let what: string;
  if (identical) {
    what = tie ? `identical to it: the same entry stored twice, and either may be the copy` : 'a copy of it';
  } else if (extraAt.sealedSeq !== null && extraAt.sealedSeq !== seq) {
    what = `entry ${extraAt.sealedSeq} with its seq edited to ${seq} (its hash matches it as seq ${extraAt.sealedSeq})`;
  } else if (extraAt.sealedSeq === seq) {
    what = `an inserted entry: its hash matches it as seq ${seq}, but ${followed(original) ? `entry ${seq + 1} follows the other` : 'it is not in its place'}`;
  } else {
    what = `an inserted or changed entry: its hash matches it as no seq`;
  }
  return {
    ...found,
    expected: `entry ${seq} as sealed: ${where(original)}${why ? ` (${why})` : ''}`,
    actual: `${where(extra)}: ${what}`,
    stored: extraAt,
    original: location(original),
  };
}
