/**
 * UnreceivedJobs and the leases it hands back: remembered from the moment they are found unreceived, before the
 * release is sent, so a hand-off's notice arriving during or after that release is recognised and dropped (once);
 * and the hand-offs among them (lease token 1) counted as settled, so the worker's registration stops holding a slot
 * for them. Real databases, both kinds; the driver's release is watched, not replaced.
 * @module
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/clock/clock.js';
import { UnreceivedJobs } from '../../src/runtime/unreceived-jobs.js';
import { at, claim, insertJobs } from '../conformance/helpers.js';
import { overrideDriver } from '../support/override-driver.js';
import { createTestDatabase, DRIVER_KINDS, type TestDatabase } from '../support/test-databases.js';

describe.each(DRIVER_KINDS)('UnreceivedJobs hand-back memory (%s)', (kind) => {
  let tdb: TestDatabase;
  beforeEach(async () => {
    tdb = await createTestDatabase(kind);
  });
  afterEach(async () => {
    await tdb.cleanup();
  });

  it('knows a lease it hands back from the moment it sends the release, once; and counts first leases as settled hand-offs', async () => {
    const [a, b] = await insertJobs(tdb.driver, [{ name: 'a' }, { name: 'b' }]);
    // `a` on its first lease (as a hand-off leases a job), `b` on its second (a claim's, never a hand-off's).
    await claim(tdb.driver, { limit: 2, workerId: 'w' });
    await tdb.driver.jobRelease({ leases: [{ id: b!.id, leaseToken: 1 }], now: at(1) });
    const [bAgain] = await claim(tdb.driver, { workerId: 'w', now: at(2) });
    expect(bAgain).toMatchObject({ id: b!.id, leaseToken: 2 });
    let knownDuringRelease: boolean | null = null;
    let unreceived: UnreceivedJobs;
    const driver = overrideDriver(tdb.driver, {
      jobRelease: (release) => async (params) => {
        // A notice arriving while the release is in flight.
        knownDuringRelease = unreceived.handedBack({ id: a!.id, leaseToken: 1 });
        return release(params);
      },
    });
    unreceived = new UnreceivedJobs({ driver, clock: systemClock, workerId: 'w' });
    unreceived.mark();
    expect(await unreceived.release(() => new Set())).toBe(2);
    expect(unreceived.handoffsSettled).toBe(1);
    expect(knownDuringRelease).toBe(true);
    // Asked once: a lease is handed off once, so its notice comes at most once.
    expect(unreceived.handedBack({ id: a!.id, leaseToken: 1 })).toBe(false);
    // A lease handed back, asked after the release; and one under another token, never handed back.
    expect(unreceived.handedBack({ id: b!.id, leaseToken: 1 })).toBe(false);
    expect(unreceived.handedBack({ id: b!.id, leaseToken: 2 })).toBe(true);
  });

  it('counts nothing settled, and remembers nothing, when it finds nothing unreceived', async () => {
    await insertJobs(tdb.driver, [{ name: 'a' }]);
    const [held] = await claim(tdb.driver, { workerId: 'w' });
    const unreceived = new UnreceivedJobs({ driver: tdb.driver, clock: systemClock, workerId: 'w' });
    unreceived.mark();
    expect(await unreceived.release(() => new Set([held!.id]))).toBe(0);
    expect(unreceived.handoffsSettled).toBe(0);
    expect(unreceived.handedBack(held!)).toBe(false);
  });
});
