/**
 * Worker of sigkill-soak.test.ts: job `effect` sleeps 10–60 ms (work), then writes one effect row through ctx.transaction,
 * committed with its completion. Prints `ready` once started; on SIGTERM closes and exits 0.
 */
import { pino } from 'pino';
import { createWarden } from '../../../src/client/warden.js';
import { defineJob } from '../../../src/job/define-job.js';
import { forwardEvents, readConfig, reportCrashes, send, type BaseConfig } from './child-common.js';

interface Config extends BaseConfig { concurrency: number }
reportCrashes();
const config = readConfig<Config>();
const sqlite = config.url.startsWith('sqlite:');
const table = sqlite ? 'effects' : `"${config.schema}".effects`;
const insertSql = `INSERT INTO ${table} (job_id, attempt, worker) VALUES (${sqlite ? '?, ?, ?' : '$1, $2, $3'})`;

const effect = defineJob({
  name: 'effect',
  retry: { maxAttempts: 100, backoff: { type: 'fixed', base: 10, jitter: 'none' } },
  handler: async (_payload: { n: number }, ctx) => {
    await new Promise((r) => setTimeout(r, 10 + Math.floor(Math.random() * 50)));
    await ctx.transaction(async (tx) => {
      if (sqlite) (tx as { prepare(sql: string): { run(...args: unknown[]): unknown } }).prepare(insertSql).run(ctx.job.id, ctx.attempt, config.name);
      else await (tx as { query(sql: string, values: unknown[]): Promise<unknown> }).query(insertSql, [ctx.job.id, ctx.attempt, config.name]);
    });
  },
});

const warden = createWarden({ database: config.url, schema: config.schema, jobs: [effect], logger: pino({ level: 'silent' }) });
forwardEvents(warden, ['error']);
await warden.start({ concurrency: config.concurrency, lease: '2s', heartbeat: '500ms', rescueInterval: '250ms', maxLost: 1_000, pollInterval: '100ms' });
let stopping = false;
process.on('SIGTERM', () => {
  if (stopping) return;
  stopping = true;
  void (async () => {
    await warden.close();
    process.exit(0);
  })();
});
send({ type: 'ready', name: config.name, pid: process.pid });
