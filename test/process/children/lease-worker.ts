/**
 * A worker process for the crash-rescue test. Job `long`: its first attempt never finishes on its own (it
 * waits until its signal aborts, then rethrows the reason); any later attempt succeeds at once. So a job only
 * completes after a rescue moved it to a second attempt.
 *
 * Runs with the lease, heartbeat and rescue interval from its config; prints `ready` and forwards job and
 * worker events and errors.
 * @module
 */
import { pino } from 'pino';
import { createWarden, defineJob, type Duration } from '../../../src/index.js';
import { type BaseConfig, forwardEvents, readConfig, reportCrashes, send } from './child-common.js';

interface Config extends BaseConfig {
  lease: Duration;
  heartbeat: Duration;
  rescueInterval: Duration;
}

reportCrashes();
const config = readConfig<Config>();

const long = defineJob({
  name: 'long',
  handler: async (_payload, ctx) => {
    send({ type: 'handler', jobId: ctx.job.id, attempt: ctx.attempt, fence: ctx.fence });
    if (ctx.attempt > 1) return;
    await new Promise<never>((_, reject) => {
      if (ctx.signal.aborted) reject(ctx.signal.reason);
      ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason), { once: true });
    });
  },
});

const warden = createWarden({ database: config.url, schema: config.schema, jobs: [long], logger: pino({ level: 'silent' }) });
forwardEvents(warden, ['error', 'job:started', 'job:completed', 'job:failed', 'job:rescued', 'job:stale-write-rejected', 'worker:started']);
await warden.start({ concurrency: 4, lease: config.lease, heartbeat: config.heartbeat, rescueInterval: config.rescueInterval, pollInterval: '200ms' });
send({ type: 'ready', name: config.name, pid: process.pid });
