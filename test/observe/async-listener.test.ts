/**
 * Event listeners written as async functions (the natural way to write a notifier): a rejection is reported as an
 * `error` event, like a synchronous throw, and never escapes as an unhandled rejection, which would end a Node
 * process (`--unhandled-rejections=throw`, the default) with jobs in flight. Against the emitter alone, then in a
 * Warden running a job on each driver.
 * @module
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Warden } from '../../src/client/warden.js';
import type { WardenEventMap } from '../../src/events/event-map.js';
import { TypedEmitter } from '../../src/events/typed-emitter.js';
import { defineJob } from '../../src/job/define-job.js';
import { makeWarden, within } from '../runtime/helpers.js';
import { createTestDatabase, DRIVER_KINDS, type TestDatabase } from '../support/test-databases.js';

const completedEvent: WardenEventMap['job:completed'] = { job: { id: '1', name: 'j', queue: 'q' }, attempt: 1, durationMs: 1 };

/** Collects the rejections nobody handled, from `start()` on; `stop()` unsubscribes and returns them. */
function unhandledRejections(): { stop(): Promise<unknown[]> } {
  const escaped: unknown[] = [];
  const onUnhandled = (reason: unknown) => escaped.push(reason);
  process.on('unhandledRejection', onUnhandled);
  return {
    async stop() {
      // Node reports a rejection still unhandled once the microtasks of its turn ran: one turn later it would have.
      await new Promise<void>((resolve) => setImmediate(resolve));
      process.off('unhandledRejection', onUnhandled);
      return escaped;
    },
  };
}

describe('a listener that rejects', () => {
  it('is reported as an error event, like one that throws, and does not escape as an unhandled rejection', async () => {
    const watch = unhandledRejections();
    const events = new TypedEmitter();
    const errors: WardenEventMap['error'][] = [];
    events.on('error', (e) => errors.push(e));
    const failure = new Error('notifier failed');
    events.on('job:completed', async () => {
      throw failure;
    });
    const reported = events.next('error');
    events.emit('job:completed', completedEvent);
    await within(reported, 'the error event');
    expect(await watch.stop()).toEqual([]);
    expect(errors).toEqual([{ error: failure, context: 'listener of job:completed' }]);
  });

  it('subscribed with once(), is reported as well', async () => {
    const watch = unhandledRejections();
    const events = new TypedEmitter();
    const reported = events.next('error');
    events.once('job:completed', () => Promise.reject(new Error('once failed')));
    events.emit('job:completed', completedEvent);
    expect(await within(reported, 'the error event')).toMatchObject({ context: 'listener of job:completed', error: { message: 'once failed' } });
    expect(await watch.stop()).toEqual([]);
  });

  it('returning a thenable that is not a promise (a lazy query builder): left alone, its then never called', () => {
    const events = new TypedEmitter();
    let ran = 0;
    const lazy = { then: () => void ran++ };
    events.on('job:completed', () => lazy as unknown as void);
    events.emit('job:completed', completedEvent);
    expect(ran).toBe(0);
  });

  it('listening to error itself, is dropped: no error event for it, no loop, no unhandled rejection', async () => {
    const watch = unhandledRejections();
    const events = new TypedEmitter();
    let calls = 0;
    let settled!: () => void;
    const rejected = new Promise<void>((resolve) => (settled = resolve));
    events.on('error', async () => {
      calls++;
      // Rejects after emit() returned, as an async listener does.
      await Promise.resolve();
      settled();
      throw new Error('error listener failed');
    });
    events.emit('error', { error: new Error('first'), context: 'test' });
    await within(rejected, 'the error listener to reject');
    expect(await watch.stop()).toEqual([]);
    expect(calls).toBe(1);
  });
});

describe.each(DRIVER_KINDS)('an async job:completed listener that rejects, in a Warden (%s)', (kind) => {
  let tdb: TestDatabase | undefined;
  let warden: Warden | undefined;
  afterEach(async () => {
    await warden?.close();
    warden = undefined;
    await tdb?.cleanup();
  });

  it('is reported as an error event; the job is completed all the same', async () => {
    tdb = await createTestDatabase(kind);
    const ok = defineJob({ name: 'ok', handler: () => undefined });
    const w = (warden = makeWarden(tdb, { jobs: [ok], retention: false }));
    const watch = unhandledRejections();
    w.on('job:completed', async (e) => {
      throw new Error(`could not notify about ${e.job.id}`);
    });
    const reported = w.events.next('error', (e) => e.context === 'listener of job:completed');
    const { id } = await w.enqueue(ok, {});
    await w.drain();
    expect(await within(reported, 'the error event')).toMatchObject({ error: { message: `could not notify about ${id}` } });
    expect(await watch.stop()).toEqual([]);
    expect(await w.jobs.get(id)).toMatchObject({ state: 'completed' });
  });
});
