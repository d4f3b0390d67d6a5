/**
 * Conformance: alerts — `alertOpen` (insert, dedup while open, a new episode after resolve, the `since` guard,
 * inside a transaction, and concurrent openers on separate connections: exactly one gets the row), `alertResolve`
 * (once, details kept or replaced, the `since` guard), `alertList` (filters, order), `alertGet` (by key, any state),
 * and the monitor's reads: `alertDeadJobList` (dead jobs newest first, paged, each with whether its dead-letter
 * alert exists) and `alertRunningJobList` (running attempts past a start time, oldest first, paged), each through the
 * index of its jobs. Every call gets an explicit `now`.
 * @module
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { deadLetterKey, type AlertOpenParams, type AlertRow } from '../../src/driver/alert-params.js';
import type { Driver } from '../../src/driver/driver.js';
import { InvalidOptionError } from '../../src/errors.js';
import type { JobRow } from '../../src/job/job-record.js';
import { createTestDatabase, type DriverKind, type TestDatabase } from '../support/test-databases.js';
import { at, claim, errorInfo, expectRejects, finishOf, insertJobs, openRawSqlite, rawQuery, tableRef } from './helpers.js';

const KEY = 'queue-lag:default';

/** Declares the alert conformance tests for one driver kind. */
export function exerciseAlerts(kind: DriverKind): void {
  describe('alerts', () => {
    let tdb: TestDatabase;
    beforeEach(async () => {
      tdb = await createTestDatabase(kind);
    });
    afterEach(async () => {
      await tdb.cleanup();
    });

    function open(now: Date, overrides: Partial<AlertOpenParams> = {}, driver: Driver = tdb.driver): Promise<AlertRow | null> {
      return driver.alertOpen({
        key: KEY, rule: 'queue-lag', severity: 'warning', summary: 'queue default is 6m behind', detailsJson: JSON.stringify({ lagMs: 360_000 }),
        instance: 'i1', since: null, now, ...overrides,
      });
    }

    function resolve(now: Date, overrides: Partial<Parameters<Driver['alertResolve']>[0]> = {}): Promise<AlertRow | null> {
      return tdb.driver.alertResolve({ key: KEY, detailsJson: null, instance: 'i2', since: null, now, ...overrides });
    }

    it('opens a new key once: the row comes back to the opener only, and a second open changes nothing', async () => {
      const row = await open(at(1_000));
      expect(row).toEqual({
        key: KEY, rule: 'queue-lag', state: 'open', severity: 'warning', summary: 'queue default is 6m behind', details: { lagMs: 360_000 },
        episode: 1, openedAt: at(1_000), resolvedAt: null, updatedAt: at(1_000), openedBy: 'i1', resolvedBy: null, notices: 1,
      } satisfies AlertRow);
      expect(await open(at(2_000), { instance: 'i3', detailsJson: '{"lagMs":1}' })).toBeNull();
      expect(await tdb.driver.alertList({})).toEqual([row]);
    });

    it('resolves an open alert once, keeping the details unless new ones are given', async () => {
      await open(at(0));
      const resolved = await resolve(at(5_000));
      expect(resolved).toMatchObject({ state: 'resolved', resolvedAt: at(5_000), updatedAt: at(5_000), resolvedBy: 'i2', details: { lagMs: 360_000 }, notices: 2, openedAt: at(0) });
      expect(await resolve(at(6_000))).toBeNull();
      expect(await tdb.driver.alertResolve({ key: 'no-such-key', detailsJson: null, instance: 'i2', since: null, now: at(0) })).toBeNull();
      await open(at(7_000));
      expect(await resolve(at(8_000), { detailsJson: '{"lagMs":0}' })).toMatchObject({ details: { lagMs: 0 } });
    });

    it('opens a resolved key again as the next episode, with new times and opener', async () => {
      await open(at(0));
      await resolve(at(1_000));
      const again = await open(at(2_000), { instance: 'i9', summary: 'again', detailsJson: '{"lagMs":420000}' });
      expect(again).toEqual({
        key: KEY, rule: 'queue-lag', state: 'open', severity: 'warning', summary: 'again', details: { lagMs: 420_000 },
        episode: 2, openedAt: at(2_000), resolvedAt: null, updatedAt: at(2_000), openedBy: 'i9', resolvedBy: null, notices: 3,
      } satisfies AlertRow);
    });

    it('since: a key resolved after the observation began is not opened again; one opened after it is not resolved', async () => {
      await open(at(0));
      await resolve(at(10_000));
      expect(await open(at(12_000), { since: at(9_999) })).toBeNull();
      expect(await open(at(12_000), { since: at(10_000) })).toMatchObject({ episode: 2, openedAt: at(12_000) });
      expect(await resolve(at(13_000), { since: at(11_999) })).toBeNull();
      expect(await resolve(at(13_000), { since: at(12_000) })).toMatchObject({ state: 'resolved', resolvedAt: at(13_000) });
    });

    it('lists by state and rule, most recently changed first', async () => {
      await open(at(1_000), { key: 'missed-run:a', rule: 'missed-run', severity: 'critical' });
      await open(at(2_000), { key: 'missed-run:b', rule: 'missed-run', severity: 'critical' });
      await open(at(3_000));
      await tdb.driver.alertResolve({ key: 'missed-run:a', detailsJson: null, instance: 'i1', since: null, now: at(4_000) });
      expect((await tdb.driver.alertList({})).map((a) => a.key)).toEqual(['missed-run:a', KEY, 'missed-run:b']);
      expect((await tdb.driver.alertList({ state: 'open' })).map((a) => a.key)).toEqual([KEY, 'missed-run:b']);
      expect((await tdb.driver.alertList({ state: 'open', rule: 'missed-run' })).map((a) => a.key)).toEqual(['missed-run:b']);
      expect((await tdb.driver.alertList({ state: 'resolved' })).map((a) => a.key)).toEqual(['missed-run:a']);
      expect((await tdb.driver.alertList({ limit: 1 })).map((a) => a.key)).toEqual(['missed-run:a']);
    });

    it('opens inside a transaction: rolled back with it, committed with it', async () => {
      await expect(tdb.driver.transaction(async (tx) => {
        expect(await open(at(0), { tx })).toMatchObject({ key: KEY });
        throw new Error('roll back');
      })).rejects.toThrow('roll back');
      expect(await tdb.driver.alertList({})).toEqual([]);
      const row = await tdb.driver.transaction((tx) => open(at(0), { tx }));
      expect(row).toMatchObject({ key: KEY, episode: 1 });
      const resolved = await tdb.driver.transaction((tx) => tdb.driver.alertResolve({ key: KEY, detailsJson: null, instance: 'i1', since: null, now: at(1), tx }));
      expect(resolved).toMatchObject({ state: 'resolved' });
    });

    it('alertGet reads one key in whichever state, and null for a key never opened', async () => {
      const opened = await open(at(1_000));
      expect(await tdb.driver.alertGet({ key: KEY })).toEqual(opened);
      const resolved = await resolve(at(2_000));
      expect(await tdb.driver.alertGet({ key: KEY })).toEqual(resolved);
      expect(await tdb.driver.alertGet({ key: 'queue-lag:other' })).toBeNull();
    });

    /** `count` jobs inserted, claimed at `now` and dead-lettered at once (their first attempt failed for good). */
    async function deadJobs(count: number, now = at(0)): Promise<JobRow[]> {
      const jobs = await insertJobs(tdb.driver, Array.from({ length: count }, () => ({ queue: 'dead' })), now);
      const claimed: JobRow[] = [];
      while (claimed.length < count) claimed.push(...(await claim(tdb.driver, { queues: ['dead'], limit: 500, now })));
      await tdb.driver.jobFinishMany({ items: claimed.map((j) => finishOf(j, { outcome: 'failed', state: 'dead', error: errorInfo() })), now });
      return jobs;
    }

    it('alertDeadJobList: the dead jobs newest first, paged by id, each with whether its dead-letter alert exists in any state', async () => {
      const [a, b, c, d] = await deadJobs(4);
      // Jobs in other states are not listed.
      await insertJobs(tdb.driver, [{ queue: 'elsewhere' }]);
      await open(at(0), { key: deadLetterKey(b!.id, 1), rule: 'dead-letter' });
      await open(at(0), { key: deadLetterKey(c!.id, 1), rule: 'dead-letter' });
      await tdb.driver.alertResolve({ key: deadLetterKey(c!.id, 1), detailsJson: null, instance: 'i1', since: null, now: at(1) });
      // Another attempt's alert is not this attempt's.
      await open(at(0), { key: deadLetterKey(d!.id, 2), rule: 'dead-letter' });
      const listed = await tdb.driver.alertDeadJobList({ limit: 10 });
      expect(listed).toEqual([d, c, b, a].map((j) => ({ id: j!.id, name: j!.name, attempt: 1, alerted: j === b || j === c })));
      expect(await tdb.driver.alertDeadJobList({ limit: 2 })).toEqual(listed.slice(0, 2));
      expect(await tdb.driver.alertDeadJobList({ beforeId: c!.id, limit: 2 })).toEqual(listed.slice(2, 4));
      expect(await tdb.driver.alertDeadJobList({ beforeId: a!.id, limit: 2 })).toEqual([]);
      await expectRejects(tdb.driver.alertDeadJobList({ beforeId: '0042' }), InvalidOptionError);
    });

    it('alertDeadJobList reads the dead jobs through jobs_rare_state_idx, not the jobs kept', async () => {
      await deadJobs(2);
      const plan = await explain(tdb, 'alertDeadJobList');
      expect(plan).toContain('jobs_rare_state_idx');
      expect(plan).not.toMatch(kind === 'postgres' ? /Seq Scan on jobs/ : /SCAN (jobs|j)(?! USING)/);
    });

    it('alertRunningJobList: running attempts started by a time, oldest first, paged after (started_at, id)', async () => {
      const jobs = await insertJobs(tdb.driver, Array.from({ length: 5 }, () => ({ queue: 'run' })));
      // Two claimed at 0, two at 10 s, one at 20 s; one of the first finishes.
      const first = await claim(tdb.driver, { queues: ['run'], limit: 2, now: at(0) });
      const second = await claim(tdb.driver, { queues: ['run'], limit: 2, workerId: 'w2', now: at(10_000) });
      await claim(tdb.driver, { queues: ['run'], limit: 1, now: at(20_000) });
      await tdb.driver.jobFinishMany({ items: [finishOf(first[1]!)], now: at(15_000) });
      const listed = await tdb.driver.alertRunningJobList({ startedBefore: at(10_000), limit: 10 });
      const row = (j: JobRow, startedAt: Date, worker: string) => ({ id: j.id, name: j.name, queue: 'run', scheduleName: null, attempt: 1, startedAt, leaseWorker: worker });
      expect(listed).toEqual([row(first[0]!, at(0), 'w1'), row(second[0]!, at(10_000), 'w2'), row(second[1]!, at(10_000), 'w2')]);
      expect(jobs.map((j) => j.id)).toEqual(expect.arrayContaining(listed.map((j) => j.id)));
      expect(await tdb.driver.alertRunningJobList({ startedBefore: at(9_999), limit: 10 })).toEqual(listed.slice(0, 1));
      const page = await tdb.driver.alertRunningJobList({ startedBefore: at(10_000), limit: 2 });
      expect(page).toEqual(listed.slice(0, 2));
      const after = { startedAt: page[1]!.startedAt, id: page[1]!.id };
      expect(await tdb.driver.alertRunningJobList({ startedBefore: at(10_000), after, limit: 2 })).toEqual(listed.slice(2));
      await expectRejects(tdb.driver.alertRunningJobList({ startedBefore: at(0), after: { startedAt: at(0), id: 'x' } }), InvalidOptionError);
    });

    it('alertRunningJobList reads the running jobs through jobs_lease_idx, never the finished ones', async () => {
      // Statistics that saw a table of finished jobs (as after months of retention) must not make it scan them.
      await insertJobs(tdb.driver, Array.from({ length: 2_000 }, () => ({ queue: 'q' })));
      const jobs = tableRef(tdb, 'jobs');
      await rawQuery(tdb, `UPDATE ${jobs} SET state = 'completed', finished_at = created_at`);
      await rawQuery(tdb, kind === 'postgres' ? `ANALYZE ${jobs}` : 'ANALYZE');
      await insertJobs(tdb.driver, [{ queue: 'q' }]);
      await claim(tdb.driver, { queues: ['q'], limit: 1 });
      expect(await tdb.driver.alertRunningJobList({ startedBefore: at(0) })).toHaveLength(1);
      const plan = await explain(tdb, 'alertRunningJobList');
      expect(plan).toContain('jobs_lease_idx');
      expect(plan).not.toMatch(kind === 'postgres' ? /Seq Scan on jobs/ : /SCAN jobs(?! USING)/);
    });

    it('gives the row to exactly one of several instances opening the same key at once, and resolving it', async () => {
      const drivers = [tdb.newDriver(), tdb.newDriver(), tdb.newDriver(), tdb.newDriver()];
      const opened = await Promise.all(drivers.map((d, i) => open(at(0), { instance: `i${i}` }, d)));
      expect(opened.filter((r) => r !== null)).toHaveLength(1);
      const resolved = await Promise.all(drivers.map((d, i) => d.alertResolve({ key: KEY, detailsJson: null, instance: `i${i}`, since: null, now: at(1) })));
      expect(resolved.filter((r) => r !== null)).toHaveLength(1);
      const reopened = await Promise.all(drivers.map((d, i) => open(at(2), { instance: `i${i}` }, d)));
      expect(reopened.filter((r) => r !== null).map((r) => r!.episode)).toEqual([2]);
    });
  });
}

/** The plan (as text) of one of the monitor's job reads, as the driver runs it. */
async function explain(tdb: TestDatabase, statement: 'alertDeadJobList' | 'alertRunningJobList'): Promise<string> {
  if (tdb.kind === 'sqlite') {
    const SQL = await import('../../src/driver/sqlite/sqlite-alert-sql.js');
    const [sql, bind] = statement === 'alertDeadJobList'
      ? [SQL.ALERT_DEAD_JOB_LIST, { beforeId: 2n ** 62n, limit: 1_000 }]
      : [SQL.ALERT_RUNNING_JOB_LIST, { startedBefore: at(0).getTime(), afterAt: null, afterId: null, limit: 1_000 }];
    const db = openRawSqlite(tdb);
    try {
      return (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(bind) as { detail: string }[]).map((r) => r.detail).join('\n');
    } finally {
      db.close();
    }
  }
  const { buildPostgresAlertStatements } = await import('../../src/driver/postgres/postgres-alert-sql.js');
  const sql = buildPostgresAlertStatements(tdb.schema!)[statement];
  const bind = statement === 'alertDeadJobList' ? [null, 1_000] : [at(0), null, null, 1_000];
  return (await rawQuery(tdb, `EXPLAIN ${sql}`, bind)).map((r) => String(r['QUERY PLAN'])).join('\n');
}
