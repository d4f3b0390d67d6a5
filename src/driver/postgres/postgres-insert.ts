/**
 * Batch enqueue for the PostgreSQL driver: one `INSERT … SELECT FROM unnest(…)` per batch, deduplication by
 * the partial unique index on `key`, results matched back to input order, and the wake-up NOTIFY.
 * @module
 */
import type pg from 'pg';
import type { JobRow } from '../../job/job-record.js';
import type { JobInsert, JobInsertResult } from '../driver.js';
import { compareIds, toJobRow, type PgJobRecord } from './postgres-rows.js';
import { NOTIFY_SQL, type PostgresStatements } from './postgres-sql.js';

/** Runs one statement on some connection: the pool, a pooled client, or the caller's transaction. */
export type Run = <R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]) => Promise<pg.QueryResult<R>>;

/**
 * Rounds of insert → read duplicates → insert again before giving up. A second round only happens when a
 * conflicting job finished between the insert and the read, so needing more than a few means something is
 * badly wrong (e.g. one key being enqueued and completed in a tight loop elsewhere).
 */
const MAX_INSERT_ROUNDS = 20;

/**
 * Inserts `jobs` through `run`, which must be inside a transaction (ours or the caller's) so the whole batch
 * and its NOTIFY commit together.
 *
 * A job whose key is held by an active job is skipped by `ON CONFLICT … DO NOTHING` and answered with that
 * job (`duplicate: true`). When the holder finished before it could be read, the key is free again and the
 * job is inserted in another round. Several inputs with one key in a batch: the first wins, the rest are its
 * duplicates. Finally one `pg_notify(channel, queue)` per distinct queue that got a new job.
 * @returns One result per input, in input order.
 */
/**
 * Inserts a batch without keys in one autocommit statement that also sends the wake-ups: nothing can conflict,
 * so no transaction around several statements is needed. Results in input order (ids follow input order).
 */
export async function insertUnkeyedJobs(
  run: Run,
  sql: Pick<PostgresStatements, 'jobInsertNotify'>,
  channel: string,
  jobs: readonly JobInsert[],
  now: Date | null,
): Promise<JobInsertResult[]> {
  const { rows } = await run<PgJobRecord>(sql.jobInsertNotify, [...insertParams(jobs, now), channel]);
  if (rows.length !== jobs.length) throw new Error(`Expected ${jobs.length} inserted jobs, got ${rows.length}`);
  return rows.map(toJobRow).sort((a, b) => compareIds(a.id, b.id)).map((job) => ({ job, duplicate: false }));
}

/** The parameters of the insert statement (`$1`…`$11`) for a batch. */
function insertParams(batch: readonly JobInsert[], now: Date | null): unknown[] {
  return [
    batch.map((j) => j.name),
    batch.map((j) => j.queue),
    batch.map((j) => j.payloadJson),
    batch.map((j) => j.priority),
    batch.map((j) => j.delayMs),
    batch.map((j) => j.runAt),
    batch.map((j) => j.maxAttempts),
    batch.map((j) => j.key),
    batch.map((j) => j.scheduleName ?? null),
    batch.map((j) => j.tickAt ?? null),
    now,
  ];
}

export async function insertJobs(
  run: Run,
  sql: Pick<PostgresStatements, 'jobInsert' | 'jobActiveByKeys'>,
  channel: string,
  jobs: readonly JobInsert[],
  now: Date | null,
): Promise<JobInsertResult[]> {
  const results: (JobInsertResult | undefined)[] = new Array(jobs.length);
  const insertedQueues = new Set<string>();
  let pending = jobs.map((_, i) => i);
  for (let round = 0; pending.length > 0; round++) {
    if (round === MAX_INSERT_ROUNDS) {
      throw new Error(`Expected keyed inserts to settle within ${MAX_INSERT_ROUNDS} rounds, got keys still contended`);
    }
    const batch = pending.map((i) => jobs[i]!);
    const { rows } = await run<PgJobRecord>(sql.jobInsert, insertParams(batch, now));
    const byKey = new Map<string, JobRow>();
    const unkeyed: JobRow[] = [];
    for (const record of rows) {
      const job = toJobRow(record);
      insertedQueues.add(job.queue);
      if (job.key === null) unkeyed.push(job);
      else byKey.set(job.key, job);
    }
    // Ids were drawn in input (ordinality) order, so ascending ids line up with the unkeyed inputs.
    unkeyed.sort((a, b) => compareIds(a.id, b.id));
    let next = 0;
    const taken = new Set<string>();
    const missing: number[] = [];
    for (const i of pending) {
      const key = jobs[i]!.key;
      if (key === null) {
        const job = unkeyed[next++];
        if (!job) throw new Error(`Expected ${batch.length} inserted jobs, got fewer rows back`);
        results[i] = { job, duplicate: false };
        continue;
      }
      const job = byKey.get(key);
      if (!job) {
        missing.push(i);
        continue;
      }
      // The first input with a key inserted it; later inputs with that key in this batch are its duplicates.
      results[i] = { job, duplicate: taken.has(key) };
      taken.add(key);
    }
    if (missing.length === 0) break;
    const keys = [...new Set(missing.map((i) => jobs[i]!.key!))];
    const existing = new Map<string, JobRow>();
    for (const record of (await run<PgJobRecord>(sql.jobActiveByKeys, [keys])).rows) {
      existing.set(record.key!, toJobRow(record));
    }
    // A key whose holder finished before we could read it is free again: those go round once more.
    pending = [];
    for (const i of missing) {
      const job = existing.get(jobs[i]!.key!);
      if (job) results[i] = { job, duplicate: true };
      else pending.push(i);
    }
  }
  if (insertedQueues.size > 0) await run(NOTIFY_SQL, [channel, [...insertedQueues]]);
  return results as JobInsertResult[];
}
