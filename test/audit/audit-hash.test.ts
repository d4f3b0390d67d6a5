/**
 * The hash chain's fast paths (`src/audit/audit-hash.ts`) must produce exactly the canonical text and hash that the
 * documented rules give: `jsonString` is `JSON.stringify` for every string, and an entry's hash is sha256 of the
 * previous hash followed by its canonical JSON, whichever sha256 implementation Node offers.
 * @module
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { canonicalJson, entryHash, GENESIS_HASH, hashedBody, jsonString, sealBatch } from '../../src/audit/audit-hash.js';

/** A deterministic pseudo-random string over every kind of UTF-16 code unit, lone surrogates included. */
function randomString(seed: number): string {
  let x = seed;
  const next = () => {
    x = (x * 1_103_515_245 + 12_345) % 2_147_483_648;
    return x;
  };
  const pools = [
    () => 0x20 + (next() % 95), // printable ASCII, quote and backslash among them
    () => next() % 0x20, // control characters
    () => 0xa0 + (next() % 0x2000), // beyond ASCII
    () => 0xd800 + (next() % 0x800), // surrogates, paired only by chance
  ];
  let out = '';
  const length = next() % 24;
  for (let i = 0; i < length; i++) out += String.fromCharCode(pools[next() % pools.length]!());
  return out;
}

describe('audit hash', () => {
  it('jsonString is JSON.stringify for every string, and "null" for null', () => {
    const cases = ['', 'plain', 'system:host/1234', 'a"b', 'back\\slash', 'line\nbreak', '\u0000', '\u001f', '\u007f', 'é€😀', '\ud800', 'x\udfffy'];
    for (let seed = 1; seed <= 5_000; seed++) cases.push(randomString(seed));
    for (const value of cases) expect(jsonString(value), JSON.stringify(value)).toBe(JSON.stringify(value));
    expect(jsonString(null)).toBe('null');
  });

  it('hashes an entry as sha256(prevHash + canonical JSON), the documented rule', () => {
    const [sealed] = sealBatch('default', { seq: 41, hash: GENESIS_HASH }, new Date('2026-12-04T10:00:00.123Z'), [
      { actor: 'cli:alice "ops"', action: 'job.cancelled', subjectKind: 'job', subjectId: '7', jobName: 'send-email', queue: 'mail', before: 'queued', after: 'cancelled', reason: 'ticket\tOPS-1', data: { attempt: 2, note: 'é' } },
    ]).entries;
    const { prevHash, hash, ...rest } = sealed!;
    const expected = createHash('sha256').update(prevHash + canonicalJson(hashedBody(rest)), 'utf8').digest('hex');
    expect(prevHash).toBe(GENESIS_HASH);
    expect(sealed!.seq).toBe(42);
    expect(hash).toBe(expected);
    expect(entryHash(prevHash, rest)).toBe(expected);
  });
});
