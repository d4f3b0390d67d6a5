/**
 * A claim whose reply is lost after it committed (PostgreSQL, through `test/support/pg-relay.ts`): its jobs are
 * leased to the worker, which never saw them. The worker must hand them back after the failed claim and run them
 * at once, each with one attempt, instead of leaving them until their leases expire and are rescued as lost. And
 * (both databases) a job whose ending was given up on is not handed back as if never received: it ran.
 * @module
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createWarden } from '../../src/client/warden.js';
import { defineJob } from '../../src/job/define-job.js';
import { RelayedDatabase } from '../support/pg-relay.js';
import { overrideDriver } from '../support/override-driver.js';
import { createTestDatabase, DRIVER_KINDS, type TestDatabase } from '../support/test-databases.js';
import { deferred, silent, within } from './helpers.js';

const JOBS = 20;

describe.skipIf(!DRIVER_KINDS.includes('postgres'))('claim with its reply lost (postgres)', () => {
  const db = new RelayedDatabase();
  beforeEach(() => db.open());
  afterEach(() => db.close());

  it('hands the unreceived jobs back and runs each once, long before their leases expire', async () => {
    const ran: number[] = [];
    const job = defineJob({ name: 'work', handler: (payload: { i: number }) => void ran.push(payload.i) });
    // A lease of an hour and rescue once an hour: only the hand-back can bring the jobs back within this test.
    const warden = db.track(createWarden({
      database: await db.driver(), logger: silent, jobs: [job],
      worker: { concurrency: 5, lease: '1h', heartbeat: '20m', rescueInterval: '1h', pollInterval: '50ms' },
    }));
    const errors: string[] = [];
    warden.on('error', (e) => errors.push(e.context));
    const ids = (await warden.enqueueMany(Array.from({ length: JOBS }, (_, i) => ({ job, payload: { i } })))).map((r) => r.id);
    // `warden_0` is the claim's prepared statement: in its Parse the first time on a connection, in every Bind.
    db.relay.arm('warden_0');
    const allDone = new Promise<void>((resolve) => {
      let completed = 0;
      warden.on('job:completed', () => ++completed === JOBS && resolve());
    });
    await warden.start();
    await within(allDone, `all ${JOBS} jobs completed`);
    expect(db.relay.cut).toBe(1);
    expect(errors).toContain('claiming jobs');
    expect(ran.sort((a, b) => a - b)).toEqual(Array.from({ length: JOBS }, (_, i) => i));
    expect(warden.workerCounters?.releasedUnreceived).toBeGreaterThan(0);
    // Handed back with the attempt taken back: one attempt each, none lost.
    for (const id of ids) {
      const row = await db.tdb.driver.jobGet({ id });
      expect([row?.state, row?.attempt, row?.lostCount]).toEqual(['completed', 1, 0]);
    }
  });
});

describe.each(DRIVER_KINDS)('after a failed claim (%s)', (kind) => {
  let tdb: TestDatabase;
  afterEach(async () => {
    await tdb?.cleanup();
  });

  it('does not hand back a job it ran whose ending was given up on: that lease is left for the rescue', async () => {
    tdb = await createTestDatabase(kind);
    const refused = deferred<string>();
    const job = defineJob({ name: 'work', handler: () => {} });
    let failClaim = false;
    const real = tdb.newDriver();
    // The database refuses the one ending for good (a non-transient SQLSTATE), so the completer gives it up; then a
    // claim fails. The worker's hand-back must skip that job: it ran.
    const driver = overrideDriver(real, {
      jobFinishMany: () => async () => {
        throw Object.assign(new Error('new row violates check constraint'), { code: '23514' });
      },
      jobClaim: (claim) => async (params) => {
        if (failClaim) {
          failClaim = false;
          throw Object.assign(new Error('Connection terminated unexpectedly'), {});
        }
        return claim(params);
      },
    });
    const warden = createWarden({ database: driver, logger: silent, jobs: [job], worker: { concurrency: 1, lease: '1h', heartbeat: '20m', rescueInterval: '1h', pollInterval: '20ms' } });
    try {
      warden.on('error', (e) => {
        if (e.context.startsWith('finishing job')) refused.resolve(e.context);
      });
      const { id } = await warden.enqueue(job, {});
      await warden.start();
      await within(refused.promise, 'the ending to be given up on');
      // The next claims: one fails, the hand-back runs before the one after it.
      failClaim = true;
      const claimFailed = warden.events.next('error', (e) => e.context === 'claiming jobs');
      await within(claimFailed, 'a failed claim');
      await warden.enqueue(job, {});
      await within(warden.events.next('worker:claimed', () => true), 'a claim after the failed one');
      expect(warden.workerCounters?.releasedUnreceived).toBe(0);
      const row = await real.jobGet({ id });
      expect([row?.state, row?.attempt]).toEqual(['running', 1]);
    } finally {
      await warden.close();
    }
  });
});
