/**
 * Conformance: memoized steps (`jobStepRecord`, `jobStepList`), checkpoints (`jobCheckpoint` and the checkpoint
 * fields of every returned JobRow), yielding (`extendAttempts`, outcome `yielded`) and migration
 * `0004_idempotency`. Application transactions (`Driver.transaction`, `tx` on the job writes) are in
 * `job-transaction.ts`, declared from here.
 * @module
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { JobStepRecordParams } from '../../src/driver/driver.js';
import type { JobRow } from '../../src/job/job-record.js';
import { createTestDatabase, makeInsert, type DriverKind, type TestDatabase } from '../support/test-databases.js';
import {
  applyMigrationsRaw, at, claimExactly, errorInfo, finishOf, getJob, insertJob, LEASE_MS, rawQuery, rawTime, tableRef,
} from './helpers.js';
import { exerciseJobTransaction } from './job-transaction.js';

/** Declares the step, checkpoint, yield and migration-0004 conformance tests for one driver kind. */
export function exerciseJobStepsCheckpoint(kind: DriverKind): void {
  describe('job steps and checkpoints', () => {
    let tdb: TestDatabase;
    beforeEach(async () => {
      tdb = await createTestDatabase(kind);
    });
    afterEach(async () => {
      await tdb.cleanup();
    });

    /** Inserts one job and claims it at `now`. */
    async function running(overrides: Parameters<typeof insertJob>[1] = {}, now = at(0)): Promise<JobRow> {
      const job = await insertJob(tdb.driver, overrides, now);
      return claimExactly(tdb.driver, job.id, { queues: [job.queue], now });
    }

    /** Records a step for the lease `job` holds (attempt and token taken from the row). */
    function step(job: JobRow, name: string, resultJson: string | null, now = at(1_000), overrides: Partial<JobStepRecordParams> = {}) {
      return tdb.driver.jobStepRecord({ id: job.id, leaseToken: job.leaseToken, name, resultJson, attempt: job.attempt, now, ...overrides });
    }

    /** Saves a checkpoint for the lease `job` holds. */
    function checkpoint(job: Pick<JobRow, 'id' | 'leaseToken'>, value: unknown, done: number, total: number | null, now = at(1_000)) {
      return tdb.driver.jobCheckpoint({ id: job.id, leaseToken: job.leaseToken, checkpointJson: JSON.stringify(value), progressDone: done, progressTotal: total, now });
    }

    /** Expires the lease of a job claimed at T0 and rescues it. */
    async function rescue(): Promise<void> {
      const rescued = await tdb.driver.jobRescue({ maxLost: 5, limit: 10, now: at(LEASE_MS + 1) });
      expect(rescued.map((r) => r.state)).toEqual(['retrying']);
    }

    describe('steps', () => {
      it('records a step while the lease holds and lists it with its parsed result', async () => {
        const job = await running();
        expect(await step(job, 'fetch', '{"rows":[1,2],"ok":true}')).toBe('applied');
        expect(await tdb.driver.jobStepList({ id: job.id })).toEqual([
          { jobId: job.id, name: 'fetch', result: { rows: [1, 2], ok: true }, attempt: 1, leaseToken: 1, createdAt: at(1_000) },
        ]);
      });

      it('lists steps oldest first, by name within one instant; a step that returned nothing has result undefined', async () => {
        const job = await running();
        expect(await step(job, 'zeta', '{"n":1}', at(1_000))).toBe('applied');
        expect(await step(job, 'alpha', null, at(1_000))).toBe('applied');
        expect(await step(job, 'beta', 'null', at(2_000))).toBe('applied');
        expect(await step(job, 'aaa', '[1,"two"]', at(3_000))).toBe('applied');
        const steps = await tdb.driver.jobStepList({ id: job.id });
        expect(steps.map((s) => [s.name, s.createdAt])).toEqual([['alpha', at(1_000)], ['zeta', at(1_000)], ['beta', at(2_000)], ['aaa', at(3_000)]]);
        expect(steps[0]!.result).toBeUndefined();
        expect(steps[1]!.result).toEqual({ n: 1 });
        expect(steps[2]!.result).toBeNull();
        expect(steps[3]!.result).toEqual([1, 'two']);
      });

      it('refuses a step with a wrong token, for a job not running, or an unknown id (stale), writing nothing', async () => {
        const job = await running();
        expect(await step(job, 'a', '1', at(1_000), { leaseToken: job.leaseToken + 1 })).toBe('stale');
        expect(await step(job, 'a', '1', at(1_000), { leaseToken: job.leaseToken - 1 })).toBe('stale');
        const queued = await insertJob(tdb.driver, { name: 'waiting' });
        expect(await step(queued, 'a', '1')).toBe('stale');
        for (const id of ['987654321', 'abc']) expect(await step({ ...job, id }, 'a', '1')).toBe('stale');
        expect(await tdb.driver.jobStepList({ id: job.id })).toEqual([]);
        expect(await tdb.driver.jobStepList({ id: queued.id })).toEqual([]);
        expect(await tdb.driver.jobStepList({ id: 'abc' })).toEqual([]);
      });

      it('refuses a step from a lease lost to rescue, and after a cancel', async () => {
        const lost = await running();
        await rescue();
        expect(await step(lost, 'late', '1', at(LEASE_MS + 2))).toBe('stale');
        const cancelled = await running({ name: 'c', queue: 'other' }, at(LEASE_MS + 2));
        await tdb.driver.jobCancel({ id: cancelled.id, now: at(LEASE_MS + 3) });
        expect(await step(cancelled, 'late', '1', at(LEASE_MS + 4))).toBe('stale');
        expect(await tdb.driver.jobStepList({ id: lost.id })).toEqual([]);
        expect(await tdb.driver.jobStepList({ id: cancelled.id })).toEqual([]);
      });

      it('throws when one step name is recorded twice for a job', async () => {
        const job = await running();
        expect(await step(job, 'once', '1')).toBe('applied');
        await expect(step(job, 'once', '2')).rejects.toThrow();
        expect((await tdb.driver.jobStepList({ id: job.id })).map((s) => s.result)).toEqual([1]);
      });

      it('keeps steps across a retry backoff, a rescue and an operator retry', async () => {
        const first = await running({ maxAttempts: 5 });
        expect(await step(first, 's1', '"one"')).toBe('applied');
        const backoff = finishOf(first, { outcome: 'failed', state: 'retrying', retryDelayMs: 0, error: errorInfo() });
        await tdb.driver.jobFinishMany({ items: [backoff], now: at(2_000) });
        const second = await claimExactly(tdb.driver, first.id, { now: at(2_000) });
        expect(await step(second, 's2', '"two"', at(3_000))).toBe('applied');
        const rescued = await tdb.driver.jobRescue({ maxLost: 5, limit: 10, now: at(2_000 + LEASE_MS + 1) });
        expect(rescued.map((r) => r.id)).toEqual([first.id]);
        const third = await claimExactly(tdb.driver, first.id, { now: at(2_000 + LEASE_MS + 1) });
        await tdb.driver.jobFinishMany({ items: [finishOf(third, { outcome: 'failed', state: 'dead', error: errorInfo() })], now: at(100_000) });
        await tdb.driver.jobRetry({ id: first.id, now: at(200_000) });
        expect((await tdb.driver.jobStepList({ id: first.id })).map((s) => [s.name, s.result, s.attempt, s.leaseToken])).toEqual([
          ['s1', 'one', 1, 1],
          ['s2', 'two', 2, 2],
        ]);
      });

      it('deletes the steps of a discarded job', async () => {
        const job = await running();
        await step(job, 'a', '1');
        await step(job, 'b', '2');
        await tdb.driver.jobFinishMany({ items: [finishOf(job)], now: at(2_000) });
        await tdb.driver.jobDiscard({ id: job.id });
        expect(await tdb.driver.jobStepList({ id: job.id })).toEqual([]);
        expect(await rawQuery(tdb, `SELECT job_id FROM ${tableRef(tdb, 'job_steps')}`)).toEqual([]);
      });
    });

    describe('checkpoints', () => {
      it('starts with no checkpoint: insert and claim return null fields', async () => {
        const job = await insertJob(tdb.driver);
        expect([job.checkpoint, job.progress, job.checkpointAt]).toEqual([null, null, null]);
        const claimed = await claimExactly(tdb.driver, job.id);
        expect([claimed.checkpoint, claimed.progress, claimed.checkpointAt]).toEqual([null, null, null]);
      });

      it('saves a checkpoint while the lease holds; get, list and the next claim return it', async () => {
        const job = await running({ maxAttempts: 5 });
        expect(await checkpoint(job, { cursor: 'abc', page: [1, 2] }, 10, 100, at(5_000))).toBe('applied');
        const saved = await getJob(tdb.driver, job.id);
        expect(saved).toEqual({
          ...job,
          checkpoint: { cursor: 'abc', page: [1, 2] },
          progress: { done: 10, total: 100 },
          checkpointAt: at(5_000),
          updatedAt: at(5_000),
        } satisfies JobRow);
        expect(await checkpoint(job, 'plain string', 20, null, at(6_000))).toBe('applied');
        const second = await getJob(tdb.driver, job.id);
        expect([second.checkpoint, second.progress, second.checkpointAt]).toEqual(['plain string', { done: 20, total: null }, at(6_000)]);
        expect((await tdb.driver.jobList({})).find((j) => j.id === job.id)).toEqual(second);
        const backoff = finishOf(job, { outcome: 'failed', state: 'retrying', retryDelayMs: 0, error: errorInfo() });
        await tdb.driver.jobFinishMany({ items: [backoff], now: at(7_000) });
        const reclaimed = await claimExactly(tdb.driver, job.id, { now: at(7_000) });
        expect([reclaimed.checkpoint, reclaimed.progress, reclaimed.checkpointAt]).toEqual(['plain string', { done: 20, total: null }, at(6_000)]);
      });

      it('refuses a stale checkpoint (wrong token, rescued, cancelled, not running), leaving the row unchanged', async () => {
        const job = await running();
        expect(await checkpoint(job, { n: 1 }, 1, 2)).toBe('applied');
        const before = await getJob(tdb.driver, job.id);
        expect(await checkpoint({ ...job, leaseToken: job.leaseToken + 1 }, { n: 2 }, 2, 2, at(2_000))).toBe('stale');
        await rescue();
        const rescued = await getJob(tdb.driver, job.id);
        expect(await checkpoint(job, { n: 3 }, 3, 3, at(LEASE_MS + 2))).toBe('stale');
        expect(await checkpoint(rescued, { n: 3 }, 3, 3, at(LEASE_MS + 2))).toBe('stale');
        expect(await getJob(tdb.driver, job.id)).toEqual({ ...before, ...pick(rescued, 'state', 'runAt', 'lostCount', 'leaseWorker', 'leaseExpiresAt', 'lastError', 'updatedAt') });
        const other = await running({ name: 'other', queue: 'other' }, at(LEASE_MS + 2));
        await tdb.driver.jobCancel({ id: other.id, now: at(LEASE_MS + 3) });
        expect(await checkpoint(other, { n: 4 }, 4, null, at(LEASE_MS + 4))).toBe('stale');
        expect((await getJob(tdb.driver, other.id)).checkpoint).toBeNull();
        for (const id of ['987654321', 'abc']) expect(await checkpoint({ id, leaseToken: 1 }, {}, 0, null)).toBe('stale');
      });

      it('keeps the checkpoint across rescue and operator retry, and returns it from cancel and retry', async () => {
        const job = await running({ maxAttempts: 2 });
        await checkpoint(job, { cursor: 7 }, 7, 10);
        await rescue();
        expect((await getJob(tdb.driver, job.id)).checkpoint).toEqual({ cursor: 7 });
        const second = await claimExactly(tdb.driver, job.id, { now: at(LEASE_MS + 1) });
        expect(second.checkpoint).toEqual({ cursor: 7 });
        await tdb.driver.jobFinishMany({ items: [finishOf(second, { outcome: 'failed', state: 'dead', error: errorInfo() })], now: at(LEASE_MS + 2) });
        const retried = await tdb.driver.jobRetry({ id: job.id, now: at(LEASE_MS + 3) });
        expect([retried.checkpoint, retried.progress, retried.checkpointAt]).toEqual([{ cursor: 7 }, { done: 7, total: 10 }, at(1_000)]);
        const cancelled = await tdb.driver.jobCancel({ id: job.id, now: at(LEASE_MS + 4) });
        expect(cancelled.checkpoint).toEqual({ cursor: 7 });
      });
    });

    describe('yielding (extendAttempts)', () => {
      it('raises max_attempts by exactly one and records outcome yielded', async () => {
        const job = await running({ maxAttempts: 1 });
        await checkpoint(job, { i: 50 }, 50, null);
        const yielded = finishOf(job, { outcome: 'yielded', state: 'queued', retryDelayMs: 0, error: null, extendAttempts: true });
        expect(await tdb.driver.jobFinishMany({ items: [yielded], now: at(2_000) })).toEqual({ applied: [job.id], stale: [] });
        const row = await getJob(tdb.driver, job.id);
        expect([row.state, row.attempt, row.maxAttempts, row.runAt, row.checkpoint]).toEqual(['queued', 1, 2, at(2_000), { i: 50 }]);
        expect((await tdb.driver.jobAttemptList({ id: job.id })).map((a) => [a.attempt, a.outcome])).toEqual([[1, 'yielded']]);
        // The stale repeat of the same ending changes nothing.
        expect(await tdb.driver.jobFinishMany({ items: [yielded], now: at(2_500) })).toEqual({ applied: [], stale: [job.id] });
        const next = await claimExactly(tdb.driver, job.id, { now: at(3_000) });
        expect([next.attempt, next.maxAttempts]).toEqual([2, 2]);
        await tdb.driver.jobFinishMany({ items: [finishOf(next, { outcome: 'yielded', state: 'queued', extendAttempts: true })], now: at(4_000) });
        expect((await getJob(tdb.driver, job.id)).maxAttempts).toBe(3);
        const last = await claimExactly(tdb.driver, job.id, { now: at(5_000) });
        await tdb.driver.jobFinishMany({ items: [finishOf(last, { outcome: 'failed', state: 'retrying', error: errorInfo() })], now: at(6_000) });
        expect((await getJob(tdb.driver, job.id)).maxAttempts).toBe(3);
      });
    });

    exerciseJobTransaction(kind, () => tdb);

    describe('migration 0004_idempotency', () => {
      const opened: TestDatabase[] = [];
      afterEach(async () => {
        await Promise.all(opened.splice(0).map((t) => t.cleanup()));
      });
      async function unmigrated(): Promise<TestDatabase> {
        const fresh = await createTestDatabase(kind, { migrate: false });
        opened.push(fresh);
        return fresh;
      }

      it('applies from an empty database: job_keys and job_steps exist, the active-key unique index is gone', async () => {
        const fresh = await unmigrated();
        expect((await fresh.driver.migrate()).applied).toContain('0004_idempotency');
        expect(await rawQuery(fresh, `SELECT key, job_id FROM ${tableRef(fresh, 'job_keys')}`)).toEqual([]);
        expect(await rawQuery(fresh, `SELECT job_id FROM ${tableRef(fresh, 'job_steps')}`)).toEqual([]);
        const indexes =
          kind === 'sqlite'
            ? await rawQuery(fresh, `SELECT name FROM sqlite_master WHERE type = 'index' AND name LIKE 'jobs_key%'`)
            : await rawQuery(fresh, `SELECT indexname AS name FROM pg_indexes WHERE schemaname = ? AND indexname LIKE 'jobs_key%'`, [fresh.schema]);
        expect(indexes.map((r) => r.name)).toEqual(['jobs_key_idx']);
      });

      it('applies on top of 0001-0003 with keyed jobs: job_keys points at each key\'s active or else newest job, attempts are kept', async () => {
        const old = await unmigrated();
        await applyMigrationsRaw(old, 3);
        const jobs = tableRef(old, 'jobs');
        const insert = async (name: string, state: string, key: string | null): Promise<string> => {
          const t = rawTime(old, at(0));
          const finished = ['completed', 'dead', 'cancelled'].includes(state) ? t : null;
          const [row] = await rawQuery(old,
            `INSERT INTO ${jobs} (name, queue, payload, state, run_at, max_attempts, key, created_at, updated_at, finished_at)
             VALUES (?, 'default', '{}', ?, ?, 3, ?, ?, ?, ?) RETURNING id`,
            [name, state, t, key, t, t, finished]);
          return String(row!.id);
        };
        await insert('a-old', 'completed', 'a');
        const aActive = await insert('a-new', 'queued', 'a');
        await insert('b-old', 'dead', 'b');
        const bNewest = await insert('b-new', 'completed', 'b');
        // An older job made active again by an operator retry after a newer one finished: the active one holds.
        const cActive = await insert('c-old', 'retrying', 'c');
        await insert('c-new', 'completed', 'c');
        await insert('plain', 'queued', null);
        await rawQuery(old,
          `INSERT INTO ${tableRef(old, 'job_attempts')} (job_id, attempt, lease_token, worker_id, started_at, finished_at, outcome, error)
           VALUES (?, 1, 1, 'w', ?, ?, 'failed', NULL)`,
          [Number(bNewest), rawTime(old, at(0)), rawTime(old, at(1))]);

        // Later migrations apply too; 0004 is the one under test.
        expect(await old.driver.migrate()).toEqual({ applied: expect.arrayContaining(['0004_idempotency']) as unknown as string[], current: expect.arrayContaining(['0001_initial', '0004_idempotency']) as unknown as string[] });
        const keys = await rawQuery(old, `SELECT key, job_id FROM ${tableRef(old, 'job_keys')} ORDER BY key`);
        expect(keys.map((k) => [k.key, String(k.job_id)])).toEqual([['a', aActive], ['b', bNewest], ['c', cActive]]);
        expect((await old.driver.jobAttemptList({ id: bNewest })).map((a) => a.outcome)).toEqual(['failed']);
        const held = await getJob(old.driver, aActive);
        expect([held.checkpoint, held.progress, held.checkpointAt]).toEqual([null, null, null]);

        const keyed = ['a', 'b', 'c'].map((key) => makeInsert({ key }));
        const results = await old.driver.jobInsertMany({ jobs: keyed, now: at(1_000) });
        expect(results.map((r) => [r.duplicate, r.replaced])).toEqual([[true, false], [false, false], [true, false]]);
        expect([results[0]!.job.id, results[2]!.job.id]).toEqual([aActive, cActive]);
        const [again] = await old.driver.jobInsertMany({ jobs: [makeInsert({ key: 'b' })], now: at(2_000) });
        expect([again!.duplicate, again!.job.id]).toEqual([true, results[1]!.job.id]);
      });
    });
  });
}

/** The listed fields of a row. */
function pick<T extends object, K extends keyof T>(row: T, ...keys: K[]): Pick<T, K> {
  return Object.fromEntries(keys.map((k) => [k, row[k]])) as Pick<T, K>;
}
