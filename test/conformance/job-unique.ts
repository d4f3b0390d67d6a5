/**
 * Conformance: keyed inserts through `job_keys` — default dedup among active states, windows, custom states,
 * replace (debounce), several inputs with one key in a batch, concurrent producers in separate driver instances,
 * lock ordering across batches, operator retry taking the key back, and keyed inserts in a rolled-back transaction.
 * @module
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Driver, JobInsert, JobInsertResult, UniqueInsert } from '../../src/driver/driver.js';
import { KeyConflictError } from '../../src/errors.js';
import { ACTIVE_STATES, type JobRow } from '../../src/job/job-record.js';
import { createTestDatabase, makeInsert, type DriverKind, type TestDatabase } from '../support/test-databases.js';
import { at, claim, claimExactly, countRows, errorInfo, expectRejects, finishOf, getJob, insertJob } from './helpers.js';

/** A window of one minute among active and completed holders: "not again within a minute". */
const MINUTE_WINDOW: UniqueInsert = { windowMs: 60_000, states: [...ACTIVE_STATES, 'completed'], replace: false };
/** Debounce: replace a waiting holder's payload and due time. */
const REPLACE: UniqueInsert = { windowMs: null, states: ACTIVE_STATES, replace: true };

/** Declares the keyed-insert conformance tests for one driver kind. */
export function exerciseJobUnique(kind: DriverKind): void {
  describe('keyed inserts (job_keys)', () => {
    let tdb: TestDatabase;
    beforeEach(async () => {
      tdb = await createTestDatabase(kind);
    });
    afterEach(async () => {
      await tdb.cleanup();
    });

    /** Inserts one job with `key` at `now` through `driver` and returns its result. */
    async function put(key: string, overrides: Partial<JobInsert> = {}, now: Date | null = at(0), driver: Driver = tdb.driver): Promise<JobInsertResult> {
      const [result] = await driver.jobInsertMany({ jobs: [makeInsert({ key, ...overrides })], now });
      return result!;
    }

    /** Claims `job` at `now` and finishes it into `state`. */
    async function finishAs(job: JobRow, state: 'completed' | 'dead', now: Date): Promise<JobRow> {
      const running = await claimExactly(tdb.driver, job.id, { queues: [job.queue], now });
      const item = state === 'completed' ? finishOf(running) : finishOf(running, { outcome: 'failed', state: 'dead', error: errorInfo() });
      expect(await tdb.driver.jobFinishMany({ items: [item], now })).toEqual({ applied: [job.id], stale: [] });
      return getJob(tdb.driver, job.id);
    }

    describe('default: one job per key among queued, retrying and running', () => {
      it('returns the holder while it is active; a completed or cancelled holder frees the key', async () => {
        const first = await put('k', { name: 'first' });
        expect([first.duplicate, first.replaced]).toEqual([false, false]);
        expect(await put('k', { name: 'again', payloadJson: '{"x":1}' }, at(1_000))).toEqual({ job: first.job, duplicate: true, replaced: false });
        const running = await claimExactly(tdb.driver, first.job.id, { now: at(2_000) });
        expect(await put('k', {}, at(3_000))).toEqual({ job: running, duplicate: true, replaced: false });
        await tdb.driver.jobFinishMany({ items: [finishOf(running)], now: at(4_000) });

        const second = await put('k', { name: 'second' }, at(5_000));
        expect([second.duplicate, second.replaced, second.job.name, second.job.state]).toEqual([false, false, 'second', 'queued']);
        expect(second.job.id).not.toBe(first.job.id);
        expect(await put('k', {}, at(6_000))).toEqual({ job: second.job, duplicate: true, replaced: false });
        await tdb.driver.jobCancel({ id: second.job.id, now: at(7_000) });
        const third = await put('k', { name: 'third' }, at(8_000));
        expect([third.duplicate, third.job.name]).toEqual([false, 'third']);
        expect((await tdb.driver.jobList({})).map((j) => [j.name, j.state])).toEqual([
          ['third', 'queued'], ['second', 'cancelled'], ['first', 'completed'],
        ]);
      });

      it('frees the key when its holder is discarded', async () => {
        const holder = await put('k');
        await tdb.driver.jobDiscard({ id: holder.job.id });
        const next = await put('k', { name: 'next' }, at(1_000));
        expect([next.duplicate, next.job.name]).toEqual([false, 'next']);
        expect(await put('k', {}, at(2_000))).toEqual({ job: next.job, duplicate: true, replaced: false });
      });
    });

    describe('windows', () => {
      it('counts a completed holder created within the window as a duplicate, and not once the window has passed', async () => {
        const first = await put('w', { unique: MINUTE_WINDOW });
        const completed = await finishAs(first.job, 'completed', at(1_000));
        expect(await put('w', { unique: MINUTE_WINDOW }, at(30_000))).toEqual({ job: completed, duplicate: true, replaced: false });
        // The window is open: a holder created exactly windowMs before now is outside it.
        expect(await put('w', { unique: MINUTE_WINDOW }, at(59_999))).toEqual({ job: completed, duplicate: true, replaced: false });
        const next = await put('w', { name: 'next', unique: MINUTE_WINDOW }, at(60_000));
        expect([next.duplicate, next.job.name, next.job.createdAt]).toEqual([false, 'next', at(60_000)]);
        // The new job holds the key now, and its own window runs from its creation.
        expect(await put('w', { unique: MINUTE_WINDOW }, at(119_999))).toEqual({ job: next.job, duplicate: true, replaced: false });
      });

      it('lets a new job in past the window even while the old holder is still queued; the new one holds the key', async () => {
        const window: UniqueInsert = { windowMs: 60_000, states: ACTIVE_STATES, replace: false };
        const old = await put('w', { name: 'old', unique: window });
        const fresh = await put('w', { name: 'fresh', unique: window }, at(120_000));
        expect([fresh.duplicate, fresh.job.name]).toEqual([false, 'fresh']);
        expect((await getJob(tdb.driver, old.job.id)).state).toBe('queued');
        // A default insert (no window) deduplicates against the current holder, not the older active job.
        expect(await put('w', {}, at(121_000))).toEqual({ job: fresh.job, duplicate: true, replaced: false });
      });
    });

    describe('custom states', () => {
      it('with states [queued], a running holder is not a duplicate: a second job is enqueued behind it', async () => {
        const queuedOnly: UniqueInsert = { windowMs: null, states: ['queued'], replace: false };
        const first = await put('q', { name: 'first', unique: queuedOnly });
        expect(await put('q', { unique: queuedOnly }, at(1_000))).toEqual({ job: first.job, duplicate: true, replaced: false });
        await claimExactly(tdb.driver, first.job.id, { now: at(2_000) });
        const second = await put('q', { name: 'second', unique: queuedOnly }, at(3_000));
        expect([second.duplicate, second.job.name]).toEqual([false, 'second']);
        expect(await put('q', { unique: queuedOnly }, at(4_000))).toEqual({ job: second.job, duplicate: true, replaced: false });
      });

      it('with completed and dead among the states and no window, a finished holder blocks the key for good', async () => {
        const once: UniqueInsert = { windowMs: null, states: ['queued', 'retrying', 'running', 'completed', 'dead'], replace: false };
        const first = await put('once', { unique: once });
        const dead = await finishAs(first.job, 'dead', at(1_000));
        expect(await put('once', { unique: once }, at(10_000_000))).toEqual({ job: dead, duplicate: true, replaced: false });
        // The default states do not include dead: another insert of the key goes through.
        expect((await put('once', {}, at(10_000_001))).duplicate).toBe(false);
      });
    });

    describe('replace', () => {
      it('replaces a queued holder\'s payload and due time, keeping its id, priority and creation', async () => {
        const first = await put('d', { payloadJson: '{"v":1}', delayMs: 60_000, priority: 3 });
        const replaced = await put('d', { payloadJson: '{"v":2}', delayMs: 5_000, priority: 9, unique: REPLACE }, at(1_000));
        expect(replaced).toEqual({
          job: { ...first.job, payload: { v: 2 }, runAt: at(6_000), updatedAt: at(1_000) },
          duplicate: true,
          replaced: true,
        });
        expect(await getJob(tdb.driver, first.job.id)).toEqual(replaced.job);
        const again = await put('d', { payloadJson: '{"v":3}', runAt: at(500), unique: REPLACE }, at(2_000));
        expect([again.replaced, again.job.id, again.job.payload, again.job.runAt]).toEqual([true, first.job.id, { v: 3 }, at(500)]);
        expect(await tdb.driver.jobList({})).toHaveLength(1);
      });

      it('replaces a retrying holder, keeping its attempt count', async () => {
        const first = await put('d', { payloadJson: '{"v":1}' });
        const running = await claimExactly(tdb.driver, first.job.id);
        await tdb.driver.jobFinishMany({
          items: [finishOf(running, { outcome: 'failed', state: 'retrying', retryDelayMs: 60_000, error: errorInfo() })],
          now: at(1_000),
        });
        const replaced = await put('d', { payloadJson: '{"v":2}', unique: REPLACE }, at(2_000));
        expect([replaced.replaced, replaced.job.state, replaced.job.attempt, replaced.job.payload, replaced.job.runAt]).toEqual([
          true, 'retrying', 1, { v: 2 }, at(2_000),
        ]);
      });

      it('leaves a running holder unchanged (duplicate, not replaced)', async () => {
        const first = await put('d', { payloadJson: '{"v":1}' });
        const running = await claimExactly(tdb.driver, first.job.id);
        const result = await put('d', { payloadJson: '{"v":2}', unique: REPLACE }, at(1_000));
        expect(result).toEqual({ job: running, duplicate: true, replaced: false });
        expect(await getJob(tdb.driver, first.job.id)).toEqual(running);
      });

      it('with states [queued], a running holder is not a duplicate: the new payload is enqueued as a new job', async () => {
        const debounce: UniqueInsert = { windowMs: null, states: ['queued'], replace: true };
        const first = await put('d', { payloadJson: '{"v":1}', unique: debounce });
        await claimExactly(tdb.driver, first.job.id);
        const next = await put('d', { payloadJson: '{"v":2}', unique: debounce }, at(1_000));
        expect([next.duplicate, next.replaced, next.job.payload]).toEqual([false, false, { v: 2 }]);
        expect(next.job.id).not.toBe(first.job.id);
      });

      if (kind === 'postgres') {
        it('wakes listeners of the queue when the replaced job is due', async () => {
          const first = await put('d', { queue: 'debounced', delayMs: 60_000 }, null);
          const woken: string[] = [];
          let wake: () => void = () => {};
          const gotWake = new Promise<void>((resolve) => (wake = resolve));
          const stop = await tdb.driver.listen!({ onWake: (q) => (woken.push(q ?? ''), wake()), onReconnect: () => {}, onError: () => {} });
          try {
            const replaced = await put('d', { queue: 'debounced', payloadJson: '{"now":true}', unique: REPLACE }, null);
            expect([replaced.replaced, replaced.job.id]).toEqual([true, first.job.id]);
            await Promise.race([gotWake, new Promise((_, reject) => setTimeout(() => reject(new Error('no wake-up within 5s')), 5_000))]);
            expect(woken).toContain('debounced');
          } finally {
            await stop();
          }
        });
      }
    });

    describe('batches', () => {
      it('processes several inputs with one key in order: the first inserts, later ones see it as holder', async () => {
        const results = await tdb.driver.jobInsertMany({
          jobs: [
            makeInsert({ key: 'k', name: 'a', payloadJson: '{"v":1}' }),
            makeInsert({ key: 'k', name: 'b', payloadJson: '{"v":2}' }),
            makeInsert({ key: 'k', name: 'c', payloadJson: '{"v":3}', delayMs: 7_000, unique: REPLACE }),
            makeInsert({ key: 'k', name: 'd', payloadJson: '{"v":4}' }),
          ],
          now: at(0),
        });
        expect(results.map((r) => [r.job.name, r.duplicate, r.replaced, r.job.payload])).toEqual([
          ['a', false, false, { v: 1 }],
          ['a', true, false, { v: 1 }],
          ['a', true, true, { v: 3 }],
          ['a', true, false, { v: 3 }],
        ]);
        expect(new Set(results.map((r) => r.job.id)).size).toBe(1);
        const [only] = await tdb.driver.jobList({});
        expect([only!.payload, only!.runAt]).toEqual([{ v: 3 }, at(7_000)]);
      });

      it('returns keyed and unkeyed results in input order, new jobs with ids in input order', async () => {
        const existing = await insertJob(tdb.driver, { key: 'k2', name: 'existing' });
        const results = await tdb.driver.jobInsertMany({
          jobs: [
            makeInsert({ name: 'plain-1' }),
            makeInsert({ name: 'k1-new', key: 'k1' }),
            makeInsert({ name: 'plain-2' }),
            makeInsert({ name: 'k1-dup', key: 'k1' }),
            makeInsert({ name: 'k2-dup', key: 'k2' }),
            makeInsert({ name: 'plain-3' }),
          ],
          now: at(1_000),
        });
        expect(results.map((r) => [r.job.name, r.duplicate, r.replaced])).toEqual([
          ['plain-1', false, false],
          ['k1-new', false, false],
          ['plain-2', false, false],
          ['k1-new', true, false],
          ['existing', true, false],
          ['plain-3', false, false],
        ]);
        expect(results[4]!.job).toEqual(existing);
        const ids = [0, 1, 2, 5].map((i) => BigInt(results[i]!.job.id));
        for (let i = 1; i < ids.length; i++) expect(ids[i]! > ids[i - 1]!).toBe(true);
        expect(await tdb.driver.jobList({})).toHaveLength(5);
      });
    });

    describe('concurrent producers', () => {
      it('20 driver instances inserting one key at once: one job, every caller gets its id', async () => {
        const drivers = Array.from({ length: 20 }, () => tdb.newDriver());
        const results = await Promise.all(drivers.map((driver, i) => put('same', { name: `p${i}` }, at(i), driver)));
        expect(results.filter((r) => !r.duplicate)).toHaveLength(1);
        expect(new Set(results.map((r) => r.job.id)).size).toBe(1);
        expect(results.every((r) => !r.replaced)).toBe(true);
        expect(await tdb.driver.jobList({})).toHaveLength(1);
      });

      it('20 driver instances replacing one key at once: one job, holding one of their payloads', async () => {
        const drivers = Array.from({ length: 20 }, () => tdb.newDriver());
        const results = await Promise.all(drivers.map((driver, i) => put('same', { payloadJson: JSON.stringify({ i }), unique: REPLACE }, at(i), driver)));
        expect(results.filter((r) => !r.duplicate)).toHaveLength(1);
        expect(results.filter((r) => r.replaced)).toHaveLength(19);
        expect(new Set(results.map((r) => r.job.id)).size).toBe(1);
        const [only, ...rest] = await tdb.driver.jobList({});
        expect(rest).toEqual([]);
        expect(results.map((r) => r.job.payload)).toContainEqual(only!.payload);
      });

      it('two batches with the same keys in opposite orders finish without deadlock', async () => {
        const [one, two] = [tdb.newDriver(), tdb.newDriver()];
        // Connected first, so both batches really run at the same time.
        await Promise.all([one.dbNow(), two.dbNow()]);
        const ids = new Set<string>();
        for (let round = 0; round < 5; round++) {
          const keys = Array.from({ length: 400 }, (_, i) => `r${round}-k${String(i).padStart(3, '0')}`);
          const [a, b] = await Promise.all([
            one.jobInsertMany({ jobs: keys.map((key) => makeInsert({ key })), now: at(round) }),
            two.jobInsertMany({ jobs: [...keys].reverse().map((key) => makeInsert({ key })), now: at(round) }),
          ]);
          const reversed = [...b].reverse();
          expect(a.map((r) => r.job.key)).toEqual(keys);
          expect(reversed.map((r) => r.job.key)).toEqual(keys);
          // Per key, both batches got the same job, and exactly one of them created it.
          for (const [i, r] of a.entries()) {
            ids.add(r.job.id);
            expect(reversed[i]!.job.id).toBe(r.job.id);
            expect([r.duplicate, reversed[i]!.duplicate].sort()).toEqual([false, true]);
          }
        }
        expect(ids.size).toBe(2_000);
        expect(await countRows(tdb, 'jobs')).toBe(2_000);
      });

      it('a debounce racing a claim of its holder: the new payload is either in the holder as claimed or in a new job', async () => {
        const debounce: UniqueInsert = { windowMs: null, states: ['queued'], replace: true };
        const [producer, worker] = [tdb.newDriver(), tdb.newDriver()];
        await Promise.all([producer.dbNow(), worker.dbNow()]);
        for (let round = 0; round < 30; round++) {
          const queue = `race-${round}`;
          const first = await put(queue, { queue, payloadJson: '{"v":"old"}', unique: debounce });
          const [result, claimed] = await Promise.all([
            put(queue, { queue, payloadJson: '{"v":"new"}', unique: debounce }, at(1), producer),
            claim(worker, { queues: [queue], now: at(1) }),
          ]);
          // Never a plain duplicate: a queued holder is replaced, a running one is not a duplicate.
          expect([result.duplicate, result.replaced]).not.toEqual([true, false]);
          if (result.replaced) {
            expect(result.job.id).toBe(first.job.id);
            // Claimed after the replace (new payload), or skipped while the replace held the row.
            for (const job of claimed) expect(job.payload).toEqual({ v: 'new' });
          } else {
            expect(claimed.map((j) => [j.id, j.payload])).toEqual([[first.job.id, { v: 'old' }]]);
            expect([result.job.payload, result.job.state]).toEqual([{ v: 'new' }, 'queued']);
          }
        }
      });

      it('a producer of a key waits for a transaction inserting it, then gets that transaction\'s job', async () => {
        const other = tdb.newDriver();
        let waiting: Promise<JobInsertResult> | undefined;
        let settled = false;
        const inTx = await tdb.driver.transaction(async (tx) => {
          const [mine] = await tdb.driver.jobInsertMany({ jobs: [makeInsert({ key: 'tx-k', name: 'from-tx' })], now: at(0), tx });
          waiting = put('tx-k', { name: 'outside' }, at(1), other).finally(() => (settled = true));
          await new Promise((resolve) => setTimeout(resolve, 200));
          expect(settled).toBe(false);
          return mine!;
        });
        const outside = await waiting!;
        expect(outside).toEqual({ job: inTx.job, duplicate: true, replaced: false });
      });
    });

    describe('operator retry', () => {
      it('throws KeyConflictError naming the holder when another active job holds the key', async () => {
        const first = await put('inv');
        const dead = await finishAs(first.job, 'dead', at(1_000));
        const holder = await put('inv', { name: 'holder' }, at(2_000));
        expect(holder.duplicate).toBe(false);
        const error = await expectRejects(tdb.driver.jobRetry({ id: dead.id, now: at(3_000) }), KeyConflictError);
        expect([error.key, error.existingJobId]).toEqual(['inv', holder.job.id]);
        expect(await getJob(tdb.driver, dead.id)).toEqual(dead);
        expect(await put('inv', {}, at(4_000))).toEqual({ job: holder.job, duplicate: true, replaced: false });
      });

      it('retries when the key is free, and the retried job becomes the key\'s holder', async () => {
        const first = await put('inv');
        const dead = await finishAs(first.job, 'dead', at(1_000));
        // A newer job took the key and completed: the key is free again, but its holder row names the newer job.
        const newer = await put('inv', { name: 'newer' }, at(2_000));
        await finishAs(newer.job, 'completed', at(3_000));
        const retried = await tdb.driver.jobRetry({ id: dead.id, now: at(4_000) });
        expect([retried.id, retried.state, retried.key]).toEqual([dead.id, 'queued', 'inv']);
        expect(await put('inv', {}, at(5_000))).toEqual({ job: retried, duplicate: true, replaced: false });
      });
    });

    describe('transactions', () => {
      it('a keyed insert in a transaction that rolls back leaves the key free', async () => {
        let inserted: JobRow | undefined;
        const failure = new Error('roll back');
        await expect(
          tdb.driver.transaction(async (tx) => {
            const [result] = await tdb.driver.jobInsertMany({ jobs: [makeInsert({ key: 'rb' })], now: at(0), tx });
            expect(result!.duplicate).toBe(false);
            inserted = result!.job;
            throw failure;
          }),
        ).rejects.toBe(failure);
        expect(await tdb.driver.jobGet({ id: inserted!.id })).toBeNull();
        const next = await put('rb', { name: 'after' }, at(1_000));
        expect([next.duplicate, next.job.name]).toEqual([false, 'after']);
      });

      it('a keyed insert in a committed transaction holds the key', async () => {
        const committed = await tdb.driver.transaction(async (tx) => {
          const [result] = await tdb.driver.jobInsertMany({ jobs: [makeInsert({ key: 'c' })], now: at(0), tx });
          return result!.job;
        });
        expect(await put('c', {}, at(1_000))).toEqual({ job: committed, duplicate: true, replaced: false });
      });
    });
  });
}
