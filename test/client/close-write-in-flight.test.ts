/**
 * `close()` while a write accepted before it is still in flight: it waits for the write, up to the worker's `grace`,
 * and closes, on both drivers, also in an instance that registers no jobs (a producer or operator tool, which has no
 * queues for worker options to resolve against). The `worker` defaults are checked by `createWarden` itself, so an
 * instance that never starts a worker cannot carry bad ones to `close()`.
 * @module
 */
import type { StandardSchemaV1 } from '@standard-schema/spec';
import { afterEach, describe, expect, it } from 'vitest';
import { createWarden, type Warden } from '../../src/client/warden.js';
import { InvalidDurationError, InvalidOptionError, WardenClosedError } from '../../src/errors.js';
import { defineJob } from '../../src/job/define-job.js';
import { deferred, makeWarden, type MakeWardenOptions, silent, within } from '../runtime/helpers.js';
import { Cleanup } from '../support/cleanup.js';
import { createTestDatabase, DRIVER_KINDS } from '../support/test-databases.js';

/** A job whose payload validation waits for `gate`: its enqueue stays in flight until the test opens it. */
function gatedJob(name: string, gate: Promise<void>) {
  const schema: StandardSchemaV1 = { '~standard': { version: 1, vendor: 'test', validate: async (value) => { await gate; return { value }; } } };
  return defineJob({ name, schema, handler: () => undefined });
}

describe.each(DRIVER_KINDS)('close() with a write in flight (%s)', (kind) => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('waits for the write and closes an instance that registers no jobs', async () => {
    const tdb = cleanup.add(await createTestDatabase(kind), (t) => t.cleanup());
    // No jobs, no schedules, no alerts: there is no queue the worker options could be resolved against.
    const warden = makeWarden(tdb, { retention: false });
    cleanup.add(warden, (w) => w.close());
    const gate = deferred();
    // A definition the producer never registered may still be enqueued.
    const enqueued = warden.enqueue(gatedJob('unregistered', gate.promise), {});
    const closing = warden.close();
    gate.resolve();
    await expect(within(closing, 'close()')).resolves.toBeUndefined();
    expect((await enqueued).job.name).toBe('unregistered');
    // Closed for good: later calls share the same (successful) close, and writes are refused.
    await expect(warden.close()).resolves.toBeUndefined();
    await expect(warden.enqueue('unregistered', {})).rejects.toBeInstanceOf(WardenClosedError);
  });

  it('waits for the write and closes an instance with jobs and worker defaults that never started', async () => {
    const tdb = cleanup.add(await createTestDatabase(kind), (t) => t.cleanup());
    const gate = deferred();
    const job = gatedJob('slow', gate.promise);
    const warden = makeWarden(tdb, { jobs: [job], retention: false, worker: { concurrency: 2, grace: '30s' } });
    cleanup.add(warden, (w) => w.close());
    const enqueued = warden.enqueue(job, {});
    const closing = warden.close();
    gate.resolve();
    await expect(within(closing, 'close()')).resolves.toBeUndefined();
    expect((await enqueued).duplicate).toBe(false);
  });
});

describe('createWarden checks the worker defaults', () => {
  it('refuses bad worker defaults at construction, before any start() and without opening the database', () => {
    // A file that does not exist stays uncreated: the check comes before the driver.
    const database = 'sqlite:/nonexistent-dir/never-created.db';
    expect(() => makeWardenOn(database, { worker: { concurrency: 0 } })).toThrow(InvalidOptionError);
    expect(() => makeWardenOn(database, { worker: { concurrency: 0 } })).toThrow(/^Expected concurrency to be an integer from 1 to 10000, got 0/);
    expect(() => makeWardenOn(database, { worker: { heartbeat: '30s', lease: '10s' } })).toThrow(InvalidOptionError);
    expect(() => makeWardenOn(database, { worker: { grace: '1y' as never } })).toThrow(InvalidDurationError);
    expect(() => makeWardenOn(database, { worker: { queues: ['Bad Queue'] } })).toThrow(/queues\[\]/);
    expect(() => makeWardenOn(database, { worker: 'fast' as never })).toThrow(InvalidOptionError);
  });

  it('constructs an instance without jobs whose worker defaults are valid (their queues come at start)', async () => {
    const warden = makeWardenOn('sqlite::memory:', { worker: { concurrency: 4, grace: '1s' } });
    await warden.close();
  });
});

/** A Warden on a database URL, with a silent logger. */
function makeWardenOn(database: string, options: MakeWardenOptions): Warden {
  return createWarden({ database, logger: silent, retention: false, ...options });
}
