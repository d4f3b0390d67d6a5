/**
 * Conformance: `jobInsertMany` — defaults, due times, input order, key dedup, payload round-trips and
 * inserting through the caller's own transaction.
 * @module
 */
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { InvalidTransactionError } from '../../src/errors.js';
import type { JobInsert } from '../../src/driver/driver.js';
import type { JobRow } from '../../src/job/job-record.js';
import { createTestDatabase, makeInsert, type DriverKind, type TestDatabase } from '../support/test-databases.js';
import {
  at,
  claim,
  claimExactly,
  errorInfo,
  expectRejects,
  finishOf,
  getJob,
  insertJob,
  openPgClient,
  openRawSqlite,
  T0_MS,
} from './helpers.js';

/** Declares the `jobInsertMany` conformance tests for one driver kind. */
export function exerciseJobInsert(kind: DriverKind): void {
  describe('jobInsertMany', () => {
    let tdb: TestDatabase;
    beforeEach(async () => {
      tdb = await createTestDatabase(kind);
    });
    afterEach(async () => {
      await tdb.cleanup();
    });

    it('stores a new job with the documented defaults', async () => {
      const results = await tdb.driver.jobInsertMany({
        jobs: [makeInsert({ name: 'email.send', queue: 'mail', payloadJson: '{"to":"a@b.c"}', priority: 7, maxAttempts: 5 })],
        now: at(0),
      });
      expect(results).toHaveLength(1);
      const expected: JobRow = {
        id: expect.stringMatching(/^[1-9][0-9]*$/) as unknown as string,
        name: 'email.send',
        queue: 'mail',
        payload: { to: 'a@b.c' },
        state: 'queued',
        priority: 7,
        runAt: at(0),
        attempt: 0,
        maxAttempts: 5,
        lostCount: 0,
        leaseToken: 0,
        leaseWorker: null,
        leaseExpiresAt: null,
        startedAt: null,
        key: null,
        lastError: null,
        createdAt: at(0),
        updatedAt: at(0),
        finishedAt: null,
        scheduleName: null,
        tickAt: null,
        checkpoint: null,
        progress: null,
        checkpointAt: null,
        traceContext: null,
      };
      expect(results[0]).toEqual({ job: expected, duplicate: false, replaced: false });
      expect(await tdb.driver.jobGet({ id: results[0]!.job.id })).toEqual(results[0]!.job);
    });

    // The drivers build a new job's row from its insert instead of reading it back (`insertedJobRow`): whatever
    // the insert sets or leaves to the schema's defaults, the row returned must be the row stored.
    it('returns every newly inserted job exactly as stored, for single, batch and keyed inserts', async () => {
      const trace = { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', tracestate: 'x=1' };
      const varied: JobInsert[] = [
        makeInsert({ name: 'a', queue: 'q1', payloadJson: '{"b":1,"a":[1.50,"é",{"z":null}],"a":2}', priority: -3, maxAttempts: 1 }),
        makeInsert({ name: 'b', queue: 'q2', delayMs: 1_500.7, key: 'k-new' }),
        makeInsert({ name: 'c', queue: 'q1', runAt: at(-5_000), scheduleName: 'nightly', tickAt: at(-5_000) }),
        makeInsert({ name: 'd', queue: 'q3', payloadJson: '"just text"', traceContext: trace }),
        makeInsert({ name: 'e', payloadJson: 'null', delayMs: 86_400_000 }),
      ];
      const checks: [string, JobInsert[], Date | null][] = [
        ['one job', [varied[0]!], at(0)],
        ['one job on the database clock', [varied[3]!], null],
        ['one keyed job', [varied[1]!], at(0)],
        ['a batch', varied.map((j) => ({ ...j, key: null })), at(0)],
        ['a batch on the database clock', varied.map((j) => ({ ...j, key: null })), null],
        ['a mixed keyed batch', varied.map((j, i) => ({ ...j, key: i % 2 === 0 ? `mixed-${i}` : null })), at(0)],
      ];
      for (const [what, jobs, now] of checks) {
        const results = await tdb.driver.jobInsertMany({ jobs, now });
        expect(results.map((r) => [r.job.name, r.duplicate]), what).toEqual(jobs.map((j) => [j.name, false]));
        for (const result of results) expect(result.job, `${what}: job ${result.job.name}`).toEqual(await getJob(tdb.driver, result.job.id));
      }
    });

    it('returns lease tokens and counters as numbers and times as Dates', async () => {
      const job = await insertJob(tdb.driver);
      expect(typeof job.id).toBe('string');
      expect(typeof job.leaseToken).toBe('number');
      expect(typeof job.attempt).toBe('number');
      expect(typeof job.maxAttempts).toBe('number');
      expect(typeof job.priority).toBe('number');
      expect(job.runAt).toBeInstanceOf(Date);
      expect(job.createdAt).toBeInstanceOf(Date);
      expect(job.updatedAt).toBeInstanceOf(Date);
    });

    it('uses the database clock when now is null', async () => {
      const before = await tdb.driver.dbNow();
      const job = await insertJob(tdb.driver, {}, null);
      const after = await tdb.driver.dbNow();
      expect(job.createdAt.getTime()).toBeGreaterThanOrEqual(before.getTime());
      expect(job.createdAt.getTime()).toBeLessThanOrEqual(after.getTime());
      expect(job.runAt.getTime()).toBe(job.createdAt.getTime());
      expect(job.updatedAt.getTime()).toBe(job.createdAt.getTime());
    });

    it('makes a job due delayMs after now, not claimable before', async () => {
      const job = await insertJob(tdb.driver, { delayMs: 5_000 });
      expect(job.runAt).toEqual(at(5_000));
      expect(job.createdAt).toEqual(at(0));
      expect(await claim(tdb.driver, { now: at(0) })).toEqual([]);
      expect(await claim(tdb.driver, { now: at(4_999) })).toEqual([]);
      await claimExactly(tdb.driver, job.id, { now: at(5_000) });
    });

    it('uses runAt over delayMs when both are given', async () => {
      const job = await insertJob(tdb.driver, { runAt: at(10_000), delayMs: 99_000 });
      expect(job.runAt).toEqual(at(10_000));
      expect(await claim(tdb.driver, { now: at(9_999) })).toEqual([]);
      await claimExactly(tdb.driver, job.id, { now: at(10_000) });
    });

    it('accepts a runAt in the past (due at once)', async () => {
      const job = await insertJob(tdb.driver, { runAt: at(-60_000) });
      expect(job.runAt).toEqual(at(-60_000));
      expect(job.createdAt).toEqual(at(0));
      await claimExactly(tdb.driver, job.id, { now: at(0) });
    });

    it('inserts a batch in one call, results in input order with ascending ids', async () => {
      const names = ['a', 'b', 'c', 'd', 'e'];
      const results = await tdb.driver.jobInsertMany({ jobs: names.map((name) => makeInsert({ name })), now: at(0) });
      expect(results.map((r) => [r.job.name, r.duplicate])).toEqual(names.map((n) => [n, false]));
      const ids = results.map((r) => BigInt(r.job.id));
      for (let i = 1; i < ids.length; i++) expect(ids[i]! > ids[i - 1]!).toBe(true);
      const listed = await tdb.driver.jobList({});
      expect(listed.map((j) => j.name)).toEqual([...names].reverse());
    });

    it('inserts nothing for an empty batch', async () => {
      expect(await tdb.driver.jobInsertMany({ jobs: [], now: at(0) })).toEqual([]);
      expect(await tdb.driver.jobList({})).toEqual([]);
    });

    it('returns the active job with duplicate: true when its key is taken', async () => {
      const first = await insertJob(tdb.driver, { key: 'order-1', name: 'first' });
      const results = await tdb.driver.jobInsertMany({
        jobs: [makeInsert({ key: 'order-1', name: 'second', payloadJson: '{"x":1}' })],
        now: at(1_000),
      });
      expect(results).toEqual([{ job: first, duplicate: true, replaced: false }]);
      expect((await tdb.driver.jobList({})).map((j) => j.id)).toEqual([first.id]);
    });

    it('keeps input order in a mixed keyed/unkeyed batch, deduplicating within the batch too', async () => {
      const existing = await insertJob(tdb.driver, { key: 'k1', name: 'existing' });
      const results = await tdb.driver.jobInsertMany({
        jobs: [
          makeInsert({ name: 'plain-a' }),
          makeInsert({ name: 'dup-of-existing', key: 'k1' }),
          makeInsert({ name: 'keyed-new', key: 'k2' }),
          makeInsert({ name: 'plain-b' }),
          makeInsert({ name: 'dup-in-batch', key: 'k2' }),
          makeInsert({ name: 'keyed-other', key: 'k3' }),
        ],
        now: at(1_000),
      });
      expect(results.map((r) => [r.job.name, r.job.key, r.duplicate])).toEqual([
        ['plain-a', null, false],
        ['existing', 'k1', true],
        ['keyed-new', 'k2', false],
        ['plain-b', null, false],
        ['keyed-new', 'k2', true],
        ['keyed-other', 'k3', false],
      ]);
      expect(results[1]!.job).toEqual(existing);
      expect(results[4]!.job).toEqual(results[2]!.job);
      const newIds = [results[0], results[2], results[3], results[5]].map((r) => BigInt(r!.job.id));
      for (let i = 1; i < newIds.length; i++) expect(newIds[i]! > newIds[i - 1]!).toBe(true);
      const all = await tdb.driver.jobList({});
      expect(all.map((j) => j.name).sort()).toEqual(['existing', 'keyed-new', 'keyed-other', 'plain-a', 'plain-b']);
    });

    it('deduplicates against a running job with the same key', async () => {
      const first = await insertJob(tdb.driver, { key: 'k' });
      const running = await claimExactly(tdb.driver, first.id);
      const [again] = await tdb.driver.jobInsertMany({ jobs: [makeInsert({ key: 'k' })], now: at(1_000) });
      expect(again).toEqual({ job: running, duplicate: true, replaced: false });
    });

    it('deduplicates against a retrying job with the same key', async () => {
      const first = await insertJob(tdb.driver, { key: 'k' });
      const running = await claimExactly(tdb.driver, first.id);
      await tdb.driver.jobFinishMany({
        items: [finishOf(running, { outcome: 'failed', state: 'retrying', retryDelayMs: 60_000, error: errorInfo() })],
        now: at(1_000),
      });
      const retrying = await getJob(tdb.driver, first.id);
      expect(retrying.state).toBe('retrying');
      const [again] = await tdb.driver.jobInsertMany({ jobs: [makeInsert({ key: 'k' })], now: at(2_000) });
      expect(again).toEqual({ job: retrying, duplicate: true, replaced: false });
    });

    it('allows a key again once its job completed', async () => {
      const first = await insertJob(tdb.driver, { key: 'k' });
      const running = await claimExactly(tdb.driver, first.id);
      const fin = await tdb.driver.jobFinishMany({ items: [finishOf(running)], now: at(1_000) });
      expect(fin).toEqual({ applied: [first.id], stale: [] });
      const [again] = await tdb.driver.jobInsertMany({ jobs: [makeInsert({ key: 'k' })], now: at(2_000) });
      expect(again!.duplicate).toBe(false);
      expect(again!.job.id).not.toBe(first.id);
      expect(again!.job.state).toBe('queued');
      expect(again!.job.key).toBe('k');
      expect((await getJob(tdb.driver, first.id)).state).toBe('completed');
    });

    it('allows a key again once its job died', async () => {
      const first = await insertJob(tdb.driver, { key: 'k' });
      const running = await claimExactly(tdb.driver, first.id);
      await tdb.driver.jobFinishMany({
        items: [finishOf(running, { outcome: 'failed', state: 'dead', error: errorInfo() })],
        now: at(1_000),
      });
      const [again] = await tdb.driver.jobInsertMany({ jobs: [makeInsert({ key: 'k' })], now: at(2_000) });
      expect(again!.duplicate).toBe(false);
      expect(again!.job.id).not.toBe(first.id);
      expect((await getJob(tdb.driver, first.id)).state).toBe('dead');
    });

    it('allows a key again once its job was cancelled', async () => {
      const first = await insertJob(tdb.driver, { key: 'k' });
      await tdb.driver.jobCancel({ id: first.id, now: at(1_000) });
      const [again] = await tdb.driver.jobInsertMany({ jobs: [makeInsert({ key: 'k' })], now: at(2_000) });
      expect(again!.duplicate).toBe(false);
      expect(again!.job.id).not.toBe(first.id);
      // And the new holder of the key blocks the next one.
      const [third] = await tdb.driver.jobInsertMany({ jobs: [makeInsert({ key: 'k' })], now: at(3_000) });
      expect(third).toEqual({ job: again!.job, duplicate: true, replaced: false });
    });

    it('does not deduplicate distinct keys or unkeyed jobs', async () => {
      const results = await tdb.driver.jobInsertMany({
        jobs: [makeInsert(), makeInsert(), makeInsert({ key: 'a' }), makeInsert({ key: 'A' }), makeInsert({ key: 'a ' })],
        now: at(0),
      });
      expect(results.map((r) => r.duplicate)).toEqual([false, false, false, false, false]);
      expect(new Set(results.map((r) => r.job.id)).size).toBe(5);
    });

    const payloads: [string, unknown][] = [
      ['a nested object', { a: { b: { c: [1, 2, { d: [true, false, null] }] } }, list: [[], {}, [[[]]]], empty: '' }],
      ['unicode text', { s: 'héllo wörld — ✓ 日本語 🚀👩🏽‍💻 \u2028\u2029 مرحبا', 'ключ': 'значение', '🔑': 'emoji key' }],
      ['escapes', { quote: '"', backslash: '\\', newline: 'a\nb', tab: '\t', control: '\u0001\u001f', slash: '/' }],
      ['numbers', { int: 42, neg: -7, float: 0.1, small: 1.5e-7, big: 1e21, max: Number.MAX_SAFE_INTEGER, zero: 0 }],
      ['a top-level array', [1, 'two', { three: 3 }, [4]]],
      ['a top-level string', 'just a string'],
      ['a top-level number', 3.25],
      ['top-level null', null],
      ['deep nesting', Array.from({ length: 40 }).reduce<unknown>((acc) => ({ n: acc }), 'bottom')],
    ];
    it.each(payloads)('round-trips %s as the same JSON', async (_label, value) => {
      const payloadJson = JSON.stringify(value);
      const job = await insertJob(tdb.driver, { payloadJson });
      const read = await getJob(tdb.driver, job.id);
      for (const row of [job, read]) {
        expect(row.payload).toEqual(value);
        expect(canonicalJson(row.payload)).toBe(canonicalJson(value));
      }
      const [claimed] = await claim(tdb.driver);
      expect(canonicalJson(claimed!.payload)).toBe(canonicalJson(value));
    });

    it('round-trips a large payload byte for byte', async () => {
      const value = { items: Array.from({ length: 2_000 }, (_, i) => ({ i, s: `item-${i}-ü-✓` })) };
      const job = await insertJob(tdb.driver, { payloadJson: JSON.stringify(value) });
      expect(canonicalJson((await getJob(tdb.driver, job.id)).payload)).toBe(canonicalJson(value));
    });

    it('rejects an invalid tx handle with InvalidTransactionError and writes nothing', async () => {
      for (const tx of [{}, 'tx', 42, { query: 'not a function' }]) {
        await expectRejects(tdb.driver.jobInsertMany({ jobs: [makeInsert({ key: 'k' })], now: at(0), tx }), InvalidTransactionError);
      }
      expect(await tdb.driver.jobList({})).toEqual([]);
      expect(await claim(tdb.driver)).toEqual([]);
      expect(await tdb.driver.queueList()).toEqual([]);
      // The key is still free.
      const [fresh] = await tdb.driver.jobInsertMany({ jobs: [makeInsert({ key: 'k' })], now: at(0) });
      expect(fresh!.duplicate).toBe(false);
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

        it('is invisible and never claimed after ROLLBACK', async () => {
          db.exec('BEGIN IMMEDIATE');
          const [result] = await tdb.driver.jobInsertMany({ jobs: [makeInsert({ key: 'tx-key' })], now: at(0), tx: db });
          expect(result!.duplicate).toBe(false);
          expect(result!.job.state).toBe('queued');
          expect(db.inTransaction).toBe(true);
          db.exec('ROLLBACK');
          expect(await tdb.driver.jobGet({ id: result!.job.id })).toBeNull();
          expect(await tdb.driver.jobList({})).toEqual([]);
          expect(await claim(tdb.driver, { now: at(60_000) })).toEqual([]);
          // The key was never taken.
          const [again] = await tdb.driver.jobInsertMany({ jobs: [makeInsert({ key: 'tx-key' })], now: at(0) });
          expect(again!.duplicate).toBe(false);
        });

        it('is claimable after COMMIT', async () => {
          db.exec('BEGIN IMMEDIATE');
          const [result] = await tdb.driver.jobInsertMany({ jobs: [makeInsert(), makeInsert({ name: 'second' })], now: at(0), tx: db });
          db.exec('COMMIT');
          const job = await getJob(tdb.driver, result!.job.id);
          expect(job).toEqual(result!.job);
          const claimed = await claim(tdb.driver);
          expect(claimed.map((j) => j.name)).toEqual(['test-job', 'second']);
        });

        it('leaves the caller\'s transaction open and usable', async () => {
          db.exec('BEGIN IMMEDIATE');
          await tdb.driver.jobInsertMany({ jobs: [makeInsert()], now: at(0), tx: db });
          expect(db.inTransaction).toBe(true);
          db.exec('CREATE TABLE app_side (x INTEGER)');
          db.exec('COMMIT');
          expect(await tdb.driver.jobList({})).toHaveLength(1);
        });

        it('deduplicates inside the caller\'s transaction', async () => {
          const existing = await insertJob(tdb.driver, { key: 'k' });
          db.exec('BEGIN IMMEDIATE');
          const [result] = await tdb.driver.jobInsertMany({ jobs: [makeInsert({ key: 'k' })], now: at(0), tx: db });
          db.exec('COMMIT');
          expect(result).toEqual({ job: existing, duplicate: true, replaced: false });
        });

        it('rejects a Database that has no open transaction, writing nothing', async () => {
          expect(db.inTransaction).toBe(false);
          await expectRejects(tdb.driver.jobInsertMany({ jobs: [makeInsert()], now: at(0), tx: db }), InvalidTransactionError);
          expect(await tdb.driver.jobList({})).toEqual([]);
        });

        it('rejects a pg client as tx', async () => {
          const client = new pg.Client({ connectionString: 'postgres://127.0.0.1:1/none' });
          await expectRejects(tdb.driver.jobInsertMany({ jobs: [makeInsert()], now: at(0), tx: client }), InvalidTransactionError);
          expect(await tdb.driver.jobList({})).toEqual([]);
        });
      });
    }

    if (kind === 'postgres') {
      describe('through the caller\'s pg transaction', () => {
        let client: pg.Client;
        beforeEach(async () => {
          client = await openPgClient();
        });
        afterEach(async () => {
          await client.end();
        });

        it('is invisible and never claimed after ROLLBACK', async () => {
          await client.query('BEGIN');
          const [result] = await tdb.driver.jobInsertMany({ jobs: [makeInsert({ key: 'tx-key' })], now: at(0), tx: client });
          expect(result!.duplicate).toBe(false);
          expect(result!.job.state).toBe('queued');
          // Not visible to other connections before commit.
          expect(await tdb.driver.jobGet({ id: result!.job.id })).toBeNull();
          await client.query('ROLLBACK');
          expect(await tdb.driver.jobGet({ id: result!.job.id })).toBeNull();
          expect(await tdb.driver.jobList({})).toEqual([]);
          expect(await claim(tdb.driver, { now: at(60_000) })).toEqual([]);
          const [again] = await tdb.driver.jobInsertMany({ jobs: [makeInsert({ key: 'tx-key' })], now: at(0) });
          expect(again!.duplicate).toBe(false);
        });

        it('is claimable after COMMIT', async () => {
          await client.query('BEGIN');
          const [result] = await tdb.driver.jobInsertMany({ jobs: [makeInsert(), makeInsert({ name: 'second' })], now: at(0), tx: client });
          expect(await claim(tdb.driver)).toEqual([]);
          await client.query('COMMIT');
          expect(await getJob(tdb.driver, result!.job.id)).toEqual(result!.job);
          const claimed = await claim(tdb.driver);
          expect(claimed.map((j) => j.name)).toEqual(['test-job', 'second']);
        });

        it('leaves the caller\'s transaction open and usable', async () => {
          await client.query('BEGIN');
          await tdb.driver.jobInsertMany({ jobs: [makeInsert()], now: at(0), tx: client });
          const res = await client.query<{ n: string }>(`SELECT COUNT(*) AS n FROM "${tdb.schema}".jobs`);
          expect(res.rows[0]!.n).toBe('1');
          await client.query('COMMIT');
          expect(await tdb.driver.jobList({})).toHaveLength(1);
        });

        it('deduplicates inside the caller\'s transaction', async () => {
          const existing = await insertJob(tdb.driver, { key: 'k' });
          await client.query('BEGIN');
          const [result] = await tdb.driver.jobInsertMany({ jobs: [makeInsert({ key: 'k' })], now: at(0), tx: client });
          await client.query('COMMIT');
          expect(result).toEqual({ job: existing, duplicate: true, replaced: false });
        });

        it('rejects a client with no open transaction (never begun, or already committed), writing nothing', async () => {
          // Run outside a transaction each statement would commit alone: the key's lock would end before its insert,
          // and two producers of one key could both insert.
          await expectRejects(tdb.driver.jobInsertMany({ jobs: [makeInsert({ key: 'k' })], now: at(0), tx: client }), InvalidTransactionError);
          await expectRejects(tdb.driver.jobInsertMany({ jobs: [makeInsert()], now: at(0), tx: client }), InvalidTransactionError);
          await client.query('BEGIN');
          await client.query('COMMIT');
          await expectRejects(tdb.driver.jobInsertMany({ jobs: [makeInsert({ key: 'k' })], now: at(0), tx: client }), InvalidTransactionError);
          expect(await tdb.driver.jobList({})).toEqual([]);
          const [fresh] = await tdb.driver.jobInsertMany({ jobs: [makeInsert({ key: 'k' })], now: at(0) });
          expect(fresh!.duplicate).toBe(false);
        });

        it('rejects a better-sqlite3 Database as tx', async () => {
          const db = new Database(':memory:');
          try {
            db.exec('BEGIN');
            await expectRejects(tdb.driver.jobInsertMany({ jobs: [makeInsert()], now: at(0), tx: db }), InvalidTransactionError);
          } finally {
            db.close();
          }
          expect(await tdb.driver.jobList({})).toEqual([]);
        });
      });
    }

    it('stores createdAt from now, not from runAt', async () => {
      const job = await insertJob(tdb.driver, { runAt: at(3_600_000) }, at(1_234));
      expect(job.createdAt).toEqual(at(1_234));
      expect(job.updatedAt).toEqual(at(1_234));
      expect(job.runAt.getTime()).toBe(T0_MS + 3_600_000);
    });
  });
}

/** JSON with object keys sorted at every level: equal text means equal JSON values, whatever the key order. */
function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v !== null && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}
