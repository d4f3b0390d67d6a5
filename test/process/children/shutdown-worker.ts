/**
 * A worker process for the graceful-shutdown tests, in one of two roles:
 * - `main`: installs `handleShutdownSignals(warden)` (the library's own SIGTERM/SIGINT handling). Job `quick`
 *   waits until shutdown begins (`worker:draining`), then 300 ms more honouring its signal, and returns. Job
 *   `hang` ignores its signal and sleeps 60 s.
 * - `rescuer`: both jobs return at once; runs until killed.
 * Prints `ready`, `signal` (when the library's handler sees the first signal) and forwards job and worker events.
 * @module
 */
import { pino } from 'pino';
import { createWarden, defineJob, type Duration, handleShutdownSignals } from '../../../src/index.js';
import { type BaseConfig, forwardEvents, readConfig, reportCrashes, send, sleep } from './child-common.js';

interface Config extends BaseConfig {
  role: 'main' | 'rescuer';
  concurrency: number;
  grace: Duration;
  lease: Duration;
  heartbeat: Duration;
  rescueInterval: Duration;
}

reportCrashes();
const config = readConfig<Config>();

let drainingStarted: () => void = () => {};
const draining = new Promise<void>((resolve) => {
  drainingStarted = resolve;
});

const quick = defineJob({
  name: 'quick',
  handler: async (_payload, ctx) => {
    send({ type: 'handler', job: 'quick', jobId: ctx.job.id, attempt: ctx.attempt });
    if (config.role === 'rescuer') return;
    await draining;
    await sleep(300, ctx.signal);
    send({ type: 'handler-done', job: 'quick', jobId: ctx.job.id });
  },
});

const hang = defineJob({
  name: 'hang',
  handler: async (_payload, ctx) => {
    send({ type: 'handler', job: 'hang', jobId: ctx.job.id, attempt: ctx.attempt });
    if (config.role === 'rescuer') return;
    await sleep(60_000);
    send({ type: 'handler-done', job: 'hang', jobId: ctx.job.id });
  },
});

const warden = createWarden({ database: config.url, schema: config.schema, jobs: [quick, hang], logger: pino({ level: 'silent' }) });
warden.on('worker:draining', () => drainingStarted());
forwardEvents(warden, ['error', 'job:started', 'job:completed', 'job:failed', 'job:rescued', 'job:stale-write-rejected', 'worker:started', 'worker:claimed', 'worker:draining', 'worker:stopped']);
if (config.role === 'main') handleShutdownSignals(warden, { onSignal: (signal) => send({ type: 'signal', signal }) });
await warden.start({
  concurrency: config.concurrency,
  grace: config.grace,
  lease: config.lease,
  heartbeat: config.heartbeat,
  rescueInterval: config.rescueInterval,
  pollInterval: '200ms',
});
send({ type: 'ready', name: config.name, pid: process.pid });
