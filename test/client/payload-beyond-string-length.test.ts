/**
 * A value whose JSON is longer than the longest string the runtime holds (V8: 2^29 - 24 UTF-16 code units, about
 * 512 MiB) is far over any `payloadLimit` (at most 64 MiB), yet `JSON.stringify` cannot even build its text: it
 * throws a `RangeError` ("Invalid string length"), which the encoder shared by payloads, step results and iteration
 * checkpoints passed on as it was, where docs/guarantees.md promises `PayloadTooLargeError`. It is now that error,
 * with `bytes` null (never measured) and the `RangeError` as its cause.
 *
 * The smallest such value is cheap to hold (one 1 MiB string, referenced 512 times) but its JSON still has to be
 * built up to the runtime's limit before the `RangeError`: each case peaks near 600 MB of memory for about a second.
 * The refusal comes before anything is written, whatever the driver, so one driver (SQLite) suffices.
 * @module
 */
import { constants } from 'node:buffer';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Warden } from '../../src/client/warden.js';
import { PayloadTooLargeError } from '../../src/errors.js';
import { defineJob, type JobContext } from '../../src/job/define-job.js';
import { attemptSummary, expectTyped } from '../idempotency/helpers.js';
import { countRows } from '../conformance/helpers.js';
import { makeWarden } from '../runtime/helpers.js';
import { createTestDatabase, type TestDatabase } from '../support/test-databases.js';

/** One 1 MiB string 512 times: JSON of 512 × (2^20 + 3) + 1 characters, just past the runtime's longest string. */
function beyondLongestString(): string[] {
  const chunk = 'x'.repeat(2 ** 20);
  const value = new Array<string>(512).fill(chunk);
  expect(value.length * (chunk.length + 3) + 1).toBeGreaterThan(constants.MAX_STRING_LENGTH);
  return value;
}

const LIMIT = 1_000;
const TOO_LARGE = `more than ${constants.MAX_STRING_LENGTH} bytes (JSON longer than the longest string this runtime holds)`;

describe('a value whose JSON is longer than the longest string', () => {
  let tdb: TestDatabase;
  let warden: Warden | undefined;

  beforeEach(async () => {
    tdb = await createTestDatabase('sqlite');
  });

  afterEach(async () => {
    await warden?.close();
    warden = undefined;
    await tdb.cleanup();
  });

  it('as a payload: PayloadTooLargeError (bytes null, the RangeError its cause), nothing written', async () => {
    const task = defineJob({ name: 'task', handler: () => undefined });
    warden = makeWarden(tdb, { jobs: [task], retention: false, payloadLimit: LIMIT });
    const error = expectTyped(await warden.enqueue(task, { list: beyondLongestString() }).then(() => null, (e: unknown) => e), PayloadTooLargeError);
    expect([error.bytes, error.limit, error.message]).toEqual([null, LIMIT, `Expected the payload of job "task" of at most ${LIMIT} bytes as JSON, got ${TOO_LARGE}`]);
    expect(error.cause).toBeInstanceOf(RangeError);
    expect(await countRows(tdb, 'jobs')).toBe(0);
  });

  it('as a step result: the step fails with PayloadTooLargeError, recorded as the attempt’s error', async () => {
    const caught: unknown[] = [];
    const job = defineJob({
      name: 'big-step',
      retry: { maxAttempts: 1 },
      handler: async (_payload, ctx: JobContext) => {
        await ctx.step('big', () => beyondLongestString()).catch((error: unknown) => {
          caught.push(error);
          throw error;
        });
      },
    });
    warden = makeWarden(tdb, { jobs: [job], retention: false, payloadLimit: LIMIT });
    const { id } = await warden.enqueue(job, {});
    await warden.drain();
    expect(caught).toHaveLength(1);
    expect(expectTyped(caught[0], PayloadTooLargeError).bytes).toBeNull();
    expect(await attemptSummary(warden, id)).toEqual([[1, 'failed', 'PayloadTooLargeError']]);
    expect(await warden.jobs.steps(id)).toEqual([]);
  });
});
