/**
 * Reading and operating on jobs and queues: `warden.jobs` and `warden.queues`. Objects of arrow functions, so a
 * caller may take one out (`const { retry } = warden.jobs`) and call it on its own. Every operator action is
 * announced with its actor (an event the audit trail records) and returns only once its entry is written.
 * @module
 */
import type { Clock } from '../clock/clock.js';
import type { Driver, JobStepRow } from '../driver/driver.js';
import { isJobIdText, JOB_ID_EXPECTED, JOB_LIST_DEFAULT_LIMIT, JOB_LIST_MAX_LIMIT } from '../driver/job-params.js';
import { InvalidOptionError } from '../errors.js';
import type { TypedEmitter } from '../events/typed-emitter.js';
import type { AttemptRow, JobRow, JobState, QueueActivity, QueueStats } from '../job/job-record.js';
import { JOB_STATES } from '../job/job-record.js';
import { validateName } from '../validation/names.js';

/** Who performs an operator action and why, recorded with it (events, audit trail). */
export interface ActorOptions {
  /** @default "api" */
  actor?: string;
  /** Free text, e.g. a ticket reference. @default none */
  reason?: string;
}

/** What the job and queue operations work with. */
export interface OperationDeps {
  driver: Driver;
  clock: Clock;
  events: TypedEmitter;
  /** Says that `queue` may have due jobs now (this process's worker looks at once). */
  onQueueReady: (queue: string) => void;
  /** Runs after each operator action's event and before it returns: the audit trail's barrier. */
  afterAction: () => Promise<void>;
  /**
   * Runs an operator action (`call`, e.g. `"jobs.retry()"`) on behalf of the Warden: refused with
   * `WardenClosedError` once it is closed, and waited for by its `close()`.
   */
  whileOpen: <T>(call: string, write: () => Promise<T>) => Promise<T>;
}

/** What {@link JobOperations.list} filters and pages by. */
export interface JobListOptions {
  state?: JobState;
  queue?: string;
  name?: string;
  /** At most this many jobs: a whole number from 1 to 1,000. @default 50 */
  limit?: number;
  /** Only jobs with ids below this one: the last id of the page before (see {@link JobOperations.list}). */
  beforeId?: string;
}

/** `warden.jobs`: reading and operating on jobs. Every action is attributed to `actor` in its event. */
export interface JobOperations {
  /** A job by id; null when there is none (or it was deleted). */
  get: (id: string) => Promise<JobRow | null>;
  /**
   * Jobs, newest first, filtered by state, queue and job name, in pages: `limit` jobs at most (a whole number from 1
   * to 1,000; default 50), and with `beforeId` only those with lower ids. Pass the last id of the previous page as
   * `beforeId` to get the next one; an empty page is the end.
   *
   * `beforeId` must be a job id exactly as Warden returns them: a string of decimal digits of a whole number from
   * 1 to 9223372036854775807 (the signed 64-bit maximum), without sign, blanks or leading zeros. Leading zeros are
   * refused, not normalised: no id is ever written with them (`get('007')` finds nothing), so such a cursor did not
   * come from a page and is a caller's mistake. A refused value is never read as "no bound", which would restart
   * the listing from the newest job.
   * @throws InvalidOptionError for an unknown state, a `limit` or `beforeId` outside those ranges (the promise rejects);
   * InvalidNameError for a bad queue or job name
   */
  list: (params?: JobListOptions) => Promise<JobRow[]>;
  /** A job's attempts, oldest first. */
  attempts: (id: string) => Promise<AttemptRow[]>;
  /** The memoized steps a job's attempts recorded (`ctx.step`), oldest first. */
  steps: (id: string) => Promise<JobStepRow[]>;
  /**
   * Runs a `dead` or `retrying` job again, due now, with at least one attempt left.
   * @throws JobNotFoundError, JobStateError, KeyConflictError (its key now held by another active job)
   */
  retry: (id: string, options?: ActorOptions) => Promise<JobRow>;
  /**
   * Cancels a `queued`, `retrying` or `running` job; a running attempt's later writes are rejected (fenced) and its
   * signal aborted at its worker's next heartbeat. @throws JobNotFoundError, JobStateError
   */
  cancel: (id: string, options?: ActorOptions) => Promise<JobRow>;
  /** Deletes a job that is not running, with its attempts; returns the deleted row. @throws JobNotFoundError, JobStateError */
  discard: (id: string, options?: ActorOptions) => Promise<JobRow>;
}

/** `warden.queues`: queue pause state (persisted; honoured by every worker) and counts. */
export interface QueueOperations {
  /** Every queue with its pause flag, a count per state and lag. Reads every job kept, finished ones included. */
  list: () => Promise<QueueStats[]>;
  /**
   * Queues with work not yet done: waiting and running counts, lag and pause flag, without counting finished jobs
   * (cheap however many are kept: for health checks and frequent polling).
   */
  activity: () => Promise<QueueActivity[]>;
  /** Pauses a queue: no worker claims from it until it is resumed. @throws InvalidNameError */
  pause: (queue: string, options?: ActorOptions) => Promise<void>;
  /** Resumes a paused queue. @throws InvalidNameError */
  resume: (queue: string, options?: ActorOptions) => Promise<void>;
}

/** Builds `warden.jobs`. */
export function createJobOperations(deps: OperationDeps): JobOperations {
  const { driver, clock, events, afterAction, whileOpen } = deps;
  /**
   * Runs an operator action, while the Warden is open, and announces it with the state before (read just before;
   * another process may move the job in between) and after.
   */
  const operate = (id: string, action: 'retry' | 'cancel' | 'discard', options: ActorOptions, run: (id: string) => Promise<JobRow>): Promise<JobRow> =>
    whileOpen(`jobs.${action}()`, () => announce(id, action, options, run));
  const announce = async (id: string, action: 'retry' | 'cancel' | 'discard', options: ActorOptions, run: (id: string) => Promise<JobRow>): Promise<JobRow> => {
    const before = await driver.jobGet({ id });
    const row = await run(id);
    const after = action === 'discard' ? null : row.state;
    const job = { id: row.id, name: row.name, queue: row.queue, scheduleName: row.scheduleName };
    events.emit('job:operator-action', { jobId: row.id, job, action, actor: options.actor ?? 'api', reason: options.reason ?? null, before: before?.state ?? null, after });
    await afterAction();
    return row;
  };
  return {
    get: (id) => driver.jobGet({ id: String(id) }),
    // Async, so that a refused option rejects the promise like every other failure instead of throwing at the call.
    list: async (params = {}) => {
      const { state, queue, name, limit = JOB_LIST_DEFAULT_LIMIT, beforeId } = params;
      if (state !== undefined && !JOB_STATES.includes(state)) throw new InvalidOptionError('state', state, `one of ${JOB_STATES.join(', ')}`);
      if (queue !== undefined) validateName('queue', queue);
      if (name !== undefined) validateName('job name', name);
      // Checked here, for both drivers alike, and refused rather than replaced: a limit swapped for a default hides
      // the caller's bug, and a cursor read as "no bound" restarts a pager from the newest job (rows repeat).
      if (!Number.isInteger(limit) || limit < 1 || limit > JOB_LIST_MAX_LIMIT) {
        throw new InvalidOptionError('limit', limit, `a whole number from 1 to ${JOB_LIST_MAX_LIMIT}`);
      }
      if (beforeId !== undefined && !isJobIdText(beforeId)) throw new InvalidOptionError('beforeId', beforeId, JOB_ID_EXPECTED);
      return driver.jobList({ state, queue, name, limit, beforeId });
    },
    attempts: (id) => driver.jobAttemptList({ id: String(id) }),
    steps: (id) => driver.jobStepList({ id: String(id) }),
    retry: async (id, options = {}) => {
      const row = await operate(String(id), 'retry', options, (jobId) => driver.jobRetry({ id: jobId, now: clock.sqlNow() }));
      deps.onQueueReady(row.queue);
      return row;
    },
    cancel: (id, options = {}) => operate(String(id), 'cancel', options, (jobId) => driver.jobCancel({ id: jobId, now: clock.sqlNow() })),
    discard: (id, options = {}) => operate(String(id), 'discard', options, (jobId) => driver.jobDiscard({ id: jobId })),
  };
}

/** Builds `warden.queues`. */
export function createQueueOperations(deps: OperationDeps): QueueOperations {
  const { driver, events, afterAction, whileOpen } = deps;
  return {
    list: () => driver.queueList(),
    activity: () => driver.queueActivity(),
    pause: (queue, options = {}) => whileOpen('queues.pause()', async () => {
      await driver.queuePause({ queue: validateName('queue', queue) });
      events.emit('queue:paused', { queue, actor: options.actor ?? 'api', reason: options.reason ?? null });
      await afterAction();
    }),
    resume: (queue, options = {}) => whileOpen('queues.resume()', async () => {
      await driver.queueResume({ queue: validateName('queue', queue) });
      events.emit('queue:resumed', { queue, actor: options.actor ?? 'api', reason: options.reason ?? null });
      deps.onQueueReady(queue);
      await afterAction();
    }),
  };
}
