/**
 * The SQLite insert algorithm and key bookkeeping. Runs both on the driver's own connection and on an
 * application's `tx` connection (so it cannot depend on the driver instance), always inside a write transaction:
 * the driver's `BEGIN IMMEDIATE`, or the application's. Either way no other writer can enter until it commits,
 * so reading a key's holder in `job_keys` and then inserting (or replacing) and moving the key is atomic.
 * @module
 */
import { KeyConflictError } from '../../errors.js';
import { ACTIVE_STATES, type JobState } from '../../job/job-record.js';
import type { JobInsert, JobInsertResult, UniqueInsert } from '../driver.js';
import { insertedJobRow } from '../inserted-job-row.js';
import { resolveNow, toMs, type Prepare } from './sqlite-exec.js';
import { int, jobId, toJobRow, type DbInt, type JobDbRow } from './sqlite-rows.js';
import * as SQL from './sqlite-sql.js';

/** How a key deduplicates when the insert does not say: among active jobs, no window, never replacing. */
const DEFAULT_UNIQUE: UniqueInsert = Object.freeze({ windowMs: null, states: ACTIVE_STATES, replace: false });

/** Holder states in which `unique.replace` may rewrite the holder: it has not started running. */
const REPLACEABLE_STATES: readonly string[] = ['queued', 'retrying'];

/**
 * Inserts jobs through `prepare` (inside a write transaction) and returns one result per input, in input order.
 * Keyed inputs are processed in ascending key order, as on PostgreSQL where that order prevents deadlocks between
 * concurrent batches (see {@link processingOrder}); several inputs with one key are taken in input order, so the
 * first becomes the holder and the later ones see it.
 */
export function insertJobs(prepare: Prepare, jobs: readonly JobInsert[], nowParam: number | null): JobInsertResult[] {
  const now = resolveNow(prepare, nowParam);
  const results: JobInsertResult[] = new Array<JobInsertResult>(jobs.length);
  for (const index of processingOrder(jobs)) results[index] = insertOne(prepare, jobs[index]!, now);
  return results;
}

/**
 * Input indexes in processing order: unkeyed inputs keep their place, and the keyed inputs, sorted by key (then
 * input order), fill the keyed places. A batch whose keys are already ascending is therefore inserted exactly in
 * input order, and ids follow input order.
 */
export function processingOrder(jobs: readonly JobInsert[]): number[] {
  const keyed = jobs
    .map((_, index) => index)
    .filter((index) => jobs[index]!.key !== null)
    .sort((a, b) => compareKeys(jobs[a]!.key!, jobs[b]!.key!) || a - b);
  let next = 0;
  return jobs.map((job, index) => (job.key === null ? index : keyed[next++]!));
}

/** Plain code-unit order, the same for every key regardless of locale. */
function compareKeys(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * One job: unkeyed, a plain insert. Keyed: read the key's holder; a duplicate returns it (rewritten first when
 * `unique.replace` and it is still waiting), otherwise the job is inserted and becomes the key's holder.
 */
function insertOne(prepare: Prepare, job: JobInsert, now: number): JobInsertResult {
  const values = {
    name: job.name,
    queue: job.queue,
    payload: job.payloadJson,
    priority: job.priority,
    runAt: toMs(job.runAt, 'runAt'),
    delayMs: Math.trunc(job.delayMs),
    maxAttempts: job.maxAttempts,
    key: job.key,
    scheduleName: job.scheduleName ?? null,
    tickAt: toMs(job.tickAt ?? null, 'tickAt'),
    traceContext: job.traceContext ? JSON.stringify(job.traceContext) : null,
    now,
  };
  if (job.key !== null) {
    const unique = job.unique ?? DEFAULT_UNIQUE;
    const holder = prepare(SQL.JOB_KEY_HOLDER).get({ key: job.key }) as JobDbRow | undefined;
    if (holder && isDuplicate(holder, unique, now)) {
      if (unique.replace && REPLACEABLE_STATES.includes(holder.state)) {
        const bind = { id: holder.id, payload: values.payload, runAt: values.runAt, delayMs: values.delayMs, now };
        const replaced = prepare(SQL.JOB_REPLACE).get(bind) as JobDbRow | undefined;
        if (replaced) return { job: toJobRow(replaced), duplicate: true, replaced: true };
      }
      return { job: toJobRow(holder), duplicate: true, replaced: false };
    }
  }
  const id = prepare(SQL.JOB_INSERT).run(values).lastInsertRowid;
  if (job.key !== null) prepare(SQL.JOB_KEY_SET).run({ key: job.key, jobId: id });
  // The statement's due time and creation time, from the same values (`now` is resolved before the insert).
  const runAt = values.runAt ?? now + values.delayMs;
  return { job: insertedJobRow(job, { id: jobId(id), runAt: new Date(runAt), createdAt: new Date(now) }), duplicate: false, replaced: false };
}

/** Whether the key's holder counts as a duplicate: in one of `states` and, with a window, created within it. */
function isDuplicate(holder: JobDbRow, unique: UniqueInsert, now: number): boolean {
  if (!unique.states.includes(holder.state as JobState)) return false;
  return unique.windowMs === null || int(holder.created_at) > now - unique.windowMs;
}

/**
 * Before an operator retry makes a finished keyed job active again (inside the same write transaction): the key
 * must not be held by another active job; then this job becomes its holder, so later inserts deduplicate
 * against it.
 * @throws KeyConflictError when another job in an active state holds the key.
 */
export function takeKeyForRetry(prepare: Prepare, id: DbInt, key: string): void {
  const holder = prepare(SQL.JOB_KEY_HOLDER_STATE).get({ key }) as { job_id: DbInt; state: string | null } | undefined;
  const otherActive =
    holder !== undefined && jobId(holder.job_id) !== jobId(id) && holder.state !== null && ACTIVE_STATES.includes(holder.state as JobState);
  if (otherActive) throw new KeyConflictError(key, jobId(holder.job_id));
  prepare(SQL.JOB_KEY_SET).run({ key, jobId: id });
}
