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

  it('canonicalJson is the documented form: JSON text, keys sorted by code unit, undefined members left out', () => {
    // The rule written the plain way (docs/audit.md, "Canonical form"), against the fast path.
    const reference = (value: unknown): string => {
      if (value instanceof Date) return JSON.stringify(value.toISOString());
      if (Array.isArray(value)) return `[${value.map(reference).join(',')}]`;
      if (value !== null && typeof value === 'object') {
        const record = value as Record<string, unknown>;
        const keys = Object.keys(record).filter((k) => record[k] !== undefined).sort();
        return `{${keys.map((k) => `${JSON.stringify(k)}:${reference(record[k])}`).join(',')}}`;
      }
      return JSON.stringify(value);
    };
    let seed = 7;
    const next = () => (seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648);
    const randomValue = (depth: number): unknown => {
      switch (next() % (depth > 3 ? 5 : 7)) {
        case 0: return null;
        case 1: return randomString(next());
        case 2: return (next() % 2_000_001) - 1_000_000;
        case 3: return next() % 2 === 0;
        case 4: return new Date(next() * 1_000);
        case 5: return Array.from({ length: next() % 4 }, () => randomValue(depth + 1));
        default: {
          const out: Record<string, unknown> = {};
          // Keys that look like array indexes too: objects order those numerically, the canonical form by text.
          for (let i = next() % 6; i > 0; i--) out[next() % 3 === 0 ? String(next() % 20) : randomString(next())] = next() % 5 === 0 ? undefined : randomValue(depth + 1);
          return out;
        }
      }
    };
    for (let i = 0; i < 2_000; i++) {
      const value = { data: randomValue(0), '10': 1, '9': 2, b: undefined };
      expect(canonicalJson(value)).toBe(reference(value));
    }
    expect(canonicalJson({ b: 1, a: [true, null, 'x"y'], '10': { z: undefined }, '9': new Date(0) }))
      .toBe('{"10":{},"9":"1970-01-01T00:00:00.000Z","a":[true,null,"x\\"y"],"b":1}');
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
