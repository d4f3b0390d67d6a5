/**
 * The worker's prefetch buffer: claimed jobs beyond the free slots wait in a bounded buffer with their leases
 * renewed, start as slots free, and are handed back without using an attempt on graceful shutdown. A slot frees
 * when the handler settles, before its ending is written.
 * @module
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createWarden, type Warden } from '../../src/client/warden.js';
import { defineJob } from '../../src/job/define-job.js';
import { overrideDriver } from '../support/override-driver.js';
import { createTestDatabase, DRIVER_KINDS, type TestDatabase } from '../support/test-databases.js';
import { deferred, type Deferred, makeWarden, silent, waitFor, within } from './helpers.js';

describe.each(DRIVER_KINDS)('worker prefetch (%s)', (kind) => {
  let tdb: TestDatabase;
  let warden: Warden;
  let gate: Deferred;
  let started: string[];
  const blocking = defineJob({
    name: 'blocking',
    handler: async (_p, ctx) => {
      started.push(ctx.job.id);
      await gate.promise;
    },
  });

  beforeEach(async () => {
    tdb = await createTestDatabase(kind);
    gate = deferred();
    started = [];
    warden = makeWarden(tdb, { jobs: [blocking] });
    await warden.migrate();
  });
  afterEach(async () => {
    gate.resolve();
    await warden.close();
    await tdb.cleanup();
  });

  it('claims concurrency + prefetch, runs only concurrency, and hands the buffer back on stop', async () => {
    const jobs = await warden.enqueueMany(Array.from({ length: 10 }, () => ({ job: blocking, payload: {} })));
    const claims: number[] = [];
    warden.events.on('worker:claimed', (e) => void claims.push(e.count));
    await warden.start({ concurrency: 2, prefetch: 3, pollInterval: '50ms', grace: '5s' });
    // The first claim takes what the idle handlers start at once; the next fills the buffer.
    await within(waitFor(() => claims.length === 2), 'two claims');
    expect(claims).toEqual([2, 3]);
    await within(waitFor(() => started.length === 2), 'two handlers to start');
    const running = await warden.jobs.list({ state: 'running' });
    expect(running).toHaveLength(5);
    expect(started).toHaveLength(2);

    const stopping = warden.stop();
    // The buffer goes back before the grace period is spent waiting on the running handlers.
    await within(waitFor(async () => (await warden.jobs.list({ state: 'queued' })).length === 8), 'the buffer to be handed back');
    gate.resolve();
    await within(stopping, 'the worker to stop');

    const rows = await Promise.all(jobs.map((j) => warden.jobs.get(j.id)));
    const completed = rows.filter((r) => r!.state === 'completed');
    const queued = rows.filter((r) => r!.state === 'queued');
    expect(completed.map((r) => r!.id).sort()).toEqual([...started].sort());
    expect(queued).toHaveLength(8);
    // Handed-back jobs never started: no attempt used, no attempt row.
    for (const row of queued) {
      expect(row!.attempt).toBe(0);
      expect(await warden.jobs.attempts(row!.id)).toEqual([]);
    }
  });

  it('claims only what its free handlers start at once when it has nothing to do: at start and after its queues ran empty', async () => {
    // The database's own driver, telling when a claim came back empty.
    const driver = tdb.newDriver();
    let emptyClaims = 0;
    const watched = overrideDriver(driver, {
      jobClaim: (real) => async (params) => {
        const rows = await real(params);
        if (rows.length === 0) emptyClaims++;
        return rows;
      },
    });
    await warden.close();
    warden = createWarden({ database: watched, logger: silent, jobs: [blocking] });
    gate.resolve();
    const claims: number[] = [];
    warden.events.on('worker:claimed', (e) => void claims.push(e.count));
    await warden.enqueueMany(Array.from({ length: 12 }, () => ({ job: blocking, payload: {} })));
    await warden.start({ concurrency: 3, prefetch: 4, pollInterval: '50ms' });
    await within(waitFor(async () => (await warden.stats()).totals.completed === 12), 'the first 12 jobs to complete');
    expect(claims[0]).toBe(3);
    expect(claims.reduce((a, b) => a + b, 0)).toBe(12);
    // The queues ran empty: once a claim has come back empty, the next burst starts the same way.
    const empty = emptyClaims;
    await within(waitFor(() => emptyClaims > empty), 'a claim to find the queues empty');
    claims.length = 0;
    await warden.enqueueMany(Array.from({ length: 12 }, () => ({ job: blocking, payload: {} })));
    await within(waitFor(async () => (await warden.stats()).totals.completed === 24), 'the next 12 jobs to complete');
    expect(claims[0]).toBe(3);
    expect(claims.reduce((a, b) => a + b, 0)).toBe(12);
    expect(started).toHaveLength(24);
  });

  it('starts buffered jobs as slots free and completes every job exactly once', async () => {
    gate.resolve();
    await warden.enqueueMany(Array.from({ length: 60 }, () => ({ job: blocking, payload: {} })));
    const done = waitFor(async () => (await warden.stats()).totals.completed === 60);
    await warden.start({ concurrency: 3, prefetch: 20, pollInterval: '50ms' });
    await within(done, 'all 60 jobs to complete');
    expect(new Set(started).size).toBe(60);
    expect(started).toHaveLength(60);
  });

  it('keeps claiming while endings wait to be written, up to twice concurrency + prefetch held, then waits for the completer', async () => {
    // The database's own driver, with its endings held back until released: a completer that cannot keep up.
    const driver = tdb.newDriver();
    const finishes = deferred();
    let claimsInFlight = 0;
    let claimCalls = 0;
    const slow = overrideDriver(driver, {
      jobFinishMany: (real) => async (params) => {
        await finishes.promise;
        return real(params);
      },
      jobClaim: (real) => async (params) => {
        claimCalls++;
        claimsInFlight++;
        try {
          return await real(params);
        } finally {
          claimsInFlight--;
        }
      },
    });
    await warden.close();
    warden = createWarden({ database: slow, logger: silent, jobs: [blocking] });
    gate.resolve();
    await warden.enqueueMany(Array.from({ length: 40 }, () => ({ job: blocking, payload: {} })));
    // concurrency + prefetch = 6: endings beyond 6 unwritten count against claims, so 12 is where claims stop.
    await warden.start({ concurrency: 2, prefetch: 4, pollInterval: '1h', heartbeat: '1h', lease: '2h', rescueInterval: '1h' });
    await within(waitFor(() => started.length === 12 && claimsInFlight === 0), 'twelve handlers to run');
    const calls = claimCalls;
    // The claim loop now waits for an ending to be written; nothing else can wake it.
    for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
    expect(claimCalls).toBe(calls);
    expect(started).toHaveLength(12);
    expect(await warden.jobs.list({ state: 'running' })).toHaveLength(12);
    finishes.resolve();
    await within(waitFor(async () => (await warden.stats()).totals.completed === 40), 'all 40 jobs to complete');
    expect(new Set(started).size).toBe(40);
  });

  it('rejects a prefetch that is not an integer from 0 to 10000', async () => {
    await expect(warden.start({ prefetch: -1 })).rejects.toThrow(/Expected prefetch to be an integer from 0 to 10000, got -1/);
    await expect(warden.start({ prefetch: 1.5 })).rejects.toThrow(/prefetch/);
  });
});
