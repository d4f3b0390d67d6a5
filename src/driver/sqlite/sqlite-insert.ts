/**
 * The SQLite insert algorithm and key bookkeeping. Runs both on the driver's own connection and on an
 * application's `tx` connection (so it cannot depend on the driver instance), always inside a write transaction:
 * the driver's `BEGIN IMMEDIATE`, or the application's. Either way no other writer can enter until it commits,
 * so reading a key's holder in `job_keys` and then inserting (or replacing) and moving the key is atomic.
 * @module
 */
import { ACTIVE_STATES, type JobState } from '../../job/job-record.js';
import type { JobInsert, JobInsertResult, UniqueInsert } from '../driver.js';
import { insertedJobRow } from '../inserted-job-row.js';
import { resolveNow, toMs, type Prepare } from './sqlite-exec.js';
import { int, jobId, toJobRow, type JobDbRow } from './sqlite-rows.js';
import * as SQL from './sqlite-sql.js';

/** How a key deduplicates when the insert does not say: among active jobs, no window, never replacing. */
const DEFAULT_UNIQUE: UniqueInsert = Object.freeze({ windowMs: null, states: ACTIVE_STATES, replace: false });

/** Holder states in which `unique.replace` may rewrite the holder: it has not started running. */
const REPLACEABLE_STATES: readonly string[] = ['queued', 'retrying'];

/**
 * Inserts jobs through `prepare` (inside a write transaction) and returns one result per input, in input order.
 * Inputs are processed in the order of {@link processingOrder}, the order PostgreSQL inserts them in, so a batch gets
 * the same ids, and its jobs are claimed in the same order, on both drivers; several inputs with one key are taken
 * in input order, so the first becomes the holder and the later ones see it.
 */
export function insertJobs(prepare: Prepare, jobs: readonly JobInsert[], nowParam: number | null): JobInsertResult[] {
  const now = resolveNow(prepare, nowParam);
  const results: JobInsertResult[] = new Array<JobInsertResult>(jobs.length);
  for (const index of processingOrder(jobs)) results[index] = insertOne(prepare, jobs[index]!, now);
  return results;
}

/**
 * Input indexes in processing order: PostgreSQL's rounds (`postgres-insert.ts`). The first round is every unkeyed
 * input and the first input of each key, the second round the second input of each key, and so on, each round in
 * input order. Distinct keys, the common case, are one round: input order, and ids follow it.
 *
 * Not in key order, although PostgreSQL locks keys in that order: the lock order only keeps two PostgreSQL batches
 * from deadlocking, and SQLite's single writer cannot deadlock. Outcomes are the same in any order that keeps each
 * key's inputs in input order, since an input is decided against its own key's holder only; the order shows only
 * in the ids, which must match.
 */
export function processingOrder(jobs: readonly JobInsert[]): number[] {
  const seen = new Map<string, number>();
  let repeats = false;
  const round = jobs.map((job) => {
    if (job.key === null) return 0;
    const n = seen.get(job.key) ?? 0;
    seen.set(job.key, n + 1);
    if (n > 0) repeats = true;
    return n;
  });
  const order = jobs.map((_, index) => index);
  // Stable: within a round, input order.
  return repeats ? order.sort((a, b) => round[a]! - round[b]! || a - b) : order;
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
