/**
 * A lock's `holder` is checked before any SQL, on both drivers alike: a string of 1–200 characters without control
 * characters or lone surrogates. The drivers would otherwise each take anything else their own way (an object: a
 * TypeError on SQLite, the text "{}" on PostgreSQL; a NUL: stored on SQLite, a database error on PostgreSQL; 42:
 * "42.0" on SQLite, "42" on PostgreSQL). `withLock` checks its `fn` before it takes the lock.
 * @module
 */
import { afterEach, describe, expect, it } from 'vitest';
import { InvalidOptionError } from '../../src/errors.js';
import { makeWarden } from '../runtime/helpers.js';
import { Cleanup } from '../support/cleanup.js';
import { createTestDatabase, DRIVER_KINDS } from '../support/test-databases.js';

const BAD_HOLDERS: [string, unknown][] = [
  ['an object', {}],
  ['a number', 42],
  ['null', null],
  ['empty', ''],
  ['a NUL', 'a\u0000b'],
  ['a line break', 'host\nforged-line'],
  ['201 characters', 'h'.repeat(201)],
  ['a lone surrogate', 'half \ud83d'],
];

describe.each(DRIVER_KINDS)('lock holder (%s)', (kind) => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  async function open() {
    const tdb = cleanup.add(await createTestDatabase(kind), (t) => t.cleanup());
    return cleanup.add(makeWarden(tdb, { retention: false }), (w) => w.close());
  }

  it('refuses a holder that is not 1-200 characters of printable text, before any SQL', async () => {
    const warden = await open();
    for (const [title, holder] of BAD_HOLDERS) {
      const error = await warden.locks.acquire('l', { ttl: '5s', holder: holder as never }).then(() => null, (e: unknown) => e);
      expect(error, title).toBeInstanceOf(InvalidOptionError);
      expect((error as InvalidOptionError).field, title).toBe('holder');
      await expect(warden.locks.withLock('l', { ttl: '5s', holder: holder as never }, async () => 1), title).rejects.toBeInstanceOf(InvalidOptionError);
    }
    expect(await warden.locks.list()).toEqual([]);
  });

  it('stores a holder of 200 characters, and the default, as given', async () => {
    const warden = await open();
    const holder = `ops:${'é'.repeat(196)}`;
    const lease = await warden.locks.acquire('l', { ttl: '5s', holder });
    expect((await warden.locks.list())[0]).toMatchObject({ name: 'l', holder });
    await lease!.release();
    const byDefault = await warden.locks.acquire('d', { ttl: '5s' });
    expect((await warden.locks.list()).find((l) => l.name === 'd')?.holder).toMatch(/^.+\/\d+$/);
    await byDefault!.release();
  });

  it('withLock refuses an fn that is not a function before it takes the lock', async () => {
    const warden = await open();
    const error = await warden.locks.withLock('l', { ttl: '5s' }, 5 as never).then(() => null, (e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidOptionError);
    expect((error as InvalidOptionError).field).toBe('fn');
    // Never taken: the next acquire gets the first token.
    expect(await warden.locks.list()).toEqual([]);
    const lease = await warden.locks.acquire('l', { ttl: '5s' });
    expect(lease?.token).toBe(1);
    await lease!.release();
  });

  it('refuses options that are not an object', async () => {
    const warden = await open();
    await expect(warden.locks.acquire('l', '5s' as never)).rejects.toBeInstanceOf(InvalidOptionError);
    await expect(warden.locks.acquire('l', undefined as never)).rejects.toBeInstanceOf(InvalidOptionError);
  });
});
