/**
 * `warden.schedules.resume` against a sync that stores another definition while it runs (a deploy), on both
 * drivers:
 * - it reads the one schedule it resumes (`scheduleGet`), never the whole list;
 * - a sync between its read and its write: the write does not apply (the stored hash is no longer the one the next
 *   tick was computed from), and resume reads again and computes the next tick from the definition now stored;
 * - a definition that changes under every read: `ScheduleChangedError` after `RESUME_ATTEMPTS`, nothing written, no
 *   event;
 * - PostgreSQL: a resume that waits for the row lock of a sync in flight re-checks the hash against what that sync
 *   committed.
 * @module
 */
import pg from 'pg';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FakeClock } from '../../src/clock/fake-clock.js';
import { createWarden, type Warden } from '../../src/client/warden.js';
import type { Driver } from '../../src/driver/driver.js';
import { ScheduleChangedError } from '../../src/errors.js';
import { defineSchedule, type ScheduleDefinition } from '../../src/schedule/define-schedule.js';
import { RESUME_ATTEMPTS } from '../../src/schedule/schedule-operations.js';
import { record } from '../runtime/helpers.js';
import { overrideDriver } from '../support/override-driver.js';
import { createTestDatabase, DRIVER_KINDS, PG_URL, type TestDatabase } from '../support/test-databases.js';
import { HOUR, makeWarden, MINUTE, noopJob, silent, T0, until } from './helpers.js';

/** The definition the schedulers run: hourly. */
const hourly = (): ScheduleDefinition => defineSchedule({ name: 'report', cron: '0 * * * *', job: noopJob });
/** The next deploy's definition of the same schedule: every 7 minutes. */
const sevenMinutely = (): ScheduleDefinition => defineSchedule({ name: 'report', every: '7m', job: noopJob });

describe.each(DRIVER_KINDS)('schedule resume against concurrent syncs (%s)', (kind) => {
  let tdb: TestDatabase;
  let wardens: Warden[];

  beforeEach(async () => {
    tdb = await createTestDatabase(kind);
    wardens = [];
  });

  afterEach(async () => {
    await Promise.allSettled(wardens.map((w) => w.close()));
    await tdb?.cleanup();
  });

  function track(warden: Warden): Warden {
    wardens.push(warden);
    return warden;
  }

  /**
   * An operator Warden (with the hourly definition) whose driver runs `afterRead` once after each read of the
   * schedule the resume makes (`scheduleGet`, or `scheduleList`), before the answer reaches the resume; and the
   * names of the driver's schedule reads.
   */
  function operator(clock: FakeClock, afterRead: (read: number) => Promise<void>): { warden: Warden; reads: string[] } {
    const reads: string[] = [];
    const watch = <R>(method: string, real: () => Promise<R>) => async (): Promise<R> => {
      const answer = await real();
      reads.push(method);
      await afterRead(reads.length);
      return answer;
    };
    const driver: Driver = overrideDriver(tdb.newDriver(), {
      scheduleGet: (real) => (params) => watch('scheduleGet', () => real(params))(),
      scheduleList: (real) => () => watch('scheduleList', () => real())(),
    });
    return { warden: track(createWarden({ database: driver, logger: silent, schedules: [hourly()], clock })), reads };
  }

  it('a sync between the read and the write: the next tick comes from the definition stored by then', async () => {
    const clock = new FakeClock(T0 + 10_000);
    const scheduler = track(makeWarden(tdb, { schedules: [hourly()], clock }));
    await scheduler.runSchedulerOnce();
    await scheduler.schedules.pause('report');
    await clock.set(T0 + 5 * MINUTE);
    const deploy = track(makeWarden(tdb, { schedules: [sevenMinutely()], clock }));
    // Right after the resume's first read (which saw the hourly definition), the next deploy syncs its own.
    const { warden, reads } = operator(clock, async (read) => {
      if (read === 1) await deploy.schedules.sync();
    });
    const actions = record(warden, 'schedule:operator-action');

    const resumed = await warden.schedules.resume('report', { actor: 'ops' });
    const seven = sevenMinutely();
    expect(resumed).toMatchObject({ paused: false, definitionHash: seven.definitionHash });
    // From the stored 7-minute definition, not the hourly one read first (that would be T0 + 1h).
    expect(resumed.nextRunAt).toEqual(seven.nextTick(new Date(T0 + 5 * MINUTE)));
    expect(resumed.nextRunAt!.getTime()).toBeLessThan(T0 + 12 * MINUTE + 1);
    // One schedule read per attempt, never the whole list; one operator action.
    expect(reads).toEqual(['scheduleGet', 'scheduleGet']);
    expect(actions).toEqual([{ schedule: 'report', action: 'resume', actor: 'ops', reason: null }]);
  });

  it('a definition replaced after every read: ScheduleChangedError after RESUME_ATTEMPTS, nothing written, no event', async () => {
    const clock = new FakeClock(T0 + 10_000);
    const scheduler = track(makeWarden(tdb, { schedules: [hourly()], clock }));
    await scheduler.runSchedulerOnce();
    await scheduler.schedules.pause('report');
    const deploys = [track(makeWarden(tdb, { schedules: [sevenMinutely()], clock })), scheduler];
    // Two deploys taking turns: after each read of the resume, the other definition is stored.
    const { warden, reads } = operator(clock, async (read) => deploys[(read - 1) % 2]!.schedules.sync());
    const actions = record(warden, 'schedule:operator-action');
    const before = await scheduler.schedules.get('report');

    const error = await warden.schedules.resume('report').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ScheduleChangedError);
    expect(error).toMatchObject({ code: 'SCHEDULE_CHANGED', scheduleName: 'report', attempts: RESUME_ATTEMPTS });
    expect((error as Error).message).toMatch(/^Expected the definition of schedule "report" \(string, length 6\) to stay as read while resuming it, got it replaced after each of 5 reads/);
    expect(reads).toHaveLength(RESUME_ATTEMPTS);
    expect(actions).toEqual([]);
    // Still paused: no resume was applied (the last sync stored the 7-minute definition again, pause kept).
    const after = await scheduler.schedules.get('report');
    expect(after).toMatchObject({ paused: true, definitionHash: sevenMinutely().definitionHash });
    expect(before?.paused).toBe(true);
  });

  // Only defined for PostgreSQL (not reported as skipped for SQLite): SQLite writers never wait on one another's rows.
  if (kind === 'postgres') it('postgres: a resume waiting on a sync in flight re-checks the hash that sync committed', async () => {
    const clock = new FakeClock(T0 + 10_000);
    const scheduler = track(makeWarden(tdb, { schedules: [hourly()], clock }));
    await scheduler.runSchedulerOnce();
    await scheduler.schedules.pause('report');
    const stored = (await tdb.driver.scheduleGet({ name: 'report' }))!;
    const client = new pg.Client({ connectionString: PG_URL });
    await client.connect();
    try {
      // A sync in flight: it has replaced the definition, and holds the row, not yet committed.
      await client.query('BEGIN');
      await client.query(`UPDATE "${tdb.schema}".schedules SET definition_hash = 'next-deploy', next_run_at = $2 WHERE name = $1`, ['report', new Date(T0 + 7 * MINUTE)]);
      const resume = tdb.driver.scheduleResume({ name: 'report', expectedHash: stored.definitionHash, nextRunAt: new Date(T0 + HOUR), now: new Date(T0 + 5 * MINUTE) });
      let settled = false;
      void resume.then(() => (settled = true), () => (settled = true));
      // The resume's UPDATE waits for the row lock.
      await until(async () => {
        // This client is inside its transaction, where pg_stat_activity is read once and kept: clear that snapshot
        // before each look, or a first look before the resume started waiting is all it ever sees.
        await client.query('SELECT pg_stat_clear_snapshot()');
        const { rows } = await client.query<{ n: string }>(
          `SELECT count(*) AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%UPDATE "${tdb.schema}".schedules%'`,
        );
        return Number(rows[0]!.n) > 0;
      }, 'the resume to wait for the sync\'s row lock');
      expect(settled).toBe(false);
      await client.query('COMMIT');
      expect(await resume).toBeNull();
      expect(await tdb.driver.scheduleGet({ name: 'report' })).toMatchObject({ paused: true, definitionHash: 'next-deploy', nextRunAt: new Date(T0 + 7 * MINUTE) });
    } finally {
      await client.query('ROLLBACK').catch(() => undefined);
      await client.end();
    }
  });
});
