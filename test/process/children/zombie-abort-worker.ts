/**
 * A worker process for the zombie abort-timing test (`zombie-abort-timing.test.ts`). Job `work` waits for its
 * signal (giving up after `giveUpMs`); the moment the signal aborts it prints `aborted` with the time on the
 * machine's monotonic clock (`monotonic-clock.ts`, the parent's timeline too) and the reason, then returns. Every
 * `jobHeartbeat` the worker makes is timed the same way and printed as `heartbeat` (start, end, stale ids), through
 * the real driver with that one method watched.
 *
 * Once the handler has returned the child stops its worker, prints `report` with the worker counters, closes and
 * exits 0. Forwards job events and errors.
 * @module
 */
import { pino } from 'pino';
import { createDriver } from '../../../src/driver/create-driver.js';
import { createWarden, defineJob, type Duration } from '../../../src/index.js';
import { overrideDriver } from '../../support/override-driver.js';
import { monotonicMs } from './monotonic-clock.js';
import { type BaseConfig, describeError, forwardEvents, readConfig, reportCrashes, send } from './child-common.js';

interface Config extends BaseConfig {
  lease: Duration;
  heartbeat: Duration;
  /** How long the handler waits for its signal before returning on its own (reported as `aborted: false`). */
  giveUpMs: number;
}

reportCrashes();
const config = readConfig<Config>();

const driver = overrideDriver(createDriver({ url: config.url, schema: config.schema }), {
  jobHeartbeat: (real) => async (params) => {
    const startedAt = monotonicMs();
    try {
      const result = await real(params);
      send({ type: 'heartbeat', startedAt, endedAt: monotonicMs(), leases: params.leases.map((l) => l.id), stale: result.stale });
      return result;
    } catch (error) {
      send({ type: 'heartbeat', startedAt, endedAt: monotonicMs(), leases: params.leases.map((l) => l.id), error: describeError(error) });
      throw error;
    }
  },
});

let handlerReturned: () => void = () => {};
const returned = new Promise<void>((resolve) => {
  handlerReturned = resolve;
});

const work = defineJob({
  name: 'work',
  handler: async (_payload, ctx) => {
    try {
      send({ type: 'handler', jobId: ctx.job.id, attempt: ctx.attempt, at: monotonicMs() });
      const aborted = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), config.giveUpMs);
        const onAbort = (): void => {
          // Timed here, synchronously in the abort, not when a poll would next look at the signal.
          const reason = ctx.signal.reason as Error | undefined;
          send({ type: 'aborted', jobId: ctx.job.id, at: monotonicMs(), reason: { name: reason?.name ?? String(reason), message: reason?.message ?? '' } });
          clearTimeout(timer);
          resolve(true);
        };
        if (ctx.signal.aborted) onAbort();
        else ctx.signal.addEventListener('abort', onAbort, { once: true });
      });
      if (!aborted) send({ type: 'gave-up', jobId: ctx.job.id, at: monotonicMs() });
    } finally {
      handlerReturned();
    }
  },
});

const warden = createWarden({ database: driver, jobs: [work], logger: pino({ level: 'silent' }) });
forwardEvents(warden, ['error', 'job:started', 'job:completed', 'job:failed', 'job:stale-write-rejected']);
await warden.start({ concurrency: 2, lease: config.lease, heartbeat: config.heartbeat, rescueInterval: '1h', pollInterval: '200ms' });
const counters = warden.workerCounters!;
send({ type: 'ready', name: config.name, pid: process.pid });

await returned;
await warden.stop();
send({ type: 'report', counters });
await warden.close();
await driver.close();
process.exit(0);
