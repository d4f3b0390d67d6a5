/**
 * `warden.schedules.ticks(name, { limit })` refuses a limit outside 1..1,000 (a rejected promise, `InvalidOptionError`)
 * instead of reading it as another number: `Infinity` used to list 100 ticks on PostgreSQL and 1,000 on SQLite, `NaN`
 * 100 on both. Both databases list the same ticks for every accepted limit.
 * @module
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Warden } from '../../src/client/warden.js';
import { InvalidOptionError } from '../../src/errors.js';
import { defineSchedule } from '../../src/schedule/define-schedule.js';
import { TestClock } from '../runtime/helpers.js';
import { createTestDatabase, DRIVER_KINDS, type TestDatabase } from '../support/test-databases.js';
import { makeWarden, MINUTE, noopJob, T0 } from './helpers.js';

describe.each(DRIVER_KINDS)('warden.schedules.ticks limit (%s)', (kind) => {
  let tdb: TestDatabase;
  let warden: Warden | undefined;
  beforeEach(async () => { tdb = await createTestDatabase(kind); });
  afterEach(async () => {
    await warden?.close();
    warden = undefined;
    await tdb.cleanup();
  });

  it('lists at most limit ticks, 100 by default; refuses anything but a whole number from 1 to 1000', async () => {
    const clock = new TestClock(T0);
    // Every second, 2 minutes late, misfire skip: one advance records the ticks past their 1s grace as missed.
    const schedule = defineSchedule({ name: 'rescreen', every: '1s', job: noopJob, overlap: 'allow', misfire: { policy: 'skip', grace: '1s' } });
    const w = (warden = makeWarden(tdb, { schedules: [schedule], clock }));
    await w.runSchedulerOnce();
    await clock.advance(2 * MINUTE);
    await w.runSchedulerOnce();
    const all = await w.schedules.ticks('rescreen', { limit: 1000 });
    expect(all.length).toBeGreaterThan(100);
    expect(await w.schedules.ticks('rescreen')).toEqual(all.slice(0, 100));
    expect(await w.schedules.ticks('rescreen', { limit: 1 })).toEqual(all.slice(0, 1));

    for (const limit of [Infinity, -Infinity, Number.NaN, 0, -1, 1001, 2.5, '5' as unknown as number]) {
      // The promise rejects: never a throw where it is called.
      const ticks = w.schedules.ticks('rescreen', { limit });
      await expect(ticks, String(limit)).rejects.toThrow(InvalidOptionError);
      await expect(ticks, String(limit)).rejects.toThrow(/^Expected limit to be a whole number from 1 to 1000, got /);
    }
  });
});
