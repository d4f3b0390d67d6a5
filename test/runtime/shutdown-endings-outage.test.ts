/**
 * `stop()` while the database refuses every ending (an outage): the attempts still running at the end of the grace
 * are aborted and their endings submitted, and the completer gives up on them at its 5 s close deadline (their
 * jobs stay `running` until their leases expire and the rescue takes them). The stop completes then; it used to
 * wait for those endings before closing the completer, which alone makes it give up, so it never completed while
 * the outage lasted. Fake time, advanced a step at a time while the stop runs.
 * @module
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createWarden, type Warden } from '../../src/client/warden.js';
import { createDriver } from '../../src/driver/create-driver.js';
import type { Driver } from '../../src/driver/driver.js';
import { defineJob } from '../../src/job/define-job.js';
import { overrideDriver } from '../support/override-driver.js';
import { createTestDatabase, DRIVER_KINDS, type TestDatabase } from '../support/test-databases.js';
import { silent, T0, TestClock, within } from './helpers.js';

const GRACE_MS = 1_000;
/** The completer's close deadline at shutdown (`Worker`): what the stop may take past the grace. */
const COMPLETER_CLOSE_MS = 5_000;

describe.each(DRIVER_KINDS)('stop() while endings cannot be written (%s)', (kind) => {
  let tdb: TestDatabase;
  let clock: TestClock;
  let driver: Driver;
  let warden: Warden;
  let down: boolean;
  let refused: number;
  const job = defineJob({
    name: 'honours-signal',
    handler: (_payload, ctx) => new Promise<void>((_, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason), { once: true })),
  });

  beforeEach(async () => {
    tdb = await createTestDatabase(kind);
    clock = new TestClock(T0);
    down = false;
    refused = 0;
    const transient = kind === 'postgres' ? { code: '08006' } : { code: 'SQLITE_IOERR' };
    driver = overrideDriver(createDriver({ url: tdb.url, schema: tdb.schema, handoff: false }), {
      jobFinishMany: (finish) => async (params) => {
        if (!down) return finish(params);
        refused++;
        throw Object.assign(new Error('database unreachable (test)'), transient);
      },
    });
    warden = createWarden({ database: driver, logger: silent, clock, jobs: [job] });
  });

  afterEach(async () => {
    down = false;
    await warden.close();
    await driver.close();
    await tdb.cleanup();
  });

  it('completes once the grace and the completer deadline have passed, the job left running for the rescue', async () => {
    const { id } = await warden.enqueue(job, {});
    const started = warden.events.next('job:started', (e) => e.job.id === id);
    await warden.start({ grace: GRACE_MS, pollInterval: '1h', rescueInterval: '1h', heartbeat: '10s', lease: '30s' });
    await within(started, 'the job to start');
    down = true;
    let stopped = false;
    const stopping = warden.stop().then(() => (stopped = true));
    // Fake time in 100 ms steps, each followed by a real macrotask so database calls in flight can answer.
    let elapsed = 0;
    await within((async () => {
      while (!stopped && elapsed <= GRACE_MS + COMPLETER_CLOSE_MS + 2_000) {
        await clock.advance(100);
        elapsed += 100;
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
    })(), 'fake time to pass');
    await within(stopping, 'stop() to complete');
    expect(elapsed).toBeLessThanOrEqual(GRACE_MS + COMPLETER_CLOSE_MS + 1_000);
    expect(warden.workerCounters!.abortedOnShutdown).toBe(1);
    expect(refused).toBeGreaterThan(1);
    down = false;
    expect((await tdb.driver.jobGet({ id }))!.state).toBe('running');
  });
});
