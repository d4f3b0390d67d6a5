/**
 * A hand-off's notification that arrives after a hand-back of unreceived jobs read the worker's leases (PostgreSQL).
 * The notification travels on the LISTEN connection, the hand-back on the pool: the hand-back (after a failed
 * claim, here) found the job leased to the worker and not held, and handed it back. Taken from the late notification,
 * the job used to start under the lease taken back (its writes all stale) while its next claim ran it again. The
 * worker must drop that notice: the job runs once, under its new lease. The notice is held back by wrapping the
 * driver's `onJob`, as a busy listener socket would deliver it late; everything else is the real database.
 * @module
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createWarden, type Warden } from '../../src/client/warden.js';
import { createDriver } from '../../src/driver/create-driver.js';
import type { Driver } from '../../src/driver/driver.js';
import { defineJob } from '../../src/job/define-job.js';
import { rawQuery, tableRef } from '../conformance/helpers.js';
import { overrideDriver } from '../support/override-driver.js';
import { createTestDatabase, DRIVER_KINDS, type TestDatabase } from '../support/test-databases.js';
import { deferred, makeWarden, record, silent, within } from './helpers.js';

/** Resolves once `check` holds, re-read at every turn of the event loop (a state change, not a sleep). */
async function until(what: string, check: () => Promise<boolean> | boolean): Promise<void> {
  await within((async () => {
    while (!(await check())) await new Promise((resolve) => setImmediate(resolve));
  })(), what);
}

describe.skipIf(!DRIVER_KINDS.includes('postgres'))('a hand-off notice arriving after its job was handed back (postgres)', () => {
  let tdb: TestDatabase;
  const closers: { close(): Promise<void> }[] = [];
  beforeEach(async () => {
    tdb = await createTestDatabase('postgres');
  });
  afterEach(async () => {
    for (const c of closers.splice(0).reverse()) await c.close();
    await tdb.cleanup();
  });

  it('is dropped: the job runs once, claimed again under a new lease', async () => {
    const fences: { id: string; fence: number }[] = [];
    const job = defineJob({ name: 'work', handler: (_: { i: number }, ctx) => void fences.push({ id: ctx.job.id, fence: ctx.fence }) });
    let holdNotices = false;
    const held = deferred<() => void>();
    let failNextClaim = false;
    const released = deferred<string[]>();
    const real = createDriver({ url: tdb.url, schema: tdb.schema, handoff: true });
    closers.push(real);
    const driver: Driver = overrideDriver(real, {
      listen: (listen) => (params) => listen!({
        ...params,
        ...(params.handoff ? {
          handoff: {
            ...params.handoff,
            onJob: (row, slotsLeft) => {
              if (holdNotices) held.resolve(() => params.handoff!.onJob(row, slotsLeft));
              else params.handoff!.onJob(row, slotsLeft);
            },
          },
        } : {}),
      }),
      // One claim fails (its reply lost, say): before the next, the worker hands back the jobs leased to it that it
      // does not hold.
      jobClaim: (claim) => async (params) => {
        if (failNextClaim) {
          failNextClaim = false;
          throw new Error('claim failed (test)');
        }
        return claim(params);
      },
      jobRelease: (release) => async (params) => {
        const result = await release(params);
        released.resolve(result.applied);
        return result;
      },
    });
    const warden: Warden = createWarden({
      database: driver, logger: silent, jobs: [job],
      worker: { concurrency: 2, lease: '1h', heartbeat: '20m', rescueInterval: '1h', pollInterval: '200ms' },
    });
    closers.push(warden);
    const producer = makeWarden(tdb, { jobs: [job] });
    closers.push(producer);
    const stale = record(warden, 'job:stale-write-rejected');
    const workerStarted = record(warden, 'worker:started');
    await warden.start();
    const workerId = workerStarted[0]!.workerId;
    await until('the worker to register', async () =>
      (await rawQuery(tdb, `SELECT 1 FROM ${tableRef(tdb, 'handoff_waiters')} WHERE worker_id = ? AND slots = 2`, [workerId])).length === 1);

    holdNotices = true;
    const enqueued = record(producer, 'job:enqueued');
    const { id } = await producer.enqueue(job, { i: 1 });
    expect(enqueued[0]!.handedTo).toBe(workerId);
    const deliver = await within(held.promise, 'the hand-off notice (held back)');
    failNextClaim = true;
    expect(await within(released.promise, 'the hand-back of unreceived jobs')).toEqual([id]);
    const done = warden.events.next('job:completed', (e) => e.job.id === id);
    // The notice arrives now: dropped at once, neither counted as received nor started.
    holdNotices = false;
    deliver();
    expect(warden.workerCounters).toMatchObject({ handedOff: 0, releasedUnreceived: 1 });
    await within(done, 'the job claimed again and completed');
    expect({ fences: fences.filter((r) => r.id === id).map((r) => r.fence), stale }).toEqual({ fences: [2], stale: [] });
    expect(await tdb.driver.jobGet({ id })).toMatchObject({ state: 'completed', leaseToken: 2, attempt: 1 });
  });
});
