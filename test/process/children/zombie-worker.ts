/**
 * A worker process for the zombie (paused worker) test, in one of two roles:
 * - `zombie`, mode `loop` (default): job `work` sleeps in 50 ms steps (up to 200 of them), checking
 *   `ctx.signal` after each; when it finds the signal aborted it reports `handler-aborted` with the reason
 *   and returns, otherwise it reports `handler-finished` and returns. Once the handler has returned the child stops its worker, prints
 *   `report` with the worker counters, closes and exits 0.
 * - `zombie`, mode `release`: job `work` sleeps `releaseAfterMs` in one timer, ignoring its signal, and
 *   returns normally (a handler that finishes after its lease was lost); reported and stopped the same way.
 * - `rescuer`: job `work` returns at once; the child keeps running (rescuing and claiming) until killed.
 * Both forward job events and errors.
 * @module
 */
import { pino } from 'pino';
import { createWarden, defineJob, type Duration } from '../../../src/index.js';
import { type BaseConfig, forwardEvents, readConfig, reportCrashes, send, sleep } from './child-common.js';

interface Config extends BaseConfig {
  role: 'zombie' | 'rescuer';
  /** How the zombie's handler ends: `loop` polls its signal; `release` returns after `releaseAfterMs`. */
  mode?: 'loop' | 'release';
  releaseAfterMs?: number;
  lease: Duration;
  heartbeat: Duration;
  rescueInterval: Duration;
}

reportCrashes();
const config = readConfig<Config>();

let handlerReturned: () => void = () => {};
const returned = new Promise<void>((resolve) => {
  handlerReturned = resolve;
});
let sawAbort: { name: string; message: string; step: number } | null = null;

const work = defineJob({
  name: 'work',
  handler: async (_payload, ctx) => {
    // Armed before the parent hears of this handler, so the timer surely exists when the parent stops us.
    const release = config.role === 'zombie' && config.mode === 'release' ? sleep(config.releaseAfterMs ?? 1_000) : null;
    send({ type: 'handler', role: config.role, jobId: ctx.job.id, attempt: ctx.attempt, fence: ctx.fence });
    if (config.role === 'rescuer') return;
    try {
      if (release) {
        await release;
        const reason = ctx.signal.reason as Error | undefined;
        if (ctx.signal.aborted) sawAbort = { name: reason?.name ?? 'undefined', message: reason?.message ?? '', step: -1 };
        send({ type: 'handler-finished', jobId: ctx.job.id, aborted: ctx.signal.aborted });
        return;
      }
      for (let step = 0; step < 200; step++) {
        await sleep(50);
        if (ctx.signal.aborted) {
          const reason = ctx.signal.reason as Error;
          sawAbort = { name: reason?.name, message: reason?.message, step };
          send({ type: 'handler-aborted', jobId: ctx.job.id, reason: sawAbort });
          return;
        }
      }
      send({ type: 'handler-finished', jobId: ctx.job.id });
    } finally {
      handlerReturned();
    }
  },
});

const warden = createWarden({ database: config.url, schema: config.schema, jobs: [work], logger: pino({ level: 'silent' }) });
forwardEvents(warden, ['error', 'job:started', 'job:completed', 'job:failed', 'job:rescued', 'job:stale-write-rejected', 'worker:started', 'worker:stopped']);
await warden.start({ concurrency: 2, lease: config.lease, heartbeat: config.heartbeat, rescueInterval: config.rescueInterval, pollInterval: '200ms' });
/** The live counters object of the running worker (updated in place; still readable after stop()). */
const counters = warden.workerCounters!;
send({ type: 'ready', name: config.name, pid: process.pid });

if (config.role === 'zombie') {
  await returned;
  // stop() waits for the attempt to settle and its ending (if any) to be written, so the counters are final.
  await warden.stop();
  send({ type: 'report', counters, sawAbort });
  await warden.close();
  process.exit(0);
}
