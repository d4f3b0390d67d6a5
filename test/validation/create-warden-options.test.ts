/**
 * `createWarden` checks the shape of every option it is given before it opens the database: `jobs` and `schedules`
 * arrays, the options an object, `random` a function, `clock` and `logger` with the methods Warden calls,
 * `scheduler`, `databaseOptions`, `metrics` and `tracing` objects (or their boolean forms). A wrong one is an
 * `InvalidOptionError` naming it, not a TypeError later or a failure far from its cause.
 * @module
 */
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { FakeClock } from '../../src/clock/fake-clock.js';
import { createWarden } from '../../src/client/warden.js';
import type { WardenOptions } from '../../src/client/warden-options.js';
import { InvalidOptionError } from '../../src/errors.js';
import { defineJob } from '../../src/job/define-job.js';
import { makeWarden, silent } from '../runtime/helpers.js';
import { Cleanup } from '../support/cleanup.js';
import { createTestDatabase, DRIVER_KINDS } from '../support/test-databases.js';

/** A URL whose SQLite file is never created: every refusal below comes before the driver is opened. */
const NEVER_OPENED = 'sqlite:/nonexistent-dir/never-created.db';

/** The error `createWarden` throws for `options` (on {@link NEVER_OPENED}, with a silent logger unless given). */
function refusal(options: Record<string, unknown>): InvalidOptionError {
  try {
    createWarden({ database: NEVER_OPENED, logger: silent, ...options } as WardenOptions);
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidOptionError);
    return error as InvalidOptionError;
  }
  throw new Error(`Expected createWarden to refuse ${Object.keys(options).join(', ')}, got an instance`);
}

describe('createWarden refuses options of the wrong shape', () => {
  it('options that are not an object, without echoing a string (it may be a URL with its password)', () => {
    for (const options of [null, 42, [], 'postgres://app:s3cret-pass@db/app']) {
      let caught: unknown;
      try {
        createWarden(options as never);
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(InvalidOptionError);
      expect((caught as InvalidOptionError).field).toBe('createWarden(options)');
      expect((caught as Error).message).not.toContain('s3cret');
    }
  });

  it.each([
    ['jobs', {}],
    ['jobs', 'send-email'],
    ['schedules', {}],
    ['schedules', 42],
  ])('%s that is not an array: InvalidOptionError, not "is not iterable"', (field, value) => {
    const error = refusal({ [field]: value });
    expect(error.field).toBe(field);
    expect(error.message).toMatch(/^Expected (jobs|schedules) to be an array/);
  });

  it.each([
    ['random', 0.5],
    ['random', 'Math.random'],
    ['clock', Date],
    ['clock', { now: () => 0 }],
    ['logger', console.log],
    ['logger', { info: () => undefined }],
    ['scheduler', '1s'],
    ['scheduler', []],
    ['databaseOptions', 5],
    ['metrics', 'yes'],
    ['tracing', true],
    ['tracing', 'off'],
    ['database', 42],
  ])('%s = %p: InvalidOptionError naming it', (field, value) => {
    expect(refusal({ [field]: value }).field).toBe(field);
  });

  it('a database URL given as databaseOptions is refused without being shown', () => {
    const error = refusal({ databaseOptions: 'postgres://app:s3cret-pass@db/app' });
    expect(error.field).toBe('databaseOptions');
    expect(error.message).not.toContain('s3cret');
    expect(JSON.stringify(error.value)).not.toContain('s3cret');
  });

  it('accepts every documented form', async () => {
    const forms: WardenOptions[] = [
      { random: () => 0.5, clock: new FakeClock(0), logger: pino({ level: 'silent' }) },
      { scheduler: { scanInterval: '2s' }, databaseOptions: { busyTimeoutMs: 50 }, metrics: false, tracing: false },
      { metrics: true, tracing: {} },
      { metrics: { prefix: 'app_' }, tracing: { consumerParent: 'none' } },
    ];
    for (const options of forms) await createWarden({ database: 'sqlite::memory:', logger: silent, retention: false, ...options }).close();
  });
});

describe.each(DRIVER_KINDS)('random that is not a function (%s)', (kind) => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('is refused by createWarden, so a failed attempt cannot leave its job running', async () => {
    const tdb = cleanup.add(await createTestDatabase(kind), (t) => t.cleanup());
    const boom = defineJob({ name: 'boom', handler: () => { throw new Error('x'); } });
    // Accepted, every failure's write would throw "random is not a function" and the job would stay running.
    expect(() => makeWarden(tdb, { jobs: [boom], random: 0.5 as never, retention: false })).toThrow(InvalidOptionError);
    const warden = cleanup.add(makeWarden(tdb, { jobs: [boom], random: () => 0.5, retention: false }), (w) => w.close());
    await warden.enqueue(boom, {});
    await warden.drain();
    const [job] = await warden.jobs.list({});
    expect(job!.state).toBe('retrying');
  });
});
