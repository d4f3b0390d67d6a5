/**
 * A worker process for the metrics crash test: runs job `metered` (`metered-jobs.ts`) with the concurrency, lease
 * and heartbeat of its config and no rescuer of its own (it is the one that will be killed); prints `ready` and
 * forwards `job:started`, `job:completed` and errors.
 * @module
 */
import { pino } from 'pino';
import { createWarden, type Duration } from '../../../src/index.js';
import { type BaseConfig, forwardEvents, readConfig, reportCrashes, send } from './child-common.js';
import { metered } from './metered-jobs.js';

interface Config extends BaseConfig {
  concurrency: number;
  lease: Duration;
  heartbeat: Duration;
}

reportCrashes();
const config = readConfig<Config>();
const warden = createWarden({ database: config.url, schema: config.schema, jobs: [metered], logger: pino({ level: 'silent' }) });
forwardEvents(warden, ['error', 'job:started', 'job:completed']);
await warden.start({ concurrency: config.concurrency, lease: config.lease, heartbeat: config.heartbeat, rescueInterval: '1h', pollInterval: '200ms' });
send({ type: 'ready', name: config.name, pid: process.pid });
