/**
 * PostgreSQL connection loss: the worker's pooled connections and its LISTEN connection are terminated
 * (`pg_terminate_backend`) again and again while it works. Nothing may crash, every job must complete, none may be
 * left running, and the listener must come back so wake-ups from another process still arrive.
 */
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { createWarden, defineJob, type Warden } from '../../src/index.js';
import { createTestDatabase, DRIVER_KINDS, PG_URL, type TestDatabase } from '../support/test-databases.js';
import { silent, within } from './helpers.js';

const JOBS = 1_500;

describe.skipIf(!DRIVER_KINDS.includes('postgres'))('connection loss (postgres)', () => {
  let tdb: TestDatabase;
  const wardens: Warden[] = [];
  let admin: pg.Client | undefined;

  afterEach(async () => {
    await Promise.all(wardens.splice(0).map((w) => w.close()));
    await admin?.end();
    await tdb?.cleanup();
  });

  /** Terminates every backend whose current or last statement mentions this test's schema. */
  async function terminateOurConnections(schema: string): Promise<number> {
    const { rows } = await admin!.query<{ n: string }>(
      `SELECT count(pg_terminate_backend(pid))::text AS n FROM pg_stat_activity
       WHERE datname = current_database() AND pid <> pg_backend_pid() AND query LIKE '%' || $1 || '%'`,
      [schema],
    );
    return Number(rows[0]!.n);
  }

  it('survives its connections being terminated repeatedly: every job completes once, the listener comes back', async () => {
    tdb = await createTestDatabase('postgres');
    admin = new pg.Client({ connectionString: PG_URL });
    await admin.connect();
    let runs = 0;
    const job = defineJob({
      name: 'work',
      retry: { maxAttempts: 20, backoff: { base: 10, max: 100 } },
      handler: async () => {
        runs++;
        await new Promise((resolve) => setTimeout(resolve, 2));
      },
    });
    // pollInterval 1h: after the first batch, only LISTEN/NOTIFY (or a freed slot) can wake the worker.
    const worker = createWarden({ database: tdb.url, schema: tdb.schema, jobs: [job], logger: silent, worker: { concurrency: 10, pollInterval: '1h', lease: '5s', heartbeat: '1s', rescueInterval: '500ms' } });
    const producer = createWarden({ database: tdb.url, schema: tdb.schema, jobs: [job], logger: silent });
    wardens.push(worker, producer);
    const errors: string[] = [];
    worker.on('error', (e) => errors.push(e.context));
    await producer.enqueueMany(Array.from({ length: JOBS }, (_, i) => ({ job, payload: { i } })));
    await worker.start();

    let terminated = 0;
    for (let round = 0; round < 8; round++) {
      await new Promise((resolve) => setTimeout(resolve, 150));
      terminated += await terminateOurConnections(tdb.schema!);
    }
    expect(terminated).toBeGreaterThan(0);

    const allDone = async () => {
      for (;;) {
        const stats = await producer.stats();
        if (stats.totals.completed === JOBS) return stats;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    };
    const stats = await within(allDone(), `all ${JOBS} jobs completed after the connection kills`, 60_000);
    expect(stats.totals).toMatchObject({ completed: JOBS, running: 0, queued: 0, dead: 0 });
    expect(runs).toBeGreaterThanOrEqual(JOBS);
    // The kills were felt (and survived): errors were reported as events, not thrown.
    expect(errors.length).toBeGreaterThan(0);

    // The listener reconnected: a job enqueued by another instance wakes the worker without polling.
    await terminateOurConnections(tdb.schema!);
    const completed = worker.events.next('job:completed', (e) => e.job.name === 'work');
    await new Promise((resolve) => setTimeout(resolve, 500));
    await producer.enqueue(job, { i: -1 });
    await within(completed, 'the job enqueued by another instance to complete through LISTEN/NOTIFY', 20_000);
  });
});
