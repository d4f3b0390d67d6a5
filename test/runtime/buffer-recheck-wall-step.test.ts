/**
 * A wall clock stepped back (an NTP step, a resumed VM) while claimed jobs wait in the buffer. Their confirmations
 * are wall-clock times, and one made before a step back is not taken as fresh: the buffered jobs are looked up
 * (`jobLeaseCheck`) before the next one starts, so a job cancelled before the step never starts. That costs one
 * look-up, not one per job started: the look-up confirms them as of the new time, and later claims are confirmed as
 * of it too. `FakeClock.set` to an earlier time moves the wall time (and the SQL `now`) back while elapsed time, on
 * which the worker's timers run, stands.
 * @module
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createWarden, type Warden } from '../../src/client/warden.js';
import { defineJob } from '../../src/job/define-job.js';
import { RECHECK_MS } from '../../src/runtime/claim-buffer.js';
import { overrideDriver } from '../support/override-driver.js';
import { createTestDatabase, DRIVER_KINDS, type TestDatabase } from '../support/test-databases.js';
import { deferred, type Deferred, silent, T0, TestClock, waitFor, within } from './helpers.js';

const HOUR = 3_600_000;

describe.each(DRIVER_KINDS)('buffered jobs and a wall clock stepped back (%s)', (kind) => {
  let tdb: TestDatabase;
  let clock: TestClock;
  let warden: Warden;
  let started: string[];
  /** One gate per tag, opened by the test (or at the end, for shutdown). */
  const gates = new Map<string, Deferred>();
  let lookUps: number;

  const task = defineJob<{ tag: string }>({
    name: 'gated',
    handler: async ({ tag }) => {
      started.push(tag);
      if (!gates.has(tag)) gates.set(tag, deferred());
      await gates.get(tag)!.promise;
    },
  });
  const open = (tag: string): void => {
    if (!gates.has(tag)) gates.set(tag, deferred());
    gates.get(tag)!.resolve();
  };

  beforeEach(async () => {
    started = [];
    gates.clear();
    lookUps = 0;
    tdb = await createTestDatabase(kind);
    clock = new TestClock(T0);
    const driver = overrideDriver(tdb.newDriver(), {
      jobLeaseCheck: (real) => (params) => {
        lookUps++;
        return real(params);
      },
    });
    warden = createWarden({ database: driver, logger: silent, jobs: [task], clock, retention: false });
    await warden.migrate();
  });

  afterEach(async () => {
    for (const tag of ['a', 'b', 'c', 'd']) open(tag);
    await warden.close();
    await tdb.cleanup();
  });

  it('a job cancelled before the step never starts, and the step costs one look-up, not one per job', async () => {
    const ids = (await warden.enqueueMany(['a', 'b', 'c'].map((tag) => ({ job: task, payload: { tag } })))).map((r) => r.id);
    // One handler, two buffered jobs; no poll, heartbeat or rescue gets between the steps.
    await warden.start({ concurrency: 1, prefetch: 2, lease: '60s', heartbeat: '20s', pollInterval: '1h', rescueInterval: '1h' });
    await within(waitFor(() => started.length === 1), 'a to start, b and c buffered');
    await warden.jobs.cancel(ids[1]!);
    await clock.advance(RECHECK_MS + 1);
    await clock.set(clock.now() - HOUR);
    // Due at the stepped-back time: claimed once the buffer has room, confirmed as of that claim.
    await warden.enqueue(task, { tag: 'd' });

    open('a');
    await within(waitFor(() => started.length === 2), 'the next job to start');
    expect(started).toEqual(['a', 'c']);
    expect(warden.workerCounters!.staleWritesRejected).toBe(1);
    expect((await warden.jobs.get(ids[1]!))!.state).toBe('cancelled');

    open('c');
    await within(waitFor(() => started.length === 3), 'd to start');
    expect(started).toEqual(['a', 'c', 'd']);
    expect(lookUps).toBe(1);
  });
});
