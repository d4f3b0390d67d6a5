/**
 * Conformance: `jobClaim` — due jobs only, order, limit, queues, pauses, the fields a claim sets, and no job
 * claimed twice by concurrent claimers (several driver instances, and several processes).
 * @module
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { JobRow } from '../../src/job/job-record.js';
import { createTestDatabase, makeInsert, type DriverKind, type TestDatabase } from '../support/test-databases.js';
import { at, claim, claimExactly, errorInfo, finishOf, getJob, insertJob, insertJobs, LEASE_MS, sortIds } from './helpers.js';

const CLAIM_CHILD = fileURLToPath(new URL('./children/claim-loop.ts', import.meta.url));

/** Declares the `jobClaim` conformance tests for one driver kind. */
export function exerciseJobClaim(kind: DriverKind): void {
  describe('jobClaim', () => {
    let tdb: TestDatabase;
    beforeEach(async () => {
      tdb = await createTestDatabase(kind);
    });
    afterEach(async () => {
      await tdb.cleanup();
    });

    it('sets running, attempt + 1, lease_token + 1, worker, lease expiry and start time', async () => {
      const job = await insertJob(tdb.driver, { name: 'report', payloadJson: '{"n":1}', maxAttempts: 4 });
      const claimed = await claim(tdb.driver, { workerId: 'worker-a', leaseMs: 45_000, now: at(1_000) });
      const expected: JobRow = {
        ...job,
        state: 'running',
        attempt: 1,
        leaseToken: 1,
        leaseWorker: 'worker-a',
        leaseExpiresAt: at(46_000),
        startedAt: at(1_000),
        updatedAt: at(1_000),
      };
      expect(claimed).toEqual([expected]);
      expect(await getJob(tdb.driver, job.id)).toEqual(expected);
    });

    it('returns each claimed job exactly as stored, on the database clock too', async () => {
      // PostgreSQL's claim does not send back the fields it sets to known values (state, worker, start and update
      // time, the latter derived from the lease's expiry): what the caller gets must still equal the stored row,
      // also when the time is the database's own (microseconds there, milliseconds in a Date).
      const jobs = await insertJobs(tdb.driver, [{ name: 'a' }, { name: 'b', key: 'k-b', payloadJson: '{"deep":{"x":[1,2]}}' }, { name: 'c', priority: -1 }], null);
      const claimed = await tdb.driver.jobClaim({ queues: ['default'], limit: 10, workerId: 'worker-db-clock', leaseMs: 12_345, now: null });
      expect(claimed.map((j) => j.name).sort()).toEqual(['a', 'b', 'c']);
      for (const job of claimed) {
        expect(job, job.name).toEqual(await getJob(tdb.driver, job.id));
        expect(job.leaseExpiresAt!.getTime() - job.startedAt!.getTime()).toBe(12_345);
        expect([job.state, job.leaseWorker, job.updatedAt]).toEqual(['running', 'worker-db-clock', job.startedAt]);
      }
      expect(jobs).toHaveLength(3);
    });

    it("returns a reclaimed job's last error, checkpoint and progress exactly as stored, beside jobs without them", async () => {
      // SQLite's claim sends these (and finished_at) back packed in one column, NULL when all are: the unpacking
      // must give back the stored text and numbers, whatever characters the error and checkpoint hold.
      const [a, b, c] = await insertJobs(tdb.driver, [{ name: 'a', runAt: at(-2_000) }, { name: 'b', runAt: at(-1_000) }, { name: 'c', runAt: at(0) }]);
      const first = await claim(tdb.driver, { limit: 2, now: at(0) });
      expect(first.map((j) => j.id)).toEqual([a!.id, b!.id]);
      const [ja, jb] = first as [JobRow, JobRow];
      const checkpoint = { cursor: 'k"\\\u00e9\u{1F600}\n', page: [1, { deep: null }] };
      expect(await tdb.driver.jobCheckpoint({ id: ja.id, leaseToken: ja.leaseToken, checkpointJson: JSON.stringify(checkpoint), progressDone: 7, progressTotal: 9, now: at(100) })).toBe('applied');
      expect(await tdb.driver.jobCheckpoint({ id: jb.id, leaseToken: jb.leaseToken, checkpointJson: '"only a string"', progressDone: 3, progressTotal: null, now: at(150) })).toBe('applied');
      const error = errorInfo('bad "quote" \\ \u00e9\u{1F600}\nline 2');
      await tdb.driver.jobFinishMany({ items: [finishOf(ja, { outcome: 'failed', state: 'retrying', error }), finishOf(jb, { outcome: 'yielded', state: 'queued', extendAttempts: true })], now: at(200) });
      const again = await claim(tdb.driver, { limit: 10, now: at(1_000) });
      // c first: a and b became due again at their endings' time.
      expect(again.map((j) => j.id)).toEqual([c!.id, a!.id, b!.id]);
      for (const job of again) expect(job, job.name).toEqual(await getJob(tdb.driver, job.id));
      const [rc, ra, rb] = again as [JobRow, JobRow, JobRow];
      expect([ra.lastError, ra.checkpoint, ra.progress, ra.checkpointAt, ra.finishedAt]).toEqual([error, checkpoint, { done: 7, total: 9 }, at(100), null]);
      expect([rb.lastError, rb.checkpoint, rb.progress, rb.checkpointAt]).toEqual([null, 'only a string', { done: 3, total: null }, at(150)]);
      expect([rc.lastError, rc.checkpoint, rc.progress, rc.checkpointAt, rc.finishedAt]).toEqual([null, null, null, null, null]);
    });

    it('returns nothing when nothing is due', async () => {
      expect(await claim(tdb.driver)).toEqual([]);
      await insertJob(tdb.driver, { delayMs: 1_000 });
      expect(await claim(tdb.driver, { now: at(999) })).toEqual([]);
    });

    it('claims by priority (lower first), then run_at, then id', async () => {
      const [a, b, c, d, e, f] = await insertJobs(tdb.driver, [
        { name: 'a', priority: 5, runAt: at(-1_000) },
        { name: 'b', priority: 0, runAt: at(-1_000) },
        { name: 'c', priority: 0, runAt: at(-2_000) },
        { name: 'd', priority: 0, runAt: at(-2_000) },
        { name: 'e', priority: -1, runAt: at(0) },
        { name: 'f', priority: -10, runAt: at(1_000) }, // not due yet
      ]);
      const claimed = await claim(tdb.driver, { limit: 10, now: at(0) });
      expect(claimed.map((j) => j.name)).toEqual(['e', 'c', 'd', 'b', 'a']);
      expect(claimed.map((j) => j.id)).toEqual([e!.id, c!.id, d!.id, b!.id, a!.id]);
      expect((await getJob(tdb.driver, f!.id)).state).toBe('queued');
    });

    it('claims at most limit jobs per call, continuing in order', async () => {
      await insertJobs(tdb.driver, [
        { name: 'a', priority: 5 },
        { name: 'b', priority: 1 },
        { name: 'c', priority: 3 },
        { name: 'd', priority: 2 },
        { name: 'e', priority: 4 },
      ]);
      expect((await claim(tdb.driver, { limit: 2 })).map((j) => j.name)).toEqual(['b', 'd']);
      expect((await claim(tdb.driver, { limit: 2 })).map((j) => j.name)).toEqual(['c', 'e']);
      expect((await claim(tdb.driver, { limit: 2 })).map((j) => j.name)).toEqual(['a']);
      expect(await claim(tdb.driver, { limit: 2 })).toEqual([]);
    });

    it('claims in id order (FIFO) among jobs of equal priority and run_at', async () => {
      const jobs = await insertJobs(tdb.driver, Array.from({ length: 20 }, (_, i) => ({ name: `j${i}` })));
      const claimed = await claim(tdb.driver, { limit: 20 });
      expect(claimed.map((j) => j.id)).toEqual(jobs.map((j) => j.id));
    });

    it('claims only from the listed queues', async () => {
      const [q1, , q3] = await insertJobs(tdb.driver, [
        { name: 'in-q1', queue: 'q1' },
        { name: 'in-q2', queue: 'q2' },
        { name: 'in-q3', queue: 'q3' },
      ]);
      const claimed = await claim(tdb.driver, { queues: ['q1', 'q3'] });
      expect(sortIds(claimed.map((j) => j.id))).toEqual(sortIds([q1!.id, q3!.id]));
      expect(await claim(tdb.driver, { queues: ['q1', 'q3', 'other'] })).toEqual([]);
      expect((await claim(tdb.driver, { queues: ['q2'] })).map((j) => j.name)).toEqual(['in-q2']);
    });

    it('claims nothing for an empty queue list', async () => {
      await insertJob(tdb.driver);
      expect(await claim(tdb.driver, { queues: [] })).toEqual([]);
      expect((await tdb.driver.jobList({}))[0]!.state).toBe('queued');
    });

    it('skips paused queues and claims from them again once resumed', async () => {
      const [p1, , p2] = await insertJobs(tdb.driver, [
        { name: 'p1', queue: 'paused' },
        { name: 'o1', queue: 'open' },
        { name: 'p2', queue: 'paused' },
      ]);
      await tdb.driver.queuePause({ queue: 'paused' });
      expect((await claim(tdb.driver, { queues: ['paused', 'open'] })).map((j) => j.name)).toEqual(['o1']);
      expect(await claim(tdb.driver, { queues: ['paused', 'open'], now: at(60_000) })).toEqual([]);
      // A paused queue still accepts inserts.
      await insertJob(tdb.driver, { name: 'p3', queue: 'paused' }, at(1));
      expect(await claim(tdb.driver, { queues: ['paused'] , now: at(60_000) })).toEqual([]);
      await tdb.driver.queueResume({ queue: 'paused' });
      const claimed = await claim(tdb.driver, { queues: ['paused', 'open'], now: at(60_000) });
      expect(claimed.map((j) => j.name)).toEqual(['p1', 'p2', 'p3']);
      expect(claimed.slice(0, 2).map((j) => j.id)).toEqual([p1!.id, p2!.id]);
    });

    it('pausing one driver instance\'s queue stops claims through another instance', async () => {
      await insertJob(tdb.driver, { queue: 'shared' });
      const other = tdb.newDriver();
      await other.queuePause({ queue: 'shared' });
      expect(await claim(tdb.driver, { queues: ['shared'] })).toEqual([]);
      await other.queueResume({ queue: 'shared' });
      expect(await claim(tdb.driver, { queues: ['shared'] })).toHaveLength(1);
    });

    it('never claims a running job again, even after its lease expired', async () => {
      const job = await insertJob(tdb.driver);
      await claimExactly(tdb.driver, job.id, { now: at(0) });
      expect(await claim(tdb.driver, { now: at(1_000) })).toEqual([]);
      expect(await claim(tdb.driver, { now: at(LEASE_MS * 10) })).toEqual([]);
      const row = await getJob(tdb.driver, job.id);
      expect([row.state, row.attempt, row.leaseToken]).toEqual(['running', 1, 1]);
    });

    it('never claims completed, dead or cancelled jobs', async () => {
      const [done, dead, cancelled] = await insertJobs(tdb.driver, [{ name: 'done' }, { name: 'dead' }, { name: 'cancelled' }]);
      const running = await claim(tdb.driver, { limit: 2 });
      expect(running.map((j) => j.id)).toEqual([done!.id, dead!.id]);
      await tdb.driver.jobFinishMany({
        items: [finishOf(running[0]!), finishOf(running[1]!, { outcome: 'failed', state: 'dead', error: errorInfo() })],
        now: at(1),
      });
      await tdb.driver.jobCancel({ id: cancelled!.id, now: at(1) });
      expect(await claim(tdb.driver, { now: at(3_600_000) })).toEqual([]);
    });

    it('claims a retrying job once due, with attempt 2 and lease token 2', async () => {
      const job = await insertJob(tdb.driver);
      const first = await claimExactly(tdb.driver, job.id, { now: at(0) });
      await tdb.driver.jobFinishMany({
        items: [finishOf(first, { outcome: 'failed', state: 'retrying', retryDelayMs: 10_000, error: errorInfo() })],
        now: at(2_000),
      });
      expect(await claim(tdb.driver, { now: at(11_999) })).toEqual([]);
      const second = await claimExactly(tdb.driver, job.id, { workerId: 'w2', now: at(12_000) });
      expect([second.state, second.attempt, second.leaseToken, second.leaseWorker]).toEqual(['running', 2, 2, 'w2']);
      expect(second.startedAt).toEqual(at(12_000));
      expect(second.leaseExpiresAt).toEqual(at(12_000 + LEASE_MS));
    });

    it('orders retrying and queued jobs together by priority, run_at, id', async () => {
      const [r, q] = await insertJobs(tdb.driver, [{ name: 'will-retry' }, { name: 'queued-later', runAt: at(5_000) }]);
      const first = await claimExactly(tdb.driver, r!.id, { limit: 1 });
      await tdb.driver.jobFinishMany({
        items: [finishOf(first, { outcome: 'failed', state: 'retrying', retryDelayMs: 1_000, error: errorInfo() })],
        now: at(1_000),
      });
      // retrying is due at 2_000, queued at 5_000.
      const claimed = await claim(tdb.driver, { now: at(5_000) });
      expect(claimed.map((j) => j.id)).toEqual([r!.id, q!.id]);
    });

    it('lets 4 driver instances claiming in parallel take 500 jobs, each exactly once', async () => {
      const total = 500;
      const inserted = await tdb.driver.jobInsertMany({
        jobs: Array.from({ length: total }, (_, i) => makeInsert({ name: `job-${i}`, priority: i % 3 })),
        now: at(0),
      });
      const drivers = [tdb.newDriver(), tdb.newDriver(), tdb.newDriver(), tdb.newDriver()];
      const perDriver = await Promise.all(
        drivers.map(async (driver, n) => {
          const mine: JobRow[] = [];
          for (;;) {
            const got = await claim(driver, { limit: 7, workerId: `w${n}`, now: at(0) });
            if (got.length === 0) break;
            mine.push(...got);
          }
          return mine;
        }),
      );
      const all = perDriver.flat();
      const ids = all.map((j) => j.id);
      expect(ids).toHaveLength(total);
      expect(new Set(ids).size).toBe(total);
      expect(sortIds(ids)).toEqual(sortIds(inserted.map((r) => r.job.id)));
      expect(all.every((j) => j.attempt === 1 && j.leaseToken === 1 && j.state === 'running')).toBe(true);
      perDriver.forEach((jobs, n) => expect(jobs.every((j) => j.leaseWorker === `w${n}`)).toBe(true));
      const [stats] = await tdb.driver.queueList();
      expect(stats!.counts).toEqual({ queued: 0, retrying: 0, running: total, completed: 0, dead: 0, cancelled: 0 });
    });

    it('lets 3 processes claiming at once take 300 jobs, each exactly once', async () => {
      const total = 300;
      const inserted = await tdb.driver.jobInsertMany({
        jobs: Array.from({ length: total }, (_, i) => makeInsert({ name: `job-${i}` })),
        now: at(0),
      });
      const results = await runClaimChildren(tdb, 3);
      const ids = results.flatMap((r) => r.ids);
      expect(results.map((r) => r.code), results.map((r) => r.stderr).join('\n')).toEqual([0, 0, 0]);
      expect(ids).toHaveLength(total);
      expect(new Set(ids).size).toBe(total);
      expect(sortIds(ids)).toEqual(sortIds(inserted.map((r) => r.job.id)));
      const running = await tdb.driver.jobList({ state: 'running', limit: 1_000 });
      expect(running).toHaveLength(total);
      expect(running.every((j) => j.leaseToken === 1 && j.attempt === 1)).toBe(true);
    });
  });
}

/** What one claim child reported. */
interface ChildResult {
  code: number | null;
  ids: string[];
  stderr: string;
}

/**
 * Runs `children/claim-loop.ts` in `count` separate Node processes against the test database. Waits until
 * every child is connected and ready, then tells them all to start at once, so their claims really overlap.
 */
async function runClaimChildren(tdb: TestDatabase, count: number): Promise<ChildResult[]> {
  const children = Array.from({ length: count }, (_, n) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CLAIM_CHILD], {
      env: {
        ...process.env,
        WARDEN_CHILD_URL: tdb.url,
        WARDEN_CHILD_SCHEMA: tdb.schema ?? '',
        WARDEN_CHILD_WORKER: `proc-${n}`,
        WARDEN_CHILD_NOW: String(at(0).getTime()),
      },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let markReady: () => void = () => undefined;
    const ready = new Promise<void>((resolve) => (markReady = resolve));
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      if (stdout.startsWith('ready\n')) markReady();
    });
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.stdin.on('error', () => undefined); // EPIPE when a child already exited; its exit code tells
    const done = new Promise<ChildResult>((resolve, reject) => {
      child.on('error', reject);
      child.on('close', (code) => {
        markReady(); // a child that died before "ready" must not hang the barrier
        const last = stdout.replace(/^ready\n/, '').trim();
        let ids: string[] = [];
        try {
          if (code === 0) ids = JSON.parse(last) as string[];
        } catch {
          stderr += `\n(unparsable stdout: ${JSON.stringify(stdout)})`;
        }
        resolve({ code, ids, stderr });
      });
    });
    return { child, ready, done };
  });
  await Promise.all(children.map((c) => c.ready));
  for (const c of children) c.child.stdin.end('go\n');
  return Promise.all(children.map((c) => c.done));
}
