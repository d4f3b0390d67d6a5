/**
 * Conformance: the lease guard — `jobHeartbeat` and `jobFinishMany` apply only for the current lease token of
 * a running job, record attempt rows, and report stale writes without applying them (including ABA).
 * @module
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ErrorInfo, JobRow } from '../../src/job/job-record.js';
import { createTestDatabase, type DriverKind, type TestDatabase } from '../support/test-databases.js';
import { exerciseHeartbeatBesideLockedRow } from './job-heartbeat-locked.js';
import {
  at,
  claim,
  claimExactly,
  countRows,
  errorInfo,
  finishOf,
  getJob,
  insertJob,
  insertJobs,
  LEASE_MS,
  leaseOf,
  sortIds,
} from './helpers.js';

/** Declares the lease-guard conformance tests (heartbeat, finish, stale writes) for one driver kind. */
export function exerciseJobLease(kind: DriverKind): void {
  describe('lease guard', () => {
    let tdb: TestDatabase;
    beforeEach(async () => {
      tdb = await createTestDatabase(kind);
    });
    afterEach(async () => {
      await tdb.cleanup();
    });

    /** Inserts one job and claims it at T0 with worker w1. */
    async function running(overrides: Parameters<typeof insertJob>[1] = {}): Promise<JobRow> {
      const job = await insertJob(tdb.driver, overrides);
      return claimExactly(tdb.driver, job.id, { now: at(0), workerId: 'w1' });
    }

    describe('jobRelease', () => {
      it('hands a claimed, never-started job back: queued, attempt taken back, token kept, no attempt row', async () => {
        const job = await running();
        const result = await tdb.driver.jobRelease({ leases: [leaseOf(job)], now: at(1_000) });
        expect(result).toEqual({ applied: [job.id], stale: [] });
        const row = await getJob(tdb.driver, job.id);
        expect([row.state, row.attempt, row.leaseToken, row.leaseWorker, row.leaseExpiresAt, row.startedAt]).toEqual(['queued', 0, 1, null, null, null]);
        expect(await tdb.driver.jobAttemptList({ id: job.id })).toEqual([]);
        // The released job is claimable again at once, with a higher token; the old token stays stale.
        const again = await claimExactly(tdb.driver, job.id, { now: at(2_000), workerId: 'w2' });
        expect([again.attempt, again.leaseToken]).toEqual([1, 2]);
        expect(await tdb.driver.jobRelease({ leases: [leaseOf(job)], now: at(3_000) })).toEqual({ applied: [], stale: [job.id] });
        expect((await getJob(tdb.driver, job.id)).state).toBe('running');
      });

      it('keeps the attempt count of a job that ran before', async () => {
        const job = await running();
        await tdb.driver.jobFinishMany({ items: [finishOf(job, { outcome: 'failed', state: 'retrying', retryDelayMs: 0, error: errorInfo('boom') })], now: at(1_000) });
        const second = await claimExactly(tdb.driver, job.id, { now: at(2_000) });
        await tdb.driver.jobRelease({ leases: [leaseOf(second)], now: at(3_000) });
        const row = await getJob(tdb.driver, job.id);
        expect([row.state, row.attempt, row.leaseToken]).toEqual(['queued', 1, 2]);
      });

      it('reports a cancelled or finished job as stale and leaves it alone', async () => {
        const [a, b] = await insertJobs(tdb.driver, [{}, {}]);
        const claimed = await claim(tdb.driver, { limit: 2 });
        expect(sortIds(claimed.map((j) => j.id))).toEqual(sortIds([a!.id, b!.id]));
        await tdb.driver.jobCancel({ id: a!.id, now: at(500) });
        const result = await tdb.driver.jobRelease({ leases: claimed.map(leaseOf), now: at(1_000) });
        expect(result).toEqual({ applied: [b!.id], stale: [a!.id] });
        expect((await getJob(tdb.driver, a!.id)).state).toBe('cancelled');
      });
    });

    describe('jobLeasedTo', () => {
      it('lists the running jobs leased to a worker, by id, at most limit; others\' and ended leases are not listed', async () => {
        const jobs = await insertJobs(tdb.driver, [{}, {}, {}, {}, {}]);
        // Claimed one at a time in id order: the first by w1 and ended, then w1, w2, w1; the fifth stays queued.
        const ended = await claimExactly(tdb.driver, jobs[0]!.id, { limit: 1, workerId: 'w1' });
        await tdb.driver.jobFinishMany({ items: [finishOf(ended)], now: at(1_000) });
        const first = await claimExactly(tdb.driver, jobs[1]!.id, { limit: 1, workerId: 'w1' });
        await claimExactly(tdb.driver, jobs[2]!.id, { limit: 1, workerId: 'w2' });
        const second = await claimExactly(tdb.driver, jobs[3]!.id, { limit: 1, workerId: 'w1' });
        const expected = [leaseOf(first), leaseOf(second)];
        expect(await tdb.driver.jobLeasedTo({ workerId: 'w1', limit: 10 })).toEqual(expected);
        expect(await tdb.driver.jobLeasedTo({ workerId: 'w1', limit: 1 })).toEqual(expected.slice(0, 1));
        expect(await tdb.driver.jobLeasedTo({ workerId: 'nobody', limit: 10 })).toEqual([]);
        for (const limit of [0, 10_001, 1.5, Number.NaN]) {
          await expect(tdb.driver.jobLeasedTo({ workerId: 'w1', limit })).rejects.toThrow(/Expected limit to be an integer from 1 to 10000/);
        }
      });
    });

    describe('jobLeaseCheck', () => {
      it('lists, in request order, the leases no longer held and the held ones whose queue is paused; writes nothing', async () => {
        const [held, cancelled, finished, paused, pausedCancelled] = await insertJobs(tdb.driver, [
          {}, {}, {}, { queue: 'slow' }, { queue: 'slow' },
        ]);
        const claimed = await claim(tdb.driver, { limit: 5, queues: ['default', 'slow'] });
        const lease = (job: JobRow | undefined) => leaseOf(claimed.find((c) => c.id === job!.id)!);
        await tdb.driver.jobCancel({ id: cancelled!.id, now: at(500) });
        await tdb.driver.jobCancel({ id: pausedCancelled!.id, now: at(500) });
        await tdb.driver.jobFinishMany({ items: [finishOf(lease(finished))], now: at(500) });
        await tdb.driver.queuePause({ queue: 'slow' });
        const before = await getJob(tdb.driver, held!.id);
        const leases = [
          lease(pausedCancelled), lease(held), { id: held!.id, leaseToken: 7 }, lease(paused), lease(cancelled),
          lease(finished), { id: '999999', leaseToken: 1 }, { id: `0${held!.id}`, leaseToken: 1 }, { id: 'x', leaseToken: 1 },
        ];
        expect(await tdb.driver.jobLeaseCheck({ leases })).toEqual({
          stale: [pausedCancelled!.id, held!.id, cancelled!.id, finished!.id, '999999', `0${held!.id}`, 'x'],
          paused: [paused!.id],
        });
        expect(await getJob(tdb.driver, held!.id)).toEqual(before);
        await tdb.driver.queueResume({ queue: 'slow' });
        expect(await tdb.driver.jobLeaseCheck({ leases: [lease(paused), lease(held)] })).toEqual({ stale: [], paused: [] });
        // Handed back: queued again, the lease is gone.
        await tdb.driver.jobRelease({ leases: [lease(paused)], now: at(1_000) });
        expect(await tdb.driver.jobLeaseCheck({ leases: [lease(paused)] })).toEqual({ stale: [paused!.id], paused: [] });
        expect(await tdb.driver.jobLeaseCheck({ leases: [] })).toEqual({ stale: [], paused: [] });
      });
    });

    describe('jobHeartbeat', () => {
      it('renews the lease of the current token from now', async () => {
        const job = await running();
        const result = await tdb.driver.jobHeartbeat({ leases: [leaseOf(job)], leaseMs: 30_000, now: at(10_000) });
        expect(result).toEqual({ applied: [job.id], stale: [] });
        const row = await getJob(tdb.driver, job.id);
        expect(row.leaseExpiresAt).toEqual(at(40_000));
        expect([row.state, row.leaseToken, row.attempt, row.leaseWorker]).toEqual(['running', 1, 1, 'w1']);
        expect(row.startedAt).toEqual(at(0));
        // The renewed lease protects the job past its original expiry.
        expect(await tdb.driver.jobRescue({ maxLost: 5, limit: 10, now: at(35_000) })).toEqual([]);
        expect((await getJob(tdb.driver, job.id)).state).toBe('running');
      });

      it('can shorten or extend the lease with another leaseMs', async () => {
        const job = await running();
        await tdb.driver.jobHeartbeat({ leases: [leaseOf(job)], leaseMs: 120_000, now: at(1_000) });
        expect((await getJob(tdb.driver, job.id)).leaseExpiresAt).toEqual(at(121_000));
        await tdb.driver.jobHeartbeat({ leases: [leaseOf(job)], leaseMs: 5_000, now: at(2_000) });
        expect((await getJob(tdb.driver, job.id)).leaseExpiresAt).toEqual(at(7_000));
      });

      it('reports a wrong token as stale and changes nothing', async () => {
        const job = await running();
        for (const leaseToken of [0, 2, 99]) {
          const result = await tdb.driver.jobHeartbeat({ leases: [{ id: job.id, leaseToken }], leaseMs: 30_000, now: at(10_000) });
          expect(result).toEqual({ applied: [], stale: [job.id] });
        }
        expect(await getJob(tdb.driver, job.id)).toEqual(job);
      });

      it('reports an unknown id as stale', async () => {
        const result = await tdb.driver.jobHeartbeat({ leases: [{ id: '987654321', leaseToken: 1 }], leaseMs: 30_000, now: at(0) });
        expect(result).toEqual({ applied: [], stale: ['987654321'] });
      });

      it('reports a queued (never claimed) job as stale', async () => {
        const job = await insertJob(tdb.driver);
        const result = await tdb.driver.jobHeartbeat({ leases: [{ id: job.id, leaseToken: 0 }], leaseMs: 30_000, now: at(0) });
        expect(result).toEqual({ applied: [], stale: [job.id] });
        expect(await getJob(tdb.driver, job.id)).toEqual(job);
      });

      it('splits a batch into applied and stale', async () => {
        await insertJobs(tdb.driver, [{ name: 'a' }, { name: 'b' }, { name: 'c' }]);
        const [a, b, c] = await claim(tdb.driver, { limit: 3 });
        const result = await tdb.driver.jobHeartbeat({
          leases: [leaseOf(a!), { id: b!.id, leaseToken: 7 }, leaseOf(c!), { id: '999999999', leaseToken: 1 }],
          leaseMs: 30_000,
          now: at(5_000),
        });
        expect(sortIds(result.applied)).toEqual(sortIds([a!.id, c!.id]));
        expect(sortIds(result.stale)).toEqual(sortIds([b!.id, '999999999']));
        expect((await getJob(tdb.driver, a!.id)).leaseExpiresAt).toEqual(at(35_000));
        expect((await getJob(tdb.driver, b!.id)).leaseExpiresAt).toEqual(at(LEASE_MS));
        expect((await getJob(tdb.driver, c!.id)).leaseExpiresAt).toEqual(at(35_000));
      });

      it('does nothing for an empty list', async () => {
        expect(await tdb.driver.jobHeartbeat({ leases: [], leaseMs: 30_000, now: at(0) })).toEqual({ applied: [], stale: [] });
      });

      it('is stale after the attempt finished', async () => {
        const job = await running();
        await tdb.driver.jobFinishMany({ items: [finishOf(job)], now: at(1_000) });
        const before = await getJob(tdb.driver, job.id);
        const result = await tdb.driver.jobHeartbeat({ leases: [leaseOf(job)], leaseMs: 30_000, now: at(2_000) });
        expect(result).toEqual({ applied: [], stale: [job.id] });
        expect(await getJob(tdb.driver, job.id)).toEqual(before);
      });

      it('is stale after the job was cancelled', async () => {
        const job = await running();
        await tdb.driver.jobCancel({ id: job.id, now: at(1_000) });
        const before = await getJob(tdb.driver, job.id);
        const result = await tdb.driver.jobHeartbeat({ leases: [leaseOf(job)], leaseMs: 30_000, now: at(2_000) });
        expect(result).toEqual({ applied: [], stale: [job.id] });
        expect(await getJob(tdb.driver, job.id)).toEqual(before);
        expect(before.state).toBe('cancelled');
      });
    });

    exerciseHeartbeatBesideLockedRow(kind, () => tdb);

    describe('jobFinishMany', () => {
      it('completes: state completed, finishedAt now, lease cleared, one attempt (kept on the job row)', async () => {
        const job = await running();
        const result = await tdb.driver.jobFinishMany({ items: [finishOf(job)], now: at(5_000) });
        expect(result).toEqual({ applied: [job.id], stale: [] });
        expect(await getJob(tdb.driver, job.id)).toEqual({
          ...job,
          state: 'completed',
          leaseWorker: null,
          leaseExpiresAt: null,
          lastError: null,
          finishedAt: at(5_000),
          updatedAt: at(5_000),
        } satisfies JobRow);
        expect(await tdb.driver.jobAttemptList({ id: job.id })).toEqual([
          { jobId: job.id, attempt: 1, leaseToken: 1, workerId: 'w1', startedAt: at(0), finishedAt: at(5_000), outcome: 'completed', error: null },
        ]);
        expect(await countRows(tdb, 'job_attempts', job.id)).toBe(0);
      });

      // Drivers end a batch of plain completions with a shorter statement than a batch with anything else in it:
      // the same completion must leave the same row and attempt either way, and a stale one change nothing.
      it('completes a job alike in a batch of completions only and in a mixed batch', async () => {
        await insertJobs(tdb.driver, [{ name: 'a' }, { name: 'a' }, { name: 'a' }, { name: 'a' }]);
        const [alone, staleAlone, mixed, failed] = await claim(tdb.driver, { limit: 4 });
        const onlyCompletions = await tdb.driver.jobFinishMany({
          items: [finishOf(alone!), finishOf({ id: staleAlone!.id, leaseToken: staleAlone!.leaseToken + 1 })],
          now: at(5_000),
        });
        const withFailure = await tdb.driver.jobFinishMany({
          items: [finishOf(mixed!), finishOf(failed!, { outcome: 'failed', state: 'retrying', retryDelayMs: 1_000, error: errorInfo() })],
          now: at(5_000),
        });
        expect(onlyCompletions).toEqual({ applied: [alone!.id], stale: [staleAlone!.id] });
        expect(withFailure).toEqual({ applied: [mixed!.id, failed!.id], stale: [] });
        const expected = (job: JobRow): JobRow => ({
          ...job, state: 'completed', leaseWorker: null, leaseExpiresAt: null, lastError: null, finishedAt: at(5_000), updatedAt: at(5_000),
        });
        expect(await getJob(tdb.driver, alone!.id)).toEqual(expected(alone!));
        expect(await getJob(tdb.driver, mixed!.id)).toEqual(expected(mixed!));
        expect(await getJob(tdb.driver, staleAlone!.id)).toEqual(staleAlone);
        for (const job of [alone!, mixed!]) {
          expect(await tdb.driver.jobAttemptList({ id: job.id })).toEqual([
            { jobId: job.id, attempt: 1, leaseToken: job.leaseToken, workerId: 'w1', startedAt: at(0), finishedAt: at(5_000), outcome: 'completed', error: null },
          ]);
          expect(await countRows(tdb, 'job_attempts', job.id)).toBe(0);
        }
        expect(await tdb.driver.jobAttemptList({ id: staleAlone!.id })).toEqual([]);
      });

      it('dead-letters with the error stored on the job and the attempt', async () => {
        const job = await running();
        const error: ErrorInfo = { name: 'TypeError', message: 'nope — ✗', stack: 'TypeError: nope\n    at x (y.ts:1:2)' };
        await tdb.driver.jobFinishMany({ items: [finishOf(job, { outcome: 'failed', state: 'dead', error })], now: at(5_000) });
        expect(await getJob(tdb.driver, job.id)).toEqual({
          ...job,
          state: 'dead',
          leaseWorker: null,
          leaseExpiresAt: null,
          lastError: error,
          finishedAt: at(5_000),
          updatedAt: at(5_000),
        } satisfies JobRow);
        expect(await tdb.driver.jobAttemptList({ id: job.id })).toEqual([
          { jobId: job.id, attempt: 1, leaseToken: 1, workerId: 'w1', startedAt: at(0), finishedAt: at(5_000), outcome: 'failed', error },
        ]);
      });

      it('stores schema issues of an invalid outcome', async () => {
        const job = await running();
        const error: ErrorInfo = {
          name: 'PayloadValidationError',
          message: 'bad payload',
          issues: [
            { message: 'Required', path: ['to'] },
            { message: 'Too small', path: ['items', 0, 'qty'] },
          ],
        };
        await tdb.driver.jobFinishMany({ items: [finishOf(job, { outcome: 'invalid', state: 'dead', error })], now: at(1_000) });
        expect((await getJob(tdb.driver, job.id)).lastError).toEqual(error);
        const [attempt] = await tdb.driver.jobAttemptList({ id: job.id });
        expect([attempt!.outcome, attempt!.error]).toEqual(['invalid', error]);
      });

      it('retries: state retrying due now + retryDelayMs, lease cleared, not finished', async () => {
        const job = await running();
        const error = errorInfo('transient');
        await tdb.driver.jobFinishMany({
          items: [finishOf(job, { outcome: 'failed', state: 'retrying', retryDelayMs: 60_000, error })],
          now: at(5_000),
        });
        expect(await getJob(tdb.driver, job.id)).toEqual({
          ...job,
          state: 'retrying',
          runAt: at(65_000),
          leaseWorker: null,
          leaseExpiresAt: null,
          lastError: error,
          finishedAt: null,
          updatedAt: at(5_000),
        } satisfies JobRow);
        expect(await tdb.driver.jobAttemptList({ id: job.id })).toEqual([
          { jobId: job.id, attempt: 1, leaseToken: 1, workerId: 'w1', startedAt: at(0), finishedAt: at(5_000), outcome: 'failed', error },
        ]);
        expect(await claim(tdb.driver, { now: at(64_999) })).toEqual([]);
        await claimExactly(tdb.driver, job.id, { now: at(65_000) });
      });

      it('returns to queued (e.g. aborted on shutdown) due now + retryDelayMs', async () => {
        const job = await running();
        const error = errorInfo('shutdown');
        await tdb.driver.jobFinishMany({
          items: [finishOf(job, { outcome: 'aborted', state: 'queued', retryDelayMs: 0, error })],
          now: at(5_000),
        });
        const row = await getJob(tdb.driver, job.id);
        expect(row).toEqual({
          ...job,
          state: 'queued',
          runAt: at(5_000),
          leaseWorker: null,
          leaseExpiresAt: null,
          lastError: error,
          finishedAt: null,
          updatedAt: at(5_000),
        } satisfies JobRow);
        expect((await tdb.driver.jobAttemptList({ id: job.id })).map((a) => a.outcome)).toEqual(['aborted']);
        const again = await claimExactly(tdb.driver, job.id, { now: at(5_000) });
        expect([again.attempt, again.leaseToken]).toEqual([2, 2]);
      });

      it('records every attempt, oldest first, across retries', async () => {
        const job = await insertJob(tdb.driver, { maxAttempts: 5 });
        const first = await claimExactly(tdb.driver, job.id, { workerId: 'w1', now: at(0) });
        await tdb.driver.jobFinishMany({ items: [finishOf(first, { outcome: 'failed', state: 'retrying', retryDelayMs: 1_000, error: errorInfo('e1') })], now: at(100) });
        const second = await claimExactly(tdb.driver, job.id, { workerId: 'w2', now: at(1_100) });
        await tdb.driver.jobFinishMany({ items: [finishOf(second, { outcome: 'timeout', state: 'retrying', retryDelayMs: 1_000, error: errorInfo('e2') })], now: at(1_200) });
        const third = await claimExactly(tdb.driver, job.id, { workerId: 'w3', now: at(2_200) });
        await tdb.driver.jobFinishMany({ items: [finishOf(third)], now: at(2_300) });
        expect(await tdb.driver.jobAttemptList({ id: job.id })).toEqual([
          { jobId: job.id, attempt: 1, leaseToken: 1, workerId: 'w1', startedAt: at(0), finishedAt: at(100), outcome: 'failed', error: errorInfo('e1') },
          { jobId: job.id, attempt: 2, leaseToken: 2, workerId: 'w2', startedAt: at(1_100), finishedAt: at(1_200), outcome: 'timeout', error: errorInfo('e2') },
          { jobId: job.id, attempt: 3, leaseToken: 3, workerId: 'w3', startedAt: at(2_200), finishedAt: at(2_300), outcome: 'completed', error: null },
        ]);
        const row = await getJob(tdb.driver, job.id);
        expect([row.state, row.attempt, row.leaseToken, row.lastError]).toEqual(['completed', 3, 3, null]);
        expect(row.startedAt).toEqual(at(2_200));
      });

      it('applies the current leases of a batch and reports the stale ones untouched', async () => {
        await insertJobs(tdb.driver, [{ name: 'a' }, { name: 'b' }, { name: 'c' }]);
        const [a, b, c] = await claim(tdb.driver, { limit: 3 });
        const result = await tdb.driver.jobFinishMany({
          items: [
            finishOf(a!),
            finishOf({ id: b!.id, leaseToken: 2 }, { outcome: 'failed', state: 'dead', error: errorInfo() }),
            finishOf(c!, { outcome: 'failed', state: 'retrying', retryDelayMs: 1_000, error: errorInfo() }),
          ],
          now: at(5_000),
        });
        expect(sortIds(result.applied)).toEqual(sortIds([a!.id, c!.id]));
        expect(result.stale).toEqual([b!.id]);
        expect((await getJob(tdb.driver, a!.id)).state).toBe('completed');
        expect(await getJob(tdb.driver, b!.id)).toEqual(b);
        expect((await getJob(tdb.driver, c!.id)).state).toBe('retrying');
        expect(await tdb.driver.jobAttemptList({ id: b!.id })).toEqual([]);
        expect(await tdb.driver.jobAttemptList({ id: a!.id })).toHaveLength(1);
        expect(await tdb.driver.jobAttemptList({ id: c!.id })).toHaveLength(1);
      });

      it('splits a batch of completions only into applied and stale, in request order, a repeat counted once', async () => {
        // Nearly every batch a worker writes: on PostgreSQL it takes the completions-only statement, which answers
        // with the positions of the items it could not apply.
        await insertJobs(tdb.driver, [{ name: 'a' }, { name: 'b' }, { name: 'c' }, { name: 'd' }]);
        const [a, b, c] = await claim(tdb.driver, { limit: 3 });
        const d = (await tdb.driver.jobList({ state: 'queued', limit: 10 })).find((j) => j.name === 'd')!;
        const items = [finishOf(a!), finishOf({ id: b!.id, leaseToken: 99 }), finishOf(c!), finishOf(a!), finishOf(d), finishOf({ id: '999999999', leaseToken: 1 }), finishOf({ id: `00${c!.id}`, leaseToken: c!.leaseToken })];
        const result = await tdb.driver.jobFinishMany({ items, now: at(5_000) });
        expect(result).toEqual({ applied: [a!.id, c!.id], stale: [b!.id, a!.id, d.id, '999999999', `00${c!.id}`] });
        expect([(await getJob(tdb.driver, a!.id)).state, (await getJob(tdb.driver, c!.id)).state]).toEqual(['completed', 'completed']);
        expect(await getJob(tdb.driver, b!.id)).toEqual(b);
        expect(await getJob(tdb.driver, d.id)).toEqual(d);
        // All stale: every item reported, nothing changed.
        expect(await tdb.driver.jobFinishMany({ items: [finishOf(a!), finishOf(c!)], now: at(6_000) })).toEqual({ applied: [], stale: [a!.id, c!.id] });
      });

      it('reports a second finish of the same attempt as stale, recording nothing', async () => {
        const job = await running();
        await tdb.driver.jobFinishMany({ items: [finishOf(job)], now: at(1_000) });
        const after = await getJob(tdb.driver, job.id);
        const again = await tdb.driver.jobFinishMany({
          items: [finishOf(job, { outcome: 'failed', state: 'retrying', retryDelayMs: 0, error: errorInfo() })],
          now: at(2_000),
        });
        expect(again).toEqual({ applied: [], stale: [job.id] });
        expect(await getJob(tdb.driver, job.id)).toEqual(after);
        expect(await tdb.driver.jobAttemptList({ id: job.id })).toHaveLength(1);
      });

      it('reports finishing a never-claimed job or an unknown id as stale', async () => {
        const job = await insertJob(tdb.driver);
        const result = await tdb.driver.jobFinishMany({ items: [finishOf(job), finishOf({ id: '999999999', leaseToken: 1 })], now: at(1_000) });
        expect(result.applied).toEqual([]);
        expect(sortIds(result.stale)).toEqual(sortIds([job.id, '999999999']));
        expect(await getJob(tdb.driver, job.id)).toEqual(job);
        expect(await tdb.driver.jobAttemptList({ id: job.id })).toEqual([]);
      });

      it('applies the same lease only once when a batch repeats it', async () => {
        const job = await running();
        const result = await tdb.driver.jobFinishMany({
          items: [finishOf(job), finishOf(job, { outcome: 'failed', state: 'dead', error: errorInfo() })],
          now: at(1_000),
        });
        expect(result).toEqual({ applied: [job.id], stale: [job.id] });
        expect((await getJob(tdb.driver, job.id)).state).toBe('completed');
        expect((await tdb.driver.jobAttemptList({ id: job.id })).map((a) => a.outcome)).toEqual(['completed']);
      });

      it('does nothing for an empty list', async () => {
        expect(await tdb.driver.jobFinishMany({ items: [], now: at(0) })).toEqual({ applied: [], stale: [] });
      });

      it('rejects the old token after a rescue and re-claim (ABA), leaving the new attempt running', async () => {
        const job = await insertJob(tdb.driver, { maxAttempts: 5 });
        const first = await claimExactly(tdb.driver, job.id, { workerId: 'w1', now: at(0) });
        expect(first.leaseToken).toBe(1);
        const rescued = await tdb.driver.jobRescue({ maxLost: 5, limit: 10, now: at(LEASE_MS + 1) });
        expect(rescued.map((r) => [r.id, r.state])).toEqual([[job.id, 'retrying']]);
        const second = await claimExactly(tdb.driver, job.id, { workerId: 'w2', now: at(LEASE_MS + 1) });
        expect([second.leaseToken, second.attempt]).toEqual([2, 2]);

        const finish = await tdb.driver.jobFinishMany({ items: [finishOf(first)], now: at(LEASE_MS + 2) });
        expect(finish).toEqual({ applied: [], stale: [job.id] });
        const beat = await tdb.driver.jobHeartbeat({ leases: [leaseOf(first)], leaseMs: LEASE_MS, now: at(LEASE_MS + 3) });
        expect(beat).toEqual({ applied: [], stale: [job.id] });

        expect(await getJob(tdb.driver, job.id)).toEqual(second);
        expect((await tdb.driver.jobAttemptList({ id: job.id })).map((a) => [a.leaseToken, a.outcome])).toEqual([[1, 'lost']]);

        // The current holder still finishes normally.
        expect(await tdb.driver.jobFinishMany({ items: [finishOf(second)], now: at(LEASE_MS + 4) })).toEqual({ applied: [job.id], stale: [] });
        expect((await tdb.driver.jobAttemptList({ id: job.id })).map((a) => [a.leaseToken, a.outcome, a.workerId])).toEqual([
          [1, 'lost', 'w1'],
          [2, 'completed', 'w2'],
        ]);
      });

      it('is stale after the job was cancelled, recording no second attempt', async () => {
        const job = await running();
        await tdb.driver.jobCancel({ id: job.id, now: at(1_000) });
        const result = await tdb.driver.jobFinishMany({ items: [finishOf(job)], now: at(2_000) });
        expect(result).toEqual({ applied: [], stale: [job.id] });
        const row = await getJob(tdb.driver, job.id);
        expect(row.state).toBe('cancelled');
        expect((await tdb.driver.jobAttemptList({ id: job.id })).map((a) => a.outcome)).toEqual(['cancelled']);
      });
    });
  });
}
