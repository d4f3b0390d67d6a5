/**
 * A scheduler advance whose reply is lost (PostgreSQL, through `test/support/pg-relay.ts`): when the COMMIT went
 * through, the tick fired, and the next scan must still emit its `schedule:fired` and `job:enqueued` (and so write
 * its audit entries), once; when the connection was cut before the COMMIT, nothing was written, and the next scan
 * fires the tick itself, once.
 * @module
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FakeClock } from '../../src/clock/fake-clock.js';
import { createWarden } from '../../src/client/warden.js';
import { defineSchedule } from '../../src/schedule/define-schedule.js';
import { RelayedDatabase } from '../support/pg-relay.js';
import { DRIVER_KINDS } from '../support/test-databases.js';
import { MINUTE, noopJob, silent, T0 } from './helpers.js';

describe.skipIf(!DRIVER_KINDS.includes('postgres'))('scheduler advance with its reply lost (postgres)', () => {
  const db = new RelayedDatabase();
  beforeEach(() => db.open());
  afterEach(() => db.close());

  // [the client message whose reply is lost, whether the advance was committed]: the advance's COMMIT, or its tick
  // insert (the only statement naming `fired_by)`; the due scan also reads schedule_ticks), cut before the COMMIT.
  for (const [marker, committed] of [['COMMIT', true], ['fired_by)', false]] as const) {
    it(`${committed ? 'committed' : 'not committed'}: the tick fires once, with its events and audit entries once`, async () => {
      const clock = new FakeClock(T0);
      const schedule = defineSchedule({ name: 'every-minute', every: '1m', job: noopJob, overlap: 'allow' });
      const { tdb, relay } = db;
      const warden = db.track(createWarden({ database: await db.driver(), logger: silent, jobs: [noopJob], schedules: [schedule], clock, audit: true }));
      const fired: string[] = [];
      const enqueued: string[] = [];
      warden.on('schedule:fired', (e) => fired.push(`${e.tickAt.toISOString()} ${e.jobId}`));
      warden.on('job:enqueued', (e) => enqueued.push(e.job.id));
      expect(await warden.runSchedulerOnce()).toBe(0); // the sync; nothing due yet
      await warden.audit.flush();
      await clock.advance(MINUTE);

      relay.arm(marker);
      await expect(warden.runSchedulerOnce()).rejects.toThrow();
      expect(relay.cut).toBe(1);
      expect(fired).toEqual([]);
      // The next scan settles it: the ticks it wrote get their events; or, not committed, the tick is due again.
      expect(await warden.runSchedulerOnce()).toBe(committed ? 0 : 1);
      expect(await warden.runSchedulerOnce()).toBe(0);

      const ticks = await tdb.driver.scheduleTickList({ name: 'every-minute' });
      expect(ticks.map((t) => [t.tickAt.getTime(), t.outcome])).toEqual([[T0 + MINUTE, 'fired']]);
      const jobId = ticks[0]!.jobId!;
      expect(fired).toEqual([`${new Date(T0 + MINUTE).toISOString()} ${jobId}`]);
      expect(enqueued).toEqual([jobId]);
      await warden.audit.flush();
      const entries: string[] = [];
      for await (const e of warden.audit.entries()) if (e.action === 'schedule.fired' || e.subjectId === jobId) entries.push(e.action);
      expect(entries.sort()).toEqual(['job.created', 'schedule.fired']);
    });
  }
});
