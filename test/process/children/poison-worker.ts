/**
 * Worker of test/process/poison-isolation.test.ts: job `poison` crashes the whole process (process.abort()) 200 ms
 * after it starts; job `innocent` works for {@link INNOCENT_MS} and returns, so every crash catches the innocent
 * jobs running beside it. Prints `ready`, forwards job events.
 */
import { pino } from 'pino';
import { createWarden, defineJob } from '../../../src/index.js';
import { type BaseConfig, forwardEvents, readConfig, reportCrashes, send, sleep } from './child-common.js';

/** Long enough that innocent jobs started beside the poison one are still running when it crashes the process. */
const INNOCENT_MS = 600;

reportCrashes();
const config = readConfig<BaseConfig>();

const poison = defineJob({
  name: 'poison',
  handler: async (_payload, ctx) => {
    send({ type: 'handler', job: 'poison', jobId: ctx.job.id, attempt: ctx.attempt });
    await sleep(200);
    send({ type: 'aborting' });
    process.abort();
  },
});
const innocent = defineJob({
  name: 'innocent',
  handler: async (_payload, ctx) => {
    send({ type: 'handler', job: 'innocent', jobId: ctx.job.id, attempt: ctx.attempt });
    await sleep(INNOCENT_MS, ctx.signal);
  },
});

const warden = createWarden({ database: config.url, schema: config.schema, jobs: [poison, innocent], logger: pino({ level: 'silent' }) });
forwardEvents(warden, ['error', 'job:started', 'job:completed', 'job:failed', 'job:rescued', 'job:dead']);
await warden.start({ concurrency: 8, lease: '1s', heartbeat: '250ms', rescueInterval: '250ms', pollInterval: '100ms' });
send({ type: 'ready', name: config.name, pid: process.pid });
process.on('SIGTERM', () => {
  void warden.close().then(() => process.exit(0));
});
