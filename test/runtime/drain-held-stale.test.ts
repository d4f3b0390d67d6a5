/**
 * drain() with a job held to run alone (isolateLost): the look-up before it starts is async (ClaimBuffer.confirmHeld),
 * and a heartbeat answer landing right after it can find the held job's lease gone (cancelled) and drop it
 * (lone.clear(), `job:stale-write-rejected`); drain() must then not start it (with the job not started, that heartbeat
 * had nothing to abort, and the handler of a cancelled job would run to its end).
 *
 * The heartbeat's answer is released when the completer's batch (the other job's ending) is written, then delayed by
 * N microtasks; N is swept so that one of them lands in the gap, whatever the exact depth of the promise chains.
 * Invariant checked for every N: a job reported dropped before it started (stale-write-rejected, then started) never
 * starts; and one started is aborted by the heartbeat that found its lease gone.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createWarden, type Warden } from '../../src/client/warden.js';
import type { Driver } from '../../src/driver/driver.js';
import { defineJob } from '../../src/job/define-job.js';
import { overrideDriver } from '../support/override-driver.js';
import { createTestDatabase, DRIVER_KINDS, type TestDatabase } from '../support/test-databases.js';
import { deferred, type Deferred, silent, T0, TestClock, within } from './helpers.js';

const LEASE_MS = 3_000;
const HEARTBEAT_MS = 1_000;
const MAX_TICKS = 40;

describe.each(DRIVER_KINDS)('drain() and a held job whose lease a heartbeat finds gone (%s)', (kind) => {
  let tdb: TestDatabase;
  let clock: TestClock;
  let warden: Warden;
  let gates: Map<string, Deferred>;
  /** Set while a heartbeat answer is to be held until the next ending batch is written. */
  let hold: { arrived: Deferred; go: Deferred; answered: Deferred; release: Deferred; ticks: number } | null;
  let cancelLost: () => Promise<unknown>;
  let log: string[];
  let abortedSeen: Map<string, boolean>;

  const gate = (tag: string): Deferred => {
    if (!gates.has(tag)) gates.set(tag, deferred());
    return gates.get(tag)!;
  };
  const tracked = defineJob<{ tag: string }>({
    name: 'tracked',
    handler: async ({ tag }, ctx) => {
      await gate(tag).promise;
      // A few turns of the event loop: a heartbeat that found the lease gone has aborted the signal by then.
      for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
      abortedSeen.set(tag, ctx.signal.aborted);
    },
  });

  beforeEach(async () => {
    gates = new Map();
    hold = null;
    log = [];
    abortedSeen = new Map();
    tdb = await createTestDatabase(kind);
    clock = new TestClock(T0);
    const driver: Driver = overrideDriver(tdb.newDriver(), {
      // The heartbeat sent while `a` runs is held until the drain's look-up of the held job has been answered (not
      // cancelled yet) and the job then cancelled; its answer (the held job's lease gone) is then held N microtasks.
      jobHeartbeat: (real) => async (params) => {
        const h = hold;
        if (!h) return real(params);
        h.arrived.resolve();
        await h.go.promise;
        const result = await real(params);
        h.answered.resolve();
        await h.release.promise;
        for (let i = 0; i < h.ticks; i++) await null;
        hold = null;
        return result;
      },
      jobLeaseCheck: (real) => async (params) => {
        const result = await real(params);
        const h = hold;
        if (h) {
          await cancelLost();
          h.go.resolve();
          await h.answered.promise;
          h.release.resolve();
        }
        return result;
      },
    });
    warden = createWarden({ database: driver, logger: silent, jobs: [tracked], clock, retention: false, worker: { maxLost: 2, lease: LEASE_MS, heartbeat: HEARTBEAT_MS } });
    await warden.migrate();
    warden.on('job:started', (e) => log.push(`started ${e.job.id}`));
    warden.on('job:stale-write-rejected', (e) => log.push(`stale ${e.jobId}`));
  });

  afterEach(async () => {
    for (const g of gates.values()) g.resolve();
    await warden.close();
    await tdb.cleanup();
  });

  it('never starts a held job after dropping it as cancelled; a started one is aborted', async () => {
    const broken: string[] = [];
    for (let ticks = 0; ticks <= MAX_TICKS; ticks++) {
      const lostTag = `lost${ticks}`;
      const aTag = `a${ticks}`;
      const [lostId] = (await warden.enqueueMany([{ job: tracked, payload: { tag: lostTag } }])).map((r) => r.id);
      // Lost once (claimed by a worker that died, then rescued): with maxLost 2 it runs alone.
      const claimed = await warden.driver.jobClaim({ queues: ['default'], limit: 1, workerId: 'dead-worker', leaseMs: LEASE_MS, now: clock.sqlNow() });
      expect(claimed.map((r) => r.id)).toEqual([lostId]);
      await clock.advance(LEASE_MS + 1);
      await warden.rescue();
      const [aId] = (await warden.enqueueMany([{ job: tracked, payload: { tag: aTag } }])).map((r) => r.id);
      gate(lostTag).resolve();
      const aStarted = warden.events.next('job:started', (e) => e.job.id === aId);
      const draining = warden.drain({ concurrency: 2 });
      await within(aStarted, 'a to start (lost held)');
      cancelLost = () => warden.jobs.cancel(lostId!);
      hold = { arrived: deferred(), go: deferred(), answered: deferred(), release: deferred(), ticks };
      await clock.advance(HEARTBEAT_MS);
      await within(hold.arrived.promise, 'the heartbeat to be sent');
      gate(aTag).resolve();
      await within(draining, 'the drain');
      const staleAt = log.indexOf(`stale ${lostId}`);
      const startedAt = log.indexOf(`started ${lostId}`);
      if (process.env.SHOW) console.log(kind, ticks, staleAt, startedAt, abortedSeen.get(lostTag));
      if (staleAt >= 0 && startedAt > staleAt) broken.push(`ticks=${ticks}: dropped as stale, then started (signal aborted: ${abortedSeen.get(lostTag)})`);
      else if (startedAt >= 0 && abortedSeen.get(lostTag) === false) broken.push(`ticks=${ticks}: started, lease gone, never aborted`);
    }
    expect(broken).toEqual([]);
  });
});
