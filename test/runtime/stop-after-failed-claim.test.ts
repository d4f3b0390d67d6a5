/**
 * A stop that begins during the back-off after a failed claim. The claim may have committed with its reply lost: its
 * jobs are leased to the worker, unseen, and the worker hands them back before its next claim, which a stopping
 * worker never makes. Its shutdown must hand them back itself, with hand-off on or off; it used to do so only with
 * hand-off on, leaving the jobs `running` until their leases expired and were rescued as lost.
 * @module
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createWarden } from '../../src/client/warden.js';
import { createDriver } from '../../src/driver/create-driver.js';
import { defineJob } from '../../src/job/define-job.js';
import { overrideDriver } from '../support/override-driver.js';
import { RelayedDatabase } from '../support/pg-relay.js';
import { createTestDatabase, DRIVER_KINDS, type TestDatabase } from '../support/test-databases.js';
import { silent, within } from './helpers.js';

/** An hour of lease, rescue and poll: only the shutdown's hand-back can return the job within a test. */
const WORKER = { concurrency: 2, lease: '1h', heartbeat: '20m', rescueInterval: '1h', pollInterval: '1h' } as const;

describe.skipIf(!DRIVER_KINDS.includes('postgres'))('stop after a claim whose reply was lost (postgres)', () => {
  const db = new RelayedDatabase();
  beforeEach(() => db.open());
  afterEach(() => db.close());

  it.each([false, true])('hands the claimed jobs back at shutdown (handoff %s)', async (handoff) => {
    const job = defineJob({ name: 'work', handler: () => {} });
    const driver = db.track(createDriver({ url: await db.relay.listen(), schema: db.tdb.schema, handoff }));
    const warden = db.track(createWarden({ database: driver, logger: silent, jobs: [job], worker: WORKER }));
    const { id } = await warden.enqueue(job, {});
    // `warden_0`: the claim's prepared statement. Its reply is lost after it committed.
    db.relay.arm('warden_0');
    const claimFailed = warden.events.next('error', (e) => e.context === 'claiming jobs');
    await warden.start();
    await within(claimFailed, 'the claim whose reply was lost');
    await warden.stop();
    expect(db.relay.cut).toBe(1);
    expect(await db.tdb.driver.jobGet({ id })).toMatchObject({ state: 'queued', attempt: 0, leaseWorker: null });
    expect(warden.workerCounters?.releasedUnreceived).toBe(1);
  });
});

describe.each(DRIVER_KINDS)('stop after a claim that committed and then failed (%s)', (kind) => {
  let tdb: TestDatabase;
  beforeEach(async () => {
    tdb = await createTestDatabase(kind);
  });
  afterEach(async () => {
    await tdb.cleanup();
  });

  it('hands the claimed jobs back at shutdown, hand-off off', async () => {
    const job = defineJob({ name: 'work', handler: () => {} });
    let claims = 0;
    const driver = overrideDriver(createDriver({ url: tdb.url, schema: tdb.schema, handoff: false }), {
      // The first claim commits, then its caller is told it failed: what a reply lost after the commit looks like.
      jobClaim: (claim) => async (params) => {
        const rows = await claim(params);
        if (++claims === 1) throw Object.assign(new Error('Connection terminated unexpectedly (test)'), { claimed: rows.length });
        return rows;
      },
    });
    const warden = createWarden({ database: driver, logger: silent, jobs: [job], worker: WORKER });
    try {
      const { id } = await warden.enqueue(job, {});
      const claimFailed = warden.events.next('error', (e) => e.context === 'claiming jobs');
      await warden.start();
      expect(((await within(claimFailed, 'the failed claim')).error as { claimed: number }).claimed).toBe(1);
      await warden.stop();
      expect(claims).toBe(1);
      expect(await tdb.driver.jobGet({ id })).toMatchObject({ state: 'queued', attempt: 0, leaseWorker: null });
      expect(warden.workerCounters?.releasedUnreceived).toBe(1);
    } finally {
      await warden.close();
      await driver.close();
    }
  });
});
