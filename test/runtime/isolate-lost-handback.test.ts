/**
 * While a job runs alone (`isolateLost`) no claim is made, so the heartbeat hands back jobs leased to the worker and
 * held nowhere (a failed hand-back of the claim's other lost jobs). That hand-back reads what is leased to the
 * worker: a claim committing meanwhile, its reply not yet read, would have its jobs handed back from under it (and
 * run under a lease no longer held). So when the job that ran alone ends, the claim loop waits for a hand-back still
 * in flight before it claims. Both drivers, fake clock; the heartbeat's read is held until the test lets it go.
 * @module
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createWarden, type Warden } from '../../src/client/warden.js';
import { createDriver } from '../../src/driver/create-driver.js';
import type { Driver } from '../../src/driver/driver.js';
import { defineJob } from '../../src/job/define-job.js';
import { overrideDriver } from '../support/override-driver.js';
import { createTestDatabase, DRIVER_KINDS, type TestDatabase } from '../support/test-databases.js';
import { deferred, type Deferred, makeWarden, silent, T0, TestClock, within } from './helpers.js';

const LEASE_MS = 3_000;
const HEARTBEAT_MS = 1_000;

describe.each(DRIVER_KINDS)('the heartbeat hand-back while a job runs alone (%s)', (kind) => {
  let tdb: TestDatabase;
  let clock: TestClock;
  let driver: Driver;
  let warden: Warden;
  let other: Warden;
  let gates: Map<string, Deferred>;
  let claims: number;
  let releases: number;
  let looks: number;
  let lookStarted: Deferred;
  let lookMayRead: Deferred;
  const gate = (tag: string): Deferred => {
    if (!gates.has(tag)) gates.set(tag, deferred());
    return gates.get(tag)!;
  };
  const job = defineJob<{ tag: string }>({ name: 'tracked', handler: ({ tag }) => gate(tag).promise });

  beforeEach(async () => {
    gates = new Map();
    claims = 0;
    releases = 0;
    lookStarted = deferred();
    lookMayRead = deferred();
    tdb = await createTestDatabase(kind);
    clock = new TestClock(T0);
    looks = 0;
    driver = overrideDriver(createDriver({ url: tdb.url, schema: tdb.schema, handoff: false }), {
      // The hand-back of the claim's second lost job fails once: it stays leased to the worker, held nowhere.
      jobRelease: (release) => async (params) => {
        if (++releases === 1) throw new Error('Connection terminated unexpectedly (test)');
        return release(params);
      },
      // The heartbeat's look for such jobs (the first) reads only when the test says so.
      jobLeasedTo: (leasedTo) => async (params) => {
        if (++looks === 1) {
          lookStarted.resolve();
          await lookMayRead.promise;
        }
        return leasedTo(params);
      },
      jobClaim: (claim) => (params) => {
        claims++;
        return claim(params);
      },
    });
    warden = createWarden({ database: driver, logger: silent, clock, jobs: [job] });
    other = makeWarden(tdb, { jobs: [job], clock });
  });

  afterEach(async () => {
    for (const g of gates.values()) g.resolve();
    lookMayRead.resolve();
    await warden.close();
    await other.close();
    await driver.close();
    await tdb.cleanup();
  });

  it('no claim is made while that hand-back is in flight; the jobs claimed after it run under their leases', async () => {
    const [x, y] = (await other.enqueueMany(['x', 'y'].map((tag) => ({ job, payload: { tag } })))).map((r) => r.id);
    await tdb.driver.jobClaim({ queues: ['default'], limit: 2, workerId: 'dead-worker', leaseMs: LEASE_MS, now: clock.sqlNow() });
    await clock.advance(LEASE_MS + 1);
    await other.rescue({ maxLost: 2 });
    const xStarted = warden.events.next('job:started', (e) => e.job.id === x);
    await warden.start({ lease: LEASE_MS, heartbeat: HEARTBEAT_MS, rescueInterval: '1h', pollInterval: '1h', concurrency: 2, maxLost: 2 });
    await within(xStarted, 'x, held, to start alone');
    const [n] = (await other.enqueueMany([{ job, payload: { tag: 'n' } }])).map((r) => r.id);
    // The heartbeat looks for y (its hand-back failed) and is held at its read.
    await clock.advance(HEARTBEAT_MS);
    await within(lookStarted.promise, 'the heartbeat to look for unreceived jobs');
    const claimsBefore = claims;
    const xDone = warden.events.next('job:completed', (e) => e.job.id === x);
    gate('x').resolve();
    await within(xDone, 'x to complete');
    // Its job done, the worker would look for unreceived jobs itself and claim at once (two or three round trips):
    // five round trips later it has done neither.
    for (let i = 0; i < 5; i++) await other.jobs.get(n!);
    expect({ looks, claims }).toEqual({ looks: 1, claims: claimsBefore });
    const nStarted = warden.events.next('job:started', (e) => e.job.id === n);
    lookMayRead.resolve();
    const started = await within(nStarted, 'n to start once the hand-back is done');
    expect(await other.jobs.get(n!)).toMatchObject({ state: 'running', leaseToken: started.leaseToken });
    expect((await other.jobs.get(y!))!.state).not.toBe('dead');
  });
});
