/**
 * The stored shapes of jobs and attempts, as every driver returns them.
 * See docs/state-machine.md for the states and who moves a job between them.
 * @module
 */

/**
 * Where a job is in its life.
 * - `queued`: waiting to run (due when `runAt` has passed).
 * - `retrying`: an attempt failed or was lost; waiting for its backoff (`runAt`) to run again.
 * - `running`: claimed by a worker that holds its lease.
 * - `completed`: a handler returned successfully. Final.
 * - `dead`: retries exhausted, non-retryable failure, invalid payload or poison. The dead letters. Final unless
 *   an operator retries it.
 * - `cancelled`: an operator cancelled it. Final.
 */
export type JobState = 'queued' | 'retrying' | 'running' | 'completed' | 'dead' | 'cancelled';

/** Every job state, in display order. */
export const JOB_STATES: readonly JobState[] = ['queued', 'retrying', 'running', 'completed', 'dead', 'cancelled'];

/** States in which a job may still run; a dedup `key` is unique among jobs in these states. */
export const ACTIVE_STATES: readonly JobState[] = ['queued', 'retrying', 'running'];

/**
 * How one attempt ended.
 * - `completed`: the handler returned.
 * - `failed`: the handler threw (or the job's name is unknown to the worker).
 * - `timeout`: the handler ran past the job's `timeout`.
 * - `lost`: the worker's lease expired (process died, paused, or lost the database) and the job was rescued.
 * - `aborted`: graceful shutdown ran out of grace time; the job was returned for retry.
 * - `invalid`: the stored payload no longer passed the job's schema; the handler never ran.
 * - `cancelled`: an operator cancelled the job while this attempt was running.
 * - `yielded`: a long iteration saved its checkpoint and handed over to a fresh attempt (its `maxRuntime` passed
 *   or the worker began shutting down). It does not use up an attempt: `maxAttempts` grows by one.
 */
export type AttemptOutcome = 'completed' | 'failed' | 'timeout' | 'lost' | 'aborted' | 'invalid' | 'cancelled' | 'yielded';

/** A serializable description of an error, as stored with a job and its attempts. */
export interface ErrorInfo {
  /** The error's class name, e.g. `"TypeError"`. */
  name: string;
  message: string;
  stack?: string;
  /** Schema issues, for `invalid` outcomes. */
  issues?: { message: string; path: (string | number)[] }[];
}

/** A job as stored. */
export interface JobRow {
  /** Database id, as a decimal string (PostgreSQL `bigint` does not fit a JS number in general). */
  id: string;
  name: string;
  queue: string;
  /** The JSON payload, parsed. */
  payload: unknown;
  state: JobState;
  /** Lower runs first. */
  priority: number;
  /** When the job is (or was) due. */
  runAt: Date;
  /** Attempts started so far (incremented by each claim). */
  attempt: number;
  maxAttempts: number;
  /** Times an attempt's lease expired and the job was rescued. */
  lostCount: number;
  /** Incremented by every claim; post-claim writes must present it. 0 before the first claim. */
  leaseToken: number;
  /** Worker id holding the lease, while `running`. */
  leaseWorker: string | null;
  /** When the lease expires (database time), while `running`. */
  leaseExpiresAt: Date | null;
  /** When the current or last attempt started. */
  startedAt: Date | null;
  /** Dedup key, if any. */
  key: string | null;
  /** The last attempt's error, if it failed. */
  lastError: ErrorInfo | null;
  createdAt: Date;
  updatedAt: Date;
  /** When the job reached a final state. */
  finishedAt: Date | null;
  /** The schedule that enqueued this job, if any. */
  scheduleName: string | null;
  /** The schedule tick this job runs for (the trigger time, for a manual trigger). */
  tickAt: Date | null;
  /** The last saved checkpoint (parsed JSON), or null when none was saved. */
  checkpoint: unknown;
  /** Progress saved with the last checkpoint, or null when none was saved. */
  progress: JobProgress | null;
  /** When the last checkpoint was saved. */
  checkpointAt: Date | null;
  /**
   * The trace context of the span that enqueued the job (W3C `traceparent`, `tracestate`), or null when no
   * tracer was active. See docs/observability.md.
   */
  traceContext: Record<string, string> | null;
}

/** How far a checkpointed job has got. */
export interface JobProgress {
  /** Items processed so far, across attempts. */
  done: number;
  /** Items in total, when the source knows it. */
  total: number | null;
}

/** One finished attempt of a job. A running attempt is described by the job row itself. */
export interface AttemptRow {
  jobId: string;
  /** 1-based attempt number. */
  attempt: number;
  leaseToken: number;
  workerId: string | null;
  startedAt: Date | null;
  finishedAt: Date;
  outcome: AttemptOutcome;
  error: ErrorInfo | null;
}

/** The states of jobs not yet ended: waiting (`queued`, `retrying`) or `running`. */
export type ActiveJobState = 'queued' | 'retrying' | 'running';

/**
 * A queue's work not yet done: {@link QueueStats} without the counts of finished jobs, which grow with retention.
 * What `queueActivity` returns, read through the indexes that hold only these jobs.
 */
export interface QueueActivity {
  queue: string;
  paused: boolean;
  counts: Record<ActiveJobState, number>;
  /** Age in ms of the oldest due `queued`/`retrying` job (how far behind the queue is), 0 when none. */
  lagMs: number;
}

/** Counts for one queue. */
export interface QueueStats {
  queue: string;
  paused: boolean;
  counts: Record<JobState, number>;
  /** Age in ms of the oldest due `queued`/`retrying` job (how far behind the queue is), 0 when none. */
  lagMs: number;
}
