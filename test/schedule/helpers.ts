/**
 * Shared helpers for the schedule tests: Warden construction on a test database, raw reads of the schedule
 * tables through the process tests' oracle (an independent connection, not the driver under test), and a
 * real-time poll for conditions that settle asynchronously (PostgreSQL round trips).
 *
 * Nothing here replaces a database or a Warden component.
 * @module
 */
import { pino } from 'pino';
import { createWarden, type Warden } from '../../src/client/warden.js';
import type { WardenOptions } from '../../src/client/warden-options.js';
import { defineJob } from '../../src/job/define-job.js';
import type { Oracle } from '../process/db-oracle.js';
import type { TestDatabase } from '../support/test-databases.js';

export { openOracle, type Oracle } from '../process/db-oracle.js';

/** A silent logger for every Warden in these tests. */
export const silent = pino({ level: 'silent' });

/** Fake time start, on a whole hour (so minute and hour boundaries are easy to name), far in the future. */
export const T0 = Date.UTC(2040, 0, 1, 0, 0, 0, 0);
export const MINUTE = 60_000;
export const HOUR = 60 * MINUTE;

/** Real-time bound of any single wait: a guard against hangs, never a way to wait for something. */
export const GUARD_MS = 15_000;

/** A job that does nothing; schedules in these tests enqueue it. */
export const noopJob = defineJob({ name: 'noop-job', handler: () => undefined });

/** Options of {@link makeWarden}: anything but the database, which comes from the test database. */
export type MakeWardenOptions = Omit<WardenOptions, 'database' | 'schema' | 'logger'>;

/** A Warden on `tdb` with its own connections (like another process), with a silent logger. */
export function makeWarden(tdb: TestDatabase, options: MakeWardenOptions = {}): Warden {
  return createWarden({ database: tdb.url, schema: tdb.schema, logger: silent, ...options });
}

/**
 * Polls `condition` (sync or async) in real time until it holds. Fails with `what` after {@link GUARD_MS}.
 * For state that settles asynchronously (a worker claiming, a heartbeat's round trip), never as a sleep.
 */
export async function until(condition: () => boolean | Promise<boolean>, what: string, ms = GUARD_MS): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await condition()) return;
    if (Date.now() > deadline) throw new Error(`Expected ${what} within ${ms}ms of real time, got it still false`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

/** A timestamp column as ms since the epoch: SQLite stores integer ms, PostgreSQL returns a Date. */
export function ms(value: unknown): number {
  if (value instanceof Date) return value.getTime();
  if (typeof value === 'number' || typeof value === 'bigint') return Number(value);
  if (typeof value === 'string') return /^\d+$/.test(value) ? Number(value) : Date.parse(value);
  throw new Error(`Expected a timestamp, got ${String(value)}`);
}

/** ISO strings of `times` (ms), for readable assertion diffs. */
export function iso(times: Iterable<number>): string[] {
  return [...times].map((t) => new Date(t).toISOString());
}

/** One row of `jobs` as the oracle reads it (only the columns these tests look at). */
export interface RawJob {
  id: string;
  state: string;
  scheduleName: string | null;
  tickAt: number | null;
}

/** One row of `schedule_ticks` as the oracle reads it. */
export interface RawTick {
  tickAt: number;
  kind: string;
  outcome: string;
  late: boolean;
  jobId: string | null;
  actor: string | null;
}

/** Every job of a schedule, by id, read by the oracle. */
export async function jobsOf(oracle: Oracle, schedule: string): Promise<RawJob[]> {
  const rows = await oracle.all<Record<string, unknown>>('SELECT id, state, schedule_name, tick_at FROM {jobs} WHERE schedule_name = $1 ORDER BY id', [schedule]);
  return rows.map((r) => ({
    id: String(r.id),
    state: String(r.state),
    scheduleName: r.schedule_name === null ? null : String(r.schedule_name),
    tickAt: r.tick_at === null ? null : ms(r.tick_at),
  }));
}

/** Every tick row of a schedule, oldest first, read by the oracle. */
export async function ticksOf(oracle: Oracle, schedule: string): Promise<RawTick[]> {
  const rows = await oracle.all<Record<string, unknown>>(
    'SELECT tick_at, kind, outcome, late, job_id, actor FROM {schedule_ticks} WHERE schedule_name = $1 ORDER BY tick_at, kind',
    [schedule],
  );
  return rows.map((r) => ({
    tickAt: ms(r.tick_at),
    kind: String(r.kind),
    outcome: String(r.outcome),
    late: r.late === true || r.late === 1 || r.late === 1n,
    jobId: r.job_id === null ? null : String(r.job_id),
    actor: r.actor === null ? null : String(r.actor),
  }));
}

/** Counts of a schedule's jobs in `queued`/`retrying` and `running`, read by the oracle. */
export async function activeCounts(oracle: Oracle, schedule: string): Promise<{ waiting: number; running: number }> {
  const rows = await oracle.all<{ state: string; n: unknown }>(
    "SELECT state, COUNT(*) AS n FROM {jobs} WHERE schedule_name = $1 AND state IN ('queued','retrying','running') GROUP BY state",
    [schedule],
  );
  let waiting = 0;
  let running = 0;
  for (const r of rows) {
    if (r.state === 'running') running += Number(r.n);
    else waiting += Number(r.n);
  }
  return { waiting, running };
}
