/**
 * Lets the machine settle before a measured repetition: what the previous system left running in the background
 * (PostgreSQL's checkpointer writing its dirty pages, autovacuum on the rows it deleted, Redis persisting) would
 * otherwise land on the next system's measurement. On 2 cores that made the same system's drain vary by a
 * quarter depending on which system ran before it.
 * @module
 */
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';

/** CPU idle share over a sampling window at which the machine counts as settled. */
const IDLE_SHARE = 0.85;
const WINDOW_MS = 250;
/** Settling never takes longer than this; a machine that is busy on its own is measured busy (and reported so). */
const MAX_WAIT_MS = 10_000;

/** Jiffies of all CPUs from /proc/stat: total and idle (idle + iowait). Null where /proc is not available. */
async function cpuTimes(): Promise<{ total: number; idle: number } | null> {
  try {
    const line = (await readFile('/proc/stat', 'utf8')).split('\n', 1)[0]!;
    const fields = line.trim().split(/\s+/).slice(1).map(Number);
    return { total: fields.reduce((sum, n) => sum + n, 0), idle: fields[3]! + (fields[4] ?? 0) };
  } catch {
    return null;
  }
}

/**
 * Forces a PostgreSQL checkpoint (so no system pays for the previous one's dirty pages), then waits until the
 * CPUs are mostly idle over a {@link WINDOW_MS} window, for at most {@link MAX_WAIT_MS}. Returns the ms waited.
 */
export async function settle(pgUrl: string): Promise<number> {
  const started = performance.now();
  const client = new pg.Client({ connectionString: pgUrl });
  try {
    await client.connect();
    await client.query('CHECKPOINT');
  } finally {
    await client.end().catch(() => {});
  }
  for (;;) {
    const before = await cpuTimes();
    await sleep(WINDOW_MS);
    const after = await cpuTimes();
    if (before === null || after === null) break;
    const total = after.total - before.total;
    if (total <= 0 || (after.idle - before.idle) / total >= IDLE_SHARE) break;
    if (performance.now() - started > MAX_WAIT_MS) break;
  }
  return Math.round(performance.now() - started);
}
