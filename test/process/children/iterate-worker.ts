/**
 * A worker process for the iteration crash test. Job `sweep` iterates the integers 1..n with `ctx.iterate`: a
 * keyset source of `page` items (`next` = the page's last item, an empty page with `next: null` at the end, the
 * total reported), checkpointed every `every` items. Each batch "processes" its items by appending the range
 * `(attempt, first, last, worker)` to the `processed` table through a plain connection of its own (autocommitted,
 * so a crash never loses a recorded batch), then prints `batch` with the range and pauses `batchDelayMs`.
 *
 * Prints `ready` once the worker runs; forwards job events and errors. The parent kills it with SIGKILL.
 * @module
 */
import Database from 'better-sqlite3';
import pg from 'pg';
import { pino } from 'pino';
import { createWarden } from '../../../src/client/warden.js';
import { defineJob } from '../../../src/job/define-job.js';
import type { Duration } from '../../../src/validation/duration.js';
import { type BaseConfig, forwardEvents, readConfig, reportCrashes, send } from './child-common.js';

interface Config extends BaseConfig {
  n: number;
  page: number;
  every: number;
  lease: Duration;
  heartbeat: Duration;
  rescueInterval: Duration;
  /** A pause after each batch, so the parent's kill lands while the iteration is still well short of its end. */
  batchDelayMs: number;
}

reportCrashes();
const config = readConfig<Config>();

let recordRange: (attempt: number, first: number, last: number) => Promise<void>;
if (config.url.startsWith('sqlite:')) {
  const db = new Database(config.url.slice('sqlite:'.length), { timeout: 10_000 });
  db.pragma('synchronous = NORMAL');
  const insert = db.prepare('INSERT INTO processed (attempt, first, last, worker) VALUES (?, ?, ?, ?)');
  recordRange = async (attempt, first, last) => {
    insert.run(attempt, first, last, config.name);
  };
} else {
  const pool = new pg.Pool({ connectionString: config.url, max: 1 });
  pool.on('error', () => undefined);
  const text = `INSERT INTO "${config.schema}".processed (attempt, first, last, worker) VALUES ($1, $2, $3, $4)`;
  recordRange = async (attempt, first, last) => {
    await pool.query(text, [attempt, first, last, config.name]);
  };
}

const sweep = defineJob({
  name: 'sweep',
  retry: { maxAttempts: 50, backoff: { type: 'fixed', base: 10, jitter: 'none' } },
  handler: async (_payload, ctx) => {
    send({ type: 'handler', attempt: ctx.attempt, checkpoint: ctx.job.checkpoint as never, progress: ctx.job.progress as never });
    const result = await ctx.iterate<number, number>({
      source: (cursor) => {
        const start = (cursor ?? 0) + 1;
        const end = Math.min(config.n, start + config.page - 1);
        const items: number[] = [];
        for (let i = start; i <= end; i++) items.push(i);
        return { items, next: items.length > 0 ? end : null, total: config.n };
      },
      batch: async (items) => {
        const first = items[0]!;
        const last = items[items.length - 1]!;
        await recordRange(ctx.attempt, first, last);
        send({ type: 'batch', attempt: ctx.attempt, first, last });
        await new Promise((resolve) => setTimeout(resolve, config.batchDelayMs));
      },
      checkpointEvery: { items: config.every, seconds: 3_600 },
    });
    send({ type: 'iterated', attempt: ctx.attempt, ...result });
  },
});

const warden = createWarden({ database: config.url, schema: config.schema, jobs: [sweep], logger: pino({ level: 'silent' }) });
forwardEvents(warden, ['error', 'job:started', 'job:completed', 'job:failed', 'job:rescued', 'job:stale-write-rejected']);
await warden.start({ concurrency: 1, lease: config.lease, heartbeat: config.heartbeat, rescueInterval: config.rescueInterval, maxLost: 100, pollInterval: '100ms' });
send({ type: 'ready', name: config.name, pid: process.pid });
