/**
 * pg-boss 12, tuned for throughput: `batchSize: 50` per fetch, fetching again at once while batches come back
 * full (`burstWhenBatchFull`), the shortest allowed poll (0.5 s), and LISTEN/NOTIFY wake-ups (instance
 * `useListenNotify` plus the queue's `notify`). `localConcurrency` is the concurrency: that many fetch loops,
 * each running one batch handler at a time.
 * @module
 */
import { PgBoss } from 'pg-boss';
import pg from 'pg';
import { createDatabase, dropDatabase } from '../postgres-admin.js';
import type { BenchSettings } from '../settings.js';
import type { BenchPayload, BenchSystem, Producer, RunningWorker, StoreTarget, WorkerSpec } from './system.js';

const QUEUE = 'bench';
const BATCH = 50;

async function startBoss(target: StoreTarget, role: 'producer' | 'worker'): Promise<PgBoss> {
  const boss = new PgBoss({
    connectionString: target.url,
    useListenNotify: role === 'worker',
    // The benchmark process only enqueues; maintenance and cron belong to the worker, as in a deployment.
    ...(role === 'producer' ? { supervise: false, schedule: false, migrate: false } : {}),
  });
  // pg-boss reports recoverable problems as events; an unhandled 'error' event would crash the process.
  boss.on('error', (error: unknown) => console.error(`pg-boss ${role}:`, error));
  await boss.start();
  return boss;
}

/** pg-boss with batch fetching. */
export function pgBossSystem(settings: BenchSettings): BenchSystem {
  return {
    name: 'pg-boss',
    label: 'pg-boss 12',
    describe: `\`work(queue, { batchSize: ${BATCH}, localConcurrency: ${settings.concurrency}, burstWhenBatchFull: true, pollingIntervalSeconds: 0.5 }, handler)\`, \`useListenNotify: true\` and a queue with \`notify: true\`; bulk enqueue with \`insert\`, single with \`send\`. Completed jobs are kept (its default retention).`,
    workloads: ['W1', 'W2', 'W3', 'W4', 'W6'],
    notApplicable: { W5: 'seeding targets Warden\'s own tables; not measured for the peers' },
    async prepare(id) {
      const url = await createDatabase(settings.pgUrl, `bench_${id}`);
      const target: StoreTarget = { system: 'pg-boss', url, prefix: '', queue: QUEUE, options: {} };
      const boss = new PgBoss({ connectionString: url, supervise: false, schedule: false });
      boss.on('error', (error: unknown) => console.error('pg-boss setup:', error));
      await boss.start();
      try {
        await boss.createQueue(QUEUE, { notify: true });
      } finally {
        await boss.stop({ graceful: false });
      }
      return target;
    },
    async destroy(target) {
      await dropDatabase(settings.pgUrl, target.url);
    },
    async producer(target): Promise<Producer> {
      const boss = await startBoss(target, 'producer');
      const pool = new pg.Pool({ connectionString: target.url, max: 1 });
      return {
        enqueueBulk: async (payloads) => {
          await boss.insert(QUEUE, payloads.map((data) => ({ data })));
        },
        enqueueOne: async (payload) => {
          await boss.send(QUEUE, payload);
        },
        remaining: async () => Number((await pool.query(`SELECT count(*) AS n FROM pgboss.job WHERE name = $1 AND state IN ('created','retry','active')`, [QUEUE])).rows[0].n),
        close: async () => {
          await pool.end();
          await boss.stop({ graceful: false });
        },
      };
    },
    async startWorker(target, spec: WorkerSpec): Promise<RunningWorker> {
      const boss = await startBoss(target, 'worker');
      await boss.work<BenchPayload>(
        QUEUE,
        { batchSize: BATCH, localConcurrency: spec.concurrency, burstWhenBatchFull: true, pollingIntervalSeconds: 0.5 },
        async (jobs) => {
          for (const job of jobs) spec.onJob(job.data);
        },
      );
      return { stop: () => boss.stop({ graceful: true, timeout: 30_000 }) };
    },
  };
}
