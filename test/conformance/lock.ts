/**
 * Conformance: lease locks — `lockAcquire`, `lockRenew`, `lockRelease`, `lockCheck` (also inside the caller's
 * transaction, and on PostgreSQL its `FOR SHARE` hold against a competing grant) and `lockList`. Tokens only
 * ever grow. Every call gets an explicit `now`.
 * @module
 */
import Database from 'better-sqlite3';
import type pg from 'pg';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Driver } from '../../src/driver/driver.js';
import type { LockGrant, LockRow } from '../../src/driver/lock-params.js';
import { InvalidTransactionError } from '../../src/errors.js';
import { createTestDatabase, type DriverKind, type TestDatabase } from '../support/test-databases.js';
import { at, expectRejects, openPgClient, openRawSqlite } from './helpers.js';

const LOCK = 'reports/nightly';
const TTL = 30_000;

/** Real-time bound of the waits in the blocking test: a guard against hangs, never a sleep. */
const GUARD_MS = 10_000;

/** Declares the lease-lock conformance tests for one driver kind. */
export function exerciseLock(kind: DriverKind): void {
  describe('lease locks', () => {
    let tdb: TestDatabase;
    beforeEach(async () => {
      tdb = await createTestDatabase(kind);
    });
    afterEach(async () => {
      await tdb.cleanup();
    });

    function acquire(holder: string, now: Date, ttlMs = TTL, name = LOCK, driver: Driver = tdb.driver): Promise<LockGrant | null> {
      return driver.lockAcquire({ name, holder, ttlMs, now });
    }

    function check(token: number, now: Date, name = LOCK): ReturnType<Driver['lockCheck']> {
      return tdb.driver.lockCheck({ name, token, now });
    }

    async function row(name = LOCK): Promise<LockRow> {
      const rows = (await tdb.driver.lockList()).filter((r) => r.name === name);
      expect(rows, `lock ${name} should be listed once`).toHaveLength(1);
      return rows[0]!;
    }

    describe('lockAcquire', () => {
      it('grants token 1 on a new name, expiring at now + ttl', async () => {
        expect(await acquire('w1', at(1_000))).toEqual({ token: 1, expiresAt: at(1_000 + TTL) });
        expect(await tdb.driver.lockList()).toEqual([
          { name: LOCK, token: 1, holder: 'w1', acquiredAt: at(1_000), expiresAt: at(1_000 + TTL) },
        ] satisfies LockRow[]);
      });

      it('returns null while held (now < expires_at), for another holder and the same one, changing nothing', async () => {
        await acquire('w1', at(0));
        const before = await row();
        expect(await acquire('w2', at(0))).toBeNull();
        expect(await acquire('w2', at(TTL - 1))).toBeNull();
        expect(await acquire('w1', at(10_000))).toBeNull();
        expect(await row()).toEqual(before);
      });

      it('takes over an expired lock (now >= expires_at): token + 1, holder replaced', async () => {
        await acquire('w1', at(0));
        expect(await acquire('w2', at(TTL), 10_000)).toEqual({ token: 2, expiresAt: at(TTL + 10_000) });
        expect(await row()).toEqual({ name: LOCK, token: 2, holder: 'w2', acquiredAt: at(TTL), expiresAt: at(TTL + 10_000) });
        expect(await acquire('w1', at(TTL + 9_999))).toBeNull();
        expect(await acquire('w3', at(TTL + 60_000))).toEqual({ token: 3, expiresAt: at(TTL + 60_000 + TTL) });
        expect((await row()).holder).toBe('w3');
      });

      it('grants a held lock again only to the acquire that holds it under its grant id and holder: token + 1, never to another', async () => {
        const acquireAs = (holder: string, grantId: string | null, now: Date) => tdb.driver.lockAcquire({ name: LOCK, holder, ttlMs: TTL, now, grantId });
        expect(await acquireAs('w1', 'g1', at(0))).toEqual({ token: 1, expiresAt: at(TTL) });
        // Another call, the same holder, no grant id at all, or the same id under another holder: held elsewhere.
        expect(await acquireAs('w2', 'g2', at(1))).toBeNull();
        expect(await acquireAs('w1', 'g2', at(1))).toBeNull();
        expect(await acquireAs('w1', null, at(1))).toBeNull();
        expect(await acquireAs('w2', 'g1', at(1))).toBeNull();
        // The call that made the grant, retried (its reply lost): granted again, a new token, a new expiry.
        expect(await acquireAs('w1', 'g1', at(2))).toEqual({ token: 2, expiresAt: at(2 + TTL) });
        expect(await row()).toEqual({ name: LOCK, token: 2, holder: 'w1', acquiredAt: at(2), expiresAt: at(2 + TTL) });
        expect(await check(1, at(3))).toEqual({ held: false, currentToken: 2 });
        // Taken over after expiry by another call, the first call's id no longer matches.
        expect(await acquireAs('w2', 'g2', at(2 + TTL))).toEqual({ token: 3, expiresAt: at(2 + 2 * TTL) });
        expect(await acquireAs('w1', 'g1', at(3 + TTL))).toBeNull();
        // Null ids never match each other.
        await tdb.driver.lockRelease({ name: LOCK, token: 3 });
        expect(await acquireAs('w3', null, at(4 + TTL))).toEqual({ token: 4, expiresAt: at(4 + 2 * TTL) });
        expect(await acquireAs('w3', null, at(5 + TTL))).toBeNull();
      });

      it('keeps locks of different names independent', async () => {
        expect(await acquire('w1', at(0), TTL, 'a')).toEqual({ token: 1, expiresAt: at(TTL) });
        expect(await acquire('w2', at(0), TTL, 'b')).toEqual({ token: 1, expiresAt: at(TTL) });
        expect(await acquire('w3', at(1), TTL, 'a')).toBeNull();
        expect(await acquire('w3', at(TTL), TTL, 'b')).toEqual({ token: 2, expiresAt: at(2 * TTL) });
        expect((await row('a')).token).toBe(1);
      });

      it('4 instances acquiring one lock at once: exactly one is granted each round', async () => {
        const drivers = [tdb.newDriver(), tdb.newDriver(), tdb.newDriver(), tdb.newDriver()];
        for (let round = 0; round < 5; round++) {
          const now = at(round * TTL);
          const grants = await Promise.all(drivers.flatMap((d, i) => [acquire(`w${i}`, now, TTL, LOCK, d), acquire(`w${i}b`, now, TTL, LOCK, d)]));
          const granted = grants.filter((g) => g !== null);
          expect(granted).toEqual([{ token: round + 1, expiresAt: at(round * TTL + TTL) }]);
        }
      });
    });

    describe('lockRenew', () => {
      it('extends the live token from now (longer or shorter), which protects it past the old expiry', async () => {
        await acquire('w1', at(0));
        expect(await tdb.driver.lockRenew({ name: LOCK, token: 1, ttlMs: TTL, now: at(20_000) })).toEqual({ token: 1, expiresAt: at(50_000) });
        expect(await row()).toEqual({ name: LOCK, token: 1, holder: 'w1', acquiredAt: at(0), expiresAt: at(50_000) });
        expect(await acquire('w2', at(45_000))).toBeNull();
        expect(await tdb.driver.lockRenew({ name: LOCK, token: 1, ttlMs: 1_000, now: at(46_000) })).toEqual({ token: 1, expiresAt: at(47_000) });
        expect(await acquire('w2', at(47_000))).toEqual({ token: 2, expiresAt: at(47_000 + TTL) });
      });

      it('returns null for a stale or wrong token, changing nothing', async () => {
        await acquire('w1', at(0));
        await acquire('w2', at(TTL));
        const before = await row();
        for (const token of [1, 3, 0, -1]) {
          expect(await tdb.driver.lockRenew({ name: LOCK, token, ttlMs: TTL, now: at(TTL + 1) })).toBeNull();
        }
        expect(await tdb.driver.lockRenew({ name: 'never-granted', token: 1, ttlMs: TTL, now: at(0) })).toBeNull();
        expect(await row()).toEqual(before);
        expect(await tdb.driver.lockList()).toHaveLength(1);
      });

      it('returns null once expired (now >= expires_at), even when nobody took it over', async () => {
        await acquire('w1', at(0));
        const before = await row();
        expect(await tdb.driver.lockRenew({ name: LOCK, token: 1, ttlMs: TTL, now: at(TTL) })).toBeNull();
        expect(await tdb.driver.lockRenew({ name: LOCK, token: 1, ttlMs: TTL, now: at(TTL + 1) })).toBeNull();
        expect(await row()).toEqual(before);
        expect(await acquire('w2', at(TTL + 2))).toEqual({ token: 2, expiresAt: at(2 * TTL + 2) });
      });

      it('returns null after a release', async () => {
        await acquire('w1', at(0));
        expect(await tdb.driver.lockRelease({ name: LOCK, token: 1 })).toBe(true);
        expect(await tdb.driver.lockRenew({ name: LOCK, token: 1, ttlMs: TTL, now: at(1_000) })).toBeNull();
        expect((await row()).holder).toBeNull();
      });
    });

    describe('lockRelease', () => {
      it('frees the lock for its holder, keeping the token; the next grant (before the old expiry) is token + 1', async () => {
        await acquire('w1', at(0));
        expect(await tdb.driver.lockRelease({ name: LOCK, token: 1 })).toBe(true);
        expect(await row()).toEqual({ name: LOCK, token: 1, holder: null, acquiredAt: at(0), expiresAt: null });
        expect(await acquire('w2', at(1_000))).toEqual({ token: 2, expiresAt: at(1_000 + TTL) });
        expect(await row()).toEqual({ name: LOCK, token: 2, holder: 'w2', acquiredAt: at(1_000), expiresAt: at(1_000 + TTL) });
      });

      it('returns false for a stale token, twice for the same token, and for an unknown name', async () => {
        await acquire('w1', at(0));
        await acquire('w2', at(TTL));
        const held = await row();
        expect(await tdb.driver.lockRelease({ name: LOCK, token: 1 })).toBe(false);
        expect(await tdb.driver.lockRelease({ name: LOCK, token: 3 })).toBe(false);
        expect(await row()).toEqual(held);
        expect(await tdb.driver.lockRelease({ name: LOCK, token: 2 })).toBe(true);
        expect(await tdb.driver.lockRelease({ name: LOCK, token: 2 })).toBe(false);
        expect(await tdb.driver.lockRelease({ name: 'unknown', token: 1 })).toBe(false);
        expect((await tdb.driver.lockList()).map((r) => r.name)).toEqual([LOCK]);
      });

      it('never resets tokens: acquire/release cycles count up', async () => {
        for (let i = 1; i <= 5; i++) {
          const grant = await acquire(`w${i}`, at(i * 1_000));
          expect(grant).toEqual({ token: i, expiresAt: at(i * 1_000 + TTL) });
          expect(await tdb.driver.lockRelease({ name: LOCK, token: i })).toBe(true);
        }
        expect(await row()).toEqual({ name: LOCK, token: 5, holder: null, acquiredAt: at(5_000), expiresAt: null });
      });
    });

    describe('lockCheck', () => {
      it('reports held and currentToken for live, stale, expired, released and never-granted locks', async () => {
        expect(await check(1, at(0))).toEqual({ held: false, currentToken: null });
        await acquire('w1', at(0));
        expect(await check(1, at(0))).toEqual({ held: true, currentToken: 1 });
        expect(await check(1, at(TTL - 1))).toEqual({ held: true, currentToken: 1 });
        expect(await check(2, at(1))).toEqual({ held: false, currentToken: 1 });
        // Expired, not yet taken over.
        expect(await check(1, at(TTL))).toEqual({ held: false, currentToken: 1 });
        // Taken over: the old token is stale, the new one live.
        await acquire('w2', at(TTL));
        expect(await check(1, at(TTL))).toEqual({ held: false, currentToken: 2 });
        expect(await check(2, at(TTL))).toEqual({ held: true, currentToken: 2 });
        // Released.
        expect(await tdb.driver.lockRelease({ name: LOCK, token: 2 })).toBe(true);
        expect(await check(2, at(TTL + 1))).toEqual({ held: false, currentToken: 2 });
        expect(await check(1, at(0), 'other')).toEqual({ held: false, currentToken: null });
      });

      it('rejects an invalid tx handle with InvalidTransactionError', async () => {
        await acquire('w1', at(0));
        for (const tx of [{}, 'tx', 42, { query: 'not a function' }, { prepare: () => undefined, inTransaction: false }]) {
          await expectRejects(tdb.driver.lockCheck({ name: LOCK, token: 1, now: at(0), tx }), InvalidTransactionError);
        }
      });

      if (kind === 'sqlite') {
        describe('through the caller\'s better-sqlite3 transaction', () => {
          let db: Database.Database;
          beforeEach(() => {
            db = openRawSqlite(tdb);
          });
          afterEach(() => {
            if (db.inTransaction) db.exec('ROLLBACK');
            db.close();
          });

          it('checks on that connection, inside its open BEGIN IMMEDIATE transaction, leaving it open', async () => {
            await acquire('w1', at(0));
            db.exec('BEGIN IMMEDIATE');
            expect(await tdb.driver.lockCheck({ name: LOCK, token: 1, now: at(1_000), tx: db })).toEqual({ held: true, currentToken: 1 });
            expect(await tdb.driver.lockCheck({ name: LOCK, token: 1, now: at(TTL), tx: db })).toEqual({ held: false, currentToken: 1 });
            expect(await tdb.driver.lockCheck({ name: 'never', token: 1, now: at(0), tx: db })).toEqual({ held: false, currentToken: null });
            expect(db.inTransaction).toBe(true);
            // The check sees the transaction's own uncommitted write; the driver's own connection does not.
            db.prepare('UPDATE locks SET token = 7 WHERE name = ?').run(LOCK);
            expect(await tdb.driver.lockCheck({ name: LOCK, token: 7, now: at(1_000), tx: db })).toEqual({ held: true, currentToken: 7 });
            expect(await check(7, at(1_000))).toEqual({ held: false, currentToken: 1 });
            db.exec('ROLLBACK');
            expect(await check(1, at(1_000))).toEqual({ held: true, currentToken: 1 });
          });

          it('rejects a Database with no open transaction', async () => {
            await acquire('w1', at(0));
            expect(db.inTransaction).toBe(false);
            await expectRejects(tdb.driver.lockCheck({ name: LOCK, token: 1, now: at(0), tx: db }), InvalidTransactionError);
          });
        });
      }

      if (kind === 'postgres') {
        describe('through the caller\'s pg transaction', () => {
          let client: pg.Client;
          let observer: pg.Client;
          beforeEach(async () => {
            client = await openPgClient();
            observer = await openPgClient();
          });
          afterEach(async () => {
            await client.query('ROLLBACK').catch(() => undefined);
            await client.end();
            await observer.end();
          });

          it('checks on that connection, inside its open transaction, leaving it open', async () => {
            await acquire('w1', at(0));
            await client.query('BEGIN');
            expect(await tdb.driver.lockCheck({ name: LOCK, token: 1, now: at(1_000), tx: client })).toEqual({ held: true, currentToken: 1 });
            expect(await tdb.driver.lockCheck({ name: LOCK, token: 1, now: at(TTL), tx: client })).toEqual({ held: false, currentToken: 1 });
            expect(await tdb.driver.lockCheck({ name: 'never', token: 1, now: at(0), tx: client })).toEqual({ held: false, currentToken: null });
            // The check sees the transaction's own uncommitted write; the driver's own connections do not.
            await client.query(`UPDATE "${tdb.schema}".locks SET token = 7 WHERE name = $1`, [LOCK]);
            expect(await tdb.driver.lockCheck({ name: LOCK, token: 7, now: at(1_000), tx: client })).toEqual({ held: true, currentToken: 7 });
            expect(await check(7, at(1_000))).toEqual({ held: false, currentToken: 1 });
            const status = await client.query<{ s: string }>('SELECT 1 AS s');
            expect(status.rowCount).toBe(1);
            await client.query('ROLLBACK');
            expect(await check(1, at(1_000))).toEqual({ held: true, currentToken: 1 });
          });

          it('rejects a client with no open transaction: its FOR SHARE would end with the check', async () => {
            await acquire('w1', at(0));
            await expectRejects(tdb.driver.lockCheck({ name: LOCK, token: 1, now: at(0), tx: client }), InvalidTransactionError);
          });

          it('rejects a better-sqlite3 Database as tx', async () => {
            const db = new Database(':memory:');
            try {
              db.exec('BEGIN');
              await expectRejects(tdb.driver.lockCheck({ name: LOCK, token: 1, now: at(0), tx: db }), InvalidTransactionError);
            } finally {
              db.close();
            }
          });

          it('holds the checked row FOR SHARE: a competing lockAcquire of the expired lock waits until the tx commits', async () => {
            await acquire('w1', at(0), 1_000);
            const other = tdb.newDriver();
            await client.query('BEGIN');
            expect(await tdb.driver.lockCheck({ name: LOCK, token: 1, now: at(5_000), tx: client })).toEqual({ held: false, currentToken: 1 });

            const events: string[] = [];
            const acquiring = acquire('w2', at(5_000), 10_000, LOCK, other).then(
              (grant) => {
                events.push('granted');
                return grant;
              },
              (error: unknown) => {
                events.push('failed');
                throw error;
              },
            );
            try {
              // The acquirer is seen waiting on a lock held by our transaction (bounded real-time poll).
              const deadline = Date.now() + GUARD_MS;
              for (;;) {
                const waiting = await observer.query<{ n: string }>(
                  `SELECT COUNT(*) AS n FROM pg_stat_activity
                   WHERE wait_event_type = 'Lock' AND state = 'active' AND query LIKE '%' || $1 || '%' AND query LIKE 'INSERT INTO%'`,
                  [`"${tdb.schema}".locks`],
                );
                if (Number(waiting.rows[0]!.n) === 1) break;
                expect(events, 'lockAcquire must not complete while the transaction holds the row').toEqual([]);
                if (Date.now() > deadline) throw new Error(`Expected lockAcquire to wait on the row lock within ${GUARD_MS}ms, got no waiting backend`);
                await new Promise((resolve) => setTimeout(resolve, 5));
              }
              // Still waiting a little later.
              await new Promise((resolve) => setTimeout(resolve, 200));
              expect(events).toEqual([]);
              events.push('commit');
              await client.query('COMMIT');
              const grant = await promiseWithin(acquiring, GUARD_MS, 'lockAcquire after COMMIT');
              expect(grant).toEqual({ token: 2, expiresAt: at(15_000) });
              expect(events).toEqual(['commit', 'granted']);
              expect(await row()).toEqual({ name: LOCK, token: 2, holder: 'w2', acquiredAt: at(5_000), expiresAt: at(15_000) });
            } finally {
              await client.query('ROLLBACK').catch(() => undefined);
              await acquiring.catch(() => undefined);
            }
          });
        });
      }
    });

    describe('a token that is not a whole number', () => {
      // The lock manager refuses these before any SQL; a driver called directly must still give every driver's
      // answer: no match. The text of the live token is what `pg` reads back from a `bigint` column, and SQLite's
      // integer affinity would otherwise match it (and a bigint) to the live token.
      const notWhole: unknown[] = ['1', ' 1', 1.5, Number.NaN, Number.POSITIVE_INFINITY, 1n];

      it('never matches in lockCheck, lockRenew or lockRelease, changing nothing', async () => {
        await acquire('w1', at(0));
        const before = await row();
        for (const bad of notWhole) {
          const token = bad as number;
          const what = `token ${String(bad)} (${typeof bad})`;
          expect(await check(token, at(1)), what).toEqual({ held: false, currentToken: 1 });
          expect(await tdb.driver.lockRenew({ name: LOCK, token, ttlMs: TTL, now: at(1) }), what).toBeNull();
          expect(await tdb.driver.lockRelease({ name: LOCK, token }), what).toBe(false);
        }
        expect(await row()).toEqual(before);
        expect(await check(1, at(1))).toEqual({ held: true, currentToken: 1 });
      });
    });

    describe('lockList', () => {
      it('lists every lock row by name: held, expired and released', async () => {
        expect(await tdb.driver.lockList()).toEqual([]);
        await acquire('w-c', at(0), TTL, 'c');
        await acquire('w-a', at(1_000), 5_000, 'a');
        await acquire('w-b', at(2_000), TTL, 'b');
        expect(await tdb.driver.lockRelease({ name: 'b', token: 1 })).toBe(true);
        expect(await tdb.driver.lockList()).toEqual([
          { name: 'a', token: 1, holder: 'w-a', acquiredAt: at(1_000), expiresAt: at(6_000) },
          { name: 'b', token: 1, holder: null, acquiredAt: at(2_000), expiresAt: null },
          { name: 'c', token: 1, holder: 'w-c', acquiredAt: at(0), expiresAt: at(TTL) },
        ] satisfies LockRow[]);
      });
    });
  });
}

/** `promise`, or a rejection after `ms` of real time (a guard against hangs). */
function promiseWithin<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const guard = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Expected ${what} to settle within ${ms}ms, got no result`)), ms);
  });
  return Promise.race([promise, guard]).finally(() => clearTimeout(timer));
}
