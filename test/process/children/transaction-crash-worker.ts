/**
 * A worker process for the transactional-completion crash test. Job `effect` completes through `ctx.transaction`,
 * inserting one row `(job_id, attempt, worker)` into the application's `effects` table through the transaction
 * handle. For every job whose id ends in `crashDigit`, on its first attempt, the process kills itself with SIGKILL
 * right after that insert, before the transaction commits (after printing `crashing`).
 *
 * Prints `standby` once loaded and connected, starts its worker on SIGUSR1 and prints `ready`; forwards `error`
 * events; on SIGTERM stops gracefully and exits 0.
 * Started from a bundle (`bundled-child.ts`), since the test starts hundreds of them.
 * @module
 */
import { pino } from 'pino';
import { createWarden } from '../../../src/client/warden.js';
import { defineJob } from '../../../src/job/define-job.js';
import type { Duration } from '../../../src/validation/duration.js';
import { type BaseConfig, forwardEvents, readConfig, reportCrashes, send } from './child-common.js';

interface Config extends BaseConfig {
  concurrency: number;
  lease: Duration;
  heartbeat: Duration;
  rescueInterval: Duration;
  /** Jobs whose id ends in this digit crash on their first attempt. */
  crashDigit: number;
  /**
   * How long the first transaction to reach its crash point waits, open, for others of this process to reach
   * theirs before the process dies (PostgreSQL: several open transactions die together, so fewer processes are
   * started). 0: die at once (SQLite, where one transaction at a time holds the write lock anyway).
   */
  parkMs: number;
}

reportCrashes();
const config = readConfig<Config>();
const sqlite = config.url.startsWith('sqlite:');
const table = sqlite ? 'effects' : `"${config.schema}".effects`;
const insertSql = `INSERT INTO ${table} (job_id, attempt, worker) VALUES (${sqlite ? '?, ?, ?' : '$1, $2, $3'})`;

let dying: NodeJS.Timeout | undefined;
function die(): void {
  process.kill(process.pid, 'SIGKILL');
}

const effect = defineJob({
  name: 'effect',
  retry: { maxAttempts: 100, backoff: { type: 'fixed', base: 10, jitter: 'none' } },
  handler: async (_payload, ctx) => {
    await ctx.transaction(async (tx) => {
      if (sqlite) (tx as { prepare(sql: string): { run(...args: unknown[]): unknown } }).prepare(insertSql).run(ctx.job.id, ctx.attempt, config.name);
      else await (tx as { query(sql: string, values: unknown[]): Promise<unknown> }).query(insertSql, [ctx.job.id, ctx.attempt, config.name]);
      if (ctx.attempt === 1 && Number(BigInt(ctx.job.id) % 10n) === config.crashDigit) {
        // The effect row is written, the transaction is open: die before it commits.
        send({ type: 'crashing', jobId: ctx.job.id });
        if (config.parkMs === 0) die();
        else dying ??= setTimeout(die, config.parkMs);
        await new Promise<never>(() => {});
      }
    });
  },
});

const warden = createWarden({ database: config.url, schema: config.schema, jobs: [effect], logger: pino({ level: 'silent' }) });
forwardEvents(warden, ['error']);
// Stand by, loaded and connected, until the parent needs another worker (SIGUSR1): start-up is most of a short
// life here. The interval keeps the event loop alive meanwhile (a signal listener does not).
await warden.driver.dbNow();
const keepAlive = setInterval(() => undefined, 1_000);
await new Promise<void>((resolve) => {
  process.once('SIGUSR1', () => resolve());
  send({ type: 'standby', name: config.name, pid: process.pid });
});
clearInterval(keepAlive);
await warden.start({
  concurrency: config.concurrency,
  lease: config.lease,
  heartbeat: config.heartbeat,
  rescueInterval: config.rescueInterval,
  maxLost: 1_000,
  pollInterval: '100ms',
});
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
