/**
 * `warden.rescue({ maxLost })` applies the `maxLost` it is given to that pass, whether or not a worker is started
 * (the started worker's rescuer used to run it with its own), and checks it either way.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Warden } from '../../src/client/warden.js';
import { InvalidOptionError } from '../../src/errors.js';
import { defineJob } from '../../src/job/define-job.js';
import { createTestDatabase, DRIVER_KINDS, type TestDatabase } from '../support/test-databases.js';
import { makeWarden, record, TestClock } from './helpers.js';

const job = defineJob({ name: 'work', handler: async () => {} });

describe.each(DRIVER_KINDS)('rescue({ maxLost }) (%s)', (kind) => {
  let tdb: TestDatabase;
  let clock: TestClock;
  let warden: Warden;
  beforeEach(async () => {
    tdb = await createTestDatabase(kind);
    clock = new TestClock();
    warden = makeWarden(tdb, { clock, jobs: [job] });
    await warden.migrate();
  });
  afterEach(async () => {
    await warden.close();
    await tdb.cleanup();
  });

  /** A job claimed by a worker elsewhere with a 1 s lease, which then died: its lease has expired. */
  async function lostJob(): Promise<string> {
    const { id } = await warden.enqueue(job, {});
    await tdb.driver.jobClaim({ queues: ['default'], limit: 1, workerId: 'ghost', leaseMs: 1_000, now: clock.sqlNow() });
    await clock.advance(2_000);
    return id;
  }

  it.each([
    ['started on another queue', true],
    ['not started', false],
  ])('dead-letters a job lost once with maxLost 1 (worker %s)', async (_, started) => {
    // The started worker's own rescuer ran its first pass at start (nothing was lost then) and waits an hour.
    if (started) await warden.start({ queues: ['other'], rescueInterval: '1h' });
    const id = await lostJob();
    const rescued = record(warden, 'job:rescued');
    await warden.rescue({ maxLost: 1 });
    expect(rescued.map((e) => [e.job.id, e.nextState])).toEqual([[id, 'dead']]);
  });

  it('uses the started worker’s maxLost when none is given', async () => {
    await warden.start({ queues: ['other'], rescueInterval: '1h', maxLost: 1 });
    const id = await lostJob();
    const rescued = record(warden, 'job:rescued');
    await warden.rescue();
    expect(rescued.map((e) => [e.job.id, e.nextState])).toEqual([[id, 'dead']]);
  });

  it('refuses a bad maxLost whether or not a worker is started', async () => {
    await expect(warden.rescue({ maxLost: -5 })).rejects.toBeInstanceOf(InvalidOptionError);
    await warden.start({ queues: ['other'], rescueInterval: '1h' });
    await expect(warden.rescue({ maxLost: -5 })).rejects.toBeInstanceOf(InvalidOptionError);
  });
});
