/**
 * Worker ids: `<hostname>/<pid>/<random suffix>`. The suffix used to come from `createWarden({ random })`, which
 * tests (and whoever wants reproducible jitter) fix or seed: two Wardens of one process then had the same worker id,
 * and the hand-back of unreceived jobs of one (`jobLeasedTo(workerId)`) handed back the other's running job, which
 * then ran a second time while its first run went on. Real databases, both kinds.
 * @module
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createWarden, type Warden } from '../../src/client/warden.js';
import { defineJob } from '../../src/job/define-job.js';
import { overrideDriver } from '../support/override-driver.js';
import { createTestDatabase, DRIVER_KINDS, type TestDatabase } from '../support/test-databases.js';
import { deferred, record, silent, within } from './helpers.js';

describe.each(DRIVER_KINDS)('worker ids of Wardens given the same fixed random (%s)', (kind) => {
  let tdb: TestDatabase;
  const closers: { close(): Promise<void> }[] = [];
  beforeEach(async () => {
    tdb = await createTestDatabase(kind);
  });
  afterEach(async () => {
    for (const c of closers.splice(0).reverse()) await c.close();
    await tdb.cleanup();
  });

  it("differ, so a hand-back of unreceived jobs never takes another Warden's running job", async () => {
    const gate = deferred();
    const fences: number[] = [];
    const job = defineJob({ name: 'work', handler: async (_: object, ctx) => {
      fences.push(ctx.fence);
      await gate.promise;
    } });
    const options = { logger: silent, jobs: [job], random: () => 0.5, worker: { concurrency: 1, lease: '1h', heartbeat: '20m', rescueInterval: '1h', pollInterval: '1h' } as const };
    const b: Warden = createWarden({ database: tdb.newDriver(), ...options });
    closers.push({ close: async () => {
      gate.resolve();
      await b.close();
    } });
    const bStarted = record(b, 'worker:started');
    const running = b.events.next('job:started');
    await b.start();
    const { id } = await b.enqueue(job, {});
    await within(running, "B's job running");

    // A's first claim fails (its reply lost, say), so before its next claim it hands back what is leased to its
    // worker id and it does not hold.
    let claims = 0;
    const claimedAgain = deferred();
    const a: Warden = createWarden({
      ...options,
      database: overrideDriver(tdb.newDriver(), {
        jobClaim: (claim) => async (params) => {
          if (++claims === 1) throw new Error('claim failed (test)');
          claimedAgain.resolve();
          return claim(params);
        },
      }),
    });
    closers.push(a);
    const aStarted = record(a, 'worker:started');
    await a.start();
    await within(claimedAgain.promise, "A's claim after the hand-back");
    expect(aStarted[0]!.workerId).not.toBe(bStarted[0]!.workerId);
    expect(a.workerCounters?.releasedUnreceived).toBe(0);
    expect(await tdb.driver.jobGet({ id })).toMatchObject({ state: 'running', leaseToken: 1, leaseWorker: bStarted[0]!.workerId });
    expect(fences).toEqual([1]);
  });

  it('give each Warden its own alert instance id too (recorded as resolvedBy)', async () => {
    const open = { rule: 'dead-letter', severity: 'critical', summary: 'x', detailsJson: '{}', instance: 'test', since: null, now: null } as const;
    const resolvedBy: string[] = [];
    for (const key of ['a', 'b']) {
      const warden = createWarden({ database: tdb.newDriver(), logger: silent, random: () => 0.5 });
      closers.push(warden);
      await tdb.driver.alertOpen({ key, ...open });
      resolvedBy.push((await warden.alerts.resolve(key))!.resolvedBy!);
    }
    expect(resolvedBy[0]).not.toBe(resolvedBy[1]);
  });
});
