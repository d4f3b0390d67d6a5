/**
 * A worker process for the exactly-once test. Job `effect` appends `(job_id, worker)` to the `effects` table
 * of the same database through a connection of its own (a separate better-sqlite3 connection, or a `pg` pool
 * writing to `<schema>.effects`), so every execution of a handler leaves one row.
 *
 * Prints `ready` once the worker runs; forwards `error`, `job:failed`, `job:rescued` and
 * `job:stale-write-rejected` events; on SIGTERM stops gracefully, prints `counters` (worker counters and the
 * SQLite driver's `busyRetries`) and exits 0.
 * @module
 */
import Database from 'better-sqlite3';
import pg from 'pg';
import { pino } from 'pino';
import { createWarden, defineJob } from '../../../src/index.js';
import { type BaseConfig, describeError, forwardEvents, readConfig, reportCrashes, send } from './child-common.js';

interface Config extends BaseConfig {
  concurrency: number;
}

reportCrashes();
const config = readConfig<Config>();

let record: (jobId: string) => Promise<void>;
let closeEffects: () => Promise<void>;
if (config.url.startsWith('sqlite:')) {
  const db = new Database(config.url.slice('sqlite:'.length), { timeout: 30_000 });
  // The effects connection commits like the driver does (WAL, no fsync per commit), not slower.
  db.pragma('synchronous = NORMAL');
  const insert = db.prepare('INSERT INTO effects (job_id, worker) VALUES (?, ?)');
  record = async (jobId) => {
    insert.run(BigInt(jobId), config.name);
  };
  closeEffects = async () => {
    db.close();
  };
} else {
  const pool = new pg.Pool({ connectionString: config.url, max: 3 });
  pool.on('error', (error) => send({ type: 'effects-error', error: describeError(error) }));
  const text = `INSERT INTO "${config.schema}".effects (job_id, worker) VALUES ($1, $2)`;
  record = async (jobId) => {
    await pool.query(text, [jobId, config.name]);
  };
  closeEffects = () => pool.end();
}

const effect = defineJob({
  name: 'effect',
  handler: async (_payload, ctx) => {
    await record(ctx.job.id);
  },
});

const warden = createWarden({ database: config.url, schema: config.schema, jobs: [effect], logger: pino({ level: 'silent' }) });
forwardEvents(warden, ['error', 'job:failed', 'job:rescued', 'job:stale-write-rejected']);

await warden.start({ concurrency: config.concurrency, pollInterval: '200ms' });
/** The live counters object of the running worker (updated in place; still readable after stop()). */
const counters = warden.workerCounters!;
let stopping = false;
process.on('SIGTERM', () => {
  if (stopping) return;
  stopping = true;
  void (async () => {
    await warden.stop();
    // Read from the worker's own counters object: after stop() the Warden forgets its worker.
    const busyRetries = (warden.driver as unknown as { busyRetries?: number }).busyRetries ?? null;
    send({ type: 'counters', name: config.name, ...counters, busyRetries });
    await warden.close();
    await closeEffects();
    process.exit(0);
  })();
});
send({ type: 'ready', name: config.name, pid: process.pid });
