/**
 * Batch enqueue for the PostgreSQL driver: unkeyed batches in one `INSERT … SELECT FROM unnest(…)` that also sends
 * the wake-ups; keyed batches through the `job_keys` row locks (`postgres-keys-sql.ts`), deciding each key against
 * its holder. Results come back in input order.
 * @module
 */
import type pg from 'pg';
import { KeyReplaceContentionError } from '../../errors.js';
import { ACTIVE_STATES, type JobRow } from '../../job/job-record.js';
import type { JobInsert, JobInsertResult, UniqueInsert } from '../driver.js';
import { insertedJobRow } from '../inserted-job-row.js';
import type { PostgresKeyStatements } from './postgres-keys-sql.js';
import { compareIds, toJobRow, type PgJobRecord } from './postgres-rows.js';
import type { PostgresStatements } from './postgres-statements.js';

/** Runs one statement on some connection: the pool, a pooled client, or the caller's transaction. */
export type Run = <R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]) => Promise<pg.QueryResult<R>>;

/** The statements the insert path runs. */
export type PostgresInsertStatements = Pick<PostgresStatements, 'jobInsertNotify' | 'jobInsertOneNotify'> &
  Pick<PostgresKeyStatements, 'keyLock' | 'jobInsertRound' | 'keyDuplicates'>;

/** How a key deduplicates when the insert does not say: among active jobs, no window, never replacing. */
const DEFAULT_UNIQUE: UniqueInsert = { windowMs: null, states: ACTIVE_STATES, replace: false };

/**
 * Times in a row a replacing insert may find the waiting holder of one key moved on (claimed, cancelled, discarded)
 * between reading and updating it before giving up. Counted per key: a debounce batch of many keys whose holders a
 * worker claims as it runs misses once per key, which is the ordinary race, not contention. A second miss on one
 * key should not even happen: the update that missed keeps the holder's row locked (PostgreSQL keeps the lock of an
 * UPDATE whose re-check failed) and the key's row is locked too, so the next round sees the holder as it now is. The
 * limit is the safety net that keeps a broken assumption from looping forever.
 */
export const MAX_REPLACE_MISSES = 20;

/** A row of `jobInsertRoundSql`: what happened to one input, then the job's columns and the round's time. */
type RoundRecord = PgJobRecord & { outcome: 'inserted' | 'replaced' | 'duplicate'; ord: string | null; round_now: string };

/**
 * Inserts a batch without keys in one statement that also sends the wake-ups: nothing can conflict, so no
 * transaction around several statements is needed (autocommit on the pool; inside a caller's transaction the
 * wake-ups are delivered at its commit). Results in input order (ids follow input order).
 *
 * A single job may be handed to an idle worker (`jobInsertOneNotifySql`) when `mayHandOff`: only in autocommit,
 * since inside a caller's transaction the registration it takes would stay locked, and the worker's next claim
 * wait, until that transaction ends.
 */
export async function insertUnkeyedJobs(
  run: Run,
  sql: Pick<PostgresStatements, 'jobInsertNotify' | 'jobInsertOneNotify'>,
  channel: string,
  jobs: readonly JobInsert[],
  now: Date | null,
  mayHandOff: boolean,
): Promise<JobInsertResult[]> {
  if (jobs.length === 1) {
    const j = jobs[0]!;
    const { rows } = await run<PgInsertedRecord>(sql.jobInsertOneNotify, [
      j.name, j.queue, j.payloadJson, j.priority, j.delayMs, utcText(j.runAt), j.maxAttempts, j.scheduleName ?? null, utcText(j.tickAt),
      j.traceContext ? JSON.stringify(j.traceContext) : null, utcText(now), channel, mayHandOff,
    ]);
    if (rows.length !== 1) throw new Error(`Expected 1 inserted job, got ${rows.length}`);
    const r = rows[0]!;
    return [r.lease_worker ? handedOff(j, r) : inserted(j, r)];
  }
  const { rows } = await run<PgInsertedRecord>(sql.jobInsertNotify, [...insertParams(jobs, utcText(now)), channel, traceParams(jobs)]);
  if (rows.length !== jobs.length) throw new Error(`Expected ${jobs.length} inserted jobs, got ${rows.length}`);
  // Ids follow input order (the statement inserts `ORDER BY ordinality`).
  rows.sort((a, b) => compareIds(a.id, b.id));
  return jobs.map((j, i) => inserted(j, rows[i]!));
}

/** A row of the unkeyed insert statements: `INSERTED_COLUMNS` but the queue (the single insert: and the lease). */
interface PgInsertedRecord {
  id: string;
  run_at: Date;
  created_at: Date;
  lease_worker?: string | null;
  lease_expires_at?: Date | null;
}

function inserted(job: JobInsert, r: PgInsertedRecord): JobInsertResult {
  return { job: insertedJobRow(job, { id: r.id, runAt: r.run_at, createdAt: r.created_at }), duplicate: false, replaced: false };
}

/** A job the insert handed to an idle worker: as its claim left it (state, attempt, lease), from the insert's row. */
function handedOff(job: JobInsert, r: PgInsertedRecord): JobInsertResult {
  const result = inserted(job, r);
  const row = result.job;
  row.state = 'running';
  row.attempt = 1;
  row.leaseToken = 1;
  row.leaseWorker = r.lease_worker ?? null;
  row.leaseExpiresAt = r.lease_expires_at ?? null;
  row.startedAt = new Date(r.created_at.getTime());
  return result;
}

/**
 * Answers a batch whose every input is a keyed duplicate, in one unlocked read outside any transaction (the
 * common case of a producer re-enqueueing work already pending: no BEGIN, no row lock, no write). Null when any
 * input is unkeyed, repeats a key, asks to replace, or has no duplicate holder: then the locked path decides all.
 */
export async function findAllDuplicates(
  run: Run,
  sql: Pick<PostgresKeyStatements, 'keyDuplicates'>,
  jobs: readonly JobInsert[],
  now: Date | null,
): Promise<JobInsertResult[] | null> {
  const keys = jobs.map((j) => j.key);
  if (keys.some((k) => k === null) || new Set(keys).size !== keys.length) return null;
  const unique = jobs.map((j) => j.unique ?? DEFAULT_UNIQUE);
  if (unique.some((u) => u.replace)) return null;
  const { rows } = await run<PgJobRecord & { ord: string }>(sql.keyDuplicates, [keys, unique.map((u) => u.windowMs), unique.map((u) => u.states.join(',')), now]);
  if (rows.length !== jobs.length) return null;
  const byOrd = new Map(rows.map((r) => [Number(r.ord), r]));
  return jobs.map((_, i) => ({ job: toJobRow(byOrd.get(i + 1)!), duplicate: true, replaced: false }));
}

/**
 * Inserts `jobs` through `run`, which must be inside a transaction (ours or the caller's) when any job has a key:
 * the key locks, the jobs and their wake-ups commit together.
 *
 * A keyed batch first locks every key's `job_keys` row in ascending key order (one statement), so concurrent
 * producers of a key queue behind each other in any number of processes, and two batches sharing keys cannot
 * deadlock. Then rounds of one statement each decide every input against its key's holder and insert, replace or
 * return the holder. A round takes at most one input per key (the next in input order), plus every unkeyed input in
 * the first round: several inputs with one key therefore see the earlier ones as holder, as if inserted one by one.
 * Distinct keys, the common case, take a single round: lock + round, two statements per batch.
 *
 * Every round decides at one time, the call's (driver contract: one `now` per call). At database time (`now`
 * null) that is the first round's statement time, read after the key locks were granted (so a batch that waited
 * for another producer's key counts its window and delay from after the wait), which the round returns and the
 * later rounds get as their `now`: each reading its own statement time, a key repeated in the batch was decided
 * against a later time than its first input, by as long as the earlier rounds took, and could escape a window
 * its first input had just opened. It costs no statement: the time comes back with the first round's rows.
 * @returns One result per input, in input order.
 */
export async function insertJobs(
  run: Run,
  sql: PostgresInsertStatements,
  channel: string,
  jobs: readonly JobInsert[],
  now: Date | null,
): Promise<JobInsertResult[]> {
  if (jobs.length === 0) return [];
  if (jobs.every((j) => j.key === null)) return insertUnkeyedJobs(run, sql, channel, jobs, now, false);

  // Per key, its inputs in input order; the head of each is next.
  const byKey = new Map<string, number[]>();
  const unkeyed: number[] = [];
  for (const [i, job] of jobs.entries()) {
    if (job.key === null) unkeyed.push(i);
    else if (byKey.has(job.key)) byKey.get(job.key)!.push(i);
    else byKey.set(job.key, [i]);
  }
  // Code-unit order is arbitrary but the same in every process, which is all deadlock freedom needs.
  await run(sql.keyLock, [[...byKey.keys()].sort()]);

  const results: (JobInsertResult | undefined)[] = new Array(jobs.length);
  // The call's time as a parameter: the caller's, else (null) the first round's, once it ran.
  let at = utcText(now);
  let round = unkeyed;
  // Per key, in a row: the limit is on one holder changing again and again, not on how many keys a batch has.
  const misses = new Map<string, number>();
  for (;;) {
    for (const queue of byKey.values()) round.push(queue[0]!);
    round.sort((a, b) => a - b);
    const { outcomes, roundNow } = await insertRound(run, sql, channel, round.map((i) => jobs[i]!), at);
    at ??= roundNow;
    for (const [pos, i] of round.entries()) {
      const outcome = outcomes[pos]!;
      if (outcome === null) {
        // The holder moved on before it could be replaced: this input stays first in line for its key (only a
        // replacing keyed input misses).
        const key = jobs[i]!.key!;
        const missed = (misses.get(key) ?? 0) + 1;
        if (missed > MAX_REPLACE_MISSES) throw new KeyReplaceContentionError(key, i, missed);
        misses.set(key, missed);
        continue;
      }
      results[i] = outcome;
      const key = jobs[i]!.key;
      if (key === null) continue;
      misses.delete(key);
      const queue = byKey.get(key)!;
      queue.shift();
      if (queue.length === 0) byKey.delete(key);
    }
    if (byKey.size === 0) return results as JobInsertResult[];
    round = [];
  }
}

/**
 * Runs one round (distinct keys, all locked) at `now` (UTC text, or null for the statement's time) and matches its
 * rows back to `batch`. An outcome is null for an input whose waiting holder changed between the statement's
 * snapshot and its replace: decide it again in the next round. `roundNow` is the time the round used, as text.
 */
async function insertRound(
  run: Run,
  sql: Pick<PostgresKeyStatements, 'jobInsertRound'>,
  channel: string,
  batch: readonly JobInsert[],
  now: string | null,
): Promise<{ outcomes: (JobInsertResult | null)[]; roundNow: string }> {
  const unique = batch.map((j) => (j.key === null ? null : (j.unique ?? DEFAULT_UNIQUE)));
  const { rows } = await run<RoundRecord>(sql.jobInsertRound, [
    ...insertParams(batch, now),
    unique.map((u) => u?.windowMs ?? null),
    unique.map((u) => (u === null ? null : u.states.join(','))),
    unique.map((u) => u?.replace ?? false),
    channel,
    traceParams(batch),
  ]);
  const decided = new Map<number, RoundRecord>();
  const inserted: JobRow[] = [];
  for (const row of rows) {
    if (row.outcome === 'inserted') inserted.push(toJobRow(row));
    else decided.set(Number(row.ord), row);
  }
  // Inserted in input order, so ascending ids line up with the inputs that were not duplicates.
  inserted.sort((a, b) => compareIds(a.id, b.id));
  let next = 0;
  const outcomes = batch.map((_, pos): JobInsertResult | null => {
    const row = decided.get(pos + 1);
    if (!row) {
      const job = inserted[next++];
      if (!job) throw new Error(`Expected ${batch.length} insert results, got fewer rows back`);
      return { job, duplicate: false, replaced: false };
    }
    const job = toJobRow(row);
    if (row.outcome === 'replaced') return { job, duplicate: true, replaced: true };
    // A replacing input's duplicate still waiting means the update's state re-check failed (see the statement).
    if (unique[pos]?.replace && (job.state === 'queued' || job.state === 'retrying')) return null;
    return { job, duplicate: true, replaced: false };
  });
  if (next !== inserted.length) throw new Error(`Expected ${next} inserted jobs, got ${inserted.length}`);
  // Every input yields a row, and a round has at least one input.
  return { outcomes, roundNow: rows[0]!.round_now };
}

/** Each job's trace context as JSON text, or null (migration 0007). */
function traceParams(batch: readonly JobInsert[]): (string | null)[] {
  return batch.map((j) => (j.traceContext ? JSON.stringify(j.traceContext) : null));
}

/** The parameters shared by the insert statements (`$1`…`$11`) for a batch inserted at `now` (UTC text, or null). */
function insertParams(batch: readonly JobInsert[], now: string | null): unknown[] {
  return [
    batch.map((j) => j.name),
    batch.map((j) => j.queue),
    batch.map((j) => j.payloadJson),
    batch.map((j) => j.priority),
    batch.map((j) => j.delayMs),
    batch.map((j) => utcText(j.runAt)),
    batch.map((j) => j.maxAttempts),
    batch.map((j) => j.key),
    batch.map((j) => j.scheduleName ?? null),
    batch.map((j) => utcText(j.tickAt)),
    now,
  ];
}

/**
 * A time as UTC ISO-8601 text for a `timestamptz` parameter. `pg` would write a Date in the process's local time
 * with its offset in whole minutes, which is off by the seconds of a historical local-mean-time offset (a run time
 * in 1850 stored 30 s late in Europe/Amsterdam); the ISO text is exact in every time zone, for every year 1 to
 * 9999 that `buildJobInsert` lets through.
 */
function utcText(time: Date | null | undefined): string | null {
  return time ? time.toISOString() : null;
}
