/**
 * A JSON argument nested deeply (20,000 `[`, 40 kB: well within one command-line argument) that is not JSON is
 * reported as bad JSON with its position. The scanner that finds the position was recursive and ran out of call
 * stack: "warden: unexpected error: RangeError: Maximum call stack size exceeded". It agrees with `JSON.parse` on
 * which texts are JSON, at every depth.
 * @module
 */
import { describe, expect, it } from 'vitest';
import { findJsonError } from '../../src/cli/parse-json-argument.js';
import { cli, expectOneLineError, JOBS } from './cli-helpers.js';

const DEPTH = 20_000;

/** A small deterministic pseudo-random source (mulberry32), so a failure names a seed that reproduces it. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

const PIECES = ['{', '}', '[', ']', ',', ':', '"a"', '"', '1', '-0.5e3', 'true', 'nul', ' ', '\n', '[]', '{}', '"k":'];

describe('findJsonError at any depth', () => {
  it.each([
    ['20,000 unclosed arrays', '['.repeat(DEPTH), DEPTH, 'end of input where a value was expected'],
    ['20,000 unclosed objects', '{"a":'.repeat(DEPTH), 5 * DEPTH, 'end of input where a value was expected'],
    ['a value missing 20,000 arrays deep', `${'['.repeat(DEPTH)}1,}`, DEPTH + 2, 'unexpected "}" where a value was expected'],
    ['an array closing an object 40,000 deep', `${'[{"k":'.repeat(DEPTH)}1]`, 6 * DEPTH + 1, 'unexpected "]" where "," or "}" was expected'],
  ])('finds the problem in %s', (_what, text, position, found) => {
    expect(() => JSON.parse(text)).toThrow();
    expect(findJsonError(text)).toEqual({ position, found });
  });

  it('accepts valid JSON nested as deeply', () => {
    const text = `${'[{"k":'.repeat(DEPTH)}[1, "x", {}]${'}]'.repeat(DEPTH)}`;
    expect(() => JSON.parse(text)).not.toThrow();
    expect(findJsonError(text)).toBeNull();
  });

  it('agrees with JSON.parse on which texts are JSON (random texts of JSON pieces)', () => {
    const next = random(7);
    let valid = 0;
    for (let n = 0; n < 10_000; n++) {
      const text = Array.from({ length: 1 + Math.floor(next() * 12) }, () => PIECES[Math.floor(next() * PIECES.length)]).join('');
      let parses = true;
      try {
        JSON.parse(text);
      } catch {
        parses = false;
      }
      if (parses) valid++;
      expect(findJsonError(text) === null, text).toBe(parses);
    }
    // Both kinds were tried.
    expect(valid).toBeGreaterThan(100);
  });
});

describe('warden enqueue with a deeply nested payload that is not JSON', () => {
  it('is a one-line bad-JSON error with its position, not an unexpected RangeError', async () => {
    const result = await cli(['enqueue', 'always-fails', '['.repeat(DEPTH), '--jobs', JOBS, '--database', 'sqlite::memory:']);
    expectOneLineError(result, 1, new RegExp(`^warden: Expected the payload to be JSON, got end of input where a value was expected at position ${DEPTH} \\(line 1, column ${DEPTH + 1}\\)\\n$`));
  });
});
