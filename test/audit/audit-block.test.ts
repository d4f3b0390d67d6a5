/**
 * The audit trail's storage unit (`src/audit/audit-block.ts`, `sealBatch`'s `block`): a sealed batch is stored as
 * a JSON array of one row of fields per entry, which reads back as the same entries; stored text that is not an
 * entry any more reads back as an entry whose hash cannot match; and a page is read on past entries missing from
 * a block, so a gap shortens no page.
 * @module
 */
import { describe, expect, it } from 'vitest';
import { decodeAuditBlock, prunedEnd, readAuditPage, type AuditBlockBatch } from '../../src/audit/audit-block.js';
import { AUDIT_ROW_FIELDS, GENESIS_HASH, sealBatch } from '../../src/audit/audit-hash.js';
import type { AuditEntry, AuditEntryInput } from '../../src/driver/audit-params.js';

const AT = new Date('2026-12-04T10:00:00.123Z');
const ODD = 'quote " backslash \\ tab \t newline \n é 😀 \u0001 \u2028';

function input(i: number): AuditEntryInput {
  return {
    actor: i === 0 ? ODD : 'system:test', action: 'job.completed', subjectKind: 'job', subjectId: String(i), jobName: i === 1 ? null : 'send-email',
    queue: 'default', before: 'running', after: 'completed', reason: i === 2 ? ODD : null, data: i === 0 ? null : { attempt: i, nested: { list: [1, 'two', null, true], text: ODD } },
  };
}

/** An entry as its stored row, written with `JSON.stringify`. */
const rowOf = (e: AuditEntry) => JSON.stringify(AUDIT_ROW_FIELDS.map((field) => e[field]));

describe('audit blocks', () => {
  it('stores a sealed batch as a JSON array of one row of fields per entry (chain and time are the block\'s), read back as the same entries', () => {
    const { entries, block } = sealBatch('c"hain', { seq: 7, hash: 'ab'.repeat(32) }, AT, [0, 1, 2, 3].map(input));
    expect(block).toBe(`[${entries.map(rowOf).join(',')}]`);
    expect(decodeAuditBlock('c"hain', { firstSeq: 8, at: AT, entries: block })).toEqual(entries);
    expect(sealBatch('x', { seq: 0, hash: GENESIS_HASH }, AT, []).block).toBe('[]');
  });

  it('reads stored text that is no longer an entry as one at its place with an empty hash and the text kept', () => {
    const { entries, block } = sealBatch('default', { seq: 0, hash: GENESIS_HASH }, AT, [0, 1, 2, 3, 4, 5, 6, 7].map(input));
    const stored = JSON.parse(block) as unknown[][];
    const set = (row: unknown[], field: (typeof AUDIT_ROW_FIELDS)[number], value: unknown) => row.map((v, i) => (AUDIT_ROW_FIELDS[i] === field ? value : v));
    const edits: ((row: unknown[]) => unknown)[] = [
      (r) => set(r, 'seq', '2'), (r) => [...r, 'extra'], (r) => set(r, 'actor', 7), (r) => set(r, 'data', [1]),
      (r) => r.slice(0, -1), () => null, () => 'text', (r) => set(r, 'hash', null),
    ];
    const edited = stored.map((r, i) => edits[i]!(r));
    const read = decodeAuditBlock('default', { firstSeq: 1, at: AT, entries: JSON.stringify(edited) });
    expect(read.map((e) => [e.seq, e.hash])).toEqual(entries.map((e) => [e.seq, '']));
    // The previous hash is kept where it is still a string, so verify reports the entry itself as changed.
    expect(read[0]!.prevHash).toBe(GENESIS_HASH);
    expect(read[7]!.prevHash).toBe(entries[6]!.hash);
    expect(read[5]!.prevHash).toBe('');
    expect(read[1]!.data).toEqual({ unparsable: JSON.stringify(edited[1]) });
    expect(read[6]!.data).toEqual({ unparsable: 'text' });
    for (const text of ['not json', '{"seq":1}', '']) {
      expect(decodeAuditBlock('default', { firstSeq: 41, at: AT, entries: text })).toEqual([
        { chain: 'default', seq: 41, at: AT, actor: '', action: '', subjectKind: 'job', subjectId: '', jobName: null, queue: null, before: null, after: null, reason: null, data: { unparsable: text }, prevHash: '', hash: '' },
      ]);
    }
  });

  it('records the hash of the last entry of the last pruned block, or none when it cannot be read', () => {
    const { entries, block } = sealBatch('default', { seq: 0, hash: GENESIS_HASH }, AT, [0, 1, 2].map(input));
    expect(prunedEnd('default', { firstSeq: 1, at: AT, entries: block }, 3)).toEqual({ seq: 3, hash: entries[2]!.hash });
    expect(prunedEnd('default', { firstSeq: 1, at: AT, entries: 'not json' }, 3)).toEqual({ seq: 3, hash: '' });
  });

  it('reads a page in seq order across blocks, reading on while entries are missing, and never past the limit', async () => {
    // Seq 1-12 in blocks of 4; seq 2 moved behind seq 3 in its block, seq 6 and 7 deleted from theirs.
    const all = sealBatch('default', { seq: 0, hash: GENESIS_HASH }, AT, Array.from({ length: 12 }, (_, i) => input(i))).entries;
    const text = (seqs: number[]) => `[${seqs.map((seq) => rowOf(all[seq - 1]!)).join(',')}]`;
    const stored = [{ firstSeq: 1, lastSeq: 4, at: AT, entries: text([1, 3, 2, 4]) }, { firstSeq: 5, lastSeq: 8, at: AT, entries: text([5, 8]) }, { firstSeq: 9, lastSeq: 12, at: AT, entries: text([9, 10, 11, 12]) }];
    const calls: [number, number][] = [];
    // As the list statements: the blocks holding seq afterSeq+1 .. afterSeq+limit, assuming no gaps.
    const fetch = async (afterSeq: number, limit: number): Promise<AuditBlockBatch> => {
      calls.push([afterSeq, limit]);
      return { blocks: stored.filter((b) => b.lastSeq > afterSeq && b.firstSeq <= afterSeq + limit), startsAfter: afterSeq };
    };
    const seqs = (page: AuditEntry[]) => page.map((e) => e.seq);
    expect(seqs(await readAuditPage('default', 0, 8, fetch))).toEqual([1, 2, 3, 4, 5, 8, 9, 10]);
    expect(calls).toEqual([[0, 8], [8, 2]]);
    calls.length = 0;
    expect(seqs(await readAuditPage('default', 2, 3, fetch))).toEqual([3, 4, 5]);
    expect(calls).toEqual([[2, 3]]);
    expect(seqs(await readAuditPage('default', 4, 100, fetch))).toEqual([5, 8, 9, 10, 11, 12]);
    expect(seqs(await readAuditPage('default', 12, 100, fetch))).toEqual([]);
  });
});
