/**
 * Conformance: operator actions and reads — `jobCancel`, `jobRetry`, `jobDiscard`, `jobGet`, `jobList`,
 * `jobAttemptList`, and `jobGetMany` (`job-get-many.ts`).
 * @module
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { JobNotFoundError, JobStateError, KeyConflictError } from '../../src/errors.js';
import type { JobRow, JobState } from '../../src/job/job-record.js';
import { createTestDatabase, makeInsert, type DriverKind, type TestDatabase } from '../support/test-databases.js';
import {
  at,
  claim,
  claimExactly,
  countRows,
  errorInfo,
  expectRejects,
  finishOf,
  getJob,
  insertJob,
  insertJobs,
  LEASE_MS,
  leaseOf,
  openRawSqlite,
  rawQuery,
  rawTime,
  tableRef,
} from './helpers.js';

const UNKNOWN_IDS = ['987654321', 'abc', '', '-1', '1.5', '99999999999999999999999'];

/** Declares the operator-action and read conformance tests for one driver kind. */
export function exerciseJobOperator(kind: DriverKind): void {
  describe('operator actions and reads', () => {
    let tdb: TestDatabase;
    beforeEach(async () => {
      tdb = await createTestDatabase(kind);
    });
    afterEach(async () => {
      await tdb.cleanup();
    });

    /** Creates a job in the given state at T0 (claims at T0, finishes/cancels at T0 + 1s). */
    async function jobIn(state: JobState, overrides: Parameters<typeof insertJob>[1] = {}): Promise<JobRow> {
      const job = await insertJob(tdb.driver, overrides);
      if (state === 'queued') return job;
      if (state === 'cancelled') return tdb.driver.jobCancel({ id: job.id, now: at(1_000) });
      const claimed = await claimExactly(tdb.driver, job.id, { queues: [job.queue], limit: 1, now: at(0) });
      if (state === 'running') return claimed;
      const item =
        state === 'completed'
          ? finishOf(claimed)
          : state === 'dead'
            ? finishOf(claimed, { outcome: 'failed', state: 'dead', error: errorInfo('fatal') })
            : finishOf(claimed, { outcome: 'failed', state: 'retrying', retryDelayMs: 3_600_000, error: errorInfo('again') });
      expect(await tdb.driver.jobFinishMany({ items: [item], now: at(1_000) })).toEqual({ applied: [job.id], stale: [] });
      return getJob(tdb.driver, job.id);
    }

    describe('jobGet', () => {
      it('returns null for unknown or malformed ids', async () => {
        await insertJob(tdb.driver);
        for (const id of UNKNOWN_IDS) expect(await tdb.driver.jobGet({ id })).toBeNull();
      });
    });

    describe('jobCancel', () => {
      it('cancels a queued job', async () => {
        const job = await jobIn('queued');
        const cancelled = await tdb.driver.jobCancel({ id: job.id, now: at(5_000) });
        expect(cancelled).toEqual({ ...job, state: 'cancelled', finishedAt: at(5_000), updatedAt: at(5_000) } satisfies JobRow);
        expect(await getJob(tdb.driver, job.id)).toEqual(cancelled);
        expect(await tdb.driver.jobAttemptList({ id: job.id })).toEqual([]);
        expect(await claim(tdb.driver, { now: at(3_600_000) })).toEqual([]);
      });

      it('cancels a retrying job', async () => {
        const job = await jobIn('retrying');
        const cancelled = await tdb.driver.jobCancel({ id: job.id, now: at(5_000) });
        expect(cancelled).toEqual({ ...job, state: 'cancelled', finishedAt: at(5_000), updatedAt: at(5_000) } satisfies JobRow);
        expect((await tdb.driver.jobAttemptList({ id: job.id })).map((a) => a.outcome)).toEqual(['failed']);
        expect(await claim(tdb.driver, { now: at(7_200_000) })).toEqual([]);
      });

      it('cancels a running job: a cancelled attempt row, and its lease becomes stale', async () => {
        const job = await jobIn('running');
        const cancelled = await tdb.driver.jobCancel({ id: job.id, now: at(5_000) });
        expect(cancelled.state).toBe('cancelled');
        expect(cancelled.finishedAt).toEqual(at(5_000));
        expect([cancelled.leaseWorker, cancelled.leaseExpiresAt]).toEqual([null, null]);
        const attempts = await tdb.driver.jobAttemptList({ id: job.id });
        expect(attempts).toEqual([
          // What a cancelled attempt stores as its error is not part of the contract.
          { jobId: job.id, attempt: 1, leaseToken: 1, workerId: 'w1', startedAt: at(0), finishedAt: at(5_000), outcome: 'cancelled', error: attempts[0]?.error },
        ]);
        expect(await tdb.driver.jobHeartbeat({ leases: [leaseOf(job)], leaseMs: LEASE_MS, now: at(6_000) })).toEqual({ applied: [], stale: [job.id] });
        expect(await tdb.driver.jobFinishMany({ items: [finishOf(job)], now: at(6_000) })).toEqual({ applied: [], stale: [job.id] });
        expect(await getJob(tdb.driver, job.id)).toEqual(cancelled);
        expect(await tdb.driver.jobAttemptList({ id: job.id })).toHaveLength(1);
      });

      it.each(['completed', 'dead', 'cancelled'] as const)('refuses a %s job with JobStateError, changing nothing', async (state) => {
        const job = await jobIn(state);
        const error = await expectRejects(tdb.driver.jobCancel({ id: job.id, now: at(5_000) }), JobStateError);
        expect([error.jobId, error.state]).toEqual([job.id, state]);
        expect(await getJob(tdb.driver, job.id)).toEqual(job);
      });

      it.each(UNKNOWN_IDS)('throws JobNotFoundError for id %j', async (id) => {
        await insertJob(tdb.driver);
        const error = await expectRejects(tdb.driver.jobCancel({ id, now: at(0) }), JobNotFoundError);
        expect(error.jobId).toBe(id);
      });

      it('wins over a later rescue of its expired lease: stays cancelled, never claimable again', async () => {
        const job = await jobIn('running', { maxAttempts: 5 });
        await tdb.driver.jobCancel({ id: job.id, now: at(LEASE_MS * 2) });
        expect(await tdb.driver.jobRescue({ maxLost: 5, limit: 10, now: at(LEASE_MS * 2 + 1) })).toEqual([]);
        const row = await getJob(tdb.driver, job.id);
        expect([row.state, row.lostCount]).toEqual(['cancelled', 0]);
        expect(await claim(tdb.driver, { now: at(LEASE_MS * 100) })).toEqual([]);
        expect((await tdb.driver.jobAttemptList({ id: job.id })).map((a) => a.outcome)).toEqual(['cancelled']);
      });

      it('racing a rescue from another driver instance ends in exactly one of the two outcomes', async () => {
        const job = await jobIn('running', { maxAttempts: 5 });
        const other = tdb.newDriver();
        const now = at(LEASE_MS + 1);
        const [cancel, rescue] = await Promise.allSettled([
          tdb.driver.jobCancel({ id: job.id, now }),
          other.jobRescue({ maxLost: 5, limit: 10, now }),
        ]);
        expect(rescue.status).toBe('fulfilled');
        const rescued = rescue.status === 'fulfilled' ? rescue.value : [];
        const row = await getJob(tdb.driver, job.id);
        const attempts = await tdb.driver.jobAttemptList({ id: job.id });
        if (rescued.length === 0) {
          // Cancel went first.
          expect(cancel.status).toBe('fulfilled');
          expect(row.state).toBe('cancelled');
          expect(attempts.map((a) => a.outcome)).toEqual(['cancelled']);
        } else {
          // Rescue went first; cancel then cancels the retrying job.
          expect(cancel.status).toBe('fulfilled');
          expect(row.state).toBe('cancelled');
          expect(attempts.map((a) => a.outcome)).toEqual(['lost']);
        }
        expect(await claim(tdb.driver, { now: at(LEASE_MS * 100) })).toEqual([]);
      });
    });

    describe('jobRetry', () => {
      it('requeues a dead job due now, allowing one more attempt', async () => {
        const job = await jobIn('dead', { maxAttempts: 1 });
        expect([job.attempt, job.maxAttempts]).toEqual([1, 1]);
        const retried = await tdb.driver.jobRetry({ id: job.id, now: at(100_000) });
        expect(retried).toEqual({
          ...job,
          state: 'queued',
          runAt: at(100_000),
          maxAttempts: 2,
          lostCount: 0,
          finishedAt: null,
          updatedAt: at(100_000),
          lastError: retried.lastError, // not specified by the contract
        } satisfies JobRow);
        expect(await getJob(tdb.driver, job.id)).toEqual(retried);
        const again = await claimExactly(tdb.driver, job.id, { now: at(100_000) });
        expect([again.attempt, again.leaseToken]).toEqual([2, 2]);
      });

      it('keeps a larger maxAttempts', async () => {
        const job = await jobIn('dead', { maxAttempts: 7 });
        const retried = await tdb.driver.jobRetry({ id: job.id, now: at(2_000) });
        expect([retried.state, retried.maxAttempts, retried.attempt]).toEqual(['queued', 7, 1]);
      });

      it('resets the lost count of a poison job', async () => {
        const job = await jobIn('running', { maxAttempts: 10 });
        const rescued = await tdb.driver.jobRescue({ maxLost: 1, limit: 10, now: at(LEASE_MS + 1) });
        expect(rescued.map((r) => r.state)).toEqual(['dead']);
        expect((await getJob(tdb.driver, job.id)).lostCount).toBe(1);
        const retried = await tdb.driver.jobRetry({ id: job.id, now: at(LEASE_MS + 2) });
        expect([retried.state, retried.lostCount, retried.finishedAt]).toEqual(['queued', 0, null]);
      });

      it('makes a retrying job due now', async () => {
        const job = await jobIn('retrying');
        expect(job.runAt).toEqual(at(1_000 + 3_600_000));
        const retried = await tdb.driver.jobRetry({ id: job.id, now: at(10_000) });
        expect([retried.state, retried.runAt, retried.finishedAt]).toEqual(['queued', at(10_000), null]);
        await claimExactly(tdb.driver, job.id, { now: at(10_000) });
      });

      it.each(['completed', 'queued', 'running', 'cancelled'] as const)('refuses a %s job with JobStateError, changing nothing', async (state) => {
        const job = await jobIn(state);
        const error = await expectRejects(tdb.driver.jobRetry({ id: job.id, now: at(5_000) }), JobStateError);
        expect([error.jobId, error.state]).toEqual([job.id, state]);
        expect(await getJob(tdb.driver, job.id)).toEqual(job);
      });

      it.each(['987654321', 'abc'])('throws JobNotFoundError for id %j', async (id) => {
        await expectRejects(tdb.driver.jobRetry({ id, now: at(0) }), JobNotFoundError);
      });

      it('throws KeyConflictError when another active job now holds its key', async () => {
        const dead = await jobIn('dead', { key: 'invoice-7' });
        const [holder] = await tdb.driver.jobInsertMany({ jobs: [makeInsert({ key: 'invoice-7', name: 'holder' })], now: at(2_000) });
        expect(holder!.duplicate).toBe(false);
        const error = await expectRejects(tdb.driver.jobRetry({ id: dead.id, now: at(3_000) }), KeyConflictError);
        expect(error.key).toBe('invoice-7');
        expect([holder!.job.id, null]).toContain(error.existingJobId);
        expect(await getJob(tdb.driver, dead.id)).toEqual(dead);
        expect((await getJob(tdb.driver, holder!.job.id)).state).toBe('queued');
      });

      it('retries a keyed dead job when the key is free', async () => {
        const dead = await jobIn('dead', { key: 'invoice-8' });
        const retried = await tdb.driver.jobRetry({ id: dead.id, now: at(3_000) });
        expect([retried.state, retried.key]).toEqual(['queued', 'invoice-8']);
        const [dup] = await tdb.driver.jobInsertMany({ jobs: [makeInsert({ key: 'invoice-8' })], now: at(4_000) });
        expect(dup).toEqual({ job: retried, duplicate: true, replaced: false });
      });
    });

    describe('jobDiscard', () => {
      it.each(['dead', 'completed', 'cancelled', 'queued', 'retrying'] as const)('deletes a %s job with its attempts', async (state) => {
        const job = await jobIn(state);
        const keep = await insertJob(tdb.driver, { name: 'keep' });
        const listedBefore = await tdb.driver.jobAttemptList({ id: job.id });
        expect(listedBefore).toHaveLength(state === 'queued' || state === 'cancelled' ? 0 : 1);
        // A completing attempt is kept on the job row (migration 0011); the others are job_attempts rows.
        expect(await countRows(tdb, 'job_attempts', job.id)).toBe(state === 'completed' ? 0 : listedBefore.length);
        const deleted = await tdb.driver.jobDiscard({ id: job.id });
        expect(deleted).toEqual(job);
        expect(await tdb.driver.jobGet({ id: job.id })).toBeNull();
        expect(await tdb.driver.jobAttemptList({ id: job.id })).toEqual([]);
        expect(await countRows(tdb, 'job_attempts', job.id)).toBe(0);
        expect(await countRows(tdb, 'jobs')).toBe(1);
        expect((await getJob(tdb.driver, keep.id)).name).toBe('keep');
      });

      it('frees the key of a discarded active job', async () => {
        const job = await jobIn('queued', { key: 'k' });
        await tdb.driver.jobDiscard({ id: job.id });
        const [again] = await tdb.driver.jobInsertMany({ jobs: [makeInsert({ key: 'k' })], now: at(1) });
        expect(again!.duplicate).toBe(false);
      });

      it('refuses a running job with JobStateError, changing nothing', async () => {
        const job = await jobIn('running');
        const error = await expectRejects(tdb.driver.jobDiscard({ id: job.id }), JobStateError);
        expect([error.jobId, error.state]).toEqual([job.id, 'running']);
        expect(await getJob(tdb.driver, job.id)).toEqual(job);
      });

      it.each(['987654321', 'abc'])('throws JobNotFoundError for id %j', async (id) => {
        await expectRejects(tdb.driver.jobDiscard({ id }), JobNotFoundError);
      });
    });

    describe('jobList', () => {
      it('returns nothing for an empty database', async () => {
        expect(await tdb.driver.jobList({})).toEqual([]);
      });

      it('lists newest first, filtered by state, queue and name', async () => {
        const a = await jobIn('completed', { name: 'alpha', queue: 'q1' });
        const b = await jobIn('queued', { name: 'beta', queue: 'q1' });
        const c = await jobIn('dead', { name: 'alpha', queue: 'q2' });
        const d = await jobIn('queued', { name: 'alpha', queue: 'q2' });
        const e = await jobIn('cancelled', { name: 'beta', queue: 'q2' });
        const ids = (rows: JobRow[]) => rows.map((r) => r.id);
        expect(ids(await tdb.driver.jobList({}))).toEqual([e.id, d.id, c.id, b.id, a.id]);
        expect(await tdb.driver.jobList({})).toEqual([e, d, c, b, a]);
        expect(ids(await tdb.driver.jobList({ state: 'queued' }))).toEqual([d.id, b.id]);
        expect(ids(await tdb.driver.jobList({ queue: 'q1' }))).toEqual([b.id, a.id]);
        expect(ids(await tdb.driver.jobList({ name: 'alpha' }))).toEqual([d.id, c.id, a.id]);
        expect(ids(await tdb.driver.jobList({ name: 'alpha', queue: 'q2' }))).toEqual([d.id, c.id]);
        expect(ids(await tdb.driver.jobList({ name: 'alpha', queue: 'q2', state: 'dead' }))).toEqual([c.id]);
        expect(ids(await tdb.driver.jobList({ state: 'running' }))).toEqual([]);
        expect(ids(await tdb.driver.jobList({ queue: 'nope' }))).toEqual([]);
      });

      it('lists every state among thousands of completed jobs; rare states through jobs_rare_state_idx (migration 0009)', async () => {
        await tdb.driver.jobInsertMany({ jobs: Array.from({ length: 3_000 }, () => makeInsert()), now: at(0) });
        await rawQuery(tdb, `UPDATE ${tableRef(tdb, 'jobs')} SET state = 'completed', finished_at = created_at`);
        const byState = new Map<JobState, JobRow>();
        for (const state of ['dead', 'retrying', 'cancelled', 'running', 'queued'] as const) byState.set(state, await jobIn(state));
        for (const [state, job] of byState) expect((await tdb.driver.jobList({ state })).map((r) => r.id)).toEqual([job.id]);
        const completed = await tdb.driver.jobList({ state: 'completed', limit: 1_000 });
        expect(completed).toHaveLength(1_000);
        expect(completed.every((r) => r.state === 'completed')).toBe(true);
        if (tdb.kind === 'postgres') await rawQuery(tdb, `ANALYZE ${tableRef(tdb, 'jobs')}`);
        const indexes = (await rawQuery(tdb, tdb.kind === 'sqlite'
          ? `SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'jobs'`
          : `SELECT indexname AS name FROM pg_indexes WHERE schemaname = '${tdb.schema}' AND tablename = 'jobs'`)).map((r) => r.name);
        expect(indexes).toContain('jobs_rare_state_idx');
        expect(indexes).not.toContain('jobs_state_id_idx');
        for (const state of ['dead', 'retrying', 'cancelled']) {
          const plan = await explainJobList(tdb, state);
          expect(plan, `plan of listing ${state} jobs`).toContain('jobs_rare_state_idx');
        }
      });

      it('pages backwards with beforeId and limit', async () => {
        const jobs = await insertJobs(tdb.driver, Array.from({ length: 7 }, (_, i) => ({ name: `j${i}` })));
        const newestFirst = [...jobs].reverse().map((j) => j.id);
        const page1 = await tdb.driver.jobList({ limit: 3 });
        expect(page1.map((j) => j.id)).toEqual(newestFirst.slice(0, 3));
        const page2 = await tdb.driver.jobList({ limit: 3, beforeId: page1[2]!.id });
        expect(page2.map((j) => j.id)).toEqual(newestFirst.slice(3, 6));
        const page3 = await tdb.driver.jobList({ limit: 3, beforeId: page2[2]!.id });
        expect(page3.map((j) => j.id)).toEqual(newestFirst.slice(6));
        expect(await tdb.driver.jobList({ limit: 3, beforeId: page3[0]!.id })).toEqual([]);
        // beforeId combines with filters.
        const filtered = await tdb.driver.jobList({ name: 'j1', beforeId: jobs[2]!.id });
        expect(filtered.map((j) => j.id)).toEqual([jobs[1]!.id]);
      });

      it('defaults to 50 and clamps the limit to 1,000', async () => {
        const total = 1_010;
        await tdb.driver.jobInsertMany({ jobs: Array.from({ length: total }, () => makeInsert()), now: at(0) });
        expect(await tdb.driver.jobList({})).toHaveLength(50);
        expect(await tdb.driver.jobList({ limit: 5_000 })).toHaveLength(1_000);
        expect(await tdb.driver.jobList({ limit: 1_000 })).toHaveLength(1_000);
        expect(await tdb.driver.jobList({ limit: 7 })).toHaveLength(7);
      });
    });

    describe('jobAttemptList', () => {
      it('is empty for a job that never finished an attempt, and for unknown ids', async () => {
        const job = await jobIn('running');
        expect(await tdb.driver.jobAttemptList({ id: job.id })).toEqual([]);
        expect(await tdb.driver.jobAttemptList({ id: '987654321' })).toEqual([]);
      });

      it('lists only the attempts of the given job', async () => {
        const a = await jobIn('completed', { name: 'a' });
        const b = await jobIn('dead', { name: 'b' });
        expect((await tdb.driver.jobAttemptList({ id: a.id })).map((x) => [x.jobId, x.outcome])).toEqual([[a.id, 'completed']]);
        expect((await tdb.driver.jobAttemptList({ id: b.id })).map((x) => [x.jobId, x.outcome])).toEqual([[b.id, 'failed']]);
      });

      it('lists a failed attempt (a stored row) and the completing one (kept on the job row) oldest first', async () => {
        const job = await insertJob(tdb.driver, { maxAttempts: 3 });
        const first = await claimExactly(tdb.driver, job.id, { workerId: 'w1', now: at(1_000) });
        const error = errorInfo();
        await tdb.driver.jobFinishMany({ items: [finishOf(first, { outcome: 'failed', state: 'retrying', retryDelayMs: 0, error })], now: at(2_000) });
        const second = await claimExactly(tdb.driver, job.id, { workerId: 'w2', now: at(3_000) });
        expect(await tdb.driver.jobFinishMany({ items: [finishOf(second)], now: at(4_000) })).toEqual({ applied: [job.id], stale: [] });

        expect(await tdb.driver.jobAttemptList({ id: job.id })).toEqual([
          { jobId: job.id, attempt: 1, leaseToken: 1, workerId: 'w1', startedAt: at(1_000), finishedAt: at(2_000), outcome: 'failed', error },
          { jobId: job.id, attempt: 2, leaseToken: 2, workerId: 'w2', startedAt: at(3_000), finishedAt: at(4_000), outcome: 'completed', error: null },
        ]);
        expect(await countRows(tdb, 'job_attempts', job.id)).toBe(1);
        expect(await rawQuery(tdb, `SELECT completed_by FROM ${tableRef(tdb, 'jobs')} WHERE id = ?`, [Number(job.id)])).toEqual([{ completed_by: 'w2' }]);
      });

      it('keeps an attempt on the job row only when it completes the job: outcome completed into another state is a row', async () => {
        const job = await insertJob(tdb.driver, { maxAttempts: 3 });
        const first = await claimExactly(tdb.driver, job.id, { workerId: 'w1', now: at(1_000) });
        await tdb.driver.jobFinishMany({ items: [finishOf(first, { state: 'retrying', retryDelayMs: 0 })], now: at(2_000) });
        expect(await countRows(tdb, 'job_attempts', job.id)).toBe(1);
        expect(await rawQuery(tdb, `SELECT completed_by FROM ${tableRef(tdb, 'jobs')} WHERE id = ?`, [Number(job.id)])).toEqual([{ completed_by: null }]);
        const second = await claimExactly(tdb.driver, job.id, { workerId: 'w2', now: at(3_000) });
        await tdb.driver.jobFinishMany({ items: [finishOf(second)], now: at(4_000) });
        expect((await tdb.driver.jobAttemptList({ id: job.id })).map((a) => [a.attempt, a.outcome, a.workerId])).toEqual([[1, 'completed', 'w1'], [2, 'completed', 'w2']]);
      });

      it('lists a completion stored as an attempt row (before migration 0011) once', async () => {
        const job = await jobIn('completed');
        const [listed] = await tdb.driver.jobAttemptList({ id: job.id });
        // The form a job completed before 0011 has: its completing attempt a row of its own, completed_by NULL.
        await rawQuery(tdb, `INSERT INTO ${tableRef(tdb, 'job_attempts')} (job_id, attempt, lease_token, worker_id, started_at, finished_at, outcome, error)
          VALUES (?, ?, ?, ?, ?, ?, 'completed', NULL)`, [Number(job.id), listed!.attempt, listed!.leaseToken, listed!.workerId, rawTime(tdb, listed!.startedAt!), rawTime(tdb, listed!.finishedAt)]);
        await rawQuery(tdb, `UPDATE ${tableRef(tdb, 'jobs')} SET completed_by = NULL WHERE id = ?`, [Number(job.id)]);
        expect(await tdb.driver.jobAttemptList({ id: job.id })).toEqual([listed]);
      });
    });
  });
}

/** The query plan (as text) of the driver's own job-list statement filtered by `state`, as the driver runs it. */
async function explainJobList(tdb: TestDatabase, state: string): Promise<string> {
  if (tdb.kind === 'sqlite') {
    const SQL = await import('../../src/driver/sqlite/sqlite-job-admin-sql.js');
    const db = openRawSqlite(tdb);
    try {
      const sql = SQL.jobListSql({ state: SQL.jobListStateFilter(state), queue: false, name: false });
      const rows = db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all({ state, beforeId: 2n ** 62n, limit: 50 }) as { detail: string }[];
      return rows.map((r) => r.detail).join('\n');
    } finally {
      db.close();
    }
  }
  const { buildPostgresStatements } = await import('../../src/driver/postgres/postgres-statements.js');
  // An unnamed statement with parameters, planned for their values, as the driver's pool runs it.
  const rows = await rawQuery(tdb, `EXPLAIN ${buildPostgresStatements(tdb.schema!).jobList}`, [state, null, null, null, 50]);
  return rows.map((r) => String(r['QUERY PLAN'])).join('\n');
}
