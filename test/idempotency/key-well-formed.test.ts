/**
 * A dedup key must be well-formed UTF-16 (`validateKey`). A lone surrogate cannot be encoded as UTF-8 on the way to
 * the database: PostgreSQL stored U+FFFD for it, so two different keys deduplicated against each other (and two of
 * them in one `enqueueMany` failed with a raw "ON CONFLICT DO UPDATE command cannot affect row a second time"),
 * while SQLite read back another key than the one given. Now refused with `InvalidNameError` on both drivers, from
 * every way a key is given; keys with characters outside the BMP (surrogate pairs) work as any other.
 * @module
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Warden } from '../../src/client/warden.js';
import { InvalidNameError } from '../../src/errors.js';
import { defineJob } from '../../src/job/define-job.js';
import { countRows, expectRejects } from '../conformance/helpers.js';
import { makeWarden } from '../runtime/helpers.js';
import { createTestDatabase, DRIVER_KINDS, type TestDatabase } from '../support/test-databases.js';

const task = defineJob({ name: 'task', handler: () => undefined });
/** Derives its key by cutting the last code unit, as a key cut to a length can: a pair at the end is split. */
const derived = defineJob({ name: 'derived', unique: { key: (p: { ref: string }) => `ref:${p.ref}`.slice(0, -1) }, handler: () => undefined });

const HIGH = 'order:\uD800';
const LOW = 'order:\uDC00';
/** A high surrogate followed by a letter, and the pair reversed: lone surrogates within longer text. */
const MIXED = ['a\uD83Db', '\uDE00\uD83D'];

describe.each(DRIVER_KINDS)('dedup keys with lone surrogates (%s)', (kind) => {
  let tdb: TestDatabase;
  let warden: Warden;

  beforeEach(async () => {
    tdb = await createTestDatabase(kind);
    warden = makeWarden(tdb, { jobs: [task, derived], retention: false });
  });

  afterEach(async () => {
    await warden.close();
    await tdb.cleanup();
  });

  it('refuses them as key, unique.key and derived keys with InvalidNameError; nothing is written', async () => {
    for (const key of [HIGH, LOW, ...MIXED]) {
      const direct = await expectRejects(warden.enqueue(task, {}, { key }), InvalidNameError);
      expect(direct.field).toBe('key');
      expect(direct.message).toMatch(/^Expected key to be well-formed text, without lone UTF-16 surrogates \(half of a character\), got /);
      await expectRejects(warden.enqueue(task, {}, { unique: { key, replace: true } }), InvalidNameError);
    }
    // The payload is well-formed; the key cut from it is not.
    await expectRejects(warden.enqueue(derived, { ref: 'x\u{1F600}' }), InvalidNameError);
    const many = await expectRejects(
      warden.enqueueMany([{ job: task, payload: {}, options: { key: HIGH } }, { job: task, payload: {}, options: { key: LOW } }]),
      InvalidNameError,
    );
    expect(many.message).toMatch(/^items\[0\]: /);
    expect(await countRows(tdb, 'jobs')).toBe(0);
    // The same function on a payload whose cut keeps the pair whole.
    expect((await warden.enqueue(derived, { ref: '\u{1F600}x!' })).job.key).toBe('ref:\u{1F600}x');
  });

  it('keeps keys with surrogate pairs distinct and reads them back as given', async () => {
    const smile = 'order:\u{1F600}';
    const grin = 'order:\u{1F601}';
    const first = await warden.enqueue(task, { n: 1 }, { key: smile });
    const other = await warden.enqueue(task, { n: 2 }, { key: grin });
    const again = await warden.enqueue(task, { n: 3 }, { key: smile });
    expect([first.duplicate, other.duplicate, again.duplicate, again.id]).toEqual([false, false, true, first.id]);
    expect((await warden.jobs.get(first.id))!.key).toBe(smile);
    expect((await warden.jobs.get(other.id))!.key).toBe(grin);
    const [a, b] = await warden.enqueueMany([
      { job: task, payload: {}, options: { key: 'batch:\u{1F600}' } },
      { job: task, payload: {}, options: { key: 'batch:\u{1F601}' } },
    ]);
    expect([a!.duplicate, b!.duplicate, a!.id === b!.id]).toEqual([false, false, false]);
  });
});
