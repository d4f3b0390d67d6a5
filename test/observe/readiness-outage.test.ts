/**
 * A database outage under a started worker (reference scenario 8, PostgreSQL through `test/support/pg-relay.ts`,
 * whose `down()` cuts every connection and refuses new ones, as a restart does): readiness answers 503 with the
 * database unreachable while it is down and 200 once it is back; the worker keeps running (no crash, no unhandled
 * rejection), reconnects, and runs the jobs enqueued meanwhile; every job completes exactly once, none is left
 * running, and none is charged a loss (the outage is shorter than the lease). Twice in a row.
 * @module
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createWarden } from '../../src/client/warden.js';
import { defineJob } from '../../src/job/define-job.js';
import type { ReadinessResult } from '../../src/observe/readiness-check.js';
import { silent, waitFor, within } from '../runtime/helpers.js';
import { RelayedDatabase } from '../support/pg-relay.js';
import { DRIVER_KINDS } from '../support/test-databases.js';

const BATCH = 10;

describe.skipIf(!DRIVER_KINDS.includes('postgres'))('readiness across a database outage (postgres)', () => {
  const db = new RelayedDatabase();
  beforeEach(() => db.open());
  afterEach(() => db.close());

  it('is 503 while the database is down and 200 once it is back; the worker goes on and runs every job once', async () => {
    const runs = new Map<number, number>();
    const job = defineJob({ name: 'work', handler: (payload: { i: number }) => void runs.set(payload.i, (runs.get(payload.i) ?? 0) + 1) });
    const warden = db.track(createWarden({
      database: await db.driver(), logger: silent, jobs: [job],
      worker: { concurrency: 4, lease: '1h', heartbeat: '20m', rescueInterval: '1h', pollInterval: '50ms' },
    }));
    // Enqueues while the worker's database is down go straight to the server, as another instance's would.
    const producer = db.track(createWarden({ database: await db.driver({ direct: true }), logger: silent, jobs: [job] }));
    let completed = 0;
    warden.on('job:completed', () => void completed++);
    const enqueue = (from: number) => producer.enqueueMany(Array.from({ length: BATCH }, (_, k) => ({ job, payload: { i: from + k } })));
    const check = (): Promise<ReadinessResult> => warden.readiness.check();

    await warden.start();
    await enqueue(0);
    await within(waitFor(() => completed === BATCH), 'the first batch to complete');
    expect(await check()).toMatchObject({ ready: true, database: 'reachable' });

    const errors: string[] = [];
    warden.on('error', (e) => void errors.push(e.context));
    for (const round of [1, 2]) {
      const claimFailed = warden.events.next('error', (e) => e.context === 'claiming jobs');
      db.relay.down();
      const down = await check();
      expect(down).toMatchObject({ ready: false, database: 'unreachable', worker: 'running' });
      expect(down.reason).toMatch(/^database unreachable: /);
      await enqueue(round * BATCH);
      // Down until the worker's claims fail too (it polls every 50 ms); readiness still not ready then.
      await within(claimFailed, 'a claim to fail while the database is down');
      expect((await check()).ready).toBe(false);
      db.relay.up();
      await within(waitFor(async () => (await check()).ready), 'readiness to come back once the database is back');
      await within(waitFor(() => completed === (round + 1) * BATCH), `batch ${round + 1} to complete after the outage`);
    }

    expect([...runs.keys()].sort((a, b) => a - b)).toEqual(Array.from({ length: 3 * BATCH }, (_, i) => i));
    expect([...runs.values()].every((n) => n === 1)).toBe(true);
    const rows = await db.tdb.driver.jobList({ limit: 1_000 });
    expect(rows).toHaveLength(3 * BATCH);
    expect(rows.filter((r) => r.state !== 'completed' || r.attempt !== 1 || r.lostCount !== 0)).toEqual([]);
    expect(warden.workerCounters?.staleWritesRejected).toBe(0);
    // What failed while down was reported, each under what it was doing (no unhandled error ended the process).
    expect(errors).toContain('claiming jobs');
  });
});
