/**
 * A sync that stores a changed definition resets a schedule's next tick only when its timing changed
 * (`scheduleTimingHash`: the cron pattern and its time zone, or the `every` interval), on both drivers:
 * - the timing hash covers exactly what decides tick times;
 * - a priority-only change keeps a due tick: it runs once, with the new priority, and an instance still on the old
 *   definition does not run it; a misfire-only change hands a due tick to the new misfire policy;
 * - a changed time zone or interval still resets, dropping the due tick as before;
 * - a schedule stored before migration 0019 (no timing hash): its first change resets as before, and a sync of the
 *   same definition fills the hash in, so its next priority-only change keeps the due tick;
 * - PostgreSQL: a sync and an advance planned with the old definition, waiting on each other's row lock in either
 *   order, fire the due tick exactly once.
 * @module
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FakeClock } from '../../src/clock/fake-clock.js';
import type { Warden } from '../../src/client/warden.js';
import type { ScheduleSyncItem, ScheduleTickWrite } from '../../src/driver/schedule-params.js';
import { POSTGRES_MIGRATIONS } from '../../src/driver/postgres/postgres-migrations.js';
import { SQLITE_MIGRATIONS } from '../../src/driver/sqlite/sqlite-migrations.js';
import { defineSchedule, type ScheduleOptions } from '../../src/schedule/define-schedule.js';
import { scheduleTimingHash } from '../../src/schedule/schedule-spec.js';
import { applyMigrationsRaw, at, openPgClient, rawQuery, rawTime, tableRef } from '../conformance/helpers.js';
import { createTestDatabase, DRIVER_KINDS, makeInsert, type TestDatabase } from '../support/test-databases.js';
import { HOUR, iso, jobsOf, makeWarden, type MakeWardenOptions, MINUTE, noopJob, openOracle, type Oracle, T0, ticksOf } from './helpers.js';

const SECOND = 1_000;

/** A schedule named `digest` firing every minute, with `overrides`. */
function digest(overrides: Partial<ScheduleOptions<unknown>> = {}) {
  return defineSchedule({ name: 'digest', cron: '* * * * *', job: noopJob, overlap: 'allow', ...overrides });
}

describe('scheduleTimingHash', () => {
  it('changes with the pattern, its time zone or the interval, and with nothing else', () => {
    const base = digest();
    const same = [
      digest({ priority: 9 }), digest({ queue: 'other' }), digest({ overlap: 'skip' }), digest({ misfire: { policy: 'skip', grace: '5s' } }),
      digest({ expect: { within: '5m' } }), digest({ payload: { x: 1 } }), digest({ heartbeat: { url: 'https://hc.example/ping' } }),
      digest({ job: { ...noopJob, name: 'other-job' } }),
    ];
    for (const def of same) expect(scheduleTimingHash(def)).toBe(scheduleTimingHash(base));
    const retimed = [digest({ cron: '*/2 * * * *' }), digest({ timezone: 'Asia/Kolkata' }), digest({ cron: undefined, every: '1m' })];
    for (const def of retimed) expect(scheduleTimingHash(def)).not.toBe(scheduleTimingHash(base));
    // `every` ticks are multiples of the interval since the epoch: no time zone reads them.
    const every = digest({ cron: undefined, every: '5m' });
    expect(scheduleTimingHash(digest({ cron: undefined, every: '5m', timezone: 'Asia/Kolkata' }))).toBe(scheduleTimingHash(every));
    expect(scheduleTimingHash(digest({ cron: undefined, every: '10m' }))).not.toBe(scheduleTimingHash(every));
  });
});

describe.each(DRIVER_KINDS)('sync and timing (%s)', (kind) => {
  let tdb: TestDatabase;
  let oracle: Oracle;
  let wardens: Warden[];

  // Not migrated: the tests of schedules stored before 0019 build an older schema first.
  beforeEach(async () => {
    tdb = await createTestDatabase(kind, { migrate: false });
    oracle = await openOracle(tdb);
    wardens = [];
  });

  afterEach(async () => {
    await Promise.allSettled(wardens.map((w) => w.close()));
    await oracle?.close();
    await tdb?.cleanup();
  });

  function open(options: MakeWardenOptions): Warden {
    const warden = makeWarden(tdb, options);
    wardens.push(warden);
    return warden;
  }

  describe('a sync keeps a due tick unless the timing changed', () => {
    beforeEach(async () => {
      await tdb.driver.migrate();
    });

    /** The priorities of the schedule's jobs, by id. */
    async function priorities(schedule: string): Promise<number[]> {
      const rows = await oracle.all<{ priority: unknown }>('SELECT priority FROM {jobs} WHERE schedule_name = $1 ORDER BY id', [schedule]);
      return rows.map((r) => Number(r.priority));
    }

    it('a priority-only change keeps the due tick: it runs once, with the new priority; the old instance does not run it', async () => {
      const old = new FakeClock(T0 + 10 * SECOND);
      const a = open({ schedules: [digest()], clock: old });
      await a.runSchedulerOnce();
      // Every scheduler down past the +1m tick; the deploy that raises the priority starts 20 s after it.
      const now = T0 + MINUTE + 20 * SECOND;
      await old.set(now);
      const b = open({ schedules: [digest({ priority: 7 })], clock: new FakeClock(now) });
      const fired: string[] = [];
      b.on('schedule:fired', (e) => fired.push(new Date(e.tickAt).toISOString()));
      expect(await b.runSchedulerOnce()).toBe(1);
      expect(await a.runSchedulerOnce()).toBe(0);
      expect(await b.runSchedulerOnce()).toBe(0);
      expect(fired).toEqual(iso([T0 + MINUTE]));
      expect(iso((await jobsOf(oracle, 'digest')).map((j) => j.tickAt!))).toEqual(iso([T0 + MINUTE]));
      expect(await priorities('digest')).toEqual([7]);
      expect((await b.schedules.list())[0]?.nextRunAt?.getTime()).toBe(T0 + 2 * MINUTE);
    });

    it('a misfire-only change hands the due ticks to the new misfire policy', async () => {
      const a = open({ schedules: [digest()], clock: new FakeClock(T0 + 10 * SECOND) });
      await a.runSchedulerOnce();
      // +1m, +2m and +3m are due, the oldest two past the old grace (1m) and all three past the new one (5s).
      const b = open({ schedules: [digest({ misfire: { policy: 'skip', grace: '5s' } })], clock: new FakeClock(T0 + 3 * MINUTE + 30 * SECOND) });
      expect(await b.runSchedulerOnce()).toBe(1);
      expect((await ticksOf(oracle, 'digest')).map((t) => [t.tickAt - T0, t.outcome])).toEqual([[MINUTE, 'missed'], [2 * MINUTE, 'missed'], [3 * MINUTE, 'missed']]);
      expect(await jobsOf(oracle, 'digest')).toEqual([]);
    });

    it.each([
      ['time zone', { cron: '0 * * * *' }, { cron: '0 * * * *', timezone: 'Asia/Kolkata' }, T0 + HOUR + 30 * MINUTE],
      ['interval', { cron: undefined, every: '1h' }, { cron: undefined, every: '2h' }, T0 + 2 * HOUR],
    ] as const)('a changed %s resets next_run_at: the due tick is dropped', async (_, v1, v2, next) => {
      const a = open({ schedules: [digest(v1)], clock: new FakeClock(T0 + 10 * SECOND) });
      await a.runSchedulerOnce();
      const b = open({ schedules: [digest(v2)], clock: new FakeClock(T0 + HOUR + 10 * SECOND) });
      expect(await b.runSchedulerOnce()).toBe(0);
      expect((await b.schedules.list())[0]?.nextRunAt?.getTime()).toBe(next);
      expect(await ticksOf(oracle, 'digest')).toEqual([]);
    });
  });

  describe('schedules stored before migration 0019', () => {
    it('have no timing hash: the first change resets as before; a sync of the same definition fills it in, and the next change keeps the due tick', async () => {
      const names = (kind === 'sqlite' ? SQLITE_MIGRATIONS : POSTGRES_MIGRATIONS).map((m) => m.name);
      await applyMigrationsRaw(tdb, names.indexOf('0019_schedule_timing_hash'));
      const v1 = { first: digest({ name: 'first' }), second: digest({ name: 'second' }) };
      const v2 = { first: digest({ name: 'first', priority: 5 }), second: digest({ name: 'second', priority: 5 }) };
      // Both stored by an older version (its columns only), due at T0.
      for (const def of [v1.first, v1.second]) {
        await rawQuery(tdb, `INSERT INTO ${tableRef(tdb, 'schedules')} (name, definition_hash, spec, next_run_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)`,
          [def.name, def.definitionHash, '{}', rawTime(tdb, new Date(T0)), rawTime(tdb, new Date(T0 - HOUR)), rawTime(tdb, new Date(T0 - HOUR))]);
      }
      await tdb.driver.migrate();
      const timingHashes = async () => (await oracle.all<{ name: string; timing_hash: string | null }>('SELECT name, timing_hash FROM {schedules} ORDER BY name'))
        .map((r) => [r.name, r.timing_hash]);
      expect(await timingHashes()).toEqual([['first', null], ['second', null]]);

      // The upgrade's deploy: `first` unchanged (its hash filled in, its due tick fires), `second` changed (reset).
      const a = open({ schedules: [v1.first, v2.second], clock: new FakeClock(T0 + 10 * SECOND) });
      expect(await a.runSchedulerOnce()).toBe(1);
      expect(await timingHashes()).toEqual([['first', scheduleTimingHash(v1.first)], ['second', scheduleTimingHash(v2.second)]]);
      expect(iso((await jobsOf(oracle, 'first')).map((j) => j.tickAt!))).toEqual(iso([T0]));
      expect(await jobsOf(oracle, 'second')).toEqual([]);
      expect((await a.schedules.list()).map((s) => [s.name, s.nextRunAt?.getTime()])).toEqual([['first', T0 + MINUTE], ['second', T0 + MINUTE]]);

      // The next deploy changes `first`'s priority after its +1m tick fell due: it keeps the tick.
      const b = open({ schedules: [v2.first, v2.second], clock: new FakeClock(T0 + MINUTE + 10 * SECOND) });
      expect(await b.runSchedulerOnce()).toBe(2);
      expect(iso((await jobsOf(oracle, 'first')).map((j) => j.tickAt!))).toEqual(iso([T0, T0 + MINUTE]));
      const firstPriorities = await oracle.all<{ priority: unknown }>("SELECT priority FROM {jobs} WHERE schedule_name = 'first' ORDER BY id");
      expect(firstPriorities.map((r) => Number(r.priority))).toEqual([0, 5]);
    });
  });
});

describe.runIf(DRIVER_KINDS.includes('postgres'))('a sync and an advance planned with the old definition, concurrent (postgres)', () => {
  let tdb: TestDatabase;

  beforeEach(async () => {
    tdb = await createTestDatabase('postgres');
  });

  afterEach(async () => {
    await tdb?.cleanup();
  });

  /** `a` with timing `t1`, due at +1m: hash `h1` as stored at first, `h2` the priority-only change. */
  const item = (definitionHash: string, firstRunAt: Date): ScheduleSyncItem => ({ name: 'a', definitionHash, timingHash: 't1', specJson: '{}', firstRunAt });
  const fire = (tickAt: Date): ScheduleTickWrite => ({
    tickAt, action: 'fire', late: false, job: makeInsert({ scheduleName: 'a', tickAt }), blockIfActiveIn: [], cancelActive: false,
  });

  /** Resolves once `n` statements on this test's schema wait for a lock. */
  async function untilWaiting(n: number): Promise<void> {
    const client = await openPgClient();
    try {
      for (;;) {
        const { rows } = await client.query<{ n: string }>(`SELECT count(*) AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE $1`, [`%${tdb.schema}%`]);
        if (Number(rows[0]!.n) >= n) return;
        await new Promise((resolve) => setImmediate(resolve));
      }
    } finally {
      await client.end();
    }
  }

  /**
   * Holds the schedule's row while `first` and then `second` start (each queued on the row lock behind the one
   * before), then lets them go in that order.
   */
  async function queued<A, B>(first: () => Promise<A>, second: () => Promise<B>): Promise<[A, B]> {
    const holder = await openPgClient();
    try {
      await holder.query('BEGIN');
      await holder.query(`SELECT name FROM ${tableRef(tdb, 'schedules')} WHERE name = 'a' FOR UPDATE`);
      const one = first();
      await untilWaiting(1);
      const two = second();
      await untilWaiting(2);
      await holder.query('COMMIT');
      return [await one, await two];
    } finally {
      await holder.end();
    }
  }

  const advanceOld = (driver = tdb.driver) => driver.scheduleAdvance({
    name: 'a', definitionHash: 'h1', expectedNextRunAt: at(MINUTE), nextRunAt: at(2 * MINUTE), ticks: [fire(at(MINUTE))], now: at(MINUTE + 10_000),
  });

  it('the advance first: it fires the tick, and the sync behind it keeps the advanced next_run_at', async () => {
    await tdb.driver.scheduleSync({ schedules: [item('h1', at(MINUTE))], removeMissing: true, now: at(0) });
    const syncer = tdb.newDriver();
    // A first run unlike the advanced next run, to tell one kept from one reset.
    const [advanced] = await queued(
      () => advanceOld(),
      () => syncer.scheduleSync({ schedules: [item('h2', at(3 * MINUTE))], removeMissing: true, now: at(MINUTE + 10_000) }),
    );
    expect(advanced.ticks.map((t) => t.outcome)).toEqual(['fired']);
    expect(await tdb.driver.scheduleGet({ name: 'a' })).toMatchObject({ definitionHash: 'h2', nextRunAt: at(2 * MINUTE) });
    expect(await tdb.driver.scheduleDue({ now: at(MINUTE + 10_000), limit: 10 })).toEqual([]);
    expect((await tdb.driver.scheduleTickList({ name: 'a' })).map((t) => [t.tickAt, t.outcome])).toEqual([[at(MINUTE), 'fired']]);
  });

  it('the sync first: the advance behind it matches nothing, and the tick stays due for the new definition, which fires it once', async () => {
    await tdb.driver.scheduleSync({ schedules: [item('h1', at(MINUTE))], removeMissing: true, now: at(0) });
    const syncer = tdb.newDriver();
    const [, advanced] = await queued(
      () => syncer.scheduleSync({ schedules: [item('h2', at(2 * MINUTE))], removeMissing: true, now: at(MINUTE + 10_000) }),
      () => advanceOld(),
    );
    expect(advanced).toEqual({ advanced: false, ticks: [] });
    expect(await tdb.driver.scheduleGet({ name: 'a' })).toMatchObject({ definitionHash: 'h2', nextRunAt: at(MINUTE) });
    const params = { name: 'a', definitionHash: 'h2', expectedNextRunAt: at(MINUTE), nextRunAt: at(2 * MINUTE), ticks: [fire(at(MINUTE))], now: at(MINUTE + 10_000) };
    expect((await tdb.driver.scheduleAdvance(params)).ticks.map((t) => t.outcome)).toEqual(['fired']);
    expect(await tdb.driver.scheduleAdvance(params)).toEqual({ advanced: false, ticks: [] });
    expect((await tdb.driver.scheduleTickList({ name: 'a' })).map((t) => [t.tickAt, t.outcome])).toEqual([[at(MINUTE), 'fired']]);
  });
});
