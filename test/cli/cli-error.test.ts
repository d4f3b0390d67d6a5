import { afterEach, describe, expect, it } from 'vitest';
import { CliError, isWardenError, reportError } from '../../src/cli/cli-error.js';
import { findJsonError } from '../../src/cli/parse-json-argument.js';
import { JobStateError } from '../../src/index.js';

function capture(error: unknown): { code: number; err: string } {
  let err = '';
  const code = reportError(error, { out: () => {}, err: (t) => void (err += t) });
  return { code, err };
}

afterEach(() => {
  delete process.env.WARDEN_DEBUG;
});

describe('reportError', () => {
  it('prints Warden errors, CLI errors and look-alikes from another copy of Warden as one line', () => {
    expect(capture(new JobStateError('7', 'retry', ['dead', 'retrying'], 'queued'))).toEqual({ code: 1, err: 'warden: Expected job 7 to be dead or retrying to retry it, got queued\n' });
    expect(capture(new CliError('two\nlines', { exitCode: 3 }))).toEqual({ code: 3, err: 'warden: two lines\n' });
    const foreign = Object.assign(new Error('Expected x, got y'), { name: 'UnknownJobError', code: 'UNKNOWN_JOB' });
    expect(isWardenError(foreign)).toBe(true);
    expect(capture(foreign)).toEqual({ code: 1, err: 'warden: Expected x, got y\n' });
    expect(isWardenError(Object.assign(new TypeError('x'), { code: 'ERR_INVALID_ARG_TYPE' }))).toBe(false);
  });

  it('prints an unexpected error as one line, with the stack only when WARDEN_DEBUG=1', () => {
    const bug = new TypeError("Cannot read properties of undefined (reading 'id')");
    const plain = capture(bug);
    expect(plain.code).toBe(1);
    expect(plain.err).toBe("warden: unexpected error: TypeError: Cannot read properties of undefined (reading 'id') (set WARDEN_DEBUG=1 for the stack trace)\n");

    process.env.WARDEN_DEBUG = '1';
    const debug = capture(bug);
    expect(debug.err.split('\n')[0]).toBe("warden: unexpected error: TypeError: Cannot read properties of undefined (reading 'id')");
    expect(debug.err).toContain('    at ');
  });

  it('describes connection failures, including an AggregateError of refused addresses', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED ::1:5432'), { code: 'ECONNREFUSED', address: '::1', port: 5432 });
    expect(capture(new AggregateError([refused], ''))).toEqual({ code: 1, err: 'warden: Expected a reachable database, got ECONNREFUSED ::1:5432\n' });
    const auth = Object.assign(new Error('password authentication failed for user "x"'), { severity: 'FATAL', code: '28P01' });
    expect(capture(auth).err).toBe('warden: Expected a reachable database, got password authentication failed for user "x" (SQLSTATE 28P01)\n');
  });
});

describe('findJsonError', () => {
  it.each(['{}', '[]', '0', '-1.5e+3', '"a\\u00e9\\n"', ' {"a": [1, true, false, null, {"b": "c"}]} ', 'null'])('accepts valid JSON %j like JSON.parse', (text) => {
    expect(() => JSON.parse(text)).not.toThrow();
    expect(findJsonError(text)).toBeNull();
  });

  it.each([
    ['{"a":1,}', 7],
    ['[1 2]', 3],
    ['01', 1],
    ['"\t"', 1],
    ['{"a":1}\n x', 9],
    ['tru', 3],
    ['"\\x"', 2],
  ])('finds the position of the problem in %j', (text, position) => {
    expect(() => JSON.parse(text)).toThrow();
    expect(findJsonError(text)?.position).toBe(position);
  });
});
