/**
 * A sync that stores a changed definition resets a schedule's next tick only when its timing changed (the stored
 * spec's cron pattern and its time zone, or `every` interval, differ from the new definition's), on both drivers:
 * - exactly what decides tick times counts, from the definitions as `toSyncItem` stores them;
 * - a priority-only change keeps a due tick: it runs once, with the new priority, and an instance still on the old
 *   definition does not run it; a misfire-only change hands a due tick to the new misfire policy;
 * - a changed time zone or interval still resets, dropping the due tick as before;
 * - rows an older release wrote (it knows nothing of keeping a tick: any change replaces hash, spec and `next_run_at`
 *   together), which instances of both releases do during a rolling deploy or after a rollback: the new release, then
 *   the old one with another pattern, then the new one again gives the new pattern's next tick, not one kept from the
 *   old pattern (the bug of a timing hash only the new release maintained, found by a review: an hourly schedule
 *   waited for the old daily tick, with no tick rows and no `schedule:missed`); and a row the old release stored,
 *   changed in priority only at the first deploy of the new one, keeps its due tick;
 * - PostgreSQL: a sync and an advance planned with the old definition, waiting on each other's row lock in either
 *   order, fire the due tick exactly once.
 * @module
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FakeClock } from '../../src/clock/fake-clock.js';
import type { Warden } from '../../src/client/warden.js';
import type { ScheduleSyncItem, ScheduleTickWrite } from '../../src/driver/schedule-params.js';
import { defineSchedule, type ScheduleDefinition, type ScheduleOptions } from '../../src/schedule/define-schedule.js';
import { scheduleSpec, toSyncItem } from '../../src/schedule/schedule-spec.js';
import { at, openPgClient, rawQuery, rawTime, tableRef } from '../conformance/helpers.js';
import { createTestDatabase, DRIVER_KINDS, makeInsert, type TestDatabase } from '../support/test-databases.js';
import { HOUR, iso, jobsOf, makeWarden, type MakeWardenOptions, MINUTE, noopJob, openOracle, type Oracle, T0, ticksOf } from './helpers.js';

const SECOND = 1_000;

/** A schedule named `digest` firing every minute, with `overrides`. */
function digest(overrides: Partial<ScheduleOptions<unknown>> = {}) {
  return defineSchedule({ name: 'digest', cron: '* * * * *', job: noopJob, overlap: 'allow', ...overrides });
}

/**
 * The older release's sync of one schedule: its upsert (before 36f0195) as it stood, for a single row. Any change of
 * hash (or a removed row) replaces hash, spec and `next_run_at`; no other column is written.
 */
async function olderReleaseSync(tdb: TestDatabase, def: ScheduleDefinition, now: Date): Promise<void> {
  const params = [def.name, def.definitionHash, JSON.stringify(scheduleSpec(def)), rawTime(tdb, def.nextTick(now)!), rawTime(tdb, now), rawTime(tdb, now)];
  if (tdb.kind === 'sqlite') {
    await rawQuery(tdb, `INSERT INTO schedules (name, definition_hash, spec, paused, next_run_at, last_tick_at, removed_at, created_at, updated_at)
VALUES (?, ?, ?, 0, ?, NULL, NULL, ?, ?)
ON CONFLICT (name) DO UPDATE
SET definition_hash = excluded.definition_hash, spec = excluded.spec, next_run_at = excluded.next_run_at, removed_at = NULL, updated_at = excluded.updated_at
WHERE schedules.definition_hash <> excluded.definition_hash OR schedules.removed_at IS NOT NULL`, params);
    return;
  }
  await rawQuery(tdb, `INSERT INTO ${tableRef(tdb, 'schedules')} AS sc (name, definition_hash, spec, next_run_at, created_at, updated_at)
VALUES (?, ?, ?::jsonb, ?, ?, ?)
ON CONFLICT (name) DO UPDATE
SET definition_hash = excluded.definition_hash, spec = excluded.spec, next_run_at = excluded.next_run_at,
    removed_at = NULL, updated_at = excluded.updated_at
WHERE sc.definition_hash <> excluded.definition_hash OR sc.removed_at IS NOT NULL`, params);
}

describe.each(DRIVER_KINDS)('sync and timing (%s)', (kind) => {
  let tdb: TestDatabase;
  let oracle: Oracle;
  let wardens: Warden[];

  beforeEach(async () => {
    tdb = await createTestDatabase(kind);
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

  /** The priorities of the schedule's jobs, by id. */
  async function priorities(schedule: string): Promise<number[]> {
    const rows = await oracle.all<{ priority: unknown }>('SELECT priority FROM {jobs} WHERE schedule_name = $1 ORDER BY id', [schedule]);
    return rows.map((r) => Number(r.priority));
  }

  it('exactly the cron pattern and its time zone, or the interval, decide: any other change keeps a due tick', async () => {
    const variants: [name: string, stored: Partial<ScheduleOptions<unknown>>, synced: Partial<ScheduleOptions<unknown>>, kept: boolean][] = [
      ['priority', {}, { priority: 9 }, true],
      ['queue', {}, { queue: 'other' }, true],
      ['overlap', {}, { overlap: 'skip' }, true],
      ['misfire', {}, { misfire: { policy: 'skip', grace: '5s' } }, true],
      ['expect', {}, { expect: { within: '5m' } }, true],
      ['job', {}, { job: { ...noopJob, name: 'other-job' } }, true],
      // Left out, the time zone is stored as "UTC", as when named: the same timing (the priority is what changed).
      ['utc-named', {}, { timezone: 'UTC', priority: 9 }, true],
      ['pattern', {}, { cron: '*/2 * * * *' }, false],
      ['timezone', {}, { timezone: 'Asia/Kolkata' }, false],
      ['to-every', {}, { cron: undefined, every: '1m' }, false],
      // `every` ticks are multiples of the interval since the epoch: no time zone reads them.
      ['every-timezone', { cron: undefined, every: '5m' }, { cron: undefined, every: '5m', timezone: 'Asia/Kolkata' }, true],
      ['every-interval', { cron: undefined, every: '5m' }, { cron: undefined, every: '10m' }, false],
    ];
    const sync = (defs: ReturnType<typeof digest>[], now: Date) => tdb.driver.scheduleSync({ schedules: defs.map((d) => toSyncItem(d, now)), removeMissing: false, now });
    await sync(variants.map(([name, stored]) => digest({ name, ...stored })), new Date(T0 + 10 * SECOND));
    const before = new Map((await tdb.driver.scheduleList()).map((r) => [r.name, r.nextRunAt?.getTime()]));
    const changed = variants.map(([name, stored, synced]) => digest({ name, ...stored, ...synced }));
    // Each variant's definition changed: only its timing may reset its next tick.
    for (const [i, def] of changed.entries()) expect(def.definitionHash, variants[i]![0]).not.toBe(digest({ name: def.name, ...variants[i]![1] }).definitionHash);
    const now = new Date(T0 + 20 * MINUTE + 10 * SECOND);
    await sync(changed, now);
    const after = new Map((await tdb.driver.scheduleList()).map((r) => [r.name, r.nextRunAt?.getTime()]));
    expect(variants.map(([name]) => [name, after.get(name)])).toEqual(
      changed.map((def, i) => [def.name, variants[i]![3] ? before.get(def.name) : def.nextTick(now)!.getTime()]),
    );
  });

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

  describe('rows an older release wrote', () => {
    it('new release (hourly), then an older-release instance (daily at 12:00), then a new-release instance: the next run is the hourly tick, and it fires', async () => {
      const older = digest({ cron: '0 12 * * *' });
      const newer = digest({ cron: '0 * * * *' });
      // The new release's first instance starts.
      const a = open({ schedules: [newer], clock: new FakeClock(T0 + 10 * SECOND) });
      await a.runSchedulerOnce();
      expect((await a.schedules.list())[0]?.nextRunAt?.getTime()).toBe(T0 + HOUR);
      // An instance of the older release restarts during the deploy (or the deploy is rolled back): it syncs its own.
      await olderReleaseSync(tdb, older, new Date(T0 + 20 * SECOND));
      // Another new-release instance starts (or the deploy rolls forward again).
      const c = open({ schedules: [newer], clock: new FakeClock(T0 + 30 * SECOND) });
      await c.runSchedulerOnce();
      const nextRunAt = (await c.schedules.list())[0]?.nextRunAt?.toISOString();
      // At 01:00:10 the hourly schedule's 01:00 tick is due.
      const d = open({ schedules: [newer], clock: new FakeClock(T0 + HOUR + 10 * SECOND) });
      const firedAt0100 = await d.runSchedulerOnce();
      expect({ nextRunAt, firedAt0100 }).toEqual({ nextRunAt: new Date(T0 + HOUR).toISOString(), firedAt0100: 1 });
    });

    it('a schedule the older release stored keeps its due tick through the first deploy that changes its priority only', async () => {
      await olderReleaseSync(tdb, digest(), new Date(T0 - 50 * SECOND));
      // Every scheduler down past the T0 tick; the upgrading deploy, which also raises the priority, starts 10 s after.
      const b = open({ schedules: [digest({ priority: 5 })], clock: new FakeClock(T0 + 10 * SECOND) });
      expect(await b.runSchedulerOnce()).toBe(1);
      expect(iso((await jobsOf(oracle, 'digest')).map((j) => j.tickAt!))).toEqual(iso([T0]));
      expect(await priorities('digest')).toEqual([5]);
      expect((await b.schedules.list())[0]?.nextRunAt?.getTime()).toBe(T0 + MINUTE);
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

  /** `a` every minute, due at +1m: hash `h1` as stored at first, `h2` the priority-only change. */
  const item = (definitionHash: string, firstRunAt: Date): ScheduleSyncItem => ({
    name: 'a', definitionHash, specJson: JSON.stringify({ cron: null, everyMs: MINUTE, timezone: 'UTC', job: 'noop-job', priority: definitionHash === 'h1' ? 0 : 7 }), firstRunAt,
  });
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
