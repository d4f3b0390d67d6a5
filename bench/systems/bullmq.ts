/**
 * BullMQ 6 on the local Redis. Each repetition gets its own key prefix, removed afterwards (`obliterate`
 * plus a sweep of anything left under the prefix). Job options are BullMQ's defaults, so completed jobs are
 * kept in Redis as they would be in an application that does not set `removeOnComplete`.
 * @module
 */
import { Queue, Worker } from 'bullmq';
import type { BenchSettings } from '../settings.js';
import type { BenchPayload, BenchSystem, Producer, RunningWorker, StoreTarget, WorkerSpec } from './system.js';

const QUEUE = 'bench';
const NAME = 'noop';

/** BullMQ with a `Worker` at the benchmark's concurrency. */
export function bullmqSystem(settings: BenchSettings): BenchSystem {
  const connection = { host: settings.redis.host, port: settings.redis.port };
  const queueOf = (target: StoreTarget) => new Queue(QUEUE, { connection, prefix: target.prefix });
  return {
    name: 'bullmq',
    label: 'BullMQ 6 (Redis)',
    describe: `\`new Worker(queue, handler, { concurrency: ${settings.concurrency} })\`, default job options; bulk enqueue with \`addBulk\`, single with \`add\`; a fresh key prefix per repetition.`,
    workloads: ['W1', 'W2', 'W3', 'W4', 'W6'],
    notApplicable: { W5: 'seeding targets Warden\'s own tables; not measured for the peers' },
    async prepare(id) {
      return { system: 'bullmq', url: `redis://${connection.host}:${connection.port}`, prefix: `bench-${id}`, queue: QUEUE, options: {} };
    },
    async destroy(target) {
      const queue = queueOf(target);
      try {
        await queue.obliterate({ force: true });
        const client = await queue.getBackend().client;
        let cursor = '0';
        do {
          const [next, keys] = await client.scan(cursor, { MATCH: `${target.prefix}:*`, COUNT: 1000 });
          if (keys.length > 0) await client.del(...keys);
          cursor = next;
        } while (cursor !== '0');
      } finally {
        await queue.close();
      }
    },
    async producer(target): Promise<Producer> {
      const queue = queueOf(target);
      await queue.waitUntilReady();
      return {
        enqueueBulk: async (payloads) => {
          await queue.addBulk(payloads.map((data) => ({ name: NAME, data })));
        },
        enqueueOne: async (payload) => {
          await queue.add(NAME, payload);
        },
        remaining: async () => {
          const counts = await queue.getJobCounts('wait', 'active', 'delayed', 'prioritized', 'waiting-children');
          return Object.values(counts).reduce((sum, n) => sum + n, 0);
        },
        close: () => queue.close(),
      };
    },
    async startWorker(target, spec: WorkerSpec): Promise<RunningWorker> {
      const worker = new Worker<BenchPayload>(QUEUE, async (job) => spec.onJob(job.data), { connection, prefix: target.prefix, concurrency: spec.concurrency });
      worker.on('error', (error) => console.error('bullmq worker:', error));
      await worker.waitUntilReady();
      return { stop: () => worker.close() };
    },
  };
}
