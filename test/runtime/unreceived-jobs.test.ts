/**
 * UnreceivedJobs: the hand-back of jobs leased to a worker that it never received. What the worker holds is asked
 * once the leases are read, so a job received while that read was in flight (a hand-off) is not handed back; and a
 * new reason to look, given while a release runs, is not cleared by it.
 * Real databases, both kinds; the driver's read is watched, not replaced.
 * @module
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/clock/clock.js';
import { UnreceivedJobs } from '../../src/runtime/unreceived-jobs.js';
import { claim, getJob, insertJobs } from '../conformance/helpers.js';
import { createTestDatabase, DRIVER_KINDS, type TestDatabase } from '../support/test-databases.js';

describe.each(DRIVER_KINDS)('UnreceivedJobs (%s)', (kind) => {
  let tdb: TestDatabase;
  beforeEach(async () => {
    tdb = await createTestDatabase(kind);
  });
  afterEach(async () => {
    await tdb.cleanup();
  });

  it('asks what the worker holds after reading its leases: a job received meanwhile stays leased', async () => {
    await insertJobs(tdb.driver, [{ name: 'a' }, { name: 'b' }]);
    const [received, lost] = await claim(tdb.driver, { limit: 2, workerId: 'w' });
    const driver = tdb.driver;
    const read = driver.jobLeasedTo.bind(driver);
    let readDone = false;
    driver.jobLeasedTo = async (params) => {
      const leases = await read(params);
      readDone = true;
      return leases;
    };
    const unreceived = new UnreceivedJobs({ driver, clock: systemClock, workerId: 'w' });
    unreceived.mark();
    // `received` arrives while the read is in flight: held only from then on.
    const released = await unreceived.release(() => new Set(readDone ? [received!.id] : []));
    expect(released).toBe(1);
    expect(unreceived.possible).toBe(false);
    expect(await getJob(tdb.driver, received!.id)).toMatchObject({ state: 'running', leaseWorker: 'w', attempt: 1 });
    expect(await getJob(tdb.driver, lost!.id)).toMatchObject({ state: 'queued', leaseWorker: null, attempt: 0 });
  });

  it('stays possible when something says so again while it releases, and looks again the next time', async () => {
    const driver = tdb.driver;
    const read = driver.jobLeasedTo.bind(driver);
    const unreceived = new UnreceivedJobs({ driver, clock: systemClock, workerId: 'w' });
    let reads = 0;
    driver.jobLeasedTo = async (params) => {
      const leases = await read(params);
      // A hand-off whose read failed, reported while this release was under way.
      if (++reads === 1) unreceived.mark();
      return leases;
    };
    unreceived.mark();
    expect(await unreceived.release(() => new Set())).toBe(0);
    expect(unreceived.possible).toBe(true);
    expect(await unreceived.release(() => new Set())).toBe(0);
    expect(unreceived.possible).toBe(false);
    expect(reads).toBe(2);
  });
});
