/**
 * Parameter and row types of the driver's job operations (see `Driver.job*` and `Driver.listen`): inserts, claims
 * and hand-offs, the lease-guarded writes after a claim, rescue and listing. Re-exported by `driver.ts`.
 * @module
 */
import { InvalidOptionError } from '../errors.js';
import type { AttemptOutcome, ErrorInfo, JobRow, JobState } from '../job/job-record.js';

/** A new job to insert. Everything is already validated and encoded by the caller. */
export interface JobInsert {
  name: string;
  queue: string;
  /** The payload as JSON text (already checked to be JSON and within the size limit). */
  payloadJson: string;
  priority: number;
  /** Delay from `now` before the job is due, in ms. 0 = due now. Ignored when `runAt` is set. */
  delayMs: number;
  /** Absolute due time; when set, overrides `delayMs`. */
  runAt: Date | null;
  maxAttempts: number;
  key: string | null;
  /**
   * How `key` deduplicates. Absent or null: among jobs in `ACTIVE_STATES`, with no time window, never replacing.
   * Ignored when `key` is null. @default null
   */
  unique?: UniqueInsert | null;
  /** The schedule enqueuing this job (schedule writes only). @default null */
  scheduleName?: string | null;
  /** The tick it runs for (schedule writes only). @default null */
  tickAt?: Date | null;
  /**
   * The producer's trace context (W3C `traceparent`/`tracestate` headers), stored with the job so each attempt's
   * consumer span links to it. Kept as it is by a replacing duplicate (the holder keeps its own). @default null
   */
  traceContext?: Record<string, string> | null;
}

/**
 * Deduplication of a keyed insert. The driver serializes inserts of one key through the `job_keys` table (one
 * row per key, locked for the rest of the transaction), so concurrent producers in any number of processes see
 * each other. The key's current holder is a duplicate when its state is in `states` and, with a window, it was
 * created less than `windowMs` before `now`; otherwise the new job is inserted and becomes the holder.
 */
export interface UniqueInsert {
  /** The window from the holder's `created_at`; null = no time limit. */
  windowMs: number | null;
  /** States in which the holder counts as a duplicate. Never empty. */
  states: readonly JobState[];
  /**
   * Debounce: when the holder is a duplicate and still waiting (`queued` or `retrying`), set its payload to
   * this insert's `payloadJson` and its `run_at` to this insert's due time (`updated_at = now`).
   */
  replace: boolean;
}

export interface JobInsertManyParams {
  jobs: JobInsert[];
  now: Date | null;
  /**
   * The application's own transaction to insert through: a `pg` client with an open transaction, or a
   * better-sqlite3 `Database` inside a transaction on the same file. When absent the driver uses its own
   * connection in its own transaction.
   */
  tx?: unknown;
}

/** Result for one inserted job, in the order given. */
export interface JobInsertResult {
  job: JobRow;
  /** True when the key's holder was a duplicate, and that job is returned instead. */
  duplicate: boolean;
  /** True when the duplicate was a waiting job whose payload and due time were replaced (`unique.replace`). */
  replaced: boolean;
}

export interface JobClaimParams {
  /** Claim only from these queues. Paused queues are never claimed from. */
  queues: string[];
  /** Claim at most this many. */
  limit: number;
  workerId: string;
  /** The lease length; `lease_expires_at = now + leaseMs`. */
  leaseMs: number;
  now: Date | null;
  /**
   * Only with `capabilities.handoff`, from a worker whose `listen` holds its `handoff` subscription: when this claim
   * finds fewer due jobs than `limit`, the worker is registered as waiting for `slots` (its free handlers) minus
   * the jobs claimed and the jobs handed to it not yet `received`, until `expiresInMs` from now, and enqueues hand it
   * due jobs of these queues directly; a claim that finds `limit` jobs (or leaves no slot) sets its slots to 0. Ignored by drivers without the
   * capability. Absent: the registration is left as it is.
   */
  handoff?: {
    slots: number;
    expiresInMs: number;
    /** How many jobs the worker has received by hand-off so far: those handed and not yet received take slots. */
    received: number;
  };
}

/** What {@link Driver.listen} reports to. */
export interface ListenParams {
  /** Jobs may be due in `queue` (PostgreSQL), or another connection committed (SQLite, `queue` undefined). */
  onWake: (queue?: string) => void;
  /** The subscription's connection was lost and is back: wake-ups (and hand-offs) sent meanwhile were missed. */
  onReconnect: () => void;
  onError: (error: unknown) => void;
  /**
   * Only with `capabilities.handoff`: receive the jobs enqueues hand to `workerId` (each already leased to it, as
   * a claim returns it, with the registration's slots left after it; the notification carries its row on a
   * channel private to the worker, or names a row too large to carry and the driver reads it). While the
   * subscription's connection is up it holds the worker's hand-off lock, without which no job is handed to the
   * worker.
   */
  handoff?: {
    workerId: string;
    onJob: (row: JobRow, slotsLeft: number) => void;
    /**
     * The job `jobId` handed to the worker could not be read, so it is never passed to `onJob`: the read failed (it
     * stays leased to the worker, unreceived), or found it no longer the worker's (cancelled, or handed back by the
     * worker, meanwhile). By id, so a worker that also handed that job back counts the hand-off settled once.
     */
    onMissed: (jobId: string) => void;
  };
}

/** A lease held on a running job. */
export interface JobLease {
  id: string;
  leaseToken: number;
}

export interface JobHeartbeatParams {
  leases: JobLease[];
  leaseMs: number;
  now: Date | null;
}

export interface JobReleaseParams {
  leases: JobLease[];
  now: Date | null;
}

/** Leases of claimed jobs a worker has not started yet, to look up before starting them (`jobLeaseCheck`). */
export interface JobLeaseCheckParams {
  leases: JobLease[];
}

/**
 * Of the leases asked about, in request order: `stale`, those no longer held (the job is not `running` under that
 * lease token: cancelled, rescued, handed back, or not a job); `paused`, those held whose queue is paused. A lease in
 * neither list is held and its queue not paused.
 */
export interface JobLeaseCheckResult {
  stale: string[];
  paused: string[];
}

/**
 * A `jobLeaseCheck` answer from the leases asked about and the held ones the database found (`id` as the database
 * writes it, so a lease whose id was written otherwise, `0042`, matches nothing and is stale), in request order.
 */
export function leaseCheckResult(leases: readonly JobLease[], held: readonly (JobLease & { paused: boolean })[]): JobLeaseCheckResult {
  const found = new Map(held.map((h) => [h.id, h]));
  const result: JobLeaseCheckResult = { stale: [], paused: [] };
  for (const lease of leases) {
    const row = found.get(lease.id);
    if (row?.leaseToken !== lease.leaseToken) result.stale.push(lease.id);
    else if (row.paused) result.paused.push(lease.id);
  }
  return result;
}

/**
 * Which leases were written (renewed, ended or released: `applied`) and which were stale (lost: expired and
 * rescued, cancelled, or taken over). Every lease is in one of the two, except from `jobHeartbeat` on PostgreSQL: a
 * held lease whose row another transaction holds locked is skipped, in neither list (neither applied nor stale), and
 * renewed at the next beat.
 */
export interface JobLeaseResult {
  applied: string[];
  stale: string[];
}

/** How one attempt ends, and where its job goes next. */
export interface JobFinish extends JobLease {
  outcome: AttemptOutcome;
  /** `completed`, `dead`, or back to `retrying`/`queued` to run again after `retryDelayMs`. */
  state: Extract<JobState, 'completed' | 'dead' | 'retrying' | 'queued'>;
  /** For `retrying`/`queued`: `run_at = now + retryDelayMs`. */
  retryDelayMs: number;
  error: ErrorInfo | null;
  /**
   * `max_attempts = max_attempts + 1`, so this attempt does not use up the retry budget (outcome `yielded`:
   * a long iteration checkpointed and handed over to a fresh attempt). @default false
   */
  extendAttempts?: boolean;
}

export interface JobFinishManyParams {
  items: JobFinish[];
  now: Date | null;
  /**
   * The application's transaction to apply the endings in (`Driver.transaction`'s handle, or one the
   * application opened on the same database): they commit or roll back with the application's writes.
   * @default the driver's own connection and transaction
   */
  tx?: unknown;
}

/** A memoized step's result, written by the attempt holding the lease. */
export interface JobStepRecordParams extends JobLease {
  /** Step name, unique per job. */
  name: string;
  /** The result as JSON text; null when the step returned `undefined`. */
  resultJson: string | null;
  /** The attempt that ran the step. */
  attempt: number;
  now: Date | null;
  /** As in {@link JobFinishManyParams.tx}. */
  tx?: unknown;
}

/** One recorded step. */
export interface JobStepRow {
  jobId: string;
  name: string;
  /** The parsed result; `undefined` when the step returned nothing. */
  result: unknown;
  attempt: number;
  leaseToken: number;
  createdAt: Date;
}

/** A checkpoint of a long job, written by the attempt holding the lease. */
export interface JobCheckpointParams extends JobLease {
  /** The checkpoint as JSON text (already size-checked). */
  checkpointJson: string;
  /** Items processed so far, across attempts. */
  progressDone: number;
  /** Items in total, when known. */
  progressTotal: number | null;
  now: Date | null;
  /** As in {@link JobFinishManyParams.tx}. */
  tx?: unknown;
}

/** Whether a lease-guarded write was applied, or refused because the lease was no longer held. */
export type GuardedWriteResult = 'applied' | 'stale';

export interface JobRescueParams {
  /** A job lost this many times is dead-lettered as poison instead of retried. */
  maxLost: number;
  /** Rescue at most this many per call. */
  limit: number;
  now: Date | null;
}

/** A job whose expired lease was rescued, and the state it went to. */
export interface RescuedJob {
  id: string;
  name: string;
  queue: string;
  attempt: number;
  leaseToken: number;
  state: 'retrying' | 'dead';
}

export interface JobListParams {
  state?: JobState;
  queue?: string;
  name?: string;
  /** A whole number; the drivers clamp it to 1..{@link JOB_LIST_MAX_LIMIT}. @default {@link JOB_LIST_DEFAULT_LIMIT} */
  limit?: number;
  /** Only ids below this (paging backwards from newest): a job id as {@link isJobIdText} accepts it. */
  beforeId?: string;
}

/**
 * The jobs of `ids` (`jobGetMany`): at most {@link JOB_GET_MANY_MAX_IDS} ids, a longer list is refused rather than
 * cut short; callers with more split them. An id that is not a job id as `jobGet` reads it, or names no job, has no
 * row; a repeated id has one.
 */
export interface JobGetManyParams {
  ids: readonly string[];
}

/** How many jobs a listing returns when no `limit` is given. */
export const JOB_LIST_DEFAULT_LIMIT = 50;

/** The most jobs one listing returns. */
export const JOB_LIST_MAX_LIMIT = 1_000;

/** The largest job id either database can hold: the signed 64-bit maximum (PostgreSQL `bigint`, SQLite `INTEGER`). */
export const MAX_JOB_ID = 9223372036854775807n;

/** What an `InvalidOptionError` for a job id cursor says was expected. */
export const JOB_ID_EXPECTED = `a job id (a decimal string of a whole number from 1 to ${MAX_JOB_ID}, without leading zeros)`;

/** A job id as the databases write it: decimal digits, no sign, no leading zero, no blanks. */
const JOB_ID_TEXT = /^[1-9][0-9]{0,18}$/;

/**
 * Whether `value` is a job id written as both drivers return ids: a string of decimal digits without sign, blanks or
 * leading zeros, of a positive whole number no larger than {@link MAX_JOB_ID}. `'007'` is not one: the contract's
 * ids have no leading zeros (`jobGet({ id: '0042' })` names no job), so such a text is a caller's mistake.
 */
export function isJobIdText(value: unknown): value is string {
  return typeof value === 'string' && JOB_ID_TEXT.test(value) && BigInt(value) <= MAX_JOB_ID;
}

/** The `limit` and `beforeId` of a listing as both drivers apply them. */
export interface JobListBounds {
  /** 1..{@link JOB_LIST_MAX_LIMIT}. */
  limit: number;
  /** The exclusive upper bound on ids (a valid id), or null for none. */
  beforeId: string | null;
}

/**
 * The bounds of a `jobList`, decided here once for both drivers so they page alike. `warden.jobs.list` has already
 * refused every value it does not accept (`JobOperations.list`); this is for the driver's direct callers: a whole
 * `limit` is clamped to 1..{@link JOB_LIST_MAX_LIMIT} (the contract's "at most 1,000"), absent it is
 * {@link JOB_LIST_DEFAULT_LIMIT}. Anything that is no whole number, and a `beforeId` that is not a job id, is
 * refused rather than read as some other bound: a cursor taken for "no bound" would restart the listing from the
 * newest job, and a pager would repeat rows.
 * @throws InvalidOptionError for a `limit` that is not a whole number or a `beforeId` that {@link isJobIdText} refuses.
 */
export function jobListBounds(params: Pick<JobListParams, 'limit' | 'beforeId'>): JobListBounds {
  const { limit = JOB_LIST_DEFAULT_LIMIT, beforeId } = params;
  if (!Number.isInteger(limit)) throw new InvalidOptionError('limit', limit, `a whole number from 1 to ${JOB_LIST_MAX_LIMIT}`);
  if (beforeId !== undefined && !isJobIdText(beforeId)) throw new InvalidOptionError('beforeId', beforeId, JOB_ID_EXPECTED);
  return { limit: Math.min(JOB_LIST_MAX_LIMIT, Math.max(1, limit)), beforeId: beforeId ?? null };
}
