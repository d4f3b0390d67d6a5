/**
 * Conformance: schedules (migration `0002_schedules_and_locks`) — `scheduleSync` (a changed definition keeps its due
 * tick unless the stored spec's timing differs from the new one's), `scheduleDue`,
 * `scheduleAdvance` (the compare-and-swap, tick rows, overlap and deduplication), `scheduleTrigger`,
 * `schedulePause`/`scheduleResume`, `scheduleList`, `scheduleTickList`, `scheduleLastSuccess` and
 * `scheduleTicksAfter`. Every call gets an explicit `now`.
 * @module
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Driver, JobInsert } from '../../src/driver/driver.js';
import type { ScheduleAdvanceResult, ScheduleRow, ScheduleSyncItem, ScheduleTickRow, ScheduleTickWrite } from '../../src/driver/schedule-params.js';
import { InvalidOptionError, ScheduleNotFoundError } from '../../src/errors.js';
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
  openPgClient,
  openRawSqlite,
  rawQuery,
  rawTime,
  sortIds,
  tableRef,
} from './helpers.js';

const MINUTE = 60_000;
const ALL_ACTIVE: JobState[] = ['queued', 'retrying', 'running'];

/** A schedule of the code's list: hash `h1`, a small spec, first run one minute after T0. */
function item(name: string, overrides: Partial<ScheduleSyncItem> = {}): ScheduleSyncItem {
  return {
    name,
    definitionHash: 'h1',
    specJson: JSON.stringify({ every: '1m', job: `${name}-job` }),
    firstRunAt: at(MINUTE),
    ...overrides,
  };
}

/**
 * A spec as `scheduleSpec` stores it: timing every minute (`cron` null, `everyMs`, `timezone`) unless `fields` say
 * otherwise, which may also change what fires (`priority`) or drop a field (`undefined`).
 */
function timedSpec(fields: Record<string, unknown> = {}): string {
  return JSON.stringify({ cron: null, everyMs: MINUTE, timezone: 'UTC', job: 'tick-job', priority: 0, ...fields });
}

/** The job a tick of schedule `name` enqueues (with `scheduleName`/`tickAt` set, as the caller does). */
function tickJob(name: string, tickAt: Date, overrides: Partial<JobInsert> = {}): JobInsert {
  return makeInsert({ name: 'tick-job', payloadJson: '{"tick":true}', scheduleName: name, tickAt, ...overrides });
}

/** A `fire` tick of schedule `name` with no overlap policy. */
function fire(name: string, tickAt: Date, overrides: Partial<ScheduleTickWrite> = {}): ScheduleTickWrite {
  return { tickAt, action: 'fire', late: false, job: tickJob(name, tickAt), blockIfActiveIn: [], cancelActive: false, ...overrides };
}

/** A `missed` tick. */
function missed(tickAt: Date, late = false): ScheduleTickWrite {
  return { tickAt, action: 'missed', late, job: null, blockIfActiveIn: [], cancelActive: false };
}

/** A stored schedule as `scheduleList` returns it, from its sync item and the fields that changed since. */
function scheduleRow(source: ScheduleSyncItem, fields: Partial<ScheduleRow> & Pick<ScheduleRow, 'createdAt' | 'updatedAt'>): ScheduleRow {
  return {
    name: source.name,
    definitionHash: source.definitionHash,
    spec: JSON.parse(source.specJson) as unknown,
    paused: false,
    nextRunAt: source.firstRunAt,
    lastTickAt: null,
    lastTick: null,
    ...fields,
  };
}

/** A new, never-claimed job as inserted by a schedule at `now`. */
function scheduledJob(id: string, scheduleName: string, tickAt: Date, now: Date, overrides: Partial<JobRow> = {}): JobRow {
  return {
    id,
    name: 'tick-job',
    queue: 'default',
    payload: { tick: true },
    state: 'queued',
    priority: 0,
    runAt: now,
    attempt: 0,
    maxAttempts: 3,
    lostCount: 0,
    leaseToken: 0,
    leaseWorker: null,
    leaseExpiresAt: null,
    startedAt: null,
    key: null,
    lastError: null,
    createdAt: now,
    updatedAt: now,
    finishedAt: null,
    scheduleName,
    tickAt,
    checkpoint: null,
    progress: null,
    checkpointAt: null,
    traceContext: null,
    ...overrides,
  };
}

/** Rows of a schedule table, counted straight from the database (not through the driver under test). */
async function countTable(tdb: TestDatabase, table: 'schedule_ticks' | 'schedules'): Promise<number> {
  if (tdb.kind === 'sqlite') {
    const db = openRawSqlite(tdb);
    try {
      return (db.prepare(`SELECT COUNT(*) AS n FROM ${table}`).get() as { n: number }).n;
    } finally {
      db.close();
    }
  }
  const client = await openPgClient();
  try {
    const res = await client.query<{ n: string }>(`SELECT COUNT(*) AS n FROM "${tdb.schema}".${table}`);
    return Number(res.rows[0]!.n);
  } finally {
    await client.end();
  }
}

/** The one schedule called `name` in `scheduleList`. */
async function listed(driver: Driver, name: string): Promise<ScheduleRow> {
  const rows = (await driver.scheduleList()).filter((r) => r.name === name);
  expect(rows, `schedule ${name} should be listed once`).toHaveLength(1);
  return rows[0]!;
}

const NOT_ADVANCED: ScheduleAdvanceResult = { advanced: false, ticks: [] };

/** Declares the schedule conformance tests for one driver kind. */
export function exerciseSchedule(kind: DriverKind): void {
  describe('schedules', () => {
    let tdb: TestDatabase;
    beforeEach(async () => {
      tdb = await createTestDatabase(kind);
    });
    afterEach(async () => {
      await tdb.cleanup();
    });

    function sync(items: ScheduleSyncItem[], now: Date, removeMissing = false, driver: Driver = tdb.driver): Promise<void> {
      return driver.scheduleSync({ schedules: items, removeMissing, now });
    }

    /** Advances schedule `name` (hash `h1` unless given) from `expected` to `next` with `ticks` at `now`. */
    function advance(
      name: string,
      expected: Date,
      next: Date | null,
      ticks: ScheduleTickWrite[],
      now: Date,
      options: { hash?: string; driver?: Driver } = {},
    ): Promise<ScheduleAdvanceResult> {
      return (options.driver ?? tdb.driver).scheduleAdvance({
        name,
        definitionHash: options.hash ?? 'h1',
        expectedNextRunAt: expected,
        nextRunAt: next,
        ticks,
        now,
      });
    }

    /** Fires one tick of `name` at `tickAt` (expected = tickAt, next = tickAt + 1 min) and returns the new job id. */
    async function fireOnce(name: string, tickAt: Date, now: Date): Promise<string> {
      const result = await advance(name, tickAt, new Date(tickAt.getTime() + MINUTE), [fire(name, tickAt)], now);
      expect(result.advanced).toBe(true);
      expect(result.ticks.map((t) => t.outcome)).toEqual(['fired']);
      return result.ticks[0]!.jobId!;
    }

    describe('scheduleSync', () => {
      it('inserts new schedules: next_run_at = firstRunAt, created_at = updated_at = now, not paused, no ticks', async () => {
        const a = item('alpha', { firstRunAt: at(MINUTE) });
        const b = item('beta', { definitionHash: 'h-beta', specJson: '{"cron":"0 * * * *","tz":"UTC"}', firstRunAt: null });
        await sync([b, a], at(1_000));
        expect(await tdb.driver.scheduleList()).toEqual([
          scheduleRow(a, { createdAt: at(1_000), updatedAt: at(1_000) }),
          scheduleRow(b, { createdAt: at(1_000), updatedAt: at(1_000) }),
        ]);
        // A schedule without a next run is never due.
        expect((await tdb.driver.scheduleDue({ now: at(365 * 24 * 60 * MINUTE), limit: 10 })).map((r) => r.name)).toEqual(['alpha']);
        expect(await countTable(tdb, 'schedule_ticks')).toBe(0);
        expect(await countRows(tdb, 'jobs')).toBe(0);
      });

      it('leaves an unchanged schedule alone: next_run_at, pause state, spec and timestamps', async () => {
        const a = item('a');
        const b = item('b');
        await sync([a, b], at(0));
        const paused = await tdb.driver.schedulePause({ name: 'a', now: at(1_000) });
        const before = await tdb.driver.scheduleList();
        expect(before.map((r) => [r.name, r.paused])).toEqual([['a', true], ['b', false]]);
        expect(before[0]).toEqual(paused);
        // Same hashes, but another first run time and spec text: nothing may change.
        await sync(
          [item('a', { firstRunAt: at(10 * MINUTE), specJson: '{"other":1}' }), item('b', { firstRunAt: null, specJson: '{"other":2}' })],
          at(5_000),
        );
        expect(await tdb.driver.scheduleList()).toEqual(before);
      });

      it('a changed hash replaces hash, spec and next_run_at, keeps the pause state, created_at and last tick', async () => {
        const a = item('a');
        const b = item('b');
        await sync([a, b], at(0));
        const jobId = await fireOnce('a', at(MINUTE), at(MINUTE));
        await tdb.driver.schedulePause({ name: 'a', now: at(MINUTE + 1_000) });
        const before = await listed(tdb.driver, 'a');
        expect(before.lastTick?.jobId).toBe(jobId);

        const a2 = item('a', { definitionHash: 'h2', specJson: '{"every":"5m"}', firstRunAt: at(5 * MINUTE) });
        const b2 = item('b', { definitionHash: 'h2', specJson: '{"every":"7m"}', firstRunAt: at(7 * MINUTE) });
        await sync([a2, b2], at(2 * MINUTE));
        expect(await tdb.driver.scheduleList()).toEqual([
          scheduleRow(a2, { paused: true, lastTickAt: at(MINUTE), lastTick: before.lastTick, createdAt: at(0), updatedAt: at(2 * MINUTE) }),
          scheduleRow(b2, { createdAt: at(0), updatedAt: at(2 * MINUTE) }),
        ]);
        // The old hash can no longer advance it; the new one can (once resumed).
        await tdb.driver.scheduleResume({ name: 'a', expectedHash: 'h2', nextRunAt: at(5 * MINUTE), now: at(2 * MINUTE) });
        expect(await advance('a', at(5 * MINUTE), at(6 * MINUTE), [fire('a', at(5 * MINUTE))], at(5 * MINUTE))).toEqual(NOT_ADVANCED);
        expect((await advance('a', at(5 * MINUTE), at(6 * MINUTE), [fire('a', at(5 * MINUTE))], at(5 * MINUTE), { hash: 'h2' })).advanced).toBe(true);
      });

      it('a changed hash with the stored spec\'s timing keeps next_run_at: the due tick stays due, and only the new hash fires it, once', async () => {
        await sync([item('a', { specJson: timedSpec() }), item('b', { specJson: timedSpec() })], at(0));
        await tdb.driver.schedulePause({ name: 'b', now: at(1_000) });
        // At +1m10s the +1m tick is due, not handled yet, when a deploy changes what fires (the priority), not when.
        const a2 = item('a', { definitionHash: 'h2', specJson: timedSpec({ priority: 7 }), firstRunAt: at(2 * MINUTE) });
        const b2 = item('b', { definitionHash: 'h2', specJson: timedSpec({ priority: 7 }), firstRunAt: at(2 * MINUTE) });
        const now = at(MINUTE + 10_000);
        await sync([a2, b2], now);
        expect(await tdb.driver.scheduleList()).toEqual([
          scheduleRow(a2, { nextRunAt: at(MINUTE), createdAt: at(0), updatedAt: now }),
          scheduleRow(b2, { paused: true, nextRunAt: at(MINUTE), createdAt: at(0), updatedAt: now }),
        ]);
        expect((await tdb.driver.scheduleDue({ now, limit: 10 })).map((r) => r.name)).toEqual(['a']);
        // An advance planned with the old definition matches nothing; one with the new fires the tick, once.
        expect(await advance('a', at(MINUTE), at(2 * MINUTE), [fire('a', at(MINUTE))], now)).toEqual(NOT_ADVANCED);
        const job = tickJob('a', at(MINUTE), { priority: 7 });
        const fired = await advance('a', at(MINUTE), at(2 * MINUTE), [fire('a', at(MINUTE), { job })], now, { hash: 'h2' });
        expect(fired.ticks.map((t) => [t.tickAt, t.outcome])).toEqual([[at(MINUTE), 'fired']]);
        expect(await advance('a', at(MINUTE), at(2 * MINUTE), [fire('a', at(MINUTE), { job })], now, { hash: 'h2' })).toEqual(NOT_ADVANCED);
        expect((await getJob(tdb.driver, fired.ticks[0]!.jobId!)).priority).toBe(7);
        expect(await countRows(tdb, 'jobs')).toBe(1);
      });

      it('the timing is the stored spec\'s cron, everyMs and, for a cron pattern, timezone: any other change keeps next_run_at', async () => {
        const hourly = { cron: '0 * * * *', everyMs: null };
        const cases: [name: string, stored: string, synced: string, kept: boolean][] = [
          ['every-priority', timedSpec(), timedSpec({ priority: 9, job: 'other-job' }), true],
          // An `every` interval counts from the epoch: no time zone reads it.
          ['every-timezone', timedSpec(), timedSpec({ timezone: 'Asia/Kolkata' }), true],
          ['every-interval', timedSpec(), timedSpec({ everyMs: 2 * MINUTE }), false],
          ['cron-priority', timedSpec(hourly), timedSpec({ ...hourly, priority: 9 }), true],
          ['cron-pattern', timedSpec(hourly), timedSpec({ ...hourly, cron: '0 */2 * * *' }), false],
          ['cron-timezone', timedSpec(hourly), timedSpec({ ...hourly, timezone: 'Asia/Kolkata' }), false],
          ['cron-to-every', timedSpec(hourly), timedSpec({ everyMs: 60 * MINUTE }), false],
          ['every-to-cron', timedSpec({ everyMs: 60 * MINUTE }), timedSpec(hourly), false],
        ];
        await sync(cases.map(([name, stored]) => item(name, { specJson: stored })), at(0));
        await sync(cases.map(([name, , synced]) => item(name, { definitionHash: 'h2', specJson: synced, firstRunAt: at(5 * MINUTE) })), at(MINUTE + 10_000));
        const nextRuns = new Map((await tdb.driver.scheduleList()).map((r) => [r.name, r.nextRunAt]));
        expect(cases.map(([name]) => [name, nextRuns.get(name)])).toEqual(cases.map(([name, , , kept]) => [name, kept ? at(MINUTE) : at(5 * MINUTE)]));
      });

      it('a changed hash resets next_run_at when a timing field is missing on either side; a re-added schedule is reset whatever its timing', async () => {
        const cases: [name: string, stored: string, synced: string][] = [
          // The new spec names no timing: nothing to compare with.
          ['untimed-item', timedSpec(), JSON.stringify({ every: '1m', priority: 7 })],
          ['untimed-both', JSON.stringify({ every: '1m' }), JSON.stringify({ every: '1m', priority: 7 })],
          // The stored spec lacks the interval or the cron pattern's time zone: a doubtful row resets.
          ['no-stored-interval', timedSpec({ everyMs: undefined }), timedSpec({ priority: 7 })],
          ['no-stored-timezone', timedSpec({ cron: '0 * * * *', everyMs: null, timezone: undefined }), timedSpec({ cron: '0 * * * *', everyMs: null, priority: 7 })],
        ];
        await sync([...cases.map(([name, stored]) => item(name, { specJson: stored })), item('readded', { specJson: timedSpec() })], at(0));
        await sync(cases.map(([name, stored]) => item(name, { specJson: stored })), at(1_000), true);
        const first = { firstRunAt: at(5 * MINUTE) };
        await sync([
          ...cases.map(([name, , synced]) => item(name, { ...first, definitionHash: 'h2', specJson: synced })),
          item('readded', { ...first, specJson: timedSpec() }),
        ], at(MINUTE + 10_000), true);
        expect((await tdb.driver.scheduleList()).map((r) => [r.name, r.nextRunAt])).toEqual(
          ['no-stored-interval', 'no-stored-timezone', 'readded', 'untimed-both', 'untimed-item'].map((name) => [name, at(5 * MINUTE)]),
        );
      });

      it('a row stored by an older version (its own columns only, spec included) keeps its due tick through a change of what fires', async () => {
        // As the versions before this comparison stored it: nothing but the columns they knew.
        await rawQuery(tdb, `INSERT INTO ${tableRef(tdb, 'schedules')} (name, definition_hash, spec, next_run_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)`,
          ['a', 'h1', timedSpec(), rawTime(tdb, at(MINUTE)), rawTime(tdb, at(0)), rawTime(tdb, at(0))]);
        await sync([item('a', { definitionHash: 'h2', specJson: timedSpec({ priority: 7 }), firstRunAt: at(2 * MINUTE) })], at(MINUTE + 10_000));
        expect((await listed(tdb.driver, 'a')).nextRunAt).toEqual(at(MINUTE));
      });

      it('a sync of the same timing after an advance keeps the advanced next_run_at: each tick fires once', async () => {
        await sync([item('a', { specJson: timedSpec() })], at(0));
        await fireOnce('a', at(MINUTE), at(MINUTE + 10_000));
        await sync([item('a', { definitionHash: 'h2', specJson: timedSpec({ priority: 7 }), firstRunAt: at(3 * MINUTE) })], at(MINUTE + 20_000));
        expect((await listed(tdb.driver, 'a')).nextRunAt).toEqual(at(2 * MINUTE));
        expect(await advance('a', at(2 * MINUTE), at(3 * MINUTE), [fire('a', at(2 * MINUTE))], at(2 * MINUTE))).toEqual(NOT_ADVANCED);
        expect((await advance('a', at(2 * MINUTE), at(3 * MINUTE), [fire('a', at(2 * MINUTE))], at(2 * MINUTE), { hash: 'h2' })).advanced).toBe(true);
        expect((await tdb.driver.scheduleTickList({ name: 'a' })).map((t) => [t.tickAt, t.outcome])).toEqual([[at(2 * MINUTE), 'fired'], [at(MINUTE), 'fired']]);
        expect(await countRows(tdb, 'jobs')).toBe(2);
      });

      it('removeMissing marks the others removed: gone from scheduleList and scheduleDue, not found or advanced any more', async () => {
        await sync([item('a', { firstRunAt: at(1_000) }), item('b', { firstRunAt: at(1_000) }), item('c', { firstRunAt: at(1_000) })], at(0));
        const b = await listed(tdb.driver, 'b');
        await sync([item('b', { firstRunAt: at(1_000) })], at(500), true);
        expect(await tdb.driver.scheduleList()).toEqual([b]);
        expect((await tdb.driver.scheduleDue({ now: at(10_000), limit: 10 })).map((r) => r.name)).toEqual(['b']);
        await expectRejects(tdb.driver.schedulePause({ name: 'a', now: at(600) }), ScheduleNotFoundError);
        await expectRejects(tdb.driver.scheduleResume({ name: 'c', expectedHash: 'h1', nextRunAt: at(2_000), now: at(600) }), ScheduleNotFoundError);
        await expectRejects(tdb.driver.scheduleTrigger({ name: 'a', job: makeInsert(), actor: 'ops', now: at(600) }), ScheduleNotFoundError);
        expect(await advance('c', at(1_000), at(2_000), [fire('c', at(1_000))], at(1_000))).toEqual(NOT_ADVANCED);
        expect(await countRows(tdb, 'jobs')).toBe(0);
        expect(await countTable(tdb, 'schedule_ticks')).toBe(0);
        // Removed rows are kept (not deleted), just no longer active.
        expect(await countTable(tdb, 'schedules')).toBe(3);
      });

      it('without removeMissing, schedules missing from the list are kept unchanged', async () => {
        await sync([item('a'), item('b')], at(0));
        const before = await tdb.driver.scheduleList();
        await sync([item('b')], at(1_000), false);
        expect(await tdb.driver.scheduleList()).toEqual(before);
      });

      it('removeMissing with an empty list removes every schedule', async () => {
        await sync([item('a'), item('b')], at(0));
        await sync([], at(1_000), true);
        expect(await tdb.driver.scheduleList()).toEqual([]);
        expect(await tdb.driver.scheduleDue({ now: at(10 * MINUTE), limit: 10 })).toEqual([]);
      });

      it('a removed schedule re-added (same hash) gets firstRunAt again, un-removed, pause state kept', async () => {
        const a = item('a');
        const b = item('b', { firstRunAt: null });
        await sync([a, b], at(0));
        await fireOnce('a', at(MINUTE), at(MINUTE));
        await tdb.driver.schedulePause({ name: 'a', now: at(MINUTE + 1_000) });
        const last = await listed(tdb.driver, 'a');
        expect(last.nextRunAt).toEqual(at(2 * MINUTE));
        await sync([b], at(MINUTE + 2_000), true);
        expect((await tdb.driver.scheduleList()).map((r) => r.name)).toEqual(['b']);

        const readded = item('a', { firstRunAt: at(10 * MINUTE) });
        await sync([readded, b], at(MINUTE + 3_000), true);
        expect(await listed(tdb.driver, 'a')).toEqual(
          scheduleRow(readded, {
            paused: true,
            nextRunAt: at(10 * MINUTE),
            lastTickAt: at(MINUTE),
            lastTick: last.lastTick,
            createdAt: at(0),
            updatedAt: at(MINUTE + 3_000),
          }),
        );
        expect(await listed(tdb.driver, 'b')).toEqual(scheduleRow(b, { createdAt: at(0), updatedAt: at(0) }));
        await tdb.driver.scheduleResume({ name: 'a', expectedHash: 'h1', nextRunAt: at(10 * MINUTE), now: at(MINUTE + 4_000) });
        expect(await tdb.driver.scheduleDue({ now: at(10 * MINUTE - 1), limit: 10 })).toEqual([]);
        expect((await tdb.driver.scheduleDue({ now: at(10 * MINUTE), limit: 10 })).map((r) => r.name)).toEqual(['a']);
      });

      it('concurrent syncs from 3 driver instances with different lists and removeMissing never fail', async () => {
        const drivers = [tdb.newDriver(), tdb.newDriver(), tdb.newDriver()];
        const lists: ScheduleSyncItem[][] = [
          [item('a'), item('b'), item('shared')],
          [item('b', { definitionHash: 'h2' }), item('c'), item('shared')],
          [item('c', { definitionHash: 'h3' }), item('d'), item('a', { definitionHash: 'h3' }), item('shared')],
        ];
        const signature = (rows: { name: string; definitionHash: string }[]): string =>
          JSON.stringify(rows.map((r) => [r.name, r.definitionHash]).sort(([x], [y]) => (x! < y! ? -1 : x! > y! ? 1 : 0)));
        const allowed = new Set(lists.map(signature));
        for (let round = 0; round < 8; round++) {
          const settled = await Promise.allSettled(drivers.map((driver, i) => sync(lists[i]!, at(round * 1_000), true, driver)));
          expect(settled.map((s) => (s.status === 'rejected' ? String(s.reason) : 'ok'))).toEqual(['ok', 'ok', 'ok']);
          // Syncs are serialized, so the last one to commit decides exactly which schedules are active.
          const rows = await tdb.driver.scheduleList();
          expect(allowed.has(signature(rows)), `active schedules ${signature(rows)} should be exactly one of the lists`).toBe(true);
        }
      });
    });

    describe('scheduleDue', () => {
      it('returns active, unpaused schedules with next_run_at <= now, by next_run_at then name, at most limit', async () => {
        await sync(
          [
            item('zeta', { firstRunAt: at(-10_000) }),
            item('beta', { firstRunAt: at(0) }),
            item('alpha', { firstRunAt: at(0) }),
            item('later', { firstRunAt: at(1) }),
            item('paused', { firstRunAt: at(-20_000) }),
            item('removed', { firstRunAt: at(-20_000) }),
            item('never', { firstRunAt: null }),
          ],
          at(-60_000),
        );
        await tdb.driver.schedulePause({ name: 'paused', now: at(-50_000) });
        await sync(
          [item('zeta', { firstRunAt: at(-10_000) }), item('beta'), item('alpha'), item('later'), item('paused'), item('never')],
          at(-40_000),
          true,
        );
        const due = async (now: Date, limit: number): Promise<string[]> => (await tdb.driver.scheduleDue({ now, limit })).map((r) => r.name);
        expect(await due(at(-10_001), 10)).toEqual([]);
        expect(await due(at(-10_000), 10)).toEqual(['zeta']);
        expect(await due(at(0), 10)).toEqual(['zeta', 'alpha', 'beta']);
        expect(await due(at(0), 2)).toEqual(['zeta', 'alpha']);
        expect(await due(at(0), 1)).toEqual(['zeta']);
        expect(await due(at(1), 10)).toEqual(['zeta', 'alpha', 'beta', 'later']);
        // The rows are full schedule rows.
        const [zeta] = await tdb.driver.scheduleDue({ now: at(0), limit: 1 });
        expect(zeta).toEqual(scheduleRow(item('zeta', { firstRunAt: at(-10_000) }), { createdAt: at(-60_000), updatedAt: at(-60_000) }));
      });

      it('stops returning a schedule once it was advanced past now', async () => {
        await sync([item('a', { firstRunAt: at(0) })], at(-1_000));
        expect((await tdb.driver.scheduleDue({ now: at(0), limit: 10 })).map((r) => r.name)).toEqual(['a']);
        await advance('a', at(0), at(MINUTE), [fire('a', at(0))], at(0));
        expect(await tdb.driver.scheduleDue({ now: at(MINUTE - 1), limit: 10 })).toEqual([]);
        expect((await tdb.driver.scheduleDue({ now: at(MINUTE), limit: 10 })).map((r) => r.nextRunAt)).toEqual([at(MINUTE)]);
      });
    });

    describe('scheduleAdvance', () => {
      it('a successful swap moves next_run_at and last_tick_at and writes a fired tick row and its job', async () => {
        const a = item('a');
        await sync([a], at(0));
        const now = at(MINUTE + 500);
        const result = await advance('a', at(MINUTE), at(2 * MINUTE), [fire('a', at(MINUTE), { job: tickJob('a', at(MINUTE), { queue: 'sched' }) })], now);
        expect(result).toEqual({
          advanced: true,
          ticks: [{ tickAt: at(MINUTE), outcome: 'fired', late: false, jobId: expect.stringMatching(/^[1-9][0-9]*$/), cancelledJobIds: [], queue: 'sched', alreadyHandled: false }],
        });
        const jobId = result.ticks[0]!.jobId!;
        const job = await getJob(tdb.driver, jobId);
        expect(job).toEqual(scheduledJob(jobId, 'a', at(MINUTE), now, { queue: 'sched' }));
        const tick: ScheduleTickRow = {
          scheduleName: 'a',
          tickAt: at(MINUTE),
          kind: 'scheduled',
          outcome: 'fired',
          late: false,
          jobId,
          jobState: 'queued',
          actor: null,
          recordedAt: now,
        };
        expect(await tdb.driver.scheduleList()).toEqual([
          scheduleRow(a, { nextRunAt: at(2 * MINUTE), lastTickAt: at(MINUTE), lastTick: tick, createdAt: at(0), updatedAt: now }),
        ]);
        expect(await tdb.driver.scheduleTickList({ name: 'a' })).toEqual([tick]);
        expect(await countRows(tdb, 'jobs')).toBe(1);
        expect(await countTable(tdb, 'schedule_ticks')).toBe(1);
        await claimExactly(tdb.driver, jobId, { queues: ['sched'], now });
      });

      const refusals: [string, (tdb: TestDatabase) => Promise<{ expected: Date; hash: string }>][] = [
        ['a wrong expectedNextRunAt', async () => ({ expected: at(MINUTE - 1), hash: 'h1' })],
        ['a wrong definitionHash', async () => ({ expected: at(MINUTE), hash: 'h0' })],
        ['a paused schedule', async (db) => {
          await db.driver.schedulePause({ name: 'a', now: at(2_000) });
          return { expected: at(MINUTE), hash: 'h1' };
        }],
        ['a removed schedule', async (db) => {
          await db.driver.scheduleSync({ schedules: [item('b')], removeMissing: true, now: at(2_000) });
          return { expected: at(MINUTE), hash: 'h1' };
        }],
      ];
      it.each(refusals)('refuses %s: { advanced: false, ticks: [] } and nothing written', async (_label, arrange) => {
        await sync([item('a'), item('b')], at(0));
        // An active job of the schedule (and its tick row) that a cancelActive tick would cancel.
        const triggered = await tdb.driver.scheduleTrigger({ name: 'a', job: makeInsert(), actor: 'ops', now: at(1_000) });
        const { expected, hash } = await arrange(tdb);
        const schedulesBefore = await tdb.driver.scheduleList();
        const jobBefore = await getJob(tdb.driver, triggered.jobId);

        const result = await advance(
          'a',
          expected,
          at(3 * MINUTE),
          [missed(at(MINUTE)), fire('a', at(2 * MINUTE), { cancelActive: true, late: true })],
          at(2 * MINUTE),
          { hash },
        );
        expect(result).toEqual(NOT_ADVANCED);
        expect(await tdb.driver.scheduleList()).toEqual(schedulesBefore);
        expect(await getJob(tdb.driver, triggered.jobId)).toEqual(jobBefore);
        expect(await countRows(tdb, 'jobs')).toBe(1);
        expect(await countRows(tdb, 'job_attempts')).toBe(0);
        expect(await countTable(tdb, 'schedule_ticks')).toBe(1);
      });

      it('two instances advancing with the same expectation at once: exactly one succeeds, every time', async () => {
        await sync([item('a')], at(0));
        const drivers = [tdb.newDriver(), tdb.newDriver()];
        for (let round = 1; round <= 6; round++) {
          const tickAt = at(round * MINUTE);
          const results = await Promise.all(drivers.map((driver) => advance('a', tickAt, at((round + 1) * MINUTE), [fire('a', tickAt)], tickAt, { driver })));
          const winners = results.filter((r) => r.advanced);
          expect(winners).toHaveLength(1);
          expect(results.filter((r) => !r.advanced)).toEqual([NOT_ADVANCED]);
          expect(winners[0]!.ticks.map((t) => t.outcome)).toEqual(['fired']);
          expect(await countRows(tdb, 'jobs')).toBe(round);
          expect(await countTable(tdb, 'schedule_ticks')).toBe(round);
          expect((await listed(tdb.driver, 'a')).nextRunAt).toEqual(at((round + 1) * MINUTE));
        }
      });

      it('a tick already recorded is reported with its stored outcome, with no new job and no cancel', async () => {
        await sync([item('a')], at(0));
        const first = await advance('a', at(MINUTE), at(3 * MINUTE), [missed(at(MINUTE)), fire('a', at(2 * MINUTE), { late: true })], at(2 * MINUTE + 100));
        expect(first.advanced).toBe(true);
        const jobId = first.ticks[1]!.jobId!;
        const ticksBefore = await tdb.driver.scheduleTickList({ name: 'a' });

        // The same two ticks again (e.g. after a resume moved next_run_at back): the swap succeeds, the ticks do not.
        const again = await advance(
          'a',
          at(3 * MINUTE),
          at(4 * MINUTE),
          [fire('a', at(MINUTE), { late: true, cancelActive: true }), fire('a', at(2 * MINUTE), { cancelActive: true })],
          at(3 * MINUTE),
        );
        expect(again).toEqual({
          advanced: true,
          ticks: [
            { tickAt: at(MINUTE), outcome: 'missed', late: false, jobId: null, cancelledJobIds: [], queue: null, alreadyHandled: true },
            { tickAt: at(2 * MINUTE), outcome: 'fired', late: true, jobId, cancelledJobIds: [], queue: null, alreadyHandled: true },
          ],
        });
        expect(await countRows(tdb, 'jobs')).toBe(1);
        expect((await getJob(tdb.driver, jobId)).state).toBe('queued');
        expect(await tdb.driver.scheduleTickList({ name: 'a' })).toEqual(ticksBefore);
        const row = await listed(tdb.driver, 'a');
        expect([row.nextRunAt, row.lastTickAt]).toEqual([at(4 * MINUTE), at(2 * MINUTE)]);
      });

      it('records missed ticks with outcome missed and their late flag, and the late run that stands in for them', async () => {
        await sync([item('a')], at(0));
        const now = at(3 * MINUTE + 5_000);
        const result = await advance(
          'a',
          at(MINUTE),
          at(4 * MINUTE),
          [missed(at(MINUTE)), missed(at(2 * MINUTE), true), fire('a', at(3 * MINUTE), { late: true })],
          now,
        );
        const jobId = result.ticks[2]?.jobId ?? null;
        expect(result).toEqual({
          advanced: true,
          ticks: [
            { tickAt: at(MINUTE), outcome: 'missed', late: false, jobId: null, cancelledJobIds: [], queue: null, alreadyHandled: false },
            { tickAt: at(2 * MINUTE), outcome: 'missed', late: true, jobId: null, cancelledJobIds: [], queue: null, alreadyHandled: false },
            { tickAt: at(3 * MINUTE), outcome: 'fired', late: true, jobId: expect.any(String), cancelledJobIds: [], queue: 'default', alreadyHandled: false },
          ],
        });
        const base = { scheduleName: 'a', kind: 'scheduled', actor: null, recordedAt: now } as const;
        expect(await tdb.driver.scheduleTickList({ name: 'a' })).toEqual([
          { ...base, tickAt: at(3 * MINUTE), outcome: 'fired', late: true, jobId, jobState: 'queued' },
          { ...base, tickAt: at(2 * MINUTE), outcome: 'missed', late: true, jobId: null, jobState: null },
          { ...base, tickAt: at(MINUTE), outcome: 'missed', late: false, jobId: null, jobState: null },
        ] satisfies ScheduleTickRow[]);
        expect(await getJob(tdb.driver, jobId!)).toEqual(scheduledJob(jobId!, 'a', at(3 * MINUTE), now));
        expect(await countRows(tdb, 'jobs')).toBe(1);
        const row = await listed(tdb.driver, 'a');
        expect([row.nextRunAt, row.lastTickAt]).toEqual([at(4 * MINUTE), at(3 * MINUTE)]);
      });

      it('scheduleTicksWrittenBy returns the scheduled ticks among those asked that this writer wrote, as stored', async () => {
        await sync([item('a'), item('b')], at(0));
        const mine = (params: Omit<Parameters<Driver['scheduleAdvance']>[0], 'firedBy'>) => tdb.driver.scheduleAdvance({ ...params, firedBy: 'me' });
        const result = await mine({ name: 'a', definitionHash: 'h1', expectedNextRunAt: at(MINUTE), nextRunAt: at(3 * MINUTE), ticks: [missed(at(MINUTE)), fire('a', at(2 * MINUTE), { late: true })], now: at(2 * MINUTE) });
        // Another instance's tick, a trigger's, and another schedule's tick at an asked time: none of them mine for 'a'.
        await advance('a', at(3 * MINUTE), at(4 * MINUTE), [fire('a', at(3 * MINUTE))], at(3 * MINUTE));
        await tdb.driver.scheduleTrigger({ name: 'a', job: tickJob('a', at(3 * MINUTE)), actor: 'cli:alice', now: at(3 * MINUTE) });
        await tdb.driver.scheduleAdvance({ name: 'b', definitionHash: 'h1', expectedNextRunAt: at(MINUTE), nextRunAt: at(2 * MINUTE), ticks: [fire('b', at(MINUTE))], now: at(MINUTE), firedBy: 'me' });
        const asked = [at(MINUTE), at(2 * MINUTE), at(3 * MINUTE), at(9 * MINUTE)];
        expect(await tdb.driver.scheduleTicksWrittenBy({ name: 'a', firedBy: 'me', tickAts: asked })).toEqual([
          { tickAt: at(MINUTE), outcome: 'missed', late: false, jobId: null },
          { tickAt: at(2 * MINUTE), outcome: 'fired', late: true, jobId: result.ticks[1]!.jobId },
        ]);
        expect(await tdb.driver.scheduleTicksWrittenBy({ name: 'a', firedBy: 'someone else', tickAts: asked })).toEqual([]);
        expect(await tdb.driver.scheduleTicksWrittenBy({ name: 'a', firedBy: 'me', tickAts: [] })).toEqual([]);
      });

      it('with no ticks only moves next_run_at; last_tick_at never moves back; next_run_at null is never due', async () => {
        await sync([item('a')], at(0));
        await fireOnce('a', at(MINUTE), at(MINUTE));
        expect(await advance('a', at(2 * MINUTE), at(3 * MINUTE), [], at(2 * MINUTE))).toEqual({ advanced: true, ticks: [] });
        let row = await listed(tdb.driver, 'a');
        expect([row.nextRunAt, row.lastTickAt, row.updatedAt]).toEqual([at(3 * MINUTE), at(MINUTE), at(2 * MINUTE)]);
        // An older tick (recorded now) does not move last_tick_at back.
        expect((await advance('a', at(3 * MINUTE), null, [missed(at(30_000))], at(3 * MINUTE))).advanced).toBe(true);
        row = await listed(tdb.driver, 'a');
        expect([row.nextRunAt, row.lastTickAt]).toEqual([null, at(MINUTE)]);
        expect(await tdb.driver.scheduleDue({ now: at(1_000 * MINUTE), limit: 10 })).toEqual([]);
        expect(await countTable(tdb, 'schedule_ticks')).toBe(2);
      });

      describe('overlap', () => {
        /** Puts the job of schedule `a` fired at 1 min into `state` (claimed at 1 min by w1). */
        async function firstRunIn(state: 'queued' | 'running' | 'retrying' | 'completed' | 'dead'): Promise<JobRow> {
          const id = await fireOnce('a', at(MINUTE), at(MINUTE));
          if (state === 'queued') return getJob(tdb.driver, id);
          const running = await claimExactly(tdb.driver, id, { now: at(MINUTE) });
          if (state === 'running') return running;
          const finish =
            state === 'completed'
              ? finishOf(running)
              : state === 'dead'
                ? finishOf(running, { outcome: 'failed', state: 'dead', error: errorInfo() })
                : finishOf(running, { outcome: 'failed', state: 'retrying', retryDelayMs: 3_600_000, error: errorInfo() });
          expect(await tdb.driver.jobFinishMany({ items: [finish], now: at(MINUTE + 1_000) })).toEqual({ applied: [id], stale: [] });
          const row = await getJob(tdb.driver, id);
          expect(row.state).toBe(state);
          return row;
        }

        beforeEach(async () => {
          await sync([item('a'), item('b')], at(0));
        });

        it.each(['queued', 'retrying', 'running'] as const)(
          'blockIfActiveIn all active states with a %s job of the schedule: skipped, no job',
          async (state) => {
            const first = await firstRunIn(state);
            const now = at(2 * MINUTE);
            const result = await advance('a', at(2 * MINUTE), at(3 * MINUTE), [fire('a', at(2 * MINUTE), { blockIfActiveIn: ALL_ACTIVE })], now);
            expect(result).toEqual({
              advanced: true,
              ticks: [{ tickAt: at(2 * MINUTE), outcome: 'skipped', late: false, jobId: null, cancelledJobIds: [], queue: null, alreadyHandled: false }],
            });
            expect(await countRows(tdb, 'jobs')).toBe(1);
            expect(await getJob(tdb.driver, first.id)).toEqual(first);
            const [tick] = await tdb.driver.scheduleTickList({ name: 'a', limit: 1 });
            expect(tick).toEqual({
              scheduleName: 'a', tickAt: at(2 * MINUTE), kind: 'scheduled', outcome: 'skipped', late: false,
              jobId: null, jobState: null, actor: null, recordedAt: now,
            } satisfies ScheduleTickRow);
            expect((await listed(tdb.driver, 'a')).nextRunAt).toEqual(at(3 * MINUTE));
          },
        );

        it('blockIfActiveIn [queued, retrying] with only a running job: fired', async () => {
          const first = await firstRunIn('running');
          const result = await advance('a', at(2 * MINUTE), at(3 * MINUTE), [fire('a', at(2 * MINUTE), { blockIfActiveIn: ['queued', 'retrying'] })], at(2 * MINUTE));
          expect(result.ticks.map((t) => [t.outcome, t.queue])).toEqual([['fired', 'default']]);
          const second = await getJob(tdb.driver, result.ticks[0]!.jobId!);
          expect([second.state, second.scheduleName, second.tickAt]).toEqual(['queued', 'a', at(2 * MINUTE)]);
          expect(second.id).not.toBe(first.id);
          expect(await countRows(tdb, 'jobs')).toBe(2);
        });

        it.each(['completed', 'dead'] as const)('a %s job of the schedule, and active jobs of other schedules or none, never block', async (state) => {
          await firstRunIn(state);
          await tdb.driver.scheduleTrigger({ name: 'b', job: makeInsert(), actor: 'ops', now: at(MINUTE + 2_000) });
          await insertJob(tdb.driver, {}, at(MINUTE + 2_000));
          const result = await advance('a', at(2 * MINUTE), at(3 * MINUTE), [fire('a', at(2 * MINUTE), { blockIfActiveIn: ALL_ACTIVE })], at(2 * MINUTE));
          expect(result.ticks.map((t) => t.outcome)).toEqual(['fired']);
          expect(await countRows(tdb, 'jobs')).toBe(4);
        });

        it('cancelActive cancels the schedule\'s running and queued jobs as jobCancel does, then fires', async () => {
          const runningFirst = await firstRunIn('running');
          const queuedId = await fireOnce('a', at(2 * MINUTE), at(2 * MINUTE));
          const queuedBefore = await getJob(tdb.driver, queuedId);
          const other = (await tdb.driver.scheduleTrigger({ name: 'b', job: makeInsert({ queue: 'other' }), actor: 'ops', now: at(2 * MINUTE) })).jobId;
          const plain = await insertJob(tdb.driver, { queue: 'other' }, at(2 * MINUTE));
          const otherBefore = await getJob(tdb.driver, other);
          // A running job cancelled by jobCancel, to compare what "exactly as jobCancel" stores.
          const reference = await insertJob(tdb.driver, { queue: 'reference' }, at(MINUTE));
          await claimExactly(tdb.driver, reference.id, { queues: ['reference'], now: at(MINUTE) });
          const referenceCancelled = await tdb.driver.jobCancel({ id: reference.id, now: at(3 * MINUTE + 10) });
          const [referenceAttempt] = await tdb.driver.jobAttemptList({ id: reference.id });

          const now = at(3 * MINUTE + 10);
          const result = await advance(
            'a',
            at(3 * MINUTE),
            at(4 * MINUTE),
            [fire('a', at(3 * MINUTE), { cancelActive: true, blockIfActiveIn: ALL_ACTIVE })],
            now,
          );
          expect(result.advanced).toBe(true);
          expect(result.ticks).toHaveLength(1);
          const tick = result.ticks[0]!;
          expect({ ...tick, cancelledJobIds: sortIds(tick.cancelledJobIds) }).toEqual({
            tickAt: at(3 * MINUTE), outcome: 'fired', late: false, jobId: expect.any(String),
            cancelledJobIds: sortIds([runningFirst.id, queuedId]), queue: 'default', alreadyHandled: false,
          });

          const cancelledRunning = await getJob(tdb.driver, runningFirst.id);
          expect(cancelledRunning).toEqual({
            ...runningFirst,
            state: 'cancelled',
            leaseWorker: null,
            leaseExpiresAt: null,
            finishedAt: now,
            updatedAt: now,
            lastError: referenceCancelled.lastError, // whatever jobCancel stores for a running job
          } satisfies JobRow);
          const attempts = await tdb.driver.jobAttemptList({ id: runningFirst.id });
          expect(attempts).toEqual([
            { jobId: runningFirst.id, attempt: 1, leaseToken: 1, workerId: 'w1', startedAt: at(MINUTE), finishedAt: now, outcome: 'cancelled', error: referenceAttempt!.error },
          ]);
          // The cancelled attempt's lease is stale.
          expect(await tdb.driver.jobHeartbeat({ leases: [leaseOf(runningFirst)], leaseMs: LEASE_MS, now })).toEqual({ applied: [], stale: [runningFirst.id] });
          expect(await tdb.driver.jobFinishMany({ items: [finishOf(runningFirst)], now })).toEqual({ applied: [], stale: [runningFirst.id] });
          expect((await getJob(tdb.driver, runningFirst.id)).state).toBe('cancelled');

          expect(await getJob(tdb.driver, queuedId)).toEqual({ ...queuedBefore, state: 'cancelled', finishedAt: now, updatedAt: now } satisfies JobRow);
          expect(await tdb.driver.jobAttemptList({ id: queuedId })).toEqual([]);

          // Jobs of other schedules, and unscheduled ones, are untouched.
          expect(await getJob(tdb.driver, other)).toEqual(otherBefore);
          expect(await getJob(tdb.driver, plain.id)).toEqual(plain);

          expect(await getJob(tdb.driver, tick.jobId!)).toEqual(scheduledJob(tick.jobId!, 'a', at(3 * MINUTE), now));
          // Only the new run is claimable in the schedule's queue: both cancelled jobs are out for good.
          await claimExactly(tdb.driver, tick.jobId!, { now });
          expect(await claim(tdb.driver, { now: at(60 * MINUTE) })).toEqual([]);
        });

        it('cancelActive with no active job cancels nothing', async () => {
          const first = await firstRunIn('completed');
          const result = await advance('a', at(2 * MINUTE), at(3 * MINUTE), [fire('a', at(2 * MINUTE), { cancelActive: true })], at(2 * MINUTE));
          expect(result.ticks.map((t) => [t.outcome, t.cancelledJobIds])).toEqual([['fired', []]]);
          expect(await getJob(tdb.driver, first.id)).toEqual(first);
          expect((await tdb.driver.jobAttemptList({ id: first.id })).map((a) => a.outcome)).toEqual(['completed']);
          expect(await countRows(tdb, 'job_attempts')).toBe(0);
        });

        it('a keyed job deduplicated against an active job: skipped, with the existing job\'s id', async () => {
          const existing = await insertJob(tdb.driver, { key: 'nightly', name: 'manual' }, at(MINUTE));
          const now = at(MINUTE + 100);
          const result = await advance('a', at(MINUTE), at(2 * MINUTE), [fire('a', at(MINUTE), { job: tickJob('a', at(MINUTE), { key: 'nightly' }) })], now);
          expect(result).toEqual({
            advanced: true,
            ticks: [{ tickAt: at(MINUTE), outcome: 'skipped', late: false, jobId: existing.id, cancelledJobIds: [], queue: null, alreadyHandled: false }],
          });
          expect(await countRows(tdb, 'jobs')).toBe(1);
          expect(await getJob(tdb.driver, existing.id)).toEqual(existing);
          expect(await tdb.driver.scheduleTickList({ name: 'a' })).toEqual([
            { scheduleName: 'a', tickAt: at(MINUTE), kind: 'scheduled', outcome: 'skipped', late: false, jobId: existing.id, jobState: 'queued', actor: null, recordedAt: now },
          ] satisfies ScheduleTickRow[]);
        });
      });
    });

    describe('scheduleTrigger', () => {
      it('enqueues a job with scheduleName and tickAt = now and records a triggered tick with the actor', async () => {
        const a = item('a');
        await sync([a], at(0));
        const now = at(5_000);
        const result = await tdb.driver.scheduleTrigger({ name: 'a', job: makeInsert({ name: 'tick-job', payloadJson: '{"tick":true}' }), actor: 'ops@example', now });
        expect(result).toEqual({ jobId: expect.stringMatching(/^[1-9][0-9]*$/), tickAt: now, duplicate: false, replaced: false });
        expect(await getJob(tdb.driver, result.jobId)).toEqual(scheduledJob(result.jobId, 'a', now, now));
        const tick: ScheduleTickRow = {
          scheduleName: 'a', tickAt: now, kind: 'triggered', outcome: 'fired', late: false,
          jobId: result.jobId, jobState: 'queued', actor: 'ops@example', recordedAt: now,
        };
        expect(await tdb.driver.scheduleTickList({ name: 'a' })).toEqual([tick]);
        const row = await listed(tdb.driver, 'a');
        expect([row.nextRunAt, row.paused, row.lastTick]).toEqual([at(MINUTE), false, tick]);
        // The scheduled tick still advances normally afterwards.
        expect((await advance('a', at(MINUTE), at(2 * MINUTE), [fire('a', at(MINUTE))], at(MINUTE))).advanced).toBe(true);
        expect(await countRows(tdb, 'jobs')).toBe(2);
      });

      it('two triggers in the same millisecond both run: the second takes the next free millisecond', async () => {
        await sync([item('a')], at(0));
        const now = at(5_000);
        const first = await tdb.driver.scheduleTrigger({ name: 'a', job: makeInsert({ name: 'tick-job', payloadJson: '{"tick":true}' }), actor: 'x', now });
        const second = await tdb.driver.scheduleTrigger({ name: 'a', job: makeInsert({ name: 'tick-job', payloadJson: '{"tick":true}' }), actor: 'y', now });
        expect(first.tickAt).toEqual(now);
        expect(second.tickAt).toEqual(at(5_001));
        expect(second.jobId).not.toBe(first.jobId);
        expect(await getJob(tdb.driver, second.jobId)).toEqual(scheduledJob(second.jobId, 'a', at(5_001), now));
        expect((await tdb.driver.scheduleTickList({ name: 'a' })).map((t) => [t.tickAt, t.kind, t.outcome, t.actor, t.jobId, t.recordedAt])).toEqual([
          [at(5_001), 'triggered', 'fired', 'y', second.jobId, now],
          [now, 'triggered', 'fired', 'x', first.jobId, now],
        ]);
        expect(await countRows(tdb, 'jobs')).toBe(2);
      });

      it('a keyed job deduplicated against an active one: duplicate, with its id; the tick recorded skipped', async () => {
        await sync([item('a')], at(0));
        const existing = await insertJob(tdb.driver, { key: 'nightly', name: 'manual' }, at(1_000));
        const now = at(2_000);
        const result = await tdb.driver.scheduleTrigger({ name: 'a', job: makeInsert({ key: 'nightly' }), actor: 'ops', now });
        expect(result).toEqual({ jobId: existing.id, tickAt: now, duplicate: true, replaced: false });
        expect(await countRows(tdb, 'jobs')).toBe(1);
        expect(await getJob(tdb.driver, existing.id)).toEqual(existing);
        expect((await tdb.driver.scheduleTickList({ name: 'a' })).map((t) => [t.tickAt, t.kind, t.outcome, t.jobId, t.actor])).toEqual([
          [now, 'triggered', 'skipped', existing.id, 'ops'],
        ]);
        // A key that replaces a waiting holder: still a duplicate (no new run), and the holder got the new payload.
        const replacing = makeInsert({ key: 'nightly', payloadJson: '{"v":2}', unique: { windowMs: null, states: ['queued', 'retrying'], replace: true } });
        const again = await tdb.driver.scheduleTrigger({ name: 'a', job: replacing, actor: 'ops', now: at(3_000) });
        expect([again.jobId, again.duplicate, again.replaced]).toEqual([existing.id, true, true]);
        expect((await getJob(tdb.driver, existing.id)).payload).toEqual({ v: 2 });
        expect(await countRows(tdb, 'jobs')).toBe(1);
      });

      it('works while the schedule is paused, leaving it paused', async () => {
        await sync([item('a')], at(0));
        const paused = await tdb.driver.schedulePause({ name: 'a', now: at(1_000) });
        const result = await tdb.driver.scheduleTrigger({ name: 'a', job: makeInsert(), actor: 'cli', now: at(2_000) });
        const job = await getJob(tdb.driver, result.jobId);
        expect([job.state, job.scheduleName, job.tickAt]).toEqual(['queued', 'a', at(2_000)]);
        const row = await listed(tdb.driver, 'a');
        expect({ ...row, lastTick: null }).toEqual(paused);
        expect(row.lastTick?.kind).toBe('triggered');
        expect(await tdb.driver.scheduleDue({ now: at(10 * MINUTE), limit: 10 })).toEqual([]);
      });

      it.each(['unknown', 'removed'])('a schedule that is %s: ScheduleNotFoundError, nothing written', async (name) => {
        await sync([item('removed'), item('kept')], at(0));
        await sync([item('kept')], at(1_000), true);
        const error = await expectRejects(tdb.driver.scheduleTrigger({ name, job: makeInsert(), actor: 'ops', now: at(2_000) }), ScheduleNotFoundError);
        expect(error.scheduleName).toBe(name);
        expect(await countRows(tdb, 'jobs')).toBe(0);
        expect(await countTable(tdb, 'schedule_ticks')).toBe(0);
      });

      it('with define, stores a schedule never synced (as a first sync would, spec included) and triggers it', async () => {
        const a = item('a', { firstRunAt: at(MINUTE), specJson: timedSpec() });
        const result = await tdb.driver.scheduleTrigger({ name: 'a', job: makeInsert(), actor: 'cli', now: at(2_000), define: a });
        expect(result.tickAt).toEqual(at(2_000));
        const row = await listed(tdb.driver, 'a');
        expect({ ...row, lastTick: null }).toEqual(scheduleRow(a, { createdAt: at(2_000), updatedAt: at(2_000) }));
        expect([row.lastTick?.kind, row.lastTick?.jobId]).toEqual(['triggered', result.jobId]);
        expect(await countRows(tdb, 'jobs')).toBe(1);
        // Its spec was stored: a change of what fires keeps its next run.
        await sync([item('a', { definitionHash: 'h2', specJson: timedSpec({ priority: 7 }), firstRunAt: at(5 * MINUTE) })], at(3_000));
        expect((await listed(tdb.driver, 'a')).nextRunAt).toEqual(at(MINUTE));
      });

      it('with define, leaves a stored schedule as it is, and a removed one removed (ScheduleNotFoundError)', async () => {
        await sync([item('stored', { firstRunAt: at(MINUTE) }), item('removed')], at(0));
        await sync([item('stored', { firstRunAt: at(MINUTE) })], at(1_000), true);
        const before = await listed(tdb.driver, 'stored');
        const changed = item('stored', { definitionHash: 'another-hash', firstRunAt: at(5 * MINUTE) });
        await tdb.driver.scheduleTrigger({ name: 'stored', job: makeInsert(), actor: 'cli', now: at(2_000), define: changed });
        expect({ ...(await listed(tdb.driver, 'stored')), lastTick: null }).toEqual({ ...before, lastTick: null });
        const error = await expectRejects(
          tdb.driver.scheduleTrigger({ name: 'removed', job: makeInsert(), actor: 'cli', now: at(3_000), define: item('removed') }),
          ScheduleNotFoundError,
        );
        expect(error.scheduleName).toBe('removed');
        expect((await tdb.driver.scheduleList()).map((r) => r.name)).toEqual(['stored']);
        expect(await countRows(tdb, 'jobs')).toBe(1);
      });
    });

    describe('schedulePause / scheduleResume', () => {
      it('schedulePause sets paused, keeps next_run_at, returns the row; the schedule stops being due', async () => {
        const a = item('a', { firstRunAt: at(1_000) });
        await sync([a, item('b', { firstRunAt: at(1_000) })], at(0));
        const paused = await tdb.driver.schedulePause({ name: 'a', now: at(500) });
        expect(paused).toEqual(scheduleRow(a, { paused: true, createdAt: at(0), updatedAt: at(500) }));
        expect(await listed(tdb.driver, 'a')).toEqual(paused);
        expect((await tdb.driver.scheduleDue({ now: at(1_000), limit: 10 })).map((r) => r.name)).toEqual(['b']);
        // Pausing again is harmless.
        expect(await tdb.driver.schedulePause({ name: 'a', now: at(600) })).toEqual({ ...paused, updatedAt: at(600) });
      });

      it('scheduleResume unpauses, sets next_run_at if it was paused and returns the row; an advance planned before fails', async () => {
        const a = item('a');
        await sync([a], at(0));
        await fireOnce('a', at(MINUTE), at(MINUTE));
        await tdb.driver.schedulePause({ name: 'a', now: at(MINUTE + 1_000) });
        const before = await listed(tdb.driver, 'a');
        const resumed = await tdb.driver.scheduleResume({ name: 'a', expectedHash: 'h1', nextRunAt: at(10 * MINUTE), now: at(9 * MINUTE) });
        expect(resumed).toEqual({ ...before, paused: false, nextRunAt: at(10 * MINUTE), updatedAt: at(9 * MINUTE) });
        expect(await listed(tdb.driver, 'a')).toEqual(resumed);
        // The ticks during the pause are not due any more.
        expect(await advance('a', at(2 * MINUTE), at(3 * MINUTE), [fire('a', at(2 * MINUTE))], at(9 * MINUTE))).toEqual(NOT_ADVANCED);
        expect(await tdb.driver.scheduleDue({ now: at(10 * MINUTE - 1), limit: 10 })).toEqual([]);
        expect((await tdb.driver.scheduleDue({ now: at(10 * MINUTE), limit: 10 })).map((r) => r.name)).toEqual(['a']);
        // Resuming a schedule that is not paused keeps its next_run_at: a tick already due stays due.
        const again = (await tdb.driver.scheduleResume({ name: 'a', expectedHash: 'h1', nextRunAt: at(20 * MINUTE), now: at(10 * MINUTE + 1) }))!;
        expect([again.paused, again.nextRunAt, again.updatedAt]).toEqual([false, at(10 * MINUTE), at(10 * MINUTE + 1)]);
        expect((await tdb.driver.scheduleDue({ now: at(10 * MINUTE + 1), limit: 10 })).map((r) => r.name)).toEqual(['a']);
        // On a paused schedule, null means never again.
        await tdb.driver.schedulePause({ name: 'a', now: at(10 * MINUTE + 2) });
        const never = (await tdb.driver.scheduleResume({ name: 'a', expectedHash: 'h1', nextRunAt: null, now: at(10 * MINUTE + 3) }))!;
        expect([never.paused, never.nextRunAt, never.updatedAt]).toEqual([false, null, at(10 * MINUTE + 3)]);
      });

      it.each(['unknown', 'removed'])('a schedule that is %s: ScheduleNotFoundError for pause and resume', async (name) => {
        await sync([item('removed'), item('kept')], at(0));
        await sync([item('kept')], at(1_000), true);
        const e1 = await expectRejects(tdb.driver.schedulePause({ name, now: at(2_000) }), ScheduleNotFoundError);
        const e2 = await expectRejects(tdb.driver.scheduleResume({ name, expectedHash: 'h1', nextRunAt: at(3_000), now: at(2_000) }), ScheduleNotFoundError);
        expect([e1.scheduleName, e2.scheduleName]).toEqual([name, name]);
        expect((await tdb.driver.scheduleList()).map((r) => [r.name, r.paused])).toEqual([['kept', false]]);
      });
    });

    describe('scheduleList / scheduleTickList', () => {
      it('scheduleList: by name, lastTick the newest by recorded_at, with its job\'s current state', async () => {
        await sync([item('b'), item('a')], at(0));
        // A trigger at 5s (tick 5s), then a late scheduled tick for 1s recorded at 10s: newest by recorded_at is the latter.
        const triggered = await tdb.driver.scheduleTrigger({ name: 'a', job: makeInsert({ queue: 'manual' }), actor: 'ops', now: at(5_000) });
        const result = await advance('a', at(MINUTE), at(2 * MINUTE), [fire('a', at(1_000), { late: true })], at(10_000));
        const jobId = result.ticks[0]!.jobId!;
        const tick: ScheduleTickRow = {
          scheduleName: 'a', tickAt: at(1_000), kind: 'scheduled', outcome: 'fired', late: true,
          jobId, jobState: 'queued', actor: null, recordedAt: at(10_000),
        };
        let rows = await tdb.driver.scheduleList();
        expect(rows.map((r) => r.name)).toEqual(['a', 'b']);
        expect(rows[0]!.lastTick).toEqual(tick);
        expect(rows[1]!.lastTick).toBeNull();

        // The job's state is read at list time.
        const running = await claimExactly(tdb.driver, jobId, { now: at(20_000) });
        expect((await listed(tdb.driver, 'a')).lastTick).toEqual({ ...tick, jobState: 'running' });
        await tdb.driver.jobFinishMany({ items: [finishOf(running)], now: at(21_000) });
        rows = await tdb.driver.scheduleList();
        expect(rows[0]!.lastTick).toEqual({ ...tick, jobState: 'completed' });
        // Discarded: the tick keeps its job id, with no state.
        await tdb.driver.jobDiscard({ id: jobId });
        expect((await listed(tdb.driver, 'a')).lastTick).toEqual({ ...tick, jobState: null });
        // A newer trigger becomes the last tick.
        await tdb.driver.scheduleTrigger({ name: 'a', job: makeInsert(), actor: 'ops2', now: at(30_000) });
        expect((await listed(tdb.driver, 'a')).lastTick).toMatchObject({ kind: 'triggered', tickAt: at(30_000), actor: 'ops2', jobState: 'queued' });
        expect(triggered.tickAt).toEqual(at(5_000));
      });

      it('scheduleTickList: newest tick_at first, with each job\'s state, at most limit; only that schedule', async () => {
        await sync([item('a'), item('b')], at(0));
        await advance('a', at(MINUTE), at(3 * MINUTE), [missed(at(MINUTE)), fire('a', at(2 * MINUTE))], at(2 * MINUTE));
        const trig = await tdb.driver.scheduleTrigger({ name: 'a', job: makeInsert(), actor: 'ops', now: at(150_000) });
        await tdb.driver.scheduleTrigger({ name: 'b', job: makeInsert(), actor: 'ops', now: at(160_000) });
        await tdb.driver.jobCancel({ id: trig.jobId, now: at(170_000) });
        const all = await tdb.driver.scheduleTickList({ name: 'a' });
        expect(all.map((t) => [t.tickAt, t.kind, t.outcome, t.jobState])).toEqual([
          [at(150_000), 'triggered', 'fired', 'cancelled'],
          [at(2 * MINUTE), 'scheduled', 'fired', 'queued'],
          [at(MINUTE), 'scheduled', 'missed', null],
        ]);
        expect(await tdb.driver.scheduleTickList({ name: 'a', limit: 2 })).toEqual(all.slice(0, 2));
        expect(await tdb.driver.scheduleTickList({ name: 'a', limit: 1 })).toEqual(all.slice(0, 1));
        expect((await tdb.driver.scheduleTickList({ name: 'b' })).map((t) => t.actor)).toEqual(['ops']);
        expect(await tdb.driver.scheduleTickList({ name: 'nope' })).toEqual([]);
      });

      it('scheduleTickList: limit defaults to 100 and is clamped to 1..1000', async () => {
        await sync([item('a')], at(0));
        const ticks = Array.from({ length: 105 }, (_, i) => missed(at((i + 1) * 1_000)));
        expect((await advance('a', at(MINUTE), at(200 * MINUTE), ticks, at(200_000))).ticks).toHaveLength(105);
        const byDefault = await tdb.driver.scheduleTickList({ name: 'a' });
        expect(byDefault).toHaveLength(100);
        expect(byDefault[0]!.tickAt).toEqual(at(105_000));
        expect(byDefault[99]!.tickAt).toEqual(at(6_000));
        expect(await tdb.driver.scheduleTickList({ name: 'a', limit: 5_000 })).toHaveLength(105);
        expect(await tdb.driver.scheduleTickList({ name: 'a', limit: 0 })).toHaveLength(1);
        expect(await tdb.driver.scheduleTickList({ name: 'a', limit: -3 })).toHaveLength(1);
      });
    });

    describe('scheduleGet, scheduleResume\'s expectedHash, and tick jobs whose key replaces a waiting holder', () => {
      const REPLACE = { windowMs: null, states: ['queued', 'retrying'] as JobState[], replace: true };

      it('scheduleGet: the schedule as scheduleList lists it, with its last tick; null when unknown or removed', async () => {
        await sync([item('a'), item('b'), item('removed')], at(0));
        await tdb.driver.scheduleTrigger({ name: 'a', job: makeInsert(), actor: 'ops', now: at(5_000) });
        await sync([item('a'), item('b')], at(6_000), true);
        const a = await tdb.driver.scheduleGet({ name: 'a' });
        expect(a).toEqual(await listed(tdb.driver, 'a'));
        expect(a?.lastTick).toMatchObject({ kind: 'triggered', actor: 'ops', jobState: 'queued' });
        expect(await tdb.driver.scheduleGet({ name: 'b' })).toEqual(await listed(tdb.driver, 'b'));
        expect(await tdb.driver.scheduleGet({ name: 'removed' })).toBeNull();
        expect(await tdb.driver.scheduleGet({ name: 'unknown' })).toBeNull();
      });

      it('scheduleResume applies only while the stored hash is expectedHash: otherwise null, nothing written', async () => {
        await sync([item('a')], at(0));
        await tdb.driver.schedulePause({ name: 'a', now: at(1_000) });
        // A sync stores another definition after the caller read h1 (a deploy racing an operator's resume).
        await sync([item('a', { definitionHash: 'h2', firstRunAt: at(7 * MINUTE) })], at(2_000));
        const changed = await listed(tdb.driver, 'a');
        expect(await tdb.driver.scheduleResume({ name: 'a', expectedHash: 'h1', nextRunAt: at(MINUTE), now: at(3_000) })).toBeNull();
        expect(await listed(tdb.driver, 'a')).toEqual(changed);
        const resumed = await tdb.driver.scheduleResume({ name: 'a', expectedHash: 'h2', nextRunAt: at(14 * MINUTE), now: at(4_000) });
        expect(resumed).toEqual({ ...changed, paused: false, nextRunAt: at(14 * MINUTE), updatedAt: at(4_000) });
        // Not paused: another hash still writes nothing (not even updated_at).
        expect(await tdb.driver.scheduleResume({ name: 'a', expectedHash: 'h1', nextRunAt: null, now: at(5_000) })).toBeNull();
        expect(await listed(tdb.driver, 'a')).toEqual(resumed);
      });

      it('a tick whose key replaced a waiting holder fired with that job (advance and trigger); scheduleTicksWrittenBy says replaced', async () => {
        await sync([item('a')], at(0));
        const holder = await insertJob(tdb.driver, { key: 'k', name: 'manual' }, at(1_000));
        const now = at(MINUTE + 100);
        const job = tickJob('a', at(MINUTE), { key: 'k', payloadJson: '{"v":2}', unique: REPLACE });
        const result = await tdb.driver.scheduleAdvance({
          name: 'a', definitionHash: 'h1', expectedNextRunAt: at(MINUTE), nextRunAt: at(2 * MINUTE), ticks: [fire('a', at(MINUTE), { job })], now, firedBy: 'me',
        });
        expect(result).toEqual({
          advanced: true,
          ticks: [{ tickAt: at(MINUTE), outcome: 'fired', late: false, jobId: holder.id, cancelledJobIds: [], queue: 'default', alreadyHandled: false, replaced: true }],
        });
        expect(await countRows(tdb, 'jobs')).toBe(1);
        expect((await getJob(tdb.driver, holder.id)).payload).toEqual({ v: 2 });
        // A fired tick's own new job is no replacement.
        const own = await tdb.driver.scheduleAdvance({
          name: 'a', definitionHash: 'h1', expectedNextRunAt: at(2 * MINUTE), nextRunAt: at(3 * MINUTE), ticks: [fire('a', at(2 * MINUTE))], now: at(2 * MINUTE), firedBy: 'me',
        });
        expect(own.ticks[0]).not.toHaveProperty('replaced', true);
        expect(await tdb.driver.scheduleTicksWrittenBy({ name: 'a', firedBy: 'me', tickAts: [at(MINUTE), at(2 * MINUTE)] })).toEqual([
          { tickAt: at(MINUTE), outcome: 'fired', late: false, jobId: holder.id, replaced: true },
          { tickAt: at(2 * MINUTE), outcome: 'fired', late: false, jobId: own.ticks[0]!.jobId },
        ]);

        const triggered = await tdb.driver.scheduleTrigger({ name: 'a', job: makeInsert({ key: 'k', payloadJson: '{"v":3}', unique: REPLACE }), actor: 'ops', now: at(2 * MINUTE + 100) });
        expect(triggered).toEqual({ jobId: holder.id, tickAt: at(2 * MINUTE + 100), duplicate: true, replaced: true });
        expect((await getJob(tdb.driver, holder.id)).payload).toEqual({ v: 3 });
        expect((await tdb.driver.scheduleTickList({ name: 'a' })).map((t) => [t.tickAt, t.kind, t.outcome, t.jobId, t.actor])).toEqual([
          [at(2 * MINUTE + 100), 'triggered', 'fired', holder.id, 'ops'],
          [at(2 * MINUTE), 'scheduled', 'fired', own.ticks[0]!.jobId, null],
          [at(MINUTE), 'scheduled', 'fired', holder.id, null],
        ]);
        expect(await countRows(tdb, 'jobs')).toBe(2);
      });
    });

    describe('scheduleLastSuccess, and scheduleTickList\'s limit', () => {
      /** Claims the one due job of `queue` at `now` and completes it a second later; its finish time. */
      async function complete(jobId: string, queue: string, now: Date): Promise<Date> {
        const running = await claimExactly(tdb.driver, jobId, { queues: [queue], now });
        const finishedAt = new Date(now.getTime() + 1_000);
        await tdb.driver.jobFinishMany({ items: [finishOf(running)], now: finishedAt });
        return finishedAt;
      }

      it('the newest fired tick, scheduled or triggered, whose job completed; never one whose job is gone, nor a skipped one', async () => {
        await sync([item('a'), item('b')], at(0));
        expect(await tdb.driver.scheduleLastSuccess({ name: 'a' })).toBeNull();
        expect(await tdb.driver.scheduleLastSuccess({ name: 'unknown' })).toBeNull();

        // +1m fires and completes: the success.
        const first = await advance('a', at(MINUTE), at(2 * MINUTE), [fire('a', at(MINUTE), { job: tickJob('a', at(MINUTE), { queue: 'q1' }) })], at(MINUTE));
        const firstId = first.ticks[0]!.jobId!;
        const firstDone = await complete(firstId, 'q1', at(MINUTE));
        const success = { tickAt: at(MINUTE), jobId: firstId, finishedAt: firstDone };
        expect(await tdb.driver.scheduleLastSuccess({ name: 'a' })).toEqual(success);

        // Newer ticks that are no success: +2m fired and still waiting, +3m missed, +4m held back by overlap.
        const later = await advance('a', at(2 * MINUTE), at(4 * MINUTE), [fire('a', at(2 * MINUTE), { job: tickJob('a', at(2 * MINUTE), { queue: 'q2' }) }), missed(at(3 * MINUTE))], at(3 * MINUTE));
        expect(later.ticks.map((t) => t.outcome)).toEqual(['fired', 'missed']);
        const held = await advance('a', at(4 * MINUTE), at(5 * MINUTE), [fire('a', at(4 * MINUTE), { blockIfActiveIn: ALL_ACTIVE })], at(4 * MINUTE));
        expect(held.ticks.map((t) => [t.outcome, t.jobId])).toEqual([['skipped', null]]);
        expect(await tdb.driver.scheduleLastSuccess({ name: 'a' })).toEqual(success);

        // +5m deduplicated against another job holding its key: skipped, naming that job, which then completes. Not
        // this schedule's run.
        const holder = await insertJob(tdb.driver, { key: 'k', queue: 'q5' }, at(4 * MINUTE));
        const unique = { windowMs: null, states: ALL_ACTIVE, replace: false };
        const dup = await advance('a', at(5 * MINUTE), at(6 * MINUTE), [fire('a', at(5 * MINUTE), { job: tickJob('a', at(5 * MINUTE), { key: 'k', unique }) })], at(5 * MINUTE));
        expect(dup.ticks.map((t) => [t.outcome, t.jobId])).toEqual([['skipped', holder.id]]);
        await complete(holder.id, 'q5', at(5 * MINUTE));
        expect(await tdb.driver.scheduleLastSuccess({ name: 'a' })).toEqual(success);

        // A trigger that completes is the newest success.
        const trig = await tdb.driver.scheduleTrigger({ name: 'a', job: makeInsert({ queue: 'qt' }), actor: 'ops', now: at(5 * MINUTE + 30_000) });
        const trigDone = await complete(trig.jobId, 'qt', at(5 * MINUTE + 30_000));
        expect(await tdb.driver.scheduleLastSuccess({ name: 'a' })).toEqual({ tickAt: at(5 * MINUTE + 30_000), jobId: trig.jobId, finishedAt: trigDone });

        // Its job discarded: gone, so no success; the older one is found behind it.
        await tdb.driver.jobDiscard({ id: trig.jobId });
        expect(await tdb.driver.scheduleLastSuccess({ name: 'a' })).toEqual(success);
        // +2m's run completes: newer than +1m.
        const secondDone = await complete(later.ticks[0]!.jobId!, 'q2', at(6 * MINUTE));
        expect(await tdb.driver.scheduleLastSuccess({ name: 'a' })).toEqual({ tickAt: at(2 * MINUTE), jobId: later.ticks[0]!.jobId, finishedAt: secondDone });
        // Only that schedule's ticks.
        expect(await tdb.driver.scheduleLastSuccess({ name: 'b' })).toBeNull();
      });

      it('walks the ticks newest first through their primary key and stops at the first completed job, never reading all jobs', async () => {
        await sync([item('a'), item('b')], at(0));
        // Statistics that saw many jobs kept, almost none completed (a schedule failing for months): a plan chosen from
        // them would read every completed job to join, instead of the few ticks a healthy schedule walks.
        const jobs = await insertJobs(tdb.driver, Array.from({ length: 3_000 }, () => ({ queue: 'q' })));
        const oldest = jobs[0]!.id;
        const newest = jobs[jobs.length - 1]!.id;
        const table = { jobs: tableRef(tdb, 'jobs'), ticks: tableRef(tdb, 'schedule_ticks') };
        await rawQuery(tdb, `UPDATE ${table.jobs} SET state = 'dead', finished_at = created_at`);
        await rawQuery(tdb, `UPDATE ${table.jobs} SET state = 'completed' WHERE id = ?`, [Number(oldest)]);
        await rawQuery(tdb, `UPDATE ${table.jobs} SET state = 'completed' WHERE id = ?`, [Number(newest)]);
        const tickAt = kind === 'postgres' ? `created_at + id * interval '1 minute'` : 'created_at + id * 60000';
        const late = kind === 'postgres' ? 'false' : '0';
        // Schedule a: one tick per job, its success the oldest; schedule b's success is its newest tick.
        await rawQuery(tdb, `INSERT INTO ${table.ticks} (schedule_name, tick_at, kind, outcome, late, job_id, recorded_at)
          SELECT CASE WHEN id = ? THEN 'b' ELSE 'a' END, ${tickAt}, 'scheduled', 'fired', ${late}, id, created_at FROM ${table.jobs}`, [Number(newest)]);
        await rawQuery(tdb, kind === 'postgres' ? `ANALYZE ${table.jobs}` : 'ANALYZE');
        await rawQuery(tdb, kind === 'postgres' ? `ANALYZE ${table.ticks}` : 'ANALYZE');

        expect(await tdb.driver.scheduleLastSuccess({ name: 'a' })).toMatchObject({ jobId: oldest });
        expect(await tdb.driver.scheduleLastSuccess({ name: 'b' })).toMatchObject({ jobId: newest });
        for (const name of ['a', 'b']) {
          const plan = await lastSuccessPlan(tdb, name);
          if (kind === 'postgres') {
            expect(plan, name).toMatch(/Index Scan Backward using schedule_ticks_pkey on schedule_ticks t/);
            expect(plan, name).not.toMatch(/Seq Scan on jobs|Hash|Sort/);
          } else {
            expect(plan, name).toContain('SEARCH t USING INDEX sqlite_autoindex_schedule_ticks_1 (schedule_name=?)');
            expect(plan, name).not.toMatch(/TEMP B-TREE|SCAN jobs|SCAN j\b/);
          }
        }
      });

      it('scheduleTickList refuses a limit that is not a whole number, alike on both drivers', async () => {
        await sync([item('a')], at(0));
        await advance('a', at(MINUTE), at(2 * MINUTE), [missed(at(MINUTE))], at(MINUTE));
        for (const limit of [Number.NaN, Infinity, -Infinity, 2.5]) {
          const error = await expectRejects(tdb.driver.scheduleTickList({ name: 'a', limit }), InvalidOptionError);
          expect(error.message).toMatch(/^Expected limit to be a whole number from 1 to 1000, got /);
        }
        expect(await tdb.driver.scheduleTickList({ name: 'a', limit: 1_000 })).toHaveLength(1);
      });
    });

    describe('scheduleTicksAfter', () => {
      it('the scheduled ticks with after < tick_at <= through, oldest first, at most limit, as scheduleTickList reads them', async () => {
        await sync([item('a'), item('b')], at(0));
        // +1m fired (completed below), +2m missed, +3m fired (waiting), +4m held back by overlap; a trigger in between.
        const first = await advance('a', at(MINUTE), at(2 * MINUTE), [fire('a', at(MINUTE), { job: tickJob('a', at(MINUTE), { queue: 'q1' }) })], at(MINUTE));
        const running = await claimExactly(tdb.driver, first.ticks[0]!.jobId!, { queues: ['q1'], now: at(MINUTE) });
        await tdb.driver.jobFinishMany({ items: [finishOf(running)], now: at(MINUTE + 1_000) });
        await advance('a', at(2 * MINUTE), at(4 * MINUTE), [missed(at(2 * MINUTE)), fire('a', at(3 * MINUTE))], at(3 * MINUTE));
        await tdb.driver.scheduleTrigger({ name: 'a', job: makeInsert(), actor: 'ops', now: at(3 * MINUTE + 30_000) });
        await advance('a', at(4 * MINUTE), at(5 * MINUTE), [fire('a', at(4 * MINUTE), { blockIfActiveIn: ALL_ACTIVE })], at(4 * MINUTE));
        await advance('b', at(MINUTE), at(2 * MINUTE), [missed(at(MINUTE))], at(MINUTE));

        // Exactly the rows scheduleTickList returns for them, triggered ones left out, in the other order.
        const scheduled = (await tdb.driver.scheduleTickList({ name: 'a' })).filter((t) => t.kind === 'scheduled').reverse();
        expect(scheduled.map((t) => [t.tickAt, t.outcome, t.jobState])).toEqual([
          [at(MINUTE), 'fired', 'completed'],
          [at(2 * MINUTE), 'missed', null],
          [at(3 * MINUTE), 'fired', 'queued'],
          [at(4 * MINUTE), 'skipped', null],
        ]);
        const ticksAfter = (after: Date | null, through: Date, limit?: number) => tdb.driver.scheduleTicksAfter({ name: 'a', after, through, limit });
        expect(await ticksAfter(null, at(10 * MINUTE))).toEqual(scheduled);
        // `after` exclusive, `through` inclusive.
        expect(await ticksAfter(at(MINUTE), at(3 * MINUTE))).toEqual(scheduled.slice(1, 3));
        expect(await ticksAfter(at(MINUTE - 1), at(3 * MINUTE - 1))).toEqual(scheduled.slice(0, 2));
        // The oldest `limit`.
        expect(await ticksAfter(null, at(10 * MINUTE), 2)).toEqual(scheduled.slice(0, 2));
        expect(await ticksAfter(at(MINUTE), at(10 * MINUTE), 1)).toEqual(scheduled.slice(1, 2));
        // Empty ranges, other schedules.
        expect(await ticksAfter(null, at(MINUTE - 1))).toEqual([]);
        expect(await ticksAfter(at(4 * MINUTE), at(10 * MINUTE))).toEqual([]);
        expect(await tdb.driver.scheduleTicksAfter({ name: 'nope', after: null, through: at(10 * MINUTE) })).toEqual([]);
        expect((await tdb.driver.scheduleTicksAfter({ name: 'b', after: null, through: at(10 * MINUTE) })).map((t) => [t.scheduleName, t.tickAt])).toEqual([['b', at(MINUTE)]]);
        // A job discarded: its tick stays, with no state.
        await tdb.driver.jobDiscard({ id: scheduled[2]!.jobId! });
        expect(await ticksAfter(at(2 * MINUTE), at(3 * MINUTE))).toEqual([{ ...scheduled[2]!, jobState: null }]);
      });

      it('limit: 100 by default, clamped to 1..1000, refused when not a whole number, alike on both drivers', async () => {
        await sync([item('a')], at(0));
        const ticks = Array.from({ length: 1_005 }, (_, i) => missed(at((i + 1) * 1_000)));
        expect((await advance('a', at(MINUTE), at(2_000 * MINUTE), ticks, at(1_100_000))).ticks).toHaveLength(1_005);
        const range = { name: 'a', after: at(2_000), through: at(2_000_000) };
        const byDefault = await tdb.driver.scheduleTicksAfter(range);
        expect(byDefault.map((t) => t.tickAt)).toEqual(Array.from({ length: 100 }, (_, i) => at((i + 3) * 1_000)));
        expect(await tdb.driver.scheduleTicksAfter({ ...range, limit: 5_000 })).toHaveLength(1_000);
        expect(await tdb.driver.scheduleTicksAfter({ ...range, limit: 0 })).toEqual(byDefault.slice(0, 1));
        for (const limit of [Number.NaN, Infinity, 2.5]) {
          const error = await expectRejects(tdb.driver.scheduleTicksAfter({ ...range, limit }), InvalidOptionError);
          expect(error.message).toMatch(/^Expected limit to be a whole number from 1 to 1000, got /);
        }
      });

      it('reads a range of the primary key forward, never every tick nor every job', async () => {
        await sync([item('a')], at(0));
        // 3,000 ticks, each with a job, almost every job dead (a schedule failing for long): the range after the newest
        // success must be read from the primary key, each tick's job by its own key, with no sort and no job scan.
        const jobs = await insertJobs(tdb.driver, Array.from({ length: 3_000 }, () => ({ queue: 'q' })));
        const table = { jobs: tableRef(tdb, 'jobs'), ticks: tableRef(tdb, 'schedule_ticks') };
        await rawQuery(tdb, `UPDATE ${table.jobs} SET state = 'dead', finished_at = created_at`);
        await rawQuery(tdb, `UPDATE ${table.jobs} SET state = 'completed' WHERE id = ?`, [Number(jobs[2_000]!.id)]);
        const tickAt = kind === 'postgres' ? `created_at + id * interval '1 minute'` : 'created_at + id * 60000';
        const late = kind === 'postgres' ? 'false' : '0';
        await rawQuery(tdb, `INSERT INTO ${table.ticks} (schedule_name, tick_at, kind, outcome, late, job_id, recorded_at)
          SELECT 'a', ${tickAt}, 'scheduled', 'fired', ${late}, id, created_at FROM ${table.jobs}`);
        await rawQuery(tdb, kind === 'postgres' ? `ANALYZE ${table.jobs}` : 'ANALYZE');
        await rawQuery(tdb, kind === 'postgres' ? `ANALYZE ${table.ticks}` : 'ANALYZE');

        const success = await tdb.driver.scheduleLastSuccess({ name: 'a' });
        expect(success).toMatchObject({ jobId: jobs[2_000]!.id });
        const after = success!.tickAt;
        const read = await tdb.driver.scheduleTicksAfter({ name: 'a', after, through: at(10_000 * MINUTE), limit: 1_000 });
        expect(read.map((t) => t.jobId)).toEqual(jobs.slice(2_001).map((j) => j.id).slice(0, 1_000));
        expect(read.every((t) => t.jobState === 'dead')).toBe(true);
        // After a success, and from the oldest tick (a schedule that never succeeded).
        for (const bound of [after, null]) {
          const plan = await ticksAfterPlan(tdb, 'a', bound, at(10_000 * MINUTE));
          if (kind === 'postgres') {
            expect(plan, String(bound)).toMatch(/Index Scan using schedule_ticks_pkey on schedule_ticks t/);
            expect(plan, String(bound)).toMatch(/Index Scan using jobs_pkey on jobs j/);
            expect(plan, String(bound)).not.toMatch(/Seq Scan|Hash|Sort|Backward/);
          } else {
            expect(plan, String(bound)).toContain('SEARCH t USING INDEX sqlite_autoindex_schedule_ticks_1 (schedule_name=? AND tick_at>? AND tick_at<?)');
            expect(plan, String(bound)).not.toMatch(/TEMP B-TREE|SCAN jobs|SCAN j\b|SCAN t\b/);
          }
        }
      });
    });
  });
}

/** The plan (as text) of the driver's own `scheduleLastSuccess` statement for schedule `name`, as the driver runs it. */
async function lastSuccessPlan(tdb: TestDatabase, name: string): Promise<string> {
  if (tdb.kind === 'postgres') {
    const { buildPostgresScheduleStatements } = await import('../../src/driver/postgres/postgres-schedule-sql.js');
    // An unnamed statement with its parameter, planned for its value, as the driver's pool runs it.
    const rows = await rawQuery(tdb, `EXPLAIN ${buildPostgresScheduleStatements(tdb.schema!).scheduleLastSuccess}`, [name]);
    return rows.map((r) => String(r['QUERY PLAN'])).join('\n');
  }
  const { SCHEDULE_LAST_SUCCESS } = await import('../../src/driver/sqlite/sqlite-schedule-sql.js');
  const db = openRawSqlite(tdb);
  try {
    return (db.prepare(`EXPLAIN QUERY PLAN ${SCHEDULE_LAST_SUCCESS}`).all({ name }) as { detail: string }[]).map((r) => r.detail).join('\n');
  } finally {
    db.close();
  }
}

/** The plan (as text) of the driver's own `scheduleTicksAfter` statement for that range, as the driver runs it. */
async function ticksAfterPlan(tdb: TestDatabase, name: string, after: Date | null, through: Date): Promise<string> {
  if (tdb.kind === 'postgres') {
    const { buildPostgresScheduleStatements } = await import('../../src/driver/postgres/postgres-schedule-sql.js');
    const rows = await rawQuery(tdb, `EXPLAIN ${buildPostgresScheduleStatements(tdb.schema!).ticksAfter}`, [name, after, through, 1_000]);
    return rows.map((r) => String(r['QUERY PLAN'])).join('\n');
  }
  const { SCHEDULE_TICKS_AFTER } = await import('../../src/driver/sqlite/sqlite-schedule-sql.js');
  const db = openRawSqlite(tdb);
  try {
    const params = { name, after: after?.getTime() ?? null, through: through.getTime(), limit: 1_000 };
    return (db.prepare(`EXPLAIN QUERY PLAN ${SCHEDULE_TICKS_AFTER}`).all(params) as { detail: string }[]).map((r) => r.detail).join('\n');
  } finally {
    db.close();
  }
}
