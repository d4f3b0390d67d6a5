/**
 * Conformance: retention (migration `0007_tracing_retention`) — `jobPrune` (final state, age by the given or the
 * database's clock, name filters, batch limit, attempts and steps going with their job, keys freed only while the
 * pruned job holds them, each schedule's newest completed run kept), `jobKeyPrune` and `scheduleTickPrune` (each
 * schedule's newest tick kept, and the ticks from its last success on that the missed-run check reads); and the
 * `trace_context` column round trip.
 * @module
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { JobInsert } from '../../src/driver/driver.js';
import type { JobRow } from '../../src/job/job-record.js';
import { createTestDatabase, makeInsert, type DriverKind, type TestDatabase } from '../support/test-databases.js';
import { at, claimExactly, countRows, errorInfo, finishOf, insertJob, openPgClient, openRawSqlite, rawQuery, rawTime, tableRef } from './helpers.js';

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

    describe('jobPrune reads about the rows it deletes', () => {
      const HOUR = 3_600_000;
      const now = at(10 * DAY);

      /** Inserts `n` jobs of `name` completed at `finishedAt` minus 1..n ms, straight into the table. */
      async function completedJobs(name: string, n: number, finishedAt: Date): Promise<void> {
        const into = `INSERT INTO ${tableRef(tdb, 'jobs')} (name, queue, payload, state, priority, run_at, max_attempts, created_at, updated_at, finished_at)`;
        if (tdb.kind === 'postgres') {
          await rawQuery(tdb, `${into} SELECT ?, 'default', '{}'::jsonb, 'completed', 0, ?, 1, ?, ?, ?::timestamptz - i * interval '1 millisecond' FROM generate_series(1, ?) g(i)`,
            [name, at(0), at(0), at(0), finishedAt, n]);
        } else {
          await rawQuery(tdb, `WITH RECURSIVE g(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM g WHERE i < ?) ${into} SELECT ?, 'default', '{}', 'completed', 0, ?, 1, ?, ?, ? - i FROM g`,
            [n, name, at(0).getTime(), at(0).getTime(), at(0).getTime(), finishedAt.getTime()]);
        }
      }

      /**
       * Runs one `jobPrune` as the driver does and returns what it deleted and the job rows its candidates were read
       * from (PostgreSQL: `EXPLAIN ANALYZE` in a transaction rolled back, the rows the `jobs_finished_name_idx` scans
       * returned or filtered out); SQLite: the plan of the statement, which must search that index by name.
       */
      async function pruneCost(params: { olderThanMs: number; names?: string[]; excludeNames?: string[] }): Promise<{ deleted: number; rowsRead: number | null; plan: string }> {
        const names = params.names ?? null;
        const excludeNames = params.excludeNames ?? null;
        if (tdb.kind === 'sqlite') {
          const { JOB_PRUNE } = await import('../../src/driver/sqlite/sqlite-retention-sql.js');
          const db = openRawSqlite(tdb);
          const bind = { state: 'completed', olderThanMs: params.olderThanMs, names: names && JSON.stringify(names), excludeNames: excludeNames && JSON.stringify(excludeNames), limit: 1_000, now: now.getTime() };
          const plan = (db.prepare(`EXPLAIN QUERY PLAN ${JOB_PRUNE}`).all(bind) as { detail: string }[]).map((r) => r.detail).join('\n');
          db.close();
          const deleted = await tdb.driver.jobPrune({ state: 'completed', ...params, limit: 1_000, now });
          return { deleted, rowsRead: null, plan };
        }
        const { retentionStatements } = await import('../../src/driver/postgres/postgres-retention-sql.js');
        const client = await openPgClient();
        try {
          await client.query('BEGIN');
          const { rows } = await client.query(`EXPLAIN (ANALYZE, FORMAT JSON) ${retentionStatements(tdb.schema!).jobPrune}`, ['completed', params.olderThanMs, names, excludeNames, 1_000, now]);
          await client.query('ROLLBACK');
          let rowsRead = 0;
          let deleted = 0;
          const walk = (node: Record<string, any>): void => {
            if (node['Index Name'] === 'jobs_finished_name_idx') rowsRead += node['Actual Rows'] * node['Actual Loops'] + (node['Rows Removed by Filter'] ?? 0);
            if (node['Node Type'] === 'ModifyTable' && node['Relation Name'] === 'jobs') deleted = node['Actual Rows'];
            for (const child of node.Plans ?? []) walk(child);
          };
          walk(rows[0]['QUERY PLAN'][0].Plan);
          const { rows: text } = await client.query(`EXPLAIN ${retentionStatements(tdb.schema!).jobPrune}`, ['completed', params.olderThanMs, names, excludeNames, 1_000, now]);
          expect(await tdb.driver.jobPrune({ state: 'completed', ...params, limit: 1_000, now })).toBe(deleted);
          return { deleted, rowsRead, plan: text.map((r) => String(r['QUERY PLAN'])).join('\n') };
        } finally {
          await client.end();
        }
      }

      it("a job type's own short retention and the global one beside types kept forever: each batch reads about its own rows", async () => {
        await completedJobs('aml-rescreen', 20_000, at(0)); // kept forever: the oldest of all
        await completedJobs('plain', 20_000, at(10 * DAY - HOUR)); // the global 1 day keeps them
        await completedJobs('plain-old', 1_500, at(5 * DAY)); // past the global 1 day
        await completedJobs('heartbeat-ping', 1_500, at(10 * DAY - 2 * HOUR)); // past its own 1 hour
        await rawQuery(tdb, tdb.kind === 'postgres' ? `ANALYZE ${tableRef(tdb, 'jobs')}` : 'ANALYZE');
        const own = { olderThanMs: HOUR, names: ['heartbeat-ping'] };
        const global = { olderThanMs: DAY, excludeNames: ['aml-rescreen', 'heartbeat-ping'] };
        for (const [params, left] of [[own, 500], [global, 500]] as const) {
          const first = await pruneCost(params);
          expect(first.deleted).toBe(1_000);
          if (tdb.kind === 'postgres') {
            // The rows deleted, and one probe per name for the global plan's skip through the names.
            expect(first.rowsRead).toBeLessThanOrEqual(1_000 + 4);
            // The candidates and the names (the delete itself may join the 1,000 ids with a scan of a table this small).
            expect(first.plan).toMatch(/Index Scan using jobs_finished_name_idx on jobs j\s/);
            expect(first.plan).not.toMatch(/Seq Scan on jobs [jf]\s|jobs_finished_idx/);
          } else {
            expect(first.plan).toContain('SEARCH j USING INDEX jobs_finished_name_idx (state=? AND name=? AND finished_at>? AND finished_at<?)');
            expect(first.plan).not.toMatch(/SCAN j\b|jobs_finished_idx/);
          }
          expect((await pruneCost(params)).deleted).toBe(left);
        }
        const remaining = await rawQuery(tdb, `SELECT name, count(*) AS n FROM ${tableRef(tdb, 'jobs')} GROUP BY name ORDER BY name`);
        expect(remaining.map((r) => [r.name, Number(r.n)])).toEqual([['aml-rescreen', 20_000], ['plain', 20_000]]);
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
      /** Records a tick at `recordedAt` (its tick time too), naming `jobId` (none: no job). */
      async function tick(schedule: string, recordedAt: Date, kind: 'scheduled' | 'triggered' = 'scheduled', jobId: string | null = null): Promise<void> {
        await rawQuery(tdb,
          `INSERT INTO ${tableRef(tdb, 'schedule_ticks')} (schedule_name, tick_at, kind, outcome, late, job_id, actor, recorded_at) VALUES (?, ?, ?, 'fired', ?, ?, NULL, ?)`,
          [schedule, rawTime(tdb, recordedAt), kind, tdb.kind === 'sqlite' ? 0 : false, jobId === null ? null : Number(jobId), rawTime(tdb, recordedAt)]);
      }
      /** A run of schedule `name`'s tick at `tickAt`, finished in `state` then, and its tick row. */
      async function run(name: string, tickAt: Date, state: 'completed' | 'dead', kind: 'scheduled' | 'triggered' = 'scheduled'): Promise<void> {
        const job = await finished(state, tickAt, { scheduleName: name, tickAt });
        await tick(name, tickAt, kind, job.id);
      }
      /** Stores schedules `names`: the ticks of a schedule without a row have only the newest kept. */
      async function schedules(...names: string[]): Promise<void> {
        const items = names.map((name) => ({ name, definitionHash: 'h', specJson: JSON.stringify({ every: '1m', job: 'j' }), firstRunAt: null }));
        await tdb.driver.scheduleSync({ schedules: items, removeMissing: false, now: at(0) });
      }
      const prune = (keepAfterSuccess: number, limit = 100) => tdb.driver.scheduleTickPrune({ olderThanMs: DAY, keepAfterSuccess, limit, now: at(100 * DAY) });
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
        expect(await tdb.driver.scheduleTickPrune({ olderThanMs: DAY, keepAfterSuccess: 1_000, limit: 2, now })).toBe(2);
        expect(await tdb.driver.scheduleTickPrune({ olderThanMs: DAY, keepAfterSuccess: 1_000, limit: 100, now })).toBe(2);
        expect(await tdb.driver.scheduleTickPrune({ olderThanMs: DAY, keepAfterSuccess: 1_000, limit: 100, now })).toBe(0);
        // a keeps its newest (the trigger recorded with the last tick sorts after it by kind), b its only one; c is young.
        expect(await ticks()).toEqual([
          ['a', at(3000).getTime(), 'triggered'],
          ['b', at(0).getTime(), 'scheduled'],
          ['c', at(5 * DAY).getTime(), 'scheduled'],
          ['c', at(5 * DAY + 1).getTime(), 'scheduled'],
        ]);
      });

      it("keeps, however old, a schedule's ticks from its newest completed job's through keepAfterSuccess scheduled ticks after it", async () => {
        await schedules('a');
        const h = (n: number) => at(n * 3_600_000);
        // Completed runs at hours 1 and 3 (the newest completed job: the last success), failing ones after it, with a
        // failed trigger among them; all months old.
        await run('a', h(1), 'completed');
        await run('a', h(2), 'dead');
        await run('a', h(3), 'completed');
        for (const n of [4, 5, 6, 7, 8, 9]) await run('a', h(n), 'dead');
        await run('a', h(5.5), 'dead', 'triggered');
        expect(await prune(3, 1)).toBe(1);
        expect(await prune(3)).toBe(3);
        expect(await prune(3)).toBe(0);
        // Kept: the success, the 3 scheduled ticks after it (and the trigger among them), the newest tick.
        expect((await ticks()).map(([, tickAt, kind]) => [tickAt, kind])).toEqual([
          [h(3).getTime(), 'scheduled'], [h(4).getTime(), 'scheduled'], [h(5).getTime(), 'scheduled'], [h(5.5).getTime(), 'triggered'],
          [h(6).getTime(), 'scheduled'], [h(9).getTime(), 'scheduled'],
        ]);
        // Once a later run completes, the ticks before it may go.
        await run('a', h(10), 'completed');
        expect(await prune(3)).toBe(6);
        expect((await ticks()).map(([, tickAt]) => tickAt)).toEqual([h(10).getTime()]);
      });

      it('keeps the first keepAfterSuccess scheduled ticks of a schedule that never completed a run, and the newest of one without a row', async () => {
        await schedules('never');
        for (let n = 1; n <= 5; n++) await run('never', at(n * 1000), 'dead');
        for (let n = 1; n <= 3; n++) await run('unstored', at(n * 1000), 'completed');
        expect(await prune(2)).toBe(4);
        expect(await ticks()).toEqual([
          ['never', at(1000).getTime(), 'scheduled'], ['never', at(2000).getTime(), 'scheduled'], ['never', at(5000).getTime(), 'scheduled'],
          ['unstored', at(3000).getTime(), 'scheduled'],
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
