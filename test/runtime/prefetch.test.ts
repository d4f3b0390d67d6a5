/**
 * The worker's prefetch buffer: claimed jobs beyond the free slots wait in a bounded buffer with their leases
 * renewed, start as slots free, and are handed back without using an attempt on graceful shutdown. A slot frees
 * when the handler settles, before its ending is written.
 * @module
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Warden } from '../../src/client/warden.js';
import { defineJob } from '../../src/job/define-job.js';
import { createTestDatabase, DRIVER_KINDS, type TestDatabase } from '../support/test-databases.js';
import { deferred, type Deferred, makeWarden, within } from './helpers.js';

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
    const claimed = warden.events.next('worker:claimed');
    await warden.start({ concurrency: 2, prefetch: 3, pollInterval: '50ms', grace: '5s' });
    expect((await within(claimed, 'the first claim')).count).toBe(5);
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

  it('starts buffered jobs as slots free and completes every job exactly once', async () => {
    gate.resolve();
    await warden.enqueueMany(Array.from({ length: 60 }, () => ({ job: blocking, payload: {} })));
    const done = waitFor(async () => (await warden.stats()).totals.completed === 60);
    await warden.start({ concurrency: 3, prefetch: 20, pollInterval: '50ms' });
    await within(done, 'all 60 jobs to complete');
    expect(new Set(started).size).toBe(60);
    expect(started).toHaveLength(60);
  });

  it('rejects a prefetch that is not an integer from 0 to 10000', async () => {
    await expect(warden.start({ prefetch: -1 })).rejects.toThrow(/Expected prefetch to be an integer from 0 to 10000, got -1/);
    await expect(warden.start({ prefetch: 1.5 })).rejects.toThrow(/prefetch/);
  });
});

/** Polls `check` on real time until it holds; the caller bounds it with `within`. */
async function waitFor(check: () => boolean | Promise<boolean>): Promise<void> {
  while (!(await check())) await new Promise((resolve) => setTimeout(resolve, 10));
}
