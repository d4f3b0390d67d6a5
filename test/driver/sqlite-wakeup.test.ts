/**
 * SQLite cross-process wake-ups (`PRAGMA data_version`): the watch takes its baseline when it starts, before the
 * worker's first claim, so a commit by another connection right after that claim (before the watch's first tick)
 * wakes the worker. Taken at the first tick instead, that commit became the baseline and woke nobody: the job waited
 * for the poll interval. A job enqueued in an application transaction wakes the worker the same way once it commits.
 * @module
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createWarden, type Warden } from '../../src/client/warden.js';
import { createDriver } from '../../src/driver/create-driver.js';
import type { Driver } from '../../src/driver/driver.js';
import { SqliteDriver } from '../../src/driver/sqlite/sqlite-driver.js';
import { watchDataVersion } from '../../src/driver/sqlite/sqlite-wakeup.js';
import { defineJob } from '../../src/job/define-job.js';
import { openRawSqlite } from '../conformance/helpers.js';
import { overrideDriver } from '../support/override-driver.js';
import { createTestDatabase, DRIVER_KINDS, type TestDatabase } from '../support/test-databases.js';
import { deferred, makeWarden, silent, within } from '../runtime/helpers.js';

describe('watchDataVersion', () => {
  it('takes its baseline when called: a change before its first tick wakes', async () => {
    let version = 1;
    const woke = deferred();
    const stop = watchDataVersion({ read: () => version, intervalMs: 5, onWake: () => woke.resolve(), onError: () => {} });
    try {
      // Another connection commits right after the watch started, before its first reading on a tick.
      version = 2;
      await within(woke.promise, 'a wake-up at the first tick', 2_000);
    } finally {
      stop();
    }
  });

  it('reports a baseline it cannot read, and takes the first reading that works as the baseline', async () => {
    const reads = [new Error('closed'), 1, 1, 2];
    const errors: unknown[] = [];
    const woke = deferred();
    let wakes = 0;
    const stop = watchDataVersion({
      read: () => {
        const next = reads.length > 1 ? reads.shift()! : reads[0]!;
        if (next instanceof Error) throw next;
        return next;
      },
      intervalMs: 5,
      onWake: () => {
        wakes++;
        woke.resolve();
      },
      onError: (error) => errors.push(error),
    });
    try {
      expect(errors).toHaveLength(1);
      await within(woke.promise, 'a wake-up for the change from 1 to 2', 2_000);
      expect(wakes).toBe(1);
    } finally {
      stop();
    }
  });
});

describe.skipIf(!DRIVER_KINDS.includes('sqlite'))('SQLite wake-up of a worker just started', () => {
  let tdb: TestDatabase;
  const wardens: Warden[] = [];
  const closers: Driver[] = [];
  const job = defineJob({ name: 'w', handler: () => {} });
  beforeEach(async () => {
    tdb = await createTestDatabase('sqlite');
  });
  afterEach(async () => {
    await Promise.all(wardens.splice(0).map((w) => w.close()));
    await Promise.all(closers.splice(0).map((d) => d.close()));
    await tdb.cleanup();
  });

  /**
   * A started worker whose first claim found nothing. It polls once an hour and the watch's first tick comes a
   * second after the start: only a wake-up from the watch, taken against a baseline from before the first claim,
   * starts a job within a test.
   */
  async function idleWorker(): Promise<Warden> {
    const firstClaim = deferred<number>();
    const real = createDriver({ url: tdb.url, sqliteWakeupMs: 1_000 });
    const driver = overrideDriver(real, {
      jobClaim: (claim) => async (params) => {
        const rows = await claim(params);
        firstClaim.resolve(rows.length);
        return rows;
      },
    });
    const worker = createWarden({ database: driver, logger: silent, jobs: [job], worker: { pollInterval: '1h' } });
    wardens.push(worker);
    closers.push(real);
    await worker.start();
    expect(await within(firstClaim.promise, 'the first claim')).toBe(0);
    return worker;
  }

  it('wakes an idle worker for a job another connection commits right after its first claim', async () => {
    const worker = await idleWorker();
    const producer = makeWarden(tdb, { jobs: [job] });
    wardens.push(producer);
    const started = worker.events.next('job:started');
    // Another connection commits a due job, long before the watch's first tick.
    await producer.enqueue(job, {});
    await within(started, 'the job started after a data_version wake-up', 5_000);
  });

  it('wakes it for a job its own process enqueued in an application transaction, once that commits', async () => {
    const worker = await idleWorker();
    // An enqueue inside the caller's transaction wakes no worker of its process (the job is not visible yet):
    // the commit, on the application's connection, changes the file's data_version.
    const app = openRawSqlite(tdb);
    try {
      app.exec('BEGIN IMMEDIATE');
      await worker.enqueue(job, {}, { tx: app });
      const started = worker.events.next('job:started');
      app.exec('COMMIT');
      await within(started, 'the job started after a data_version wake-up', 5_000);
    } finally {
      app.close();
    }
  });
});

describe('the data_version interval option', () => {
  it.each([0, 60_001, 2.5, '5'])('refuses %j, named as the caller gave it (sqliteWakeupMs of createDriver, wakeupMs of SqliteDriver)', (value) => {
    expect(() => createDriver({ url: 'sqlite:./never-created.db', sqliteWakeupMs: value as number })).toThrow(/^Expected sqliteWakeupMs to be an integer number of milliseconds from 1 to 60000, got /);
    expect(() => new SqliteDriver({ filename: './never-created.db', wakeupMs: value as number })).toThrow(/^Expected wakeupMs to be an integer number of milliseconds from 1 to 60000, got /);
  });
});
