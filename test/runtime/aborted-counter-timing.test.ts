/**
 * `abortedOnShutdown` counts the attempts aborted at the end of a shutdown's grace period as they are aborted, before
 * their endings are written and the completer closes (which can take up to its 5 s close deadline): meanwhile
 * `warden.workerCounters.abortedOnShutdown` already says so (it read 0 there after the worker was split into files).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createWarden, type Warden } from '../../src/client/warden.js';
import type { Driver } from '../../src/driver/driver.js';
import { defineJob } from '../../src/job/define-job.js';
import { overrideDriver } from '../support/override-driver.js';
import { createTestDatabase, DRIVER_KINDS, type TestDatabase } from '../support/test-databases.js';
import { deferred, type Deferred, silent, T0, TestClock, within } from './helpers.js';

const GRACE_MS = 1_000;

describe.each(DRIVER_KINDS)('abortedOnShutdown while the aborted endings are written (%s)', (kind) => {
  let tdb: TestDatabase;
  let clock: TestClock;
  let warden: Warden;
  let hold: { sent: Deferred; release: Deferred } | null;
  const job = defineJob({
    name: 'honours-signal',
    handler: (_payload, ctx) => new Promise<void>((_, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason), { once: true })),
  });

  beforeEach(async () => {
    tdb = await createTestDatabase(kind);
    clock = new TestClock(T0);
    hold = null;
    const driver: Driver = overrideDriver(tdb.newDriver(), {
      jobFinishMany: (real) => async (params) => {
        const h = hold;
        if (h) {
          h.sent.resolve();
          await h.release.promise;
        }
        return real(params);
      },
    });
    warden = createWarden({ database: driver, logger: silent, clock, jobs: [job], retention: false });
    await warden.migrate();
  });

  afterEach(async () => {
    hold?.release.resolve();
    await warden.close();
    await tdb.cleanup();
  });

  it('counts the aborted attempt once it is aborted, not only after the completer has closed', async () => {
    const { id } = await warden.enqueue(job, {});
    const started = warden.events.next('job:started', (e) => e.job.id === id);
    await warden.start({ grace: GRACE_MS, pollInterval: '1h', rescueInterval: '1h', heartbeat: '10s', lease: '30s' });
    await within(started, 'the job to start');
    hold = { sent: deferred(), release: deferred() };
    const stopping = warden.stop();
    // Fake time in 100 ms steps, each followed by a real macrotask, until the aborted attempt's ending is sent.
    const h = hold;
    await within((async () => {
      for (let t = 0; !h.sent.settled && t <= GRACE_MS + 2_000; t += 100) {
        await clock.advance(100);
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
    })(), 'fake time to pass');
    await within(hold.sent.promise, 'the aborted ending to be sent');
    const during = warden.workerCounters!.abortedOnShutdown;
    hold.release.resolve();
    await within(stopping, 'the stop');
    expect(warden.workerCounters!.abortedOnShutdown).toBe(1);
    expect(during).toBe(1);
  });
});
