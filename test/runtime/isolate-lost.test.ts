/**
 * `isolateLost`: a job whose next loss would dead-letter it (lost `maxLost - 1` times, or lost and on its last
 * attempt) runs alone, so a job that kills its process is charged its last loss alone instead of taking the jobs
 * beside it to the dead letters (test/process/poison-isolation.test.ts shows that with real crashes). Here, in one
 * process and on a fake clock, with `maxLost: 2` so that one loss is enough: it starts only once every other
 * attempt has ended, nothing is claimed or started beside it, a claim holding several hands the others back
 * unused, a stop hands a held one back, `drain()` does the same; a job lost with losses and attempts to spare runs
 * as usual; and `isolateLost: false` runs them like any other job.
 * @module
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Warden } from '../../src/client/warden.js';
import { InvalidOptionError } from '../../src/errors.js';
import { defineJob } from '../../src/job/define-job.js';
import type { JobRow } from '../../src/job/job-record.js';
import type { WorkerOptions } from '../../src/runtime/worker-options.js';
import { createTestDatabase, DRIVER_KINDS, type TestDatabase } from '../support/test-databases.js';
import { deferred, type Deferred, makeWarden, T0, TestClock, waitFor, within } from './helpers.js';

const LEASE_MS = 3_000;
const HEARTBEAT_MS = 1_000;
// No hand-off registration or rescue pass gets between the steps: polls and rescues are far apart.
const WORKER: WorkerOptions = { lease: LEASE_MS, heartbeat: HEARTBEAT_MS, rescueInterval: '1h', pollInterval: '1h', concurrency: 2, maxLost: 2 };
/** Timers a worker holding a lost job keeps: heartbeater and rescuer (its claim loop waits for an ending). */
const HOLDING_TIMERS = 2;

describe.each(DRIVER_KINDS)('jobs lost before run alone (%s)', (kind) => {
  let tdb: TestDatabase;
  let clock: TestClock;
  let warden: Warden;
  /** Every start and end, in order, with how many attempts were running when it started. */
  let log: { event: 'start' | 'end'; tag: string; running: number }[];
  let running: number;
  let gates: Map<string, Deferred>;

  const gate = (tag: string): Deferred => {
    if (!gates.has(tag)) gates.set(tag, deferred());
    return gates.get(tag)!;
  };
  const track = async ({ tag }: { tag: string }): Promise<void> => {
    log.push({ event: 'start', tag, running });
    running++;
    try {
      await gate(tag).promise;
    } finally {
      running--;
      log.push({ event: 'end', tag, running });
    }
  };
  const tracked = defineJob<{ tag: string }>({ name: 'tracked', handler: track });
  /** As `tracked`, with two attempts: lost once, its next attempt is its last. */
  const twoAttempts = defineJob<{ tag: string }>({ name: 'two-attempts', retry: { maxAttempts: 2 }, handler: track });

  beforeEach(async () => {
    log = [];
    running = 0;
    gates = new Map();
    tdb = await createTestDatabase(kind);
    clock = new TestClock(T0);
    warden = makeWarden(tdb, { jobs: [tracked, twoAttempts], clock, worker: { maxLost: 2 } });
  });

  afterEach(async () => {
    for (const g of gates.values()) g.resolve();
    await warden.close();
    await tdb.cleanup();
  });

  /** Enqueues one job per tag (of `job`, `tracked` by default); each tag's handler waits for its gate. */
  async function enqueue(...tags: string[]): Promise<string[]> {
    return enqueueOf(tracked, tags);
  }

  async function enqueueOf(job: typeof tracked, tags: string[]): Promise<string[]> {
    const results = await warden.enqueueMany(tags.map((tag) => ({ job, payload: { tag } })));
    return results.map((r) => r.id);
  }

  /** Enqueues jobs and has them lost once: claimed by a worker that dies, then rescued (`lostCount` 1, due now). */
  async function enqueueLost(...tags: string[]): Promise<string[]> {
    return loseOnce(await enqueue(...tags));
  }

  async function loseOnce(ids: string[]): Promise<string[]> {
    const claimed = await tdb.driver.jobClaim({ queues: ['default'], limit: ids.length, workerId: 'dead-worker', leaseMs: LEASE_MS, now: clock.sqlNow() });
    expect(claimed.map((r) => r.id)).toEqual(ids);
    await clock.advance(LEASE_MS + 1);
    await warden.rescue();
    for (const id of ids) expect(await get(id)).toMatchObject({ state: 'retrying', lostCount: 1 });
    return ids;
  }

  async function get(id: string): Promise<JobRow> {
    return (await warden.jobs.get(id))!;
  }

  const started = (tag: string) => warden.events.next('job:started', (e) => e.job.id === idOf.get(tag));
  const completed = (tag: string) => warden.events.next('job:completed', (e) => e.job.id === idOf.get(tag));
  let idOf: Map<string, string>;
  beforeEach(() => {
    idOf = new Map();
  });
  const name = (tags: string[], ids: string[]) => tags.forEach((t, i) => idOf.set(t, ids[i]!));

  it('starts once the jobs claimed with it have ended; nothing is claimed or started beside it', async () => {
    name(['lost'], await enqueueLost('lost'));
    name(['a', 'b', 'c'], await enqueue('a', 'b', 'c'));
    const aStarted = started('a');
    await warden.start(WORKER);
    // The first claim (2 slots) took `lost` and `a`: `a` runs, `lost` waits for it.
    await within(aStarted, 'a to start');
    await clock.advance(HEARTBEAT_MS);
    await clock.waitForTimers(HOLDING_TIMERS, 'a heartbeat to renew both leases');
    expect(log).toEqual([{ event: 'start', tag: 'a', running: 0 }]);
    expect(await get(idOf.get('lost')!)).toMatchObject({ state: 'running', attempt: 2 });
    expect((await get(idOf.get('b')!)).state).toBe('queued');

    const lostStarted = started('lost');
    gate('a').resolve();
    await within(lostStarted, 'the lost job to start');
    // A heartbeat's round trip while it runs: a free slot, due jobs, and still no claim.
    await clock.advance(HEARTBEAT_MS);
    await clock.waitForTimers(HOLDING_TIMERS, 'a heartbeat while the lost job runs');
    expect((await get(idOf.get('b')!)).state).toBe('queued');
    expect((await get(idOf.get('c')!)).state).toBe('queued');

    const both = Promise.all([started('b'), started('c')]);
    gate('lost').resolve();
    await within(both, 'b and c to start once it ended');
    // Back to running side by side.
    expect(log.filter((e) => e.event === 'start' && (e.tag === 'b' || e.tag === 'c')).map((e) => e.running).sort()).toEqual([0, 1]);
    const done = Promise.all([completed('b'), completed('c')]);
    gate('b').resolve();
    gate('c').resolve();
    await within(done, 'b and c to complete');
    expect(log.slice(0, 4)).toEqual([
      { event: 'start', tag: 'a', running: 0 },
      { event: 'end', tag: 'a', running: 0 },
      { event: 'start', tag: 'lost', running: 0 },
      { event: 'end', tag: 'lost', running: 0 },
    ]);
    expect(await get(idOf.get('lost')!)).toMatchObject({ state: 'completed', attempt: 2, lostCount: 1 });
    expect(warden.workerCounters!.ranAlone).toBe(1);
  });

  it('of several lost jobs claimed together, holds one and hands the others back unused; each runs alone', async () => {
    name(['x', 'y', 'z'], await enqueueLost('x', 'y', 'z'));
    const xStarted = started('x');
    await warden.start({ ...WORKER, concurrency: 3 });
    await within(xStarted, 'the first lost job to start');
    // y and z were handed back: queued again, the claim's attempt taken back, no attempt row for it.
    await within(waitFor(async () => (await get(idOf.get('z')!)).state === 'queued'), 'y and z to be handed back');
    for (const tag of ['y', 'z']) {
      expect(await get(idOf.get(tag)!)).toMatchObject({ state: 'queued', attempt: 1, lostCount: 1 });
      expect((await warden.jobs.attempts(idOf.get(tag)!)).map((a) => a.outcome)).toEqual(['lost']);
    }
    for (const [tag, next] of [['x', 'y'], ['y', 'z']] as const) {
      const nextStarted = started(next);
      gate(tag).resolve();
      await within(nextStarted, `${next} to start after ${tag}`);
    }
    const zDone = completed('z');
    gate('z').resolve();
    await within(zDone, 'z to complete');
    expect(log.map((e) => `${e.event} ${e.tag} ${e.running}`)).toEqual(['start x 0', 'end x 0', 'start y 0', 'end y 0', 'start z 0', 'end z 0']);
    for (const tag of ['x', 'y', 'z']) {
      expect(await get(idOf.get(tag)!)).toMatchObject({ state: 'completed', attempt: 2 });
      expect((await warden.jobs.attempts(idOf.get(tag)!)).map((a) => a.outcome)).toEqual(['lost', 'completed']);
    }
    expect(warden.workerCounters!.ranAlone).toBe(3);
  });

  it('a stop hands a held lost job back without using its attempt', async () => {
    name(['lost'], await enqueueLost('lost'));
    name(['a'], await enqueue('a'));
    const aStarted = started('a');
    await warden.start(WORKER);
    await within(aStarted, 'a to start');
    const stopping = warden.stop();
    gate('a').resolve();
    await within(stopping, 'the stop');
    expect(log.map((e) => `${e.event} ${e.tag}`)).toEqual(['start a', 'end a']);
    expect(await get(idOf.get('lost')!)).toMatchObject({ state: 'queued', attempt: 1, lostCount: 1, leaseExpiresAt: null });
    expect((await warden.jobs.attempts(idOf.get('lost')!)).map((a) => a.outcome)).toEqual(['lost']);
  });

  it('drain() runs a lost job alone too, after the rest of its claim', async () => {
    name(['lost'], await enqueueLost('lost'));
    name(['a', 'b'], await enqueue('a', 'b'));
    for (const tag of ['lost', 'a', 'b']) gate(tag).resolve();
    expect(await warden.drain({ concurrency: 3 })).toEqual({ attempts: 3 });
    const startOf = (tag: string) => log.findIndex((e) => e.event === 'start' && e.tag === tag);
    const endOf = (tag: string) => log.findIndex((e) => e.event === 'end' && e.tag === tag);
    expect(startOf('lost')).toBeGreaterThan(Math.max(endOf('a'), endOf('b')));
    expect(log[startOf('lost')]!.running).toBe(0);
    expect(await get(idOf.get('lost')!)).toMatchObject({ state: 'completed', attempt: 2 });
  });

  it('a job lost once with a loss and attempts to spare (maxLost 3) runs beside the others', async () => {
    name(['lost'], await enqueueLost('lost'));
    name(['a'], await enqueue('a'));
    const both = Promise.all([started('lost'), started('a')]);
    await warden.start({ ...WORKER, maxLost: 3 });
    await within(both, 'both to start together');
    expect(log.map((e) => e.running).sort()).toEqual([0, 1]);
    expect(warden.workerCounters!.ranAlone).toBe(0);
  });

  it('a job lost once on its last attempt runs alone, even with losses to spare (maxLost 3)', async () => {
    name(['last'], await loseOnce(await enqueueOf(twoAttempts, ['last'])));
    name(['a'], await enqueue('a'));
    const aStarted = started('a');
    await warden.start({ ...WORKER, maxLost: 3 });
    await within(aStarted, 'a to start');
    const lastStarted = started('last');
    gate('a').resolve();
    await within(lastStarted, 'the job on its last attempt to start');
    expect(log).toEqual([{ event: 'start', tag: 'a', running: 0 }, { event: 'end', tag: 'a', running: 0 }, { event: 'start', tag: 'last', running: 0 }]);
    expect(warden.workerCounters!.ranAlone).toBe(1);
  });

  it('a held job the heartbeat finds gone (cancelled) is dropped, and claims go on at once beside the running job', async () => {
    name(['lost'], await enqueueLost('lost'));
    name(['long'], await enqueue('long'));
    const longStarted = started('long');
    await warden.start(WORKER);
    await within(longStarted, 'long to start');
    await warden.jobs.cancel(idOf.get('lost')!);
    const staleBeat = warden.events.next('job:stale-write-rejected', (e) => e.jobId === idOf.get('lost') && e.write === 'heartbeat');
    await clock.advance(HEARTBEAT_MS);
    await within(staleBeat, 'the heartbeat to find the held job gone');
    // Nothing held any more and a slot free: a job enqueued now starts while `long` still runs.
    const ids = await enqueue('next');
    idOf.set('next', ids[0]!);
    await within(started('next'), 'next to start beside long');
    expect(log.map((e) => `${e.event} ${e.tag}`)).toEqual(['start long', 'start next']);
  });

  it('a handler that ignores its signal after its timeout holds no lease once that ending is written: the held job starts then', async () => {
    const hangs = defineJob<{ tag: string }>({ name: 'hangs', timeout: '1s', retry: { maxAttempts: 5 }, handler: ({ tag }) => gate(tag).promise });
    const w = makeWarden(tdb, { jobs: [tracked, hangs], clock, worker: { maxLost: 2 } });
    try {
      name(['lost'], await enqueueLost('lost'));
      const [hungId] = (await w.enqueueMany([{ job: hangs, payload: { tag: 'hung' } }])).map((r) => r.id);
      idOf.set('hung', hungId!);
      const hungStarted = w.events.next('job:started', (e) => e.job.id === hungId);
      const lostStarted = w.events.next('job:started', (e) => e.job.id === idOf.get('lost'));
      const timedOut = w.events.next('job:failed', (e) => e.job.id === hungId && e.outcome === 'timeout');
      await w.start(WORKER);
      await within(hungStarted, 'hung to start');
      await clock.advance(1_000);
      await within(timedOut, 'the timeout ending of hung to be written');
      // Its handler still runs (it ignores its signal), but its job is `retrying`, not leased: the held job starts.
      await within(lostStarted, 'the held job to start once every other ending is written');
      expect(log.map((e) => `${e.event} ${e.tag}`)).toEqual(['start lost']);
      expect(gates.get('hung')?.settled ?? false).toBe(false); // hung's handler has not returned
    } finally {
      gate('hung').resolve();
      gate('lost').resolve();
      await w.close();
    }
  });

  it('drain() heartbeats a held job while the rest of its claim runs past a lease: not rescued, run once', async () => {
    name(['lost'], await enqueueLost('lost'));
    name(['long'], await enqueue('long'));
    const longStarted = started('long');
    const draining = warden.drain({ concurrency: 2 });
    await within(longStarted, 'long to start');
    for (let t = 0; t < LEASE_MS + HEARTBEAT_MS; t += HEARTBEAT_MS) {
      await clock.advance(HEARTBEAT_MS);
      await clock.waitForTimers(1, 'the drain heartbeat');
    }
    // Any worker's rescue pass, past the held job's claim-time lease.
    expect(await warden.driver.jobRescue({ maxLost: 2, limit: 10, now: clock.sqlNow() })).toEqual([]);
    gate('long').resolve();
    gate('lost').resolve();
    expect(await within(draining, 'the drain')).toEqual({ attempts: 2 });
    expect(await get(idOf.get('lost')!)).toMatchObject({ state: 'completed', attempt: 2, lostCount: 1 });
    expect(log.filter((e) => e.event === 'start').map((e) => e.tag)).toEqual(['long', 'lost']);
  });

  it('isolateLost: false runs a lost job beside the others', async () => {
    name(['lost'], await enqueueLost('lost'));
    name(['a'], await enqueue('a'));
    const both = Promise.all([started('lost'), started('a')]);
    await warden.start({ ...WORKER, isolateLost: false });
    await within(both, 'both to start together');
    expect(log.map((e) => e.running).sort()).toEqual([0, 1]);
    expect(warden.workerCounters!.ranAlone).toBe(0);
  });

  it('refuses an isolateLost that is not a boolean', async () => {
    await expect(warden.start({ ...WORKER, isolateLost: 'no' as unknown as boolean })).rejects.toThrow(InvalidOptionError);
    await expect(warden.start({ ...WORKER, isolateLost: 'no' as unknown as boolean })).rejects.toThrow(/Expected isolateLost to be a boolean, got "no"/);
  });
});
