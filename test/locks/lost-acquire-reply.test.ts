/**
 * A lock acquire whose reply is lost after its grant committed (PostgreSQL, through `test/support/pg-relay.ts`):
 * the lock is held under a grant nobody knows of. The lock manager asks once more under the same grant id and takes
 * that grant up (token + 1), instead of the lock staying held, by nobody, until its lease expires.
 * @module
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createWarden } from '../../src/client/warden.js';
import { RelayedDatabase } from '../support/pg-relay.js';
import { DRIVER_KINDS } from '../support/test-databases.js';
import { silent } from '../runtime/helpers.js';

describe.skipIf(!DRIVER_KINDS.includes('postgres'))('lock acquire with its reply lost (postgres)', () => {
  const db = new RelayedDatabase();
  beforeEach(() => db.open());
  afterEach(() => db.close());

  it('takes up the grant its lost reply carried, under the next token, and holds the lock as any grant', async () => {
    const warden = db.track(createWarden({ database: await db.driver(), logger: silent }));
    const acquired: number[] = [];
    warden.on('lock:acquired', (e) => acquired.push(e.token));
    // The acquire statement (unnamed, its text in every Parse): the first is granted, its answer dropped.
    db.relay.arm('locks AS l');
    const lease = await warden.locks.acquire('nightly', { ttl: '1h', holder: 'me' });
    expect(db.relay.cut).toBe(1);
    expect(lease).not.toBeNull();
    expect(lease!.token).toBe(2);
    expect(acquired).toEqual([2]);
    const other = db.tdb.driver;
    expect(await other.lockList()).toEqual([expect.objectContaining({ name: 'nightly', token: 2, holder: 'me' })]);
    expect(await other.lockCheck({ name: 'nightly', token: 1, now: null })).toEqual({ held: false, currentToken: 2 });
    expect(await other.lockAcquire({ name: 'nightly', holder: 'other', ttlMs: 60_000, now: null })).toBeNull();
    await lease!.release();
    expect(await other.lockAcquire({ name: 'nightly', holder: 'other', ttlMs: 60_000, now: null })).toMatchObject({ token: 3 });
  });
});
