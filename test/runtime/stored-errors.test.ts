/**
 * What a handler throws is stored as the handler's error, and bounded.
 *
 * `toErrorInfo` never throws, even for an Error whose `name` or `stack` is not a string, whose `message` getter
 * throws, or a circular null-prototype object (neither JSON.stringify nor String can render it). Had it thrown, the
 * attempt's fallback ending would store Warden's own TypeError instead and retry a NonRetryableError. An Error from
 * another realm (node:vm) is not `instanceof Error` here, yet keeps its name, message and stack.
 *
 * Schema issues are bounded as the name, message and stack are: at most 100 issues, 8,000 characters of issue
 * messages and paths in all, 20 segments per path, and a last issue with an empty path counting those left out
 * (docs/guarantees.md, "Dead letters"). Without the bound, a ZodError from validating a large array stored
 * megabytes per attempt, in the attempt row and `last_error` both.
 *
 * Unit cases first, then each case through a worker, on each driver.
 * @module
 */
import vm from 'node:vm';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { Warden } from '../../src/client/warden.js';
import { systemClock, type Clock } from '../../src/clock/clock.js';
import { NonRetryableError } from '../../src/errors.js';
import { defineJob } from '../../src/job/define-job.js';
import type { ErrorInfo } from '../../src/job/job-record.js';
import { toErrorInfo } from '../../src/runtime/error-info.js';
import { createTestDatabase, DRIVER_KINDS, makeInsert, type TestDatabase } from '../support/test-databases.js';
import { makeWarden, record } from './helpers.js';

/** An Error with `name` set to a non-string (`truncate` used to call `.replaceAll` on it). */
function numericName(): Error {
  return Object.assign(new Error('boom'), { name: 42 });
}

/** An Error whose `message` getter throws (so does its lazily formatted stack, which reads the message). */
function throwingMessage(): Error {
  const error = new Error('boom');
  Object.defineProperty(error, 'message', { get() { throw new Error('message getter'); } });
  return error;
}

/** An Error whose `stack` is an object. */
function objectStack(): Error {
  return Object.assign(new Error('boom'), { stack: { frames: ['boom'] } });
}

/** A circular object without a prototype: JSON.stringify throws on the cycle, String finds no toString. */
function nullProtoCycle(): unknown {
  const value = Object.create(null);
  value.what = 'boom';
  value.self = value;
  return value;
}

/** A TypeError made in another realm: its `Error` is not ours. */
function otherRealm(): unknown {
  return vm.runInNewContext('new TypeError("boom from a vm")');
}

/** Each odd value, with what its stored error must say. */
const CASES: [string, () => unknown, Partial<ErrorInfo>][] = [
  ['an Error with a numeric name', numericName, { name: '42', message: 'boom' }],
  ['an Error whose message getter throws', throwingMessage, { name: 'Error', message: '[unreadable]' }],
  ['an Error with an object stack', objectStack, { name: 'Error', message: 'boom', stack: '{"frames":["boom"]}' }],
  ['a circular null-prototype object', nullProtoCycle, { name: 'NonError', message: 'A non-Error value was thrown: {"what":"boom","self":"[circular]"}' }],
  ['an Error from another realm', otherRealm, { name: 'TypeError', message: 'boom from a vm' }],
];

describe('toErrorInfo never throws', () => {
  it.each(CASES)('%s', (_what, make, expected) => {
    expect(toErrorInfo(make())).toMatchObject(expected);
  });

  it('keeps the stack of an Error from another realm', () => {
    expect(toErrorInfo(otherRealm()).stack).toMatch(/^TypeError: boom from a vm\n/);
  });

  it('describes a revoked Proxy, which throws on every read (even Array.isArray)', () => {
    const { proxy, revoke } = Proxy.revocable(new Error('boom'), {});
    revoke();
    expect(() => toErrorInfo(proxy)).not.toThrow();
  });

  it('falls back to a fixed text when the redactor throws after all', () => {
    const info = toErrorInfo(new Error('secret'), () => {
      throw new Error('redactor broke');
    });
    expect(info).toEqual({ name: 'Error', message: 'Warden could not describe the thrown value' });
  });
});

const MAX_ISSUES = 100;
const MAX_ISSUES_TEXT = 8_000;
/** Name 200 + message 2,000 + stack 8,000 + issues 8,000, with room for the JSON around them. */
const MAX_STORED_JSON = 25_000;

/** The issues `toErrorInfo` keeps of an Error carrying these. */
function keptIssues(issues: unknown[]): NonNullable<ErrorInfo['issues']> {
  return toErrorInfo(Object.assign(new Error('invalid'), { issues })).issues!;
}

/** Characters of issue messages and path segments, as the bound counts them. */
function issuesText(issues: NonNullable<ErrorInfo['issues']>): number {
  return issues.reduce((sum, i) => sum + i.message.length + i.path.reduce<number>((s, p) => s + String(p).length, 0), 0);
}

describe('toErrorInfo bounds the issues it keeps', () => {
  it('keeps the first 100 issues and counts the rest in a last one', () => {
    const issues = keptIssues(Array.from({ length: 20_000 }, (_, i) => ({ message: `bad ${i}`, path: [i] })));
    expect(issues).toHaveLength(MAX_ISSUES + 1);
    expect(issues.slice(0, MAX_ISSUES)).toEqual(Array.from({ length: MAX_ISSUES }, (_, i) => ({ message: `bad ${i}`, path: [i] })));
    expect(issues[MAX_ISSUES]).toEqual({ message: expect.stringMatching(/^19900 more issue\(s\) not kept/), path: [] });
  });

  it('keeps issues while their texts fit 8,000 characters in all', () => {
    const issues = keptIssues(Array.from({ length: 10 }, () => ({ message: 'm'.repeat(1_500), path: ['field'] })));
    // 1,505 characters each: five fit.
    expect(issues).toHaveLength(6);
    expect(issuesText(issues.slice(0, 5))).toBeLessThanOrEqual(MAX_ISSUES_TEXT);
    expect(issues[5]!.message).toMatch(/^5 more issue\(s\) not kept/);
  });

  it('cuts a path to 20 segments, and always keeps the first issue', () => {
    const [first, rest] = keptIssues([{ message: 'm'.repeat(5_000), path: Array.from({ length: 50 }, () => 'k'.repeat(500)) }, { message: 'second', path: [] }]);
    expect(first!.message).toHaveLength(2_000);
    expect(first!.path).toEqual([...Array.from({ length: 20 }, () => `${'k'.repeat(197)}...`), '...']);
    expect(rest).toEqual({ message: 'second', path: [] });
  });

  it('leaves issues under the bounds as they were', () => {
    const issues = [{ message: 'Required', path: ['to'] }, { message: 'Too short', path: ['items', 3, 'name'] }];
    expect(keptIssues(issues)).toEqual(issues);
  });
});

describe.each(DRIVER_KINDS)('stored errors (%s)', (kind) => {
  let tdb: TestDatabase;
  let warden: Warden | undefined;
  beforeEach(async () => {
    tdb = await createTestDatabase(kind);
  });
  afterEach(async () => {
    await warden?.close();
    warden = undefined;
    await tdb.cleanup();
  });

  describe('the stored error is the handler\'s', () => {
    // With `sensitive`, a thrown non-Error is deep-copied for redaction first (an Error from another realm must not be).
    it.each(CASES.flatMap(([what, make, expected]) => [false, true].map((sensitive) => [what, sensitive, make, expected] as const)))('%s (sensitive fields: %s)', async (_what, sensitive, make, expected) => {
      const job = defineJob<{ token: string }>({
        name: 'odd',
        sensitive: sensitive ? ['token'] : [],
        handler: () => {
          throw make();
        },
      });
      warden = makeWarden(tdb, { jobs: [job] });
      const { id } = await warden.enqueue(job, { token: 'not-in-any-message' });
      await warden.drain();
      const row = await warden.jobs.get(id);
      expect(row?.state).toBe('retrying');
      expect(row?.lastError).toMatchObject(expected);
      expect((await warden.jobs.attempts(id))[0]?.error).toMatchObject(expected);
    });

    it('dead-letters a NonRetryableError with a numeric name, its message kept', async () => {
      const job = defineJob({
        name: 'charge',
        handler: () => {
          throw Object.assign(new NonRetryableError('card declined'), { name: 402 });
        },
      });
      warden = makeWarden(tdb, { jobs: [job] });
      const { id } = await warden.enqueue(job, {});
      await warden.drain();
      expect(await warden.jobs.get(id)).toMatchObject({ state: 'dead', lastError: { name: '402', message: 'card declined' } });
    });

    it('stores a thrown Proxy whose prototype cannot be read as the handler\'s failure, not as the trap\'s', async () => {
      // `instanceof NonRetryableError` runs the trap: the retry decision must not throw in its place.
      const job = defineJob({
        name: 'odd',
        handler: () => {
          throw new Proxy(new Error('boom'), {
            getPrototypeOf() {
              throw new Error('prototype trap');
            },
          });
        },
      });
      warden = makeWarden(tdb, { jobs: [job] });
      const { id } = await warden.enqueue(job, {});
      await warden.drain();
      const row = await warden.jobs.get(id);
      expect(row).toMatchObject({ state: 'retrying', lastError: { name: 'NonError' } });
      expect(row?.lastError?.message).not.toContain('prototype trap');
    });

    it('dead-letters a NonRetryableError even when the attempt crashes after the handler threw it', async () => {
      // Cancelling the job's timeout throws once the handler settled: run()'s fallback ends the attempt, and must
      // keep the handler's decision not to retry.
      const TIMEOUT_MS = 54_321;
      const clock: Clock = {
        ...systemClock,
        setTimer(ms, fn) {
          const cancel = systemClock.setTimer(ms, fn);
          if (ms !== TIMEOUT_MS) return cancel;
          return () => {
            cancel();
            throw new Error('cancelling the timeout failed');
          };
        },
      };
      const job = defineJob({
        name: 'charge',
        timeout: TIMEOUT_MS,
        retry: { maxAttempts: 5 },
        handler: () => {
          throw new NonRetryableError('card declined');
        },
      });
      warden = makeWarden(tdb, { jobs: [job], clock });
      const errors = record(warden, 'error');
      const { id } = await warden.enqueue(job, {});
      await warden.drain();
      expect(await warden.jobs.get(id)).toMatchObject({ state: 'dead', lastError: { message: 'cancelling the timeout failed' } });
      expect(errors).toEqual([]);
    });

    it('reports an attempt it cannot end after a crash by an unprintable value, without rejecting', async () => {
      // The jitter's source throws a value String() cannot print: the retry cannot be scheduled, nor the fallback's.
      const job = defineJob({
        name: 'flaky',
        handler: () => {
          throw new Error('handler failed');
        },
      });
      warden = makeWarden(tdb, {
        jobs: [job],
        random: () => {
          throw nullProtoCycle();
        },
      });
      const errors = record(warden, 'error');
      await warden.enqueue(job, {});
      await warden.drain();
      expect(errors.map((e) => e.context)).toEqual([expect.stringMatching(/^ending job \d+ after NonError: A non-Error value was thrown: \{"what":"boom"/)]);
    });
  });

  describe('stored errors stay bounded', () => {
    /** Runs the job `id` once and returns its stored errors: `last_error` and the attempt's. */
    async function storedErrors(w: Warden, id: string): Promise<ErrorInfo[]> {
      await w.drain();
      const row = await w.jobs.get(id);
      expect(row?.state).toBe('dead');
      const attempts = await w.jobs.attempts(id);
      return [row!.lastError!, attempts[0]!.error!];
    }

    function expectBounded(errors: ErrorInfo[]): void {
      for (const error of errors) {
        expect(JSON.stringify(error).length).toBeLessThan(MAX_STORED_JSON);
        expect(error.issues).toHaveLength(MAX_ISSUES + 1);
        expect(error.issues!.at(-1)!.message).toMatch(/^19900 more issue\(s\) not kept/);
      }
    }

    it('a ZodError with 20,000 issues thrown by a handler', async () => {
      const job = defineJob({
        name: 'import-rows',
        retry: { maxAttempts: 1 },
        handler: () => {
          z.array(z.string()).parse(Array.from({ length: 20_000 }, (_, i) => i));
        },
      });
      warden = makeWarden(tdb, { jobs: [job] });
      const { id } = await warden.enqueue(job, {});
      const errors = await storedErrors(warden, id);
      expectBounded(errors);
      expect(errors[0]!.issues![0]).toEqual({ message: expect.stringContaining('expected string'), path: [0] });
    });

    it('a stored payload with 20,000 issues', async () => {
      const job = defineJob({ name: 'import-rows', schema: z.object({ rows: z.array(z.string()) }), handler: () => {} });
      warden = makeWarden(tdb, { jobs: [job] });
      // Written past enqueue's validation, as a payload stored before its schema changed.
      const [inserted] = await tdb.driver.jobInsertMany({
        jobs: [makeInsert({ name: 'import-rows', payloadJson: JSON.stringify({ rows: Array.from({ length: 20_000 }, (_, i) => i) }) })],
        now: null,
      });
      const errors = await storedErrors(warden, inserted!.job.id);
      expectBounded(errors);
      expect(errors[0]).toMatchObject({ name: 'PayloadValidationError', issues: expect.arrayContaining([{ message: expect.any(String), path: ['rows', 0] }]) });
    });
  });
});
