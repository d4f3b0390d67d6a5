/**
 * An enqueue takes its payload, `runAt` and key as they are when it is called, before its first `await`: a caller
 * that changes the objects once the call returned (one payload object reused in a loop of unawaited enqueues, a
 * Date moved on, an `enqueueMany` item edited) changes neither what is validated nor what is keyed and stored. The
 * payload was validated, then keyed and encoded after the schema's `await`, and `runAt` kept by reference: such a
 * caller got the later value stored, one the schema never saw, and keys derived from it. The schema and a derived
 * key see a copy parsed from the stored text, the value the worker reads. Refusals keep their order: a payload that
 * both fails its schema and cannot be stored gets the schema's issues, and so does one with a bad `key` or `unique`
 * option (resolved at the call, its refusal held until the schema ran: it was thrown first).
 * @module
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { Warden } from '../../src/client/warden.js';
import { InvalidDurationError, InvalidNameError, NonJsonValueError, PayloadTooLargeError, PayloadValidationError } from '../../src/errors.js';
import { defineJob } from '../../src/job/define-job.js';
import { countRows, expectRejects } from '../conformance/helpers.js';
import { makeWarden } from '../runtime/helpers.js';
import { createTestDatabase, DRIVER_KINDS, type TestDatabase } from '../support/test-databases.js';

const email = defineJob({ name: 'email', schema: z.object({ to: z.string().email() }), handler: () => undefined });
const keyedBy: unknown[] = [];
const counter = defineJob({
  name: 'counter',
  schema: z.object({ i: z.number().int() }),
  unique: {
    key: (p: { i: number }) => {
      keyedBy.push(p);
      return `c:${p.i}`;
    },
  },
  handler: () => undefined,
});
const plain = defineJob({ name: 'plain', handler: () => undefined });

describe.each(DRIVER_KINDS)('enqueue takes its values at the call (%s)', (kind) => {
  let tdb: TestDatabase;
  let warden: Warden;

  beforeEach(async () => {
    keyedBy.length = 0;
    tdb = await createTestDatabase(kind);
    warden = makeWarden(tdb, { jobs: [email, counter, plain], retention: false, payloadLimit: 1_000 });
  });

  afterEach(async () => {
    await warden.close();
    await tdb.cleanup();
  });

  const payloadOf = async (id: string): Promise<unknown> => (await warden.jobs.get(id))!.payload;

  it('stores the payload the schema accepted, not what the object held after the call', async () => {
    const payload = { to: 'a@example.com' };
    const pending = warden.enqueue(email, payload);
    payload.to = 'not an email';
    expect(await payloadOf((await pending).id)).toEqual({ to: 'a@example.com' });
  });

  it('one payload object reused in a loop: each job keeps its own payload and derived key', async () => {
    const payload = { i: 0 };
    const pending: Promise<{ id: string; duplicate: boolean; job: { key: string | null } }>[] = [];
    for (let i = 0; i < 3; i++) {
      payload.i = i;
      pending.push(warden.enqueue(counter, payload));
    }
    const results = await Promise.all(pending);
    expect(results.map((r) => [r.duplicate, r.job.key])).toEqual([[false, 'c:0'], [false, 'c:1'], [false, 'c:2']]);
    expect(await Promise.all(results.map((r) => payloadOf(r.id)))).toEqual([{ i: 0 }, { i: 1 }, { i: 2 }]);
    // The key function saw copies of what was stored, never the caller's object.
    expect(keyedBy).toEqual([{ i: 0 }, { i: 1 }, { i: 2 }]);
    expect(keyedBy).not.toContain(payload);
  });

  it('a key given in unique, changed after the call: the job has the key it was called with', async () => {
    const unique = { key: 'first' };
    const pending = warden.enqueue(plain, {}, { unique });
    unique.key = 'second';
    expect((await pending).job.key).toBe('first');
  });

  it('a runAt Date moved, or made invalid, after the call: the job is due at the time it was called with', async () => {
    const at = new Date(Date.UTC(2030, 0, 1));
    const moved = warden.enqueue(plain, {}, { runAt: at });
    at.setTime(Date.UTC(2031, 0, 1));
    const invalid = new Date(Date.UTC(2030, 0, 2));
    const broken = warden.enqueue(plain, {}, { runAt: invalid });
    invalid.setTime(Number.NaN);
    const [a, b] = await Promise.all([moved, broken]);
    expect([a.job.runAt.toISOString(), b.job.runAt.toISOString()]).toEqual(['2030-01-01T00:00:00.000Z', '2030-01-02T00:00:00.000Z']);
    expect((await warden.jobs.get(a.id))!.runAt.toISOString()).toBe('2030-01-01T00:00:00.000Z');
    expect((await warden.jobs.get(b.id))!.runAt.toISOString()).toBe('2030-01-02T00:00:00.000Z');
  });

  it('enqueueMany: items edited after the call are stored as they were at the call', async () => {
    const items = [
      { job: email, payload: { to: 'a@example.com' } },
      { job: email, payload: { to: 'b@example.com' } },
      { job: counter, payload: { i: 7 } },
    ];
    const pending = warden.enqueueMany(items);
    items[1]!.payload.to = 'not an email';
    items[2]!.payload = { i: 8 };
    const results = await pending;
    expect(await Promise.all(results.map((r) => payloadOf(r.id)))).toEqual([{ to: 'a@example.com' }, { to: 'b@example.com' }, { i: 7 }]);
    expect(results[2]!.job.key).toBe('c:7');
  });

  it('a payload that fails its schema and cannot be stored either gets the schema’s issues, as before; a valid one the storage refusal', async () => {
    const notJson = { to: 'not an email', extra: 1n };
    const tooLarge = { to: 'not an email', text: 'x'.repeat(2_000) };
    for (const payload of [notJson, tooLarge]) await expectRejects(warden.enqueue(email, payload), PayloadValidationError);
    const many = await expectRejects(warden.enqueueMany([{ job: plain, payload: {} }, { job: email, payload: notJson }]), PayloadValidationError);
    expect(many.message).toMatch(/^items\[1\]: /);

    const validNotJson = { to: 'a@example.com', extra: 1n };
    const validTooLarge = { to: 'a@example.com', text: 'x'.repeat(2_000) };
    const json = await expectRejects(warden.enqueue(email, validNotJson), NonJsonValueError);
    expect(json.message).toBe('Expected the payload of job "email" to be plain JSON, got a BigInt (encode it as a string) at $.extra');
    const large = await expectRejects(warden.enqueue(email, validTooLarge), PayloadTooLargeError);
    expect(large.message).toBe('Expected the payload of job "email" of at most 1000 bytes as JSON, got 2032 bytes');
    expect(await countRows(tdb, 'jobs')).toBe(0);
  });

  it.each([
    ['a bad key', { key: '' }, InvalidNameError],
    ['a bad unique.window', { unique: { key: 'k', window: 'soon' } }, InvalidDurationError],
  ] as const)('%s option with a schema-invalid payload: the schema’s issues, as before the snapshot; with a valid one the option’s error, before a storage refusal', async (_, options, optionError) => {
    // The option is resolved at the call but refused only once the schema ran: the schema runs first.
    const send = (payload: object) => warden.enqueue(email, payload as { to: string }, options as never);
    await expectRejects(send({ to: 'not an email' }), PayloadValidationError);
    await expectRejects(send({ to: 'not an email', extra: 1n }), PayloadValidationError);
    await expectRejects(send({ to: 'a@example.com' }), optionError);
    // Options before the payload's encoding, as they were checked before it.
    await expectRejects(send({ to: 'a@example.com', extra: 1n }), optionError);
    await expectRejects(send({ to: 'a@example.com', text: 'x'.repeat(2_000) }), optionError);
    // enqueueMany: the first bad item, whichever of its refusals; an item's bad key after another item's bad queue.
    const schemaFirst = await expectRejects(
      warden.enqueueMany([{ job: email, payload: { to: 'x' } }, { job: email, payload: { to: 'a@example.com' }, options: options as never }]),
      PayloadValidationError,
    );
    expect(schemaFirst.message).toMatch(/^items\[0\]: /);
    const optionFirst = await expectRejects(
      warden.enqueueMany([{ job: email, payload: { to: 'a@example.com' }, options: options as never }, { job: plain, payload: {}, options: { queue: 'Bad Queue' } }]),
      optionError,
    );
    expect(optionFirst.message).toMatch(/^items\[0\]: /);
    expect(await countRows(tdb, 'jobs')).toBe(0);
  });

  it('enqueueMany reports the first bad item, whether its payload or its options are refused', async () => {
    const optionsFirst = await expectRejects(
      warden.enqueueMany([{ job: plain, payload: {}, options: { queue: 'Bad Queue' } }, { job: email, payload: { to: 'x' } }]),
      Error,
    );
    expect(optionsFirst.message).toMatch(/^items\[0\]: Expected queue/);
    const payloadFirst = await expectRejects(
      warden.enqueueMany([{ job: email, payload: { to: 'x' } }, { job: plain, payload: {}, options: { queue: 'Bad Queue' } }]),
      PayloadValidationError,
    );
    expect(payloadFirst.message).toMatch(/^items\[0\]: /);
    expect(await countRows(tdb, 'jobs')).toBe(0);
  });
});
