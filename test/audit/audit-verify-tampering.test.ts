/**
 * `verifyAuditChain` names the stored entry behind each break, on both drivers: each tampering of docs/audit.md's
 * table done with real SQL against `audit_blocks` / `audit_heads` (as someone with database access would), and the
 * exact finding asserted: kind, seq, message, expected/found, and where the tampered entry and the original are
 * stored (block and row) with the seq each claims and the seq its hash matches it as. The chain is three appends of
 * eight entries: blocks 1-8, 9-16 and 17-24. Also the located read verify uses (`auditList({ located: true })`), and
 * a copy that a page boundary used to hide.
 * @module
 */
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { decodeAuditBlock } from '../../src/audit/audit-block.js';
import { entryHash } from '../../src/audit/audit-hash.js';
import { type AuditBreak, type AuditEntryLocation, type AuditVerifyResult, verifyAuditChain } from '../../src/audit/audit-verify.js';
import { verifyLines } from '../../src/cli/commands/audit.js';
import type { AuditEntry, AuditStoredEntry } from '../../src/driver/audit-params.js';
import { auditInput, readChain } from '../conformance/audit.js';
import { overrideDriver } from '../support/override-driver.js';
import { createTestDatabase, DRIVER_KINDS, PG_URL, type TestDatabase } from '../support/test-databases.js';

/** A stored entry row: [seq, actor, action, subjectKind, subjectId, jobName, queue, before, after, reason, data, prevHash, hash]. */
type Row = unknown[];
const SEQ = 0;
const ACTOR = 1;
const PREV = 11;
const HASH = 12;
/** The time of each block: block 1-8 at 1 s, 9-16 at 2 s, 17-24 at 3 s. */
const AT: Record<number, number> = { 1: 1_000, 9: 2_000, 17: 3_000 };

/** A location as verify reports it. */
const loc = (firstSeq: number, lastSeq: number, row: number | null, claimedSeq: number, sealedSeq: number | null): AuditEntryLocation => ({ block: { firstSeq, lastSeq }, row, claimedSeq, sealedSeq });

/** `row` (stored in the block starting at `firstSeq`) with its hash recomputed for `seq`, as a forger would. */
function resealed(row: Row, seq: number, firstSeq: number): Row {
  const [entry] = decodeAuditBlock('default', { firstSeq: seq, at: new Date(AT[firstSeq]!), entries: JSON.stringify([row]) });
  const out = [...row];
  out[HASH] = entryHash(row[PREV] as string, { ...entry!, seq });
  return out;
}

describe.each(DRIVER_KINDS)('audit verify names the tampered entry (%s)', (kind) => {
  let tdb: TestDatabase;
  /** Raw SQL on the test database (`?` placeholders). */
  let sql: (text: string, params?: unknown[]) => Promise<Record<string, unknown>[]>;
  let closeRaw: () => Promise<void>;
  /** Table names as the raw SQL needs them. */
  let blocks: string;
  let heads: string;
  /** The chain as sealed, before any tampering: `chain[seq - 1]`. */
  let chain: AuditEntry[];
  const hash = (seq: number) => chain[seq - 1]!.hash;

  beforeEach(async () => {
    tdb = await createTestDatabase(kind);
    for (const first of [1, 9, 17]) {
      await tdb.driver.auditAppend({ chain: 'default', entries: Array.from({ length: 8 }, (_, i) => auditInput({ subjectId: String(first + i) })), now: new Date(AT[first]!) });
    }
    chain = await readChain(tdb.driver, 'default');
    if (kind === 'sqlite') {
      const db = new Database(tdb.url.slice('sqlite:'.length));
      db.pragma('busy_timeout = 5000');
      sql = async (text, params = []) => {
        const statement = db.prepare(text);
        if (statement.reader) return statement.all(...params) as Record<string, unknown>[];
        statement.run(...params);
        return [];
      };
      closeRaw = async () => void db.close();
      [blocks, heads] = ['audit_blocks', 'audit_heads'];
    } else {
      const client = new pg.Client({ connectionString: PG_URL });
      await client.connect();
      sql = async (text, params = []) => {
        let n = 0;
        return (await client.query(text.replace(/\?/g, () => `$${++n}`), params)).rows as Record<string, unknown>[];
      };
      closeRaw = () => client.end();
      [blocks, heads] = [`"${tdb.schema}".audit_blocks`, `"${tdb.schema}".audit_heads`];
    }
  });
  afterEach(async () => {
    await closeRaw?.();
    await tdb.cleanup();
  });

  /** The parsed entry rows of the block starting at `firstSeq`. */
  async function rowsOf(firstSeq: number): Promise<Row[]> {
    const [block] = await sql(`SELECT entries FROM ${blocks} WHERE chain = 'default' AND first_seq = ?`, [firstSeq]);
    return JSON.parse(block!.entries as string) as Row[];
  }

  /** Writes the block starting at `firstSeq`: rows, or any text. */
  async function put(firstSeq: number, entries: Row[] | string): Promise<void> {
    await sql(`UPDATE ${blocks} SET entries = ? WHERE chain = 'default' AND first_seq = ?`, [typeof entries === 'string' ? entries : JSON.stringify(entries), firstSeq]);
  }

  /** Edits the rows of the block starting at `firstSeq` in place. */
  async function edit(firstSeq: number, change: (rows: Row[]) => void): Promise<void> {
    const rows = await rowsOf(firstSeq);
    change(rows);
    await put(firstSeq, rows);
  }

  const verify = (pageSize?: number): Promise<AuditVerifyResult> => verifyAuditChain(tdb.driver, { chain: 'default', pageSize });

  /** Expects every page size to find `found` after `checked` intact entries. */
  async function expectBreak(checked: number, found: AuditBreak, pageSizes: (number | undefined)[] = [3, 7, undefined]): Promise<void> {
    for (const pageSize of pageSizes) {
      const result = await verify(pageSize);
      expect({ pageSize, ok: result.ok, checked: result.checked, break: result.break }).toEqual({ pageSize, ok: false, checked, break: found });
    }
  }

  it('verifies the untouched chain', async () => {
    for (const pageSize of [2, 3, 8, undefined]) expect((await verify(pageSize)).ok).toBe(true);
  });

  describe('an entry whose seq was edited', () => {
    it.each([
      [6, 5, 'entry 5 as sealed: block 1-8, row 5 (its hash matches it as seq 5 after entry 4, and entry 6 follows it)'],
      [6, 2, 'entry 2 as sealed: block 1-8, row 2 (its hash matches it as seq 2 after entry 1, and entry 3 follows it)'],
      [8, 1, 'entry 1 as sealed: block 1-8, row 1 (its hash matches it as seq 1 after the start of the chain, and entry 2 follows it)'],
    ] as const)('to an earlier one in its block (%i to %i): names the edited entry, what it is, and the original', async (from, to, original) => {
      await edit(1, (rows) => void (rows[from - 1]![SEQ] = to));
      const found: AuditBreak = {
        seq: to, kind: 'unexpected-entry', message: `a second entry claims seq ${to}: an entry's seq was edited or an entry was copied`,
        expected: original, actual: `block 1-8, row ${from}: entry ${from} with its seq edited to ${to} (its hash matches it as seq ${from})`,
        stored: loc(1, 8, from, to, from), original: loc(1, 8, to, to, to),
      };
      await expectBreak(to, found);
      // What an operator reads from `warden audit verify`.
      expect(verifyLines(await verify())).toEqual([
        `audit chain "default": BROKEN at entry ${to} (unexpected-entry)`,
        `  ${found.message}`,
        `  expected: ${found.expected}`,
        `  found:    ${found.actual}`,
        `  intact before it: ${to} entr${to === 1 ? 'y' : 'ies'} (seq 1-${to})`,
      ]);
    });

    it('to an earlier one in another block: the same, when both are read in one page; else missing at its own seq, named', async () => {
      await edit(9, (rows) => void (rows[5]![SEQ] = 3));
      await expectBreak(3, {
        seq: 3, kind: 'unexpected-entry', message: "a second entry claims seq 3: an entry's seq was edited or an entry was copied",
        expected: 'entry 3 as sealed: block 1-8, row 3 (its hash matches it as seq 3 after entry 2, and entry 4 follows it)',
        actual: 'block 9-16, row 6: entry 14 with its seq edited to 3 (its hash matches it as seq 14)',
        stored: loc(9, 16, 6, 3, 14), original: loc(1, 8, 3, 3, 3),
      }, [100, undefined]);
      // In pages of 3, block 9-16 is first read when the walk is past seq 3: the entry is seen missing from its place.
      await expectBreak(13, {
        seq: 14, kind: 'missing', message: 'entry 14 is missing: the next stored entry is 15; entry 14 is stored (block 9-16, row 6) but claims seq 3: its seq was edited',
        expected: '14', actual: '15', stored: loc(9, 16, 6, 3, 14), original: null,
      }, [3]);
    });

    it('to a later one: missing at its own seq, named', async () => {
      await edit(1, (rows) => void (rows[1]![SEQ] = 6));
      await expectBreak(1, {
        seq: 2, kind: 'missing', message: 'entry 2 is missing: the next stored entry is 3; entry 2 is stored (block 1-8, row 2) but claims seq 6: its seq was edited',
        expected: '2', actual: '3', stored: loc(1, 8, 2, 6, 2), original: null,
      });
    });

    it('swapped with the next: the entry claiming the first seq is the other, and the first is named where it is', async () => {
      await edit(9, (rows) => {
        rows[1]![SEQ] = 11;
        rows[2]![SEQ] = 10;
      });
      await expectBreak(9, {
        seq: 10, kind: 'prev-hash-mismatch',
        message: 'entry 10 does not follow entry 9: the entry claiming seq 10 (block 9-16, row 3) is entry 11 with its seq edited: its hash matches it as seq 11; entry 10 itself is stored (block 9-16, row 2), claiming seq 11',
        expected: hash(9), actual: hash(10), stored: loc(9, 16, 3, 10, 11), original: loc(9, 16, 2, 11, 10),
      });
    });

    it('swapped across two blocks: prev-hash-mismatch when one page reads both, else missing; named either way', async () => {
      await edit(1, (rows) => void (rows[7]![SEQ] = 9));
      await edit(9, (rows) => void (rows[0]![SEQ] = 8));
      await expectBreak(7, {
        seq: 8, kind: 'prev-hash-mismatch',
        message: 'entry 8 does not follow entry 7: the entry claiming seq 8 (block 9-16, row 1) is entry 9 with its seq edited: its hash matches it as seq 9; entry 8 itself is stored (block 1-8, row 8), claiming seq 9',
        expected: hash(7), actual: hash(8), stored: loc(9, 16, 1, 8, 9), original: loc(1, 8, 8, 9, 8),
      }, [3, 7, undefined]);
      // In pages of 8, the first page reads block 1-8 alone: entry 8, claiming 9, is not where the walk expects it.
      await expectBreak(7, {
        seq: 8, kind: 'missing', message: 'entry 8 is missing: the next stored entry is 9; entry 8 is stored (block 1-8, row 8) but claims seq 9: its seq was edited',
        expected: '8', actual: '9', stored: loc(1, 8, 8, 9, 8), original: null,
      }, [8]);
    });

    it('after a deletion, renumbering the rest: the first renumbered entry is named as the entry it was', async () => {
      for (const first of [9, 17]) {
        await edit(first, (rows) => {
          if (first === 9) rows.splice(2, 1);
          for (const row of rows) if ((row[SEQ] as number) > 11) row[SEQ] = (row[SEQ] as number) - 1;
        });
      }
      await expectBreak(10, {
        seq: 11, kind: 'prev-hash-mismatch',
        message: 'entry 11 does not follow entry 10: the entry claiming seq 11 (block 9-16, row 3) is entry 12 with its seq edited: its hash matches it as seq 12; no stored entry is entry 11',
        expected: hash(10), actual: hash(11), stored: loc(9, 16, 3, 11, 12), original: null,
      });
      // Its previous hash rewritten to fit as well: seq is hashed, so its content no longer matches.
      await edit(9, (rows) => void (rows[2]![PREV] = hash(10)));
      await expectBreak(10, {
        seq: 11, kind: 'hash-mismatch', message: 'entry 11 was changed: its content does not match its hash (block 9-16, row 3)',
        expected: entryHash(hash(10), { ...chain[11]!, seq: 11 }), actual: hash(12), stored: loc(9, 16, 3, 11, null), original: null,
      });
    });
  });

  describe('an entry edited, deleted or inserted', () => {
    it('content edited: hash-mismatch at its seq, named', async () => {
      await edit(9, (rows) => void (rows[2]![ACTOR] = 'cli:mallory'));
      await expectBreak(10, {
        seq: 11, kind: 'hash-mismatch', message: 'entry 11 was changed: its content does not match its hash (block 9-16, row 3)',
        expected: entryHash(hash(10), { ...chain[10]!, actor: 'cli:mallory' }), actual: hash(11), stored: loc(9, 16, 3, 11, null), original: null,
      });
    });

    it('its hash edited: hash-mismatch at its seq, named', async () => {
      await edit(9, (rows) => void (rows[2]![HASH] = 'ef'.repeat(32)));
      await expectBreak(10, {
        seq: 11, kind: 'hash-mismatch', message: 'entry 11 was changed: its content does not match its hash (block 9-16, row 3)',
        expected: hash(11), actual: 'ef'.repeat(32), stored: loc(9, 16, 3, 11, null), original: null,
      });
    });

    it('moved within its block, its seq unchanged: nothing (the chain is in seq order)', async () => {
      await edit(9, (rows) => rows.reverse());
      for (const pageSize of [3, 7, undefined]) expect((await verify(pageSize)).ok).toBe(true);
    });

    it('edited into something that is not an entry: hash-mismatch at its place, named as no longer an entry', async () => {
      await edit(9, (rows) => void (rows[2]![ACTOR] = 7));
      const unreadable = decodeAuditBlock('default', { firstSeq: 9, at: new Date(AT[9]!), entries: JSON.stringify(await rowsOf(9)) })[2]!;
      await expectBreak(10, {
        seq: 11, kind: 'hash-mismatch', message: 'entry 11 was changed: its content does not match its hash (block 9-16, row 3, which is no longer an entry)',
        expected: entryHash(hash(10), unreadable), actual: '', stored: loc(9, 16, 3, 11, null), original: null,
      });
    });

    it("a block's time edited: hash-mismatch at its first entry (every entry's `at` is the block's)", async () => {
      await sql(`UPDATE ${blocks} SET at = ${kind === 'sqlite' ? 'at + 1' : "at + interval '1 millisecond'"} WHERE chain = 'default' AND first_seq = 9`);
      await expectBreak(8, {
        seq: 9, kind: 'hash-mismatch', message: 'entry 9 was changed: its content does not match its hash (block 9-16, row 1)',
        expected: entryHash(hash(8), { ...chain[8]!, at: new Date(AT[9]! + 1) }), actual: hash(9), stored: loc(9, 16, 1, 9, null), original: null,
      });
    });

    it('previous hash edited: prev-hash-mismatch at its seq, named as only that field changed', async () => {
      await edit(9, (rows) => void (rows[3]![PREV] = 'ab'.repeat(32)));
      await expectBreak(11, {
        seq: 12, kind: 'prev-hash-mismatch',
        message: "entry 12 does not follow entry 11: its previous hash was edited (block 9-16, row 4): with entry 11's hash in its place, its content matches its hash",
        expected: hash(11), actual: 'ab'.repeat(32), stored: loc(9, 16, 4, 12, null), original: null,
      });
    });

    it('edited with its hash recomputed: prev-hash-mismatch at the next seq, naming both entries that may have changed', async () => {
      let forged = '';
      await edit(9, (rows) => {
        rows[2]![ACTOR] = 'cli:mallory';
        rows[2] = resealed(rows[2]!, 11, 9);
        forged = rows[2][HASH] as string;
      });
      await expectBreak(11, {
        seq: 12, kind: 'prev-hash-mismatch',
        message: "entry 12 does not follow entry 11: its previous hash differs while its content matches its hash (block 9-16, row 4): entry 11 (block 9-16, row 3) was changed and its hash recomputed, or this entry's previous hash was changed and its hash recomputed",
        expected: forged, actual: hash(11), stored: loc(9, 16, 4, 12, 12), original: null,
      });
    });

    it('deleted: missing at its seq, with the block that should hold it', async () => {
      await edit(9, (rows) => void rows.splice(2, 1));
      await expectBreak(10, {
        seq: 11, kind: 'missing',
        message: 'entry 11 is missing: the next stored entry is 12 (block 9-16, row 3); block 9-16, whose seqs include 11, holds no entry 11 (it holds 7 entries for its 8 seqs)',
        expected: '11', actual: '12', stored: null, original: null,
      });
    });

    it('a whole block deleted: missing at its first seq, held by no block', async () => {
      await sql(`DELETE FROM ${blocks} WHERE chain = 'default' AND first_seq = 9`);
      await expectBreak(8, {
        seq: 9, kind: 'missing', message: "entry 9 is missing: the next stored entry is 17 (block 17-24, row 1); no stored block's seqs include 9",
        expected: '9', actual: '17', stored: null, original: null,
      });
    });

    it("a block's text replaced by something that is not JSON: prev-hash-mismatch at its first seq, the block named", async () => {
      await put(9, 'not json');
      await expectBreak(8, {
        seq: 9, kind: 'prev-hash-mismatch', message: 'entry 9 does not follow entry 8: block 9-16, whose text is not a JSON array of entries, so none of its entries can be read',
        expected: hash(8), actual: '', stored: loc(9, 16, null, 9, null), original: null,
      });
    });

    it('a copy inserted: the copy is named, the original is the one in its place', async () => {
      await edit(9, (rows) => void rows.push(rows[2]!));
      await expectBreak(11, {
        seq: 11, kind: 'unexpected-entry', message: "a second entry claims seq 11: an entry's seq was edited or an entry was copied",
        expected: 'entry 11 as sealed: block 9-16, row 3 (its hash matches it as seq 11 after entry 10, and entry 12 follows it)',
        actual: 'block 9-16, row 9: a copy of it', stored: loc(9, 16, 9, 11, 11), original: loc(9, 16, 3, 11, 11),
      });
    });

    it('a copy inserted right after the original: found whatever the page size, and said to be indistinguishable', async () => {
      // In pages of 3 the first page ends with entry 3; the copy, which sorts right after it, used to go unread.
      await edit(1, (rows) => void rows.splice(3, 0, rows[2]!));
      await expectBreak(3, {
        seq: 3, kind: 'unexpected-entry', message: "a second entry claims seq 3: an entry's seq was edited or an entry was copied",
        expected: 'entry 3 as sealed: block 1-8, row 3 (its hash matches it as seq 3 after entry 2, and entry 4 follows it)',
        actual: 'block 1-8, row 4: identical to it: the same entry stored twice, and either may be the copy',
        stored: loc(1, 8, 4, 3, 3), original: loc(1, 8, 3, 3, 3),
      }, [1, 2, 3, 4, undefined]);
    });

    it('a forged entry with a valid hash inserted before the original: the original is the one the next entry follows', async () => {
      await edit(9, (rows) => {
        const forged = [...rows[2]!];
        forged[ACTOR] = 'cli:mallory';
        rows.splice(2, 0, resealed(forged, 11, 9));
      });
      await expectBreak(11, {
        seq: 11, kind: 'unexpected-entry', message: "a second entry claims seq 11: an entry's seq was edited or an entry was copied",
        expected: 'entry 11 as sealed: block 9-16, row 4 (its hash matches it as seq 11 after entry 10, and entry 12 follows it)',
        actual: 'block 9-16, row 3: an inserted entry: its hash matches it as seq 11, but entry 12 follows the other',
        stored: loc(9, 16, 3, 11, 11), original: loc(9, 16, 4, 11, 11),
      });
    });

    it('an entry appended past the head row: head-mismatch after the last entry, the entry named', async () => {
      // Stored in block 17-24, past its last_seq. In pages of 3 a page ends at 24 exactly, and a page listing entries
      // after 24 reads no block; the walk reads from 24 again, with block 17-24, and so sees it.
      let appended = '';
      await edit(17, (rows) => {
        const next = [...rows[7]!];
        next[SEQ] = 25;
        next[PREV] = hash(24);
        rows.push(resealed(next, 25, 17));
        appended = rows[8]![HASH] as string;
      });
      await expectBreak(25, {
        seq: 25, kind: 'head-mismatch', message: `the chain's end (25:${appended}) differs from its head row (24:${hash(24)}) (entry 25: block 17-24, row 9)`,
        expected: `24:${hash(24)}`, actual: `25:${appended}`, stored: null, original: null,
      });
    });

    it('the chain rewritten with fresh hashes from a seq on: only an exported head shows it, named', async () => {
      await edit(17, (rows) => {
        let prev = hash(19);
        for (let i = 3; i < 8; i++) {
          rows[i]![ACTOR] = 'cli:mallory';
          rows[i]![PREV] = prev;
          rows[i] = resealed(rows[i]!, 17 + i, 17);
          prev = rows[i]![HASH] as string;
        }
      });
      const [last] = await tdb.driver.auditList({ chain: 'default', afterSeq: 23, limit: 1 });
      await sql(`UPDATE ${heads} SET hash = ? WHERE chain = 'default'`, [last!.hash]);
      expect((await verify()).ok).toBe(true);
      for (const seq of [20, 24]) {
        const result = await verifyAuditChain(tdb.driver, { chain: 'default', head: { seq, hash: hash(seq) } });
        expect({ checked: result.checked, break: result.break }).toEqual({
          checked: seq - 1,
          break: {
            seq, kind: 'head-mismatch', message: `entry ${seq} differs from the exported head: the chain was rewritten from there on (block 17-24, row ${seq - 16})`,
            expected: hash(seq), actual: (await tdb.driver.auditList({ chain: 'default', afterSeq: seq - 1, limit: 1 }))[0]!.hash, stored: loc(17, 24, seq - 16, seq, seq), original: null,
          },
        });
      }
    });

    it('the tail deleted: truncated at the first missing seq, with the block that should hold it', async () => {
      await edit(17, (rows) => void rows.splice(3));
      await expectBreak(19, {
        seq: 20, kind: 'truncated',
        message: 'the chain ends at entry 19 but its head row records 24: entries 20-24 are missing; block 17-24, whose seqs include 20, holds no entry 20 (it holds 3 entries for its 8 seqs)',
        expected: '24', actual: '19', stored: null, original: null,
      });
      await sql(`DELETE FROM ${blocks} WHERE chain = 'default' AND first_seq = 17`);
      await expectBreak(16, {
        seq: 17, kind: 'truncated', message: "the chain ends at entry 16 but its head row records 24: entries 17-24 are missing; no stored block's seqs include 17",
        expected: '24', actual: '16', stored: null, original: null,
      });
    });
  });

  describe('the pruned prefix', () => {
    /** Prunes block 1-8 (time 1 s) the proper way, and returns that block's row as it was. */
    async function prune(): Promise<Record<string, unknown>> {
      const [block] = await sql(`SELECT chain, first_seq, last_seq, at, entries FROM ${blocks} WHERE chain = 'default' AND first_seq = 1`);
      expect(await tdb.driver.auditPrune({ chain: 'default', before: new Date(1_500) })).toBe(8);
      expect((await verify()).ok).toBe(true);
      return block!;
    }

    it('a pruned block put back: unexpected-entry at its first entry, named', async () => {
      const block = await prune();
      await sql(`INSERT INTO ${blocks} (chain, first_seq, last_seq, at, entries) VALUES (?, ?, ?, ?, ?)`, [block.chain, block.first_seq, block.last_seq, block.at, block.entries]);
      await expectBreak(0, {
        seq: 1, kind: 'unexpected-entry', message: 'entry 1 exists although the head row records entries up to 8 as pruned (block 1-8, row 1)',
        expected: null, actual: null, stored: loc(1, 8, 1, 1, 1), original: null,
      });
    });

    it("the head row's pruned hash edited: prev-hash-mismatch at the first kept entry, which is intact", async () => {
      await prune();
      await sql(`UPDATE ${heads} SET pruned_hash = ? WHERE chain = 'default'`, ['cd'.repeat(32)]);
      await expectBreak(0, {
        seq: 9, kind: 'prev-hash-mismatch',
        message: "entry 9 does not follow the pruned prefix: its previous hash differs while its content matches its hash (block 9-16, row 1): the head row's pruned hash was changed, or this entry's previous hash was changed and its hash recomputed",
        expected: 'cd'.repeat(32), actual: hash(8), stored: loc(9, 16, 1, 9, 9), original: null,
      });
    });

    it("a prefix deleted without pruning, or the head row's pruned seq lowered: missing from the first seq expected", async () => {
      const missing1 = {
        seq: 1, kind: 'missing', message: "entry 1 is missing: the next stored entry is 9 (block 9-16, row 1); no stored block's seqs include 1",
        expected: '1', actual: '9', stored: null, original: null,
      } as const;
      await sql(`DELETE FROM ${blocks} WHERE chain = 'default' AND first_seq = 1`);
      await expectBreak(0, missing1);
      await sql(`UPDATE ${heads} SET pruned_seq = 8, pruned_hash = ? WHERE chain = 'default'`, [hash(8)]);
      // Deleted with the head row set to match, it reads as a prune, except that no audit.pruned entry records it.
      expect((await verify()).ok).toBe(true);
      await sql(`UPDATE ${heads} SET pruned_seq = 0, pruned_hash = ? WHERE chain = 'default'`, ['0'.repeat(64)]);
      await expectBreak(0, missing1);
    });
  });

  it('reports the break without naming stored entries through a driver that cannot say where they are', async () => {
    // A driver that does not know `located`: it lists the page as usual.
    const plain = overrideDriver(tdb.driver, { auditList: (real) => ({ located: _, ...params }) => real(params) });
    const verifyPlain = async (pageSize?: number) => (await verifyAuditChain(plain, { chain: 'default', pageSize })).break;
    await edit(1, (rows) => void (rows[5]![SEQ] = 5));
    expect(await verifyPlain()).toEqual({
      seq: 5, kind: 'unexpected-entry', message: "a second entry claims seq 5: an entry's seq was edited or an entry was copied", expected: null, actual: null, stored: null, original: null,
    });
    await edit(9, (rows) => void rows.splice(2, 1));
    await edit(1, (rows) => void (rows[5]![SEQ] = 6));
    expect(await verifyPlain()).toEqual({ seq: 11, kind: 'missing', message: 'entry 11 is missing: the next stored entry is 12', expected: '11', actual: '12', stored: null, original: null });
    await edit(9, (rows) => void rows.splice(2));
    await sql(`DELETE FROM ${blocks} WHERE chain = 'default' AND first_seq = 17`);
    expect(await verifyPlain(3)).toEqual({ seq: 11, kind: 'truncated', message: 'the chain ends at entry 10 but its head row records 24: entries 11-24 are missing', expected: '24', actual: '10', stored: null, original: null });
  });

  it('reads the blocks of a page as stored with auditList({ located: true }): every entry where it is, unsorted and unfiltered', async () => {
    await edit(9, (rows) => {
      rows[5]![SEQ] = 3;
      rows.reverse();
    });
    const located = (await tdb.driver.auditList({ chain: 'default', afterSeq: 8, limit: 4, located: true })) as AuditStoredEntry[];
    // The page holding seq 9-12 is read from block 9-16 alone: all eight of its entries, in the order stored.
    expect(located.map((e) => [e.seq, e.stored])).toEqual([16, 15, 3, 13, 12, 11, 10, 9].map((seq, i) => [seq, { firstSeq: 9, lastSeq: 16, row: i + 1, rows: 8 }]));
    expect(located.map((e) => e.hash)).toEqual([16, 15, 14, 13, 12, 11, 10, 9].map(hash));
    // The ordinary read is unchanged: in seq order, the entry claiming 3 left out (it is before the page).
    expect((await tdb.driver.auditList({ chain: 'default', afterSeq: 8, limit: 4 })).map((e) => [e.seq, 'stored' in e])).toEqual([[9, false], [10, false], [11, false], [12, false]]);
    await put(17, 'not json');
    expect(((await tdb.driver.auditList({ chain: 'default', afterSeq: 16, limit: 4, located: true })) as AuditStoredEntry[]).map((e) => [e.seq, e.hash, e.stored]))
      .toEqual([[17, '', { firstSeq: 17, lastSeq: 24, row: null, rows: 0 }]]);
  });
});
