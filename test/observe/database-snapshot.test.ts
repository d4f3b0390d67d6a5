/**
 * `DatabaseSnapshot`'s search for each schedule's last success: a read that fails is tried again at the next scrape,
 * instead of the schedule being marked searched and its gauge left out until its newest tick changes.
 * @module
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Warden } from '../../src/client/warden.js';
import { defineJob } from '../../src/job/define-job.js';
import { DatabaseSnapshot } from '../../src/observe/database-snapshot.js';
import { defineSchedule } from '../../src/schedule/define-schedule.js';
import { makeWarden, T0, TestClock } from '../runtime/helpers.js';
import { overrideDriver } from '../support/override-driver.js';
import { createTestDatabase, DRIVER_KINDS, type TestDatabase } from '../support/test-databases.js';

const HOUR = 3_600_000;

describe.each(DRIVER_KINDS)('DatabaseSnapshot last success of a schedule (%s)', (kind) => {
  let tdb: TestDatabase | undefined;
  let warden: Warden | undefined;
  afterEach(async () => {
    await warden?.close();
    warden = undefined;
    await tdb?.cleanup();
    tdb = undefined;
  });

  for (const failing of ['scheduleLastSuccess'] as const) {
    it(`is found once the database answers again after a failed ${failing}`, async () => {
      tdb = await createTestDatabase(kind);
      const clock = new TestClock(T0);
      const job = defineJob({ name: 'report', handler: () => undefined });
      warden = makeWarden(tdb, { jobs: [job], schedules: [defineSchedule({ name: 'nightly', every: '1h', job })], clock });
      // The 01:00 run completes; the 02:00 run waits: the newest tick's job is not the success, so it is read.
      await warden.runSchedulerOnce();
      await clock.set(T0 + HOUR);
      await warden.runSchedulerOnce();
      await warden.drain();
      const [done] = await warden.jobs.list({ state: 'completed' });
      await clock.set(T0 + 2 * HOUR);
      await warden.runSchedulerOnce();

      let failNext = true;
      const failOnce = <F extends (params: never) => Promise<unknown>>(real: F) => ((params: never) => {
        if (!failNext) return real(params);
        failNext = false;
        return Promise.reject(new Error('connection reset (a database blip)'));
      }) as F;
      const driver = overrideDriver(tdb.driver, { [failing]: failOnce });
      const errors: unknown[] = [];
      const snapshot = new DatabaseSnapshot({ driver, cacheMs: 0, finishedCacheMs: 0, timeoutMs: 10_000, onError: (e) => errors.push(e) });
      expect(await snapshot.get()).toBeNull();
      expect(errors).toHaveLength(1);
      expect(await snapshot.get()).not.toBeNull();
      expect([...snapshot.lastSuccessSeconds()]).toEqual([['nightly', done!.finishedAt!.getTime() / 1000]]);
    });
  }
});
