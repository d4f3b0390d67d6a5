/**
 * An attempt stays in flight until its ending is written, whoever submitted that ending. The timeout submits it
 * beside the attempt's own path, and a handler honouring ctx.signal rejects at once: the attempt must not settle
 * (leave the worker's in-flight set) before that ending is written, or the worker would hold a job it no longer
 * counts (heartbeats, shutdown, running a job lost before alone once nothing is in flight, handing back jobs it
 * never received). Seen through `worker:draining`, which reports the attempts in flight.
 * @module
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createWarden, type Warden } from '../../src/client/warden.js';
import { defineJob } from '../../src/job/define-job.js';
import { overrideDriver } from '../support/override-driver.js';
import { createTestDatabase, DRIVER_KINDS, type TestDatabase } from '../support/test-databases.js';
import { deferred, IDLE_TIMERS, silent, T0, TestClock, within } from './helpers.js';

/** A handler that behaves as documented: it stops (rejects) as soon as ctx.signal aborts, and not before. */
const untilAborted = (signal: AbortSignal): Promise<never> =>
  new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason as Error), { once: true }));

describe.each(DRIVER_KINDS)('an ending submitted by the timeout (%s)', (kind) => {
  let tdb: TestDatabase | undefined;
  let warden: Warden | undefined;
  /** Lets a held ending be written, so closing never waits on it. */
  let writeEnding = deferred();
  afterEach(async () => {
    writeEnding.resolve();
    await warden?.close();
    warden = undefined;
    await tdb?.cleanup();
  });

  it('keeps its attempt in flight until it is written, though the handler rejected at once', async () => {
    tdb = await createTestDatabase(kind);
    const clock = new TestClock(T0);
    writeEnding = deferred();
    const finishing = deferred();
    // The ending's write is held once it reached the database, so the attempt is caught between the two.
    const driver = overrideDriver(tdb.newDriver(), {
      jobFinishMany: (real) => async (params) => {
        finishing.resolve();
        await writeEnding.promise;
        return real(params);
      },
    });
    const slow = defineJob({ name: 'slow', timeout: '1s', retry: { maxAttempts: 1 }, handler: (_p, ctx) => untilAborted(ctx.signal) });
    const w = (warden = createWarden({ database: driver, logger: silent, jobs: [slow], clock, retention: false }));
    const order: string[] = [];
    w.on('job:failed', (e) => order.push(`job:failed ${e.outcome}`));
    w.on('worker:draining', (e) => order.push(`worker:draining inFlight=${e.inFlight}`));
    w.on('worker:stopped', () => order.push('worker:stopped'));
    await w.start({ pollInterval: '5s' });
    await clock.waitForTimers(IDLE_TIMERS, 'the started worker to be idle');
    const started = w.events.next('job:started');
    const { id } = await w.enqueue(slow, {});
    await within(started, 'the attempt to start');
    await clock.waitForTimers(IDLE_TIMERS + 1, "the attempt's timeout timer");

    await clock.advance(1_000);
    // The handler rejected when the timeout aborted it, before the completer's batch went out.
    await within(finishing.promise, 'the timed-out ending to be written');
    const draining = w.events.next('worker:draining');
    const stopping = w.stop();
    await within(draining, 'worker:draining');
    expect(order).toEqual(['worker:draining inFlight=1']);
    writeEnding.resolve();
    await within(stopping, 'the worker to stop');
    expect(order).toEqual(['worker:draining inFlight=1', 'job:failed timeout', 'worker:stopped']);
    expect(await w.jobs.get(id)).toMatchObject({ state: 'dead', lastError: { name: 'JobTimeoutError' } });
  });
});
