/**
 * Conformance: retention (migration `0007_tracing_retention`) — `jobPrune` (final state, age by the given or the
 * database's clock, name filters, batch limit, attempts and steps going with their job, keys freed only while the
 * pruned job holds them, each schedule's newest completed run kept), `jobKeyPrune` and `scheduleTickPrune` (each
 * schedule's newest tick kept); and the `trace_context` column round trip.
 * @module
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { JobInsert } from '../../src/driver/driver.js';
import type { JobRow } from '../../src/job/job-record.js';
import { createTestDatabase, makeInsert, type DriverKind, type TestDatabase } from '../support/test-databases.js';
import { at, claimExactly, countRows, errorInfo, finishOf, insertJob, rawQuery, rawTime, tableRef } from './helpers.js';

const DAY = 86_400_000;

/** Declares the retention conformance tests for one driver kind. */
export function exerciseRetention(kind: DriverKind): void {
  describe('retention', () => {
    let tdb: TestDatabase;
    beforeEach(async () => {
      tdb = await createTestDatabase(kind);
    });
    afterEach(async () => {
      await tdb.cleanup();
    });

    /** Inserts a job and brings it to `state`, finishing at `finishedAt` (claimed at the same time). */
    async function finished(state: 'completed' | 'dead' | 'cancelled', finishedAt: Date, overrides: Partial<JobInsert> = {}): Promise<JobRow> {
      const job = await insertJob(tdb.driver, { maxAttempts: 1, ...overrides }, finishedAt);
      if (state === 'cancelled') return tdb.driver.jobCancel({ id: job.id, now: finishedAt });
      const running = await claimExactly(tdb.driver, job.id, { queues: [job.queue], now: finishedAt });
      const finish = state === 'completed' ? finishOf(running) : finishOf(running, { outcome: 'failed', state: 'dead', error: errorInfo() });
      expect(await tdb.driver.jobFinishMany({ items: [finish], now: finishedAt })).toEqual({ applied: [job.id], stale: [] });
      return running;
    }

    async function exists(id: string): Promise<boolean> {
      return (await tdb.driver.jobGet({ id })) !== null;
    }

    async function keyRows(): Promise<[string, string][]> {
      const rows = await rawQuery(tdb, `SELECT key, job_id FROM ${tableRef(tdb, 'job_keys')} ORDER BY key`);
      return rows.map((r) => [String(r.key), String(r.job_id)]);
    }

    describe('jobPrune', () => {
      it('deletes jobs of the given final state finished at least olderThanMs ago, with their attempts and steps', async () => {
        const old = await finished('completed', at(0));
        const edge = await finished('completed', at(DAY));
        const young = await finished('completed', at(DAY + 1));
        const dead = await finished('dead', at(0));
        const queued = await insertJob(tdb.driver, { queue: 'elsewhere' }, at(0));
        const stepped = await insertJob(tdb.driver, {}, at(0));
        const running = await claimExactly(tdb.driver, stepped.id, { now: at(0) });
        expect(await tdb.driver.jobStepRecord({ id: running.id, leaseToken: running.leaseToken, name: 's', resultJson: '1', attempt: 1, now: at(0) })).toBe('applied');
        await tdb.driver.jobFinishMany({ items: [finishOf(running)], now: at(0) });
        // A failed attempt (a job_attempts row) before the completing one (kept on the job row, migration 0011).
        const retried = await insertJob(tdb.driver, { maxAttempts: 2 }, at(0));
        const failing = await claimExactly(tdb.driver, retried.id, { now: at(0) });
        await tdb.driver.jobFinishMany({ items: [finishOf(failing, { outcome: 'failed', state: 'retrying', retryDelayMs: 0, error: errorInfo() })], now: at(0) });
        await tdb.driver.jobFinishMany({ items: [finishOf(await claimExactly(tdb.driver, retried.id, { now: at(0) }))], now: at(0) });
        expect(await tdb.driver.jobAttemptList({ id: old.id })).toHaveLength(1);
        expect(await countRows(tdb, 'job_attempts', retried.id)).toBe(1);

        expect(await tdb.driver.jobPrune({ state: 'completed', olderThanMs: DAY, limit: 100, now: at(2 * DAY) })).toBe(4);
        expect(await Promise.all([old, edge, stepped, retried, young, dead, queued].map((j) => exists(j.id)))).toEqual([false, false, false, false, true, true, true]);
        expect(await tdb.driver.jobAttemptList({ id: old.id })).toEqual([]);
        expect(await countRows(tdb, 'job_attempts', retried.id)).toBe(0);
        expect(await rawQuery(tdb, `SELECT name FROM ${tableRef(tdb, 'job_steps')}`)).toEqual([]);
        expect(await tdb.driver.jobPrune({ state: 'completed', olderThanMs: DAY, limit: 100, now: at(2 * DAY) })).toBe(0);
      });

      it('prunes dead and cancelled jobs by their own state', async () => {
        const dead = await finished('dead', at(0));
        const cancelled = await finished('cancelled', at(0));
        const completed = await finished('completed', at(0));
        expect(await tdb.driver.jobPrune({ state: 'dead', olderThanMs: DAY, limit: 100, now: at(2 * DAY) })).toBe(1);
        expect(await tdb.driver.jobPrune({ state: 'cancelled', olderThanMs: DAY, limit: 100, now: at(2 * DAY) })).toBe(1);
        expect(await Promise.all([dead, cancelled, completed].map((j) => exists(j.id)))).toEqual([false, false, true]);
      });

      it('deletes at most limit jobs per call, oldest first', async () => {
        const jobs: JobRow[] = [];
        for (let i = 0; i < 5; i++) jobs.push(await finished('completed', at(i * 1000)));
        const now = at(10 * DAY);
        expect(await tdb.driver.jobPrune({ state: 'completed', olderThanMs: DAY, limit: 2, now })).toBe(2);
        expect(await Promise.all(jobs.map((j) => exists(j.id)))).toEqual([false, false, true, true, true]);
        expect(await tdb.driver.jobPrune({ state: 'completed', olderThanMs: DAY, limit: 2, now })).toBe(2);
        expect(await tdb.driver.jobPrune({ state: 'completed', olderThanMs: DAY, limit: 2, now })).toBe(1);
        expect(await tdb.driver.jobPrune({ state: 'completed', olderThanMs: DAY, limit: 2, now })).toBe(0);
      });

      it('keeps to names and leaves out excludeNames; an empty names list matches nothing', async () => {
        const a = await finished('completed', at(0), { name: 'job-a' });
        const b = await finished('completed', at(0), { name: 'job-b' });
        const c = await finished('completed', at(0), { name: 'job-c' });
        const now = at(2 * DAY);
        expect(await tdb.driver.jobPrune({ state: 'completed', olderThanMs: DAY, names: [], limit: 100, now })).toBe(0);
        expect(await tdb.driver.jobPrune({ state: 'completed', olderThanMs: DAY, names: ['job-a'], limit: 100, now })).toBe(1);
        expect(await tdb.driver.jobPrune({ state: 'completed', olderThanMs: DAY, excludeNames: ['job-b'], limit: 100, now })).toBe(1);
        expect(await Promise.all([a, b, c].map((j) => exists(j.id)))).toEqual([false, true, false]);
      });

      it('measures age by the database clock when now is null', async () => {
        // T0 is years ahead of the database's clock, so nothing finished then is old yet.
        await finished('completed', at(0));
        expect(await tdb.driver.jobPrune({ state: 'completed', olderThanMs: 1, limit: 100, now: null })).toBe(0);
      });

      it('frees the dedup keys the pruned jobs hold, and only those', async () => {
        const sticky = { windowMs: null, states: ['queued', 'retrying', 'running', 'completed'] as const, replace: false };
        const held = await finished('completed', at(0), { key: 'held' });
        const moved = await finished('completed', at(0), { key: 'moved' });
        // A newer job took the key over (the window makes the old holder no longer a duplicate).
        const [newer] = await tdb.driver.jobInsertMany({ jobs: [makeInsert({ key: 'moved', unique: { windowMs: 1000, states: ['completed'], replace: false } })], now: at(DAY) });
        expect(newer!.duplicate).toBe(false);
        expect(await keyRows()).toEqual([['held', held.id], ['moved', newer!.job.id]]);

        expect(await tdb.driver.jobPrune({ state: 'completed', olderThanMs: DAY, limit: 100, now: at(2 * DAY) })).toBe(2);
        expect(await exists(moved.id)).toBe(false);
        expect(await keyRows()).toEqual([['moved', newer!.job.id]]);
        // With its holder gone the key is free, even for a policy that counts completed holders as duplicates.
        const [again] = await tdb.driver.jobInsertMany({ jobs: [makeInsert({ key: 'held', unique: { ...sticky, states: [...sticky.states] } })], now: at(2 * DAY) });
        expect(again!.duplicate).toBe(false);
      });

      it("keeps each schedule's newest completed job, the schedule's last success", async () => {
        const older = await finished('completed', at(0), { scheduleName: 'nightly', tickAt: at(0) });
        const newest = await finished('completed', at(1000), { scheduleName: 'nightly', tickAt: at(1000) });
        const deadRun = await finished('dead', at(2000), { scheduleName: 'nightly', tickAt: at(2000) });
        const other = await finished('completed', at(0), { scheduleName: 'hourly', tickAt: at(0) });
        const now = at(2 * DAY);
        expect(await tdb.driver.jobPrune({ state: 'completed', olderThanMs: DAY, limit: 100, now })).toBe(1);
        expect(await tdb.driver.jobPrune({ state: 'dead', olderThanMs: DAY, limit: 100, now })).toBe(1);
        expect(await Promise.all([older, newest, deadRun, other].map((j) => exists(j.id)))).toEqual([false, true, false, true]);
      });
    });

    describe('jobKeyPrune', () => {
      it('sweeps the keys in windows, deleting those whose holder no longer exists and leaving live ones', async () => {
        const live = await insertJob(tdb.driver, { key: 'live' });
        for (const key of ['gone-1', 'gone-2', 'gone-3']) {
          const job = await insertJob(tdb.driver, { key });
          await tdb.driver.jobDiscard({ id: job.id });
        }
        expect((await keyRows()).map(([key]) => key)).toEqual(['gone-1', 'gone-2', 'gone-3', 'live']);
        // A sweep in windows of 3 keys: the window's orphans go, the last key seen is where the next one starts.
        expect(await tdb.driver.jobKeyPrune({ afterKey: null, limit: 3 })).toEqual({ deleted: 3, lastKey: 'gone-3' });
        expect(await tdb.driver.jobKeyPrune({ afterKey: 'gone-3', limit: 3 })).toEqual({ deleted: 0, lastKey: null });
        expect(await keyRows()).toEqual([['live', live.id]]);
        const again = await insertJob(tdb.driver, { key: 'again' });
        await tdb.driver.jobDiscard({ id: again.id });
        expect(await tdb.driver.jobKeyPrune({ afterKey: 'again', limit: 3 })).toEqual({ deleted: 0, lastKey: null });
        expect(await tdb.driver.jobKeyPrune({ afterKey: null, limit: 1 })).toEqual({ deleted: 1, lastKey: 'again' });
        expect(await tdb.driver.jobKeyPrune({ afterKey: 'again', limit: 1 })).toEqual({ deleted: 0, lastKey: 'live' });
      });
    });

    describe('scheduleTickPrune', () => {
      async function tick(schedule: string, recordedAt: Date, kind: 'scheduled' | 'triggered' = 'scheduled'): Promise<void> {
        await rawQuery(tdb,
          `INSERT INTO ${tableRef(tdb, 'schedule_ticks')} (schedule_name, tick_at, kind, outcome, late, job_id, actor, recorded_at) VALUES (?, ?, ?, 'fired', ?, NULL, NULL, ?)`,
          [schedule, rawTime(tdb, recordedAt), kind, tdb.kind === 'sqlite' ? 0 : false, rawTime(tdb, recordedAt)]);
      }
      async function ticks(): Promise<[string, number, string][]> {
        const rows = await rawQuery(tdb, `SELECT schedule_name, tick_at, kind FROM ${tableRef(tdb, 'schedule_ticks')} ORDER BY schedule_name, tick_at, kind`);
        return rows.map((r) => [String(r.schedule_name), tdb.kind === 'sqlite' ? Number(r.tick_at) : (r.tick_at as Date).getTime(), String(r.kind)]);
      }

      it("deletes ticks older than olderThanMs but never a schedule's newest", async () => {
        for (let i = 0; i < 4; i++) await tick('a', at(i * 1000));
        await tick('a', at(3000), 'triggered');
        await tick('b', at(0));
        await tick('c', at(5 * DAY));
        await tick('c', at(5 * DAY + 1));
        const now = at(2 * DAY);
        expect(await tdb.driver.scheduleTickPrune({ olderThanMs: DAY, limit: 2, now })).toBe(2);
        expect(await tdb.driver.scheduleTickPrune({ olderThanMs: DAY, limit: 100, now })).toBe(2);
        expect(await tdb.driver.scheduleTickPrune({ olderThanMs: DAY, limit: 100, now })).toBe(0);
        // a keeps its newest (the trigger recorded with the last tick sorts after it by kind), b its only one; c is young.
        expect(await ticks()).toEqual([
          ['a', at(3000).getTime(), 'triggered'],
          ['b', at(0).getTime(), 'scheduled'],
          ['c', at(5 * DAY).getTime(), 'scheduled'],
          ['c', at(5 * DAY + 1).getTime(), 'scheduled'],
        ]);
      });
    });

    describe('trace_context', () => {
      it('stores the trace context given at insert (keyed or not, through schedules too) and returns it on every read', async () => {
        const carrier = { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', tracestate: 'vendor=x' };
        const plain = await insertJob(tdb.driver, { traceContext: carrier });
        const keyed = await insertJob(tdb.driver, { traceContext: carrier, key: 'k' });
        const none = await insertJob(tdb.driver);
        expect([plain.traceContext, keyed.traceContext, none.traceContext]).toEqual([carrier, carrier, null]);
        expect((await tdb.driver.jobGet({ id: plain.id }))!.traceContext).toEqual(carrier);
        const claimed = await tdb.driver.jobClaim({ queues: ['default'], limit: 10, workerId: 'w', leaseMs: 30_000, now: at(0) });
        expect(claimed.map((j) => j.traceContext)).toEqual([carrier, carrier, null]);
        // A duplicate returns the holder as stored: the holder's context, not the new insert's.
        const [dup] = await tdb.driver.jobInsertMany({ jobs: [makeInsert({ key: 'k', traceContext: { traceparent: '00-1af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' } })], now: at(0) });
        expect(dup!.duplicate).toBe(true);
        expect(dup!.job.traceContext).toEqual(carrier);
      });
    });
  });
}
