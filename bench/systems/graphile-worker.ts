/**
 * graphile-worker 0.18, tuned as its performance documentation recommends for throughput: a local queue of
 * 500 jobs fetched per batch and completions batched (`completeJobBatchDelay: 0`, `failJobBatchDelay: 0`).
 * Finished jobs are deleted by graphile-worker itself, so "all completed" is "no job rows left".
 * @module
 */
import { Logger, makeWorkerUtils, run, type WorkerUtils } from 'graphile-worker';
import { createDatabase, dropDatabase } from '../postgres-admin.js';
import type { BenchSettings } from '../settings.js';
import type { BenchPayload, BenchSystem, Producer, RunningWorker, StoreTarget, WorkerSpec } from './system.js';

const TASK = 'noop';
const silent = new Logger(() => () => {});

function utils(target: StoreTarget): Promise<WorkerUtils> {
  return makeWorkerUtils({ connectionString: target.url, logger: silent });
}

/** graphile-worker with its recommended throughput preset. */
export function graphileSystem(settings: BenchSettings): BenchSystem {
  return {
    name: 'graphile',
    label: 'graphile-worker 0.18',
    describe: `\`run({ concurrency: ${settings.concurrency}, taskList, preset: { worker: { localQueue: { size: 500 }, completeJobBatchDelay: 0, failJobBatchDelay: 0 } } })\` (other options default: pool of 10, LISTEN/NOTIFY); bulk enqueue with \`addJobs\`, single with \`addJob\` (WorkerUtils).`,
    workloads: ['W1', 'W2', 'W3', 'W4', 'W6'],
    notApplicable: { W5: 'graphile-worker deletes a job when it completes, so it retains no finished rows' },
    async prepare(id) {
      const url = await createDatabase(settings.pgUrl, `bench_${id}`);
      const u = await utils({ url } as StoreTarget);
      try {
        await u.migrate();
      } finally {
        await u.release();
      }
      return { system: 'graphile', url, prefix: '', queue: TASK, options: {} };
    },
    async destroy(target) {
      await dropDatabase(settings.pgUrl, target.url);
    },
    async producer(target): Promise<Producer> {
      const u = await utils(target);
      return {
        enqueueBulk: async (payloads) => {
          await u.addJobs(payloads.map((payload) => ({ identifier: TASK, payload })));
        },
        enqueueOne: async (payload) => {
          await u.addJob(TASK, payload);
        },
        remaining: () => u.withPgClient(async (client) => Number((await client.query('SELECT count(*) AS n FROM graphile_worker._private_jobs')).rows[0].n)),
        close: () => u.release() as Promise<void>,
      };
    },
    async startWorker(target, spec: WorkerSpec): Promise<RunningWorker> {
      const runner = await run({
        connectionString: target.url,
        concurrency: spec.concurrency,
        noHandleSignals: true,
        logger: silent,
        taskList: { [TASK]: async (payload) => spec.onJob(payload as BenchPayload) },
        preset: { worker: { localQueue: { size: 500 }, completeJobBatchDelay: 0, failJobBatchDelay: 0 } },
      });
      return { stop: () => runner.stop() };
    },
  };
}
