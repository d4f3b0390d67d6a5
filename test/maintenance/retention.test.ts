/**
 * The retention service on both drivers: the global policy and job types' own, by the clock's (database) time;
 * one instance at a time through the lease lock; bounded batches and the per-pass cap; keys freed; started and
 * stopped with the instance. Driver-level pruning is in test/conformance/retention.ts.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createWarden, type Warden } from '../../src/client/warden.js';
import type { WardenOptions } from '../../src/client/warden-options.js';
import { createDriver } from '../../src/driver/create-driver.js';
import { InvalidDurationError, InvalidOptionError } from '../../src/errors.js';
import { defineJob } from '../../src/job/define-job.js';
import { RETENTION_LOCK, resolveRetentionOptions } from '../../src/maintenance/retention-service.js';
import { silent, T0, TestClock, within } from '../runtime/helpers.js';
import { overrideDriver } from '../support/override-driver.js';
import { createTestDatabase, DRIVER_KINDS, type TestDatabase } from '../support/test-databases.js';

const DAY = 86_400_000;
const plain = defineJob({ name: 'plain', retry: { maxAttempts: 1 }, handler: (p: { fail?: boolean }) => {
  if (p.fail) throw new Error('no');
} });
const short = defineJob({ name: 'short', retention: { completed: '1d' }, handler: () => {} });
const kept = defineJob({ name: 'kept', retention: { completed: false }, handler: () => {} });

describe.each(DRIVER_KINDS)('retention service (%s)', (kind) => {
  let tdb: TestDatabase;
  let clock: TestClock;
  const wardens: Warden[] = [];
  beforeEach(async () => {
    tdb = await createTestDatabase(kind);
    clock = new TestClock(T0);
  });
  afterEach(async () => {
    for (const w of wardens.splice(0)) await w.close();
    await tdb.cleanup();
  });

  function make(options: Partial<WardenOptions> = {}): Warden {
    const w = createWarden({ database: tdb.url, schema: tdb.schema, logger: silent, clock, jobs: [plain, short, kept], retention: {}, ...options });
    wardens.push(w);
    return w;
  }
  async function states(w: Warden): Promise<string[]> {
    return (await w.jobs.list({ limit: 100 })).map((j) => `${j.name}:${j.state}`).sort();
  }

  it("prunes by the global policy, and by a job type's own where it sets one", async () => {
    const w = make();
    await w.enqueue(plain, {});
    await w.enqueue(plain, { fail: true });
    await w.enqueue(short, {});
    await w.enqueue(kept, {});
    const cancelled = await w.enqueue(plain, {}, { delay: '1h' });
    await w.jobs.cancel(cancelled.id);
    await w.drain();
    const all = ['kept:completed', 'plain:cancelled', 'plain:completed', 'plain:dead', 'short:completed'];
    expect(await states(w)).toEqual(all);

    await clock.set(T0 + DAY - 1);
    expect((await w.runRetentionOnce())!.jobs).toEqual({ completed: 0, dead: 0, cancelled: 0 });
    await clock.set(T0 + 2 * DAY);
    const events = w.events.next('retention:pruned');
    expect(await w.runRetentionOnce()).toMatchObject({ jobs: { completed: 1, dead: 0, cancelled: 0 }, keys: 0, ticks: 0, complete: true });
    expect((await events).jobs.completed).toBe(1);
    expect(await states(w)).toEqual(all.filter((s) => s !== 'short:completed'));
    await clock.set(T0 + 8 * DAY);
    expect((await w.runRetentionOnce())!.jobs).toEqual({ completed: 1, dead: 0, cancelled: 1 });
    expect(await states(w)).toEqual(['kept:completed', 'plain:dead']);
    await clock.set(T0 + 31 * DAY);
    expect((await w.runRetentionOnce())!.jobs).toEqual({ completed: 0, dead: 1, cancelled: 0 });
    expect(await states(w)).toEqual(['kept:completed']);
  });

  it('takes a global policy from the options, and frees the keys of discarded holders', async () => {
    const w = make({ retention: { completed: '1h', dead: false } });
    await w.enqueue(plain, {}, { key: 'once' });
    await w.enqueue(plain, { fail: true });
    const discarded = await w.enqueue(plain, {}, { key: 'gone', delay: '1d' });
    await w.jobs.discard(discarded.id);
    await w.drain();
    await clock.set(T0 + 365 * DAY);
    expect(await w.runRetentionOnce()).toMatchObject({ jobs: { completed: 1, dead: 0, cancelled: 0 }, keys: 1 });
    expect(await states(w)).toEqual(['plain:dead']);
  });

  it('runs in one instance at a time: a pass is skipped while another holds the retention lock', async () => {
    const a = make();
    const b = make();
    const lease = await b.locks.acquire(RETENTION_LOCK, { ttl: '1m' });
    expect(lease).not.toBeNull();
    expect(await a.runRetentionOnce()).toBeNull();
    await lease!.release();
    expect(await a.runRetentionOnce()).not.toBeNull();
  });

  it('deletes in bounded batches, and at most maxPerPass jobs of a state per pass', async () => {
    const driver = createDriver({ url: tdb.url, schema: tdb.schema });
    const limits: number[] = [];
    const counting = overrideDriver(driver, {
      jobPrune: (real) => (params) => {
        if (params.state === 'completed') limits.push(params.limit);
        return real(params);
      },
    });
    const w = make({ database: counting, jobs: [plain], retention: { batchSize: 2, maxPerPass: 4 } });
    try {
      for (let i = 0; i < 5; i++) await w.enqueue(plain, { i });
      await w.drain();
      await clock.set(T0 + 8 * DAY);
      expect(await w.runRetentionOnce()).toMatchObject({ jobs: { completed: 4 }, complete: false });
      expect(limits).toEqual([2, 2]);
      expect(await w.runRetentionOnce()).toMatchObject({ jobs: { completed: 1 }, complete: true });
      expect(limits).toEqual([2, 2, 2]);
    } finally {
      await w.close();
      await driver.close();
    }
  });

  it('is started by start() (first pass after a minute, then every interval) and stopped by stop()', async () => {
    const w = make({ retention: { interval: '1h' } });
    await w.enqueue(plain, {});
    await w.drain();
    await clock.set(T0 + 8 * DAY);
    const passes: number[] = [];
    w.on('retention:pruned', (e) => passes.push(e.jobs.completed));
    await w.start({ worker: false });
    await clock.waitForTimers(1, 'the retention service to wait for its first pass');
    const first = w.events.next('retention:pruned');
    await clock.advance(60_000);
    await within(first, 'the first retention pass');
    await clock.waitForTimers(1, 'the retention service to wait for its next pass');
    const second = w.events.next('retention:pruned');
    await clock.advance(3_600_000);
    await within(second, 'the second retention pass');
    expect(passes).toEqual([1, 0]);
    await w.stop();
    expect(clock.pendingTimers).toBe(0);
  });

  it('is off with retention: false, and by default when a clock is injected', async () => {
    for (const w of [make({ retention: false }), make({ retention: undefined })]) {
      await expect(w.runRetentionOnce()).rejects.toThrow(InvalidOptionError);
      await w.start({ worker: false });
      expect(clock.pendingTimers).toBe(0);
      await w.stop();
    }
  });
});

describe('retention options', () => {
  it('are validated when the instance or the job is defined', () => {
    expect(() => resolveRetentionOptions({ batchSize: 0 })).toThrow(/retention.batchSize/);
    expect(() => resolveRetentionOptions({ batchSize: 10, maxPerPass: 5 })).toThrow(/retention.maxPerPass/);
    expect(() => resolveRetentionOptions({ completed: '7 days' as never })).toThrow(InvalidDurationError);
    expect(() => resolveRetentionOptions({ scheduleTicks: 0 })).toThrow(/retention.scheduleTicks/);
    expect(resolveRetentionOptions({ dead: false, scheduleTicks: false }).policy).toEqual({ completed: 7 * DAY, dead: null, cancelled: 7 * DAY });
    expect(() => defineJob({ name: 'x', retention: { completed: '-1d' as never }, handler: () => {} })).toThrow(/retention.completed of job "x"/);
    expect(() => defineJob({ name: 'x', retention: 'forever' as never, handler: () => {} })).toThrow(/retention of job "x"/);
    expect(defineJob({ name: 'x', retention: { dead: '90d' }, handler: () => {} }).retention).toEqual({ dead: 90 * DAY });
  });
});
