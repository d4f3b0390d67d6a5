/**
 * `start()`'s switches (`worker`, `scheduler`, `retention`) are booleans: a string such as `"false"` would read as
 * true and start what it meant to leave off. It is refused before anything starts, and start() may then be called
 * again with good options. Its options must be an object.
 * @module
 */
import { afterEach, describe, expect, it } from 'vitest';
import { InvalidOptionError } from '../../src/errors.js';
import { defineJob } from '../../src/job/define-job.js';
import { defineSchedule } from '../../src/schedule/define-schedule.js';
import { makeWarden, record } from '../runtime/helpers.js';
import { Cleanup } from '../support/cleanup.js';
import { createTestDatabase, DRIVER_KINDS } from '../support/test-databases.js';

const job = defineJob({ name: 'j', handler: () => undefined });
const schedule = defineSchedule({ name: 'hourly', cron: '0 * * * *', job });

describe.each(DRIVER_KINDS)('start() switches (%s)', (kind) => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it.each([
    [{ worker: 'false' }, 'worker'],
    [{ worker: 0 }, 'worker'],
    [{ scheduler: 'no' }, 'scheduler'],
    [{ retention: null }, 'retention'],
  ])('refuses %o before starting anything', async (options, field) => {
    const tdb = cleanup.add(await createTestDatabase(kind), (t) => t.cleanup());
    const warden = cleanup.add(makeWarden(tdb, { jobs: [job], schedules: [schedule], retention: false }), (w) => w.close());
    const started = record(warden, 'worker:started');
    const error = await warden.start(options as never).then(() => null, (e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidOptionError);
    expect((error as InvalidOptionError).field).toBe(field);
    expect((error as Error).message).toMatch(new RegExp(`^Expected ${field} to be a boolean, got`));
    expect(started).toEqual([]);
    // Nothing was started, so the schedules were never synced.
    expect(await warden.schedules.list()).toEqual([]);
    // A start with good options still works.
    await warden.start({ worker: false, scheduler: false });
    expect(started).toEqual([]);
  });

  it('refuses options that are not an object', async () => {
    const tdb = cleanup.add(await createTestDatabase(kind), (t) => t.cleanup());
    const warden = cleanup.add(makeWarden(tdb, { jobs: [job], retention: false }), (w) => w.close());
    await expect(warden.start('worker' as never)).rejects.toBeInstanceOf(InvalidOptionError);
    await expect(warden.start(null as never)).rejects.toBeInstanceOf(InvalidOptionError);
  });
});
