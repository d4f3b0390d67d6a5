/**
 * A worker draining a backlog keeps the event loop turning. better-sqlite3 runs statements synchronously, so
 * without a hop through the event loop per driver call the whole drain ran in microtasks: no timer (heartbeats),
 * no I/O (health endpoints), no signal handler ran until the backlog was gone. Counted in event-loop turns (a
 * self-rescheduling `setImmediate`), not in time.
 * @module
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Warden } from '../../src/client/warden.js';
import { defineJob } from '../../src/job/define-job.js';
import { createTestDatabase, DRIVER_KINDS, type TestDatabase } from '../support/test-databases.js';
import { makeWarden, within } from './helpers.js';

const JOBS = 5_000;

describe.each(DRIVER_KINDS)('event loop while draining (%s)', (kind) => {
  let tdb: TestDatabase;
  let warden: Warden;
  let ran = 0;
  let turnsWhileDraining = 0;
  const counted = defineJob({ name: 'counted', handler: () => void ran++ });

  beforeEach(async () => {
    tdb = await createTestDatabase(kind);
    ran = 0;
    turnsWhileDraining = 0;
    warden = makeWarden(tdb, { jobs: [counted] });
    await warden.migrate();
  });
  afterEach(async () => {
    await warden.close();
    await tdb.cleanup();
  });

  it(`turns the event loop many times while ${JOBS} queued jobs run`, async () => {
    for (let i = 0; i < JOBS; i += 1_000) await warden.enqueueMany(Array.from({ length: 1_000 }, (_, k) => ({ job: counted, payload: { i: i + k } })));
    let draining = true;
    const ticker = (): void => {
      if (!draining) return;
      if (ran > 0 && ran < JOBS) turnsWhileDraining++;
      setImmediate(ticker);
    };
    setImmediate(ticker);
    const done = new Promise<void>((resolve) => {
      const off = warden.events.on('job:completed', () => {
        if (ran === JOBS) {
          off();
          resolve();
        }
      });
    });
    await warden.start({ concurrency: 10, prefetch: 500, pollInterval: '1h' });
    await within(done, `all ${JOBS} jobs to run`, 60_000);
    draining = false;
    // At least one turn per claim or batch of endings; starved, it was 0.
    expect(turnsWhileDraining).toBeGreaterThanOrEqual(10);
  });
});
