/**
 * A payload that `JSON.stringify` would silently change is refused with `NonJsonValueError` naming the path, on both
 * drivers, and nothing is written: holes in sparse arrays (stored as null), named properties of arrays and
 * enumerable symbol-keyed properties (left out). Each was accepted and the job read back a different value. A
 * payload of every plain JSON shape still reads back exactly as given; -0 is accepted and read back as 0 (JSON has no
 * negative zero, and refusing it would fail enqueues of computed amounts such as `-x` for `x = 0`).
 * @module
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Warden } from '../../src/client/warden.js';
import { NonJsonValueError, PayloadTooLargeError } from '../../src/errors.js';
import { defineJob } from '../../src/job/define-job.js';
import { MAX_JSON_DEPTH } from '../../src/job/payload.js';
import { countRows, expectRejects } from '../conformance/helpers.js';
import { makeWarden } from '../runtime/helpers.js';
import { createTestDatabase, DRIVER_KINDS, type TestDatabase } from '../support/test-databases.js';

const task = defineJob({ name: 'task', handler: () => undefined });

const id = Symbol('id');
const sparse = [1, , 3];
const REFUSED: [string, unknown, string, RegExp][] = [
  ['a hole in a sparse array', { list: sparse }, '$.list[1]', /a hole in a sparse array/],
  ['an array made with a length', { slots: new Array(2) }, '$.slots[0]', /a hole in a sparse array/],
  ['a named property of an array', { list: Object.assign([1, 2], { note: 'dropped' }) }, '$.list.note', /a named property of an array/],
  ['an enumerable symbol-keyed property', { meta: { a: 1, [id]: 2 } }, '$.meta[Symbol(id)]', /a symbol-keyed property/],
  ['a symbol-keyed property of an array', { list: Object.assign([1], { [id]: 2 }) }, '$.list[Symbol(id)]', /a symbol-keyed property/],
];

describe.each(DRIVER_KINDS)('payloads JSON would change (%s)', (kind) => {
  let tdb: TestDatabase;
  let warden: Warden;

  beforeEach(async () => {
    tdb = await createTestDatabase(kind);
    warden = makeWarden(tdb, { jobs: [task], retention: false });
  });

  afterEach(async () => {
    await warden.close();
    await tdb.cleanup();
  });

  it.each(REFUSED)('refuses %s with NonJsonValueError naming its path; nothing is written', async (_label, payload, path, got) => {
    const error = await expectRejects(warden.enqueue(task, payload), NonJsonValueError);
    expect(error.message).toMatch(/^Expected the payload of job "task" to be plain JSON, got /);
    expect(error.message).toMatch(got);
    expect(error.message.endsWith(` at ${path}`), error.message).toBe(true);
    const many = await expectRejects(warden.enqueueMany([{ job: task, payload: {} }, { job: task, payload }]), NonJsonValueError);
    expect(many.message).toMatch(/^items\[1\]: /);
    expect(await countRows(tdb, 'jobs')).toBe(0);
  });

  it('reads back a payload of every plain JSON shape exactly, and ignores non-enumerable symbol keys', async () => {
    const payload = {
      text: 'héllo \u{1F600}', zero: 0, negative: -1.5, big: 2 ** 53 - 1, yes: true, no: false, nothing: null,
      list: [1, 'two', [3, [4]], { five: 5 }, null], empty: { list: [], object: {} }, 'key with spaces': 1,
    };
    const tagged = Object.defineProperty({ ...payload }, Symbol('meta'), { value: 'internal', enumerable: false });
    const { id: jobId } = await warden.enqueue(task, tagged);
    expect((await warden.jobs.get(jobId))!.payload).toStrictEqual(payload);
  });

  it('accepts an array whose element was made non-enumerable (JSON still writes it)', async () => {
    const list = [1, 2, 3];
    Object.defineProperty(list, 1, { enumerable: false });
    const { id: jobId } = await warden.enqueue(task, { list });
    expect((await warden.jobs.get(jobId))!.payload).toStrictEqual({ list: [1, 2, 3] });
  });

  it('refuses an oversized payload by its size, before walking it', async () => {
    const small = makeWarden(tdb, { jobs: [task], retention: false, payloadLimit: 1_000 });
    try {
      await expectRejects(small.enqueue(task, { list: Array.from({ length: 1_000 }, (_, i) => i) }), PayloadTooLargeError);
    } finally {
      await small.close();
    }
  });

  it('accepts -0 and reads it back as 0', async () => {
    const { id: jobId } = await warden.enqueue(task, { balance: -0, deltas: [1, -0] });
    const read = (await warden.jobs.get(jobId))!.payload as { balance: number; deltas: number[] };
    expect(Object.is(read.balance, 0)).toBe(true);
    expect(Object.is(read.deltas[1], 0)).toBe(true);
  });

  /** `levels` objects, one inside the other, around a 0: the 0 is at depth `levels`. */
  const nested = (levels: number): unknown => {
    let value: unknown = 0;
    for (let i = 0; i < levels; i++) value = { a: value };
    return value;
  };

  it(`reads back a payload nested ${MAX_JSON_DEPTH} levels deep exactly, and refuses one level more and 10,000 (no stack overflow)`, async () => {
    const { id: jobId } = await warden.enqueue(task, nested(MAX_JSON_DEPTH));
    expect((await warden.jobs.get(jobId))!.payload).toStrictEqual(nested(MAX_JSON_DEPTH));
    for (const levels of [MAX_JSON_DEPTH + 1, 10_000]) {
      const error = await expectRejects(warden.enqueue(task, nested(levels)), NonJsonValueError);
      expect(error.message).toMatch(new RegExp(`got nesting deeper than ${MAX_JSON_DEPTH} levels at \\$(\\.a){${MAX_JSON_DEPTH + 1}}$`));
    }
    expect(await countRows(tdb, 'jobs')).toBe(1);
  });

  it('accepts a payload of exactly payloadLimit bytes and reads it back; one byte more is refused', async () => {
    const limited = makeWarden(tdb, { jobs: [task], retention: false, payloadLimit: 1_000 });
    try {
      // {"text":"…"} is 11 bytes around the text; "é" is 2 bytes of UTF-8, so the limit is counted in bytes.
      const atLimit = { text: `é${'x'.repeat(1_000 - 11 - 2)}` };
      expect(Buffer.byteLength(JSON.stringify(atLimit))).toBe(1_000);
      const { id: jobId } = await limited.enqueue(task, atLimit);
      expect((await limited.jobs.get(jobId))!.payload).toStrictEqual(atLimit);
      const error = await expectRejects(limited.enqueue(task, { text: `${atLimit.text}x` }), PayloadTooLargeError);
      expect(error.message).toMatch(/1,?000/);
      expect(await countRows(tdb, 'jobs')).toBe(1);
    } finally {
      await limited.close();
    }
  });
});
