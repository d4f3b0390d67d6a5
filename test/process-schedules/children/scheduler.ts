/**
 * A scheduler process for the multi-scheduler tests: registers the schedules of its config (each every
 * `every`, overlap `allow`, the given misfire policy and grace, all enqueuing the same job) and runs only the
 * scheduler (`start({ worker: false })`: the jobs stay queued). Prints `ready` once started, forwards schedule
 * events and errors, and on SIGTERM stops gracefully (`warden.close()`), prints `stopped` and exits 0.
 * @module
 */
import { pino } from 'pino';
import { createWarden, defineJob, defineSchedule, type Duration, type MisfirePolicy } from '../../../src/index.js';
import { type BaseConfig, forwardEvents, readConfig, reportCrashes, send } from '../../process/children/child-common.js';

interface Config extends BaseConfig {
  schedules: { name: string; every: Duration; policy: MisfirePolicy; grace: Duration }[];
  scanInterval: Duration;
}

reportCrashes();
const config = readConfig<Config>();

const job = defineJob({ name: 'scheduled-tick', handler: () => undefined });
const schedules = config.schedules.map((s) =>
  defineSchedule({ name: s.name, every: s.every, job, overlap: 'allow', misfire: { policy: s.policy, grace: s.grace } }),
);
const warden = createWarden({
  database: config.url,
  schema: config.schema,
  schedules,
  logger: pino({ level: 'silent' }),
  scheduler: { scanInterval: config.scanInterval },
});
forwardEvents(warden, ['error', 'schedule:fired', 'schedule:missed', 'schedule:skipped', 'clock:skew']);

let stopping = false;
process.on('SIGTERM', () => {
  if (stopping) return;
  stopping = true;
  void (async () => {
    await warden.close();
    send({ type: 'stopped', name: config.name });
    process.exit(0);
  })();
});

await warden.start({ worker: false });
send({ type: 'ready', name: config.name, pid: process.pid });
