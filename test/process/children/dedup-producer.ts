/**
 * A producer process for the concurrent-dedup test: `producers` concurrent async producers each enqueue job
 * `dedup-target` with the same `key`, `enqueues` times in a row. No worker runs, so the first job stays queued and
 * every later enqueue must come back as its duplicate.
 *
 * Prints `ready` once its Warden is open (the database connection made); starts producing on SIGUSR1, so every
 * process starts at once; then prints `result`: per producer, how often each job id came back and how many
 * enqueues were not duplicates, plus any errors. Exits 0.
 * @module
 */
import { pino } from 'pino';
import { createWarden, defineJob } from '../../../src/index.js';
import { type BaseConfig, describeError, readConfig, reportCrashes, send } from './child-common.js';

interface Config extends BaseConfig {
  producers: number;
  enqueues: number;
  key: string;
}

reportCrashes();
const config = readConfig<Config>();

const target = defineJob({ name: 'dedup-target', handler: () => undefined });
const warden = createWarden({ database: config.url, schema: config.schema, jobs: [target], logger: pino({ level: 'silent' }) });
// Open the connection before reporting ready, so the start signal finds every process able to write at once.
await warden.driver.dbNow();

// A signal listener does not keep the event loop alive; the interval does, until the start signal.
const keepAlive = setInterval(() => undefined, 1_000);
const go = new Promise<void>((resolve) => process.once('SIGUSR1', () => resolve()));
send({ type: 'ready', name: config.name, pid: process.pid });
await go;
clearInterval(keepAlive);

interface ProducerReport {
  producer: string;
  /** How many enqueues returned each job id. */
  ids: Record<string, number>;
  /** Enqueues that were not duplicates (inserted a job). */
  inserted: number;
  replaced: number;
  errors: Record<string, unknown>[];
}

async function produce(index: number): Promise<ProducerReport> {
  const report: ProducerReport = { producer: `${config.name}/${index}`, ids: {}, inserted: 0, replaced: 0, errors: [] };
  for (let i = 0; i < config.enqueues; i++) {
    try {
      const result = await warden.enqueue(target, { producer: report.producer, i }, { key: config.key });
      report.ids[result.id] = (report.ids[result.id] ?? 0) + 1;
      if (!result.duplicate) report.inserted++;
      if (result.replaced) report.replaced++;
    } catch (error) {
      report.errors.push(describeError(error));
    }
  }
  return report;
}

const started = performance.now();
const reports = await Promise.all(Array.from({ length: config.producers }, (_, i) => produce(i)));
send({ type: 'result', name: config.name, reports, ms: Math.round(performance.now() - started) });
await warden.close();
process.exit(0);
