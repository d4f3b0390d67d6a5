import type { AlertRow } from '../driver/alert-params.js';
import type { AttemptOutcome, ErrorInfo, JobState } from '../job/job-record.js';

/** The identity of a job in events. */
export interface JobRef {
  id: string;
  name: string;
  queue: string;
  /** The schedule that enqueued the job, when known (attempt and schedule events carry it). */
  scheduleName?: string | null;
}

/**
 * Every event Warden emits, by name. Logs, metrics, alerts and the audit trail subscribe to these; so can
 * users (`warden.events.on("job:dead", …)`). Listeners run synchronously (an async one is not awaited) and should
 * not fail: a listener that throws, or whose promise rejects, is reported as an `error` event (context
 * `listener of <event>`) and never breaks the worker.
 */
export interface WardenEventMap {
  /**
   * A job was inserted by this process, or an enqueue of this process found a job holding the same unique key
   * (`duplicate`: that job, not a new one). `replaced`: the duplicate was a waiting job that took this enqueue's
   * payload and due time; a duplicate not replaced changed nothing. Enqueues, schedule ticks and triggers alike: a
   * tick or trigger deduplicated on its key (recorded `skipped`, reason `duplicate`) emits it with
   * `duplicate: true, replaced: false`, then `schedule:skipped`. `job` and `runAt` describe the job that was found or
   * inserted: for a duplicate, the holder as it is stored (its own name, queue and due time; a key is shared by
   * every job, so the holder may be in another queue). With `inTransaction`, the insert went through the
   * application's transaction and exists only if that transaction commits.
   */
  'job:enqueued': {
    job: JobRef;
    duplicate: boolean;
    replaced: boolean;
    runAt: Date;
    inTransaction: boolean;
    /** PostgreSQL hand-off: the id of the idle worker the job was handed to, inserted `running` under its lease. */
    handedTo?: string;
  };
  /** An attempt started in this process. */
  'job:started': { job: JobRef; attempt: number; leaseToken: number; workerId: string };
  /** An attempt completed and its completion was committed. */
  'job:completed': { job: JobRef; attempt: number; durationMs: number };
  /** An attempt failed (any outcome other than completed); `nextState` says where the job went. */
  'job:failed': { job: JobRef; attempt: number; outcome: AttemptOutcome; error: ErrorInfo; nextState: JobState; durationMs: number };
  /** A failed attempt will be retried after `delayMs`. */
  'job:retry-scheduled': { job: JobRef; attempt: number; delayMs: number };
  /** A job reached the dead letters. */
  'job:dead': { job: JobRef; attempt: number; reason: AttemptOutcome; error: ErrorInfo | null };
  /** A job whose lease expired was rescued by this process. */
  'job:rescued': { job: JobRef; attempt: number; nextState: 'retrying' | 'dead' };
  /** A write by an attempt that no longer held its lease was rejected (0 rows changed). */
  'job:stale-write-rejected': { jobId: string; leaseToken: number; write: 'heartbeat' | 'finish' | 'step' | 'checkpoint' };
  /**
   * A memoized step finished in this process: `replayed` when its result was recorded by an earlier attempt and
   * the step's function did not run again.
   */
  'job:step': { job: JobRef; attempt: number; step: string; replayed: boolean; durationMs: number };
  /** A long job saved a checkpoint (`ctx.iterate`). */
  'job:checkpointed': { job: JobRef; attempt: number; done: number; total: number | null };
  /**
   * An iteration saved its checkpoint and handed over to a fresh attempt (its `maxRuntime` passed, or the worker
   * began shutting down). The job is queued again and this attempt does not count against `maxAttempts`.
   */
  'job:yielded': { job: JobRef; attempt: number; reason: 'max-runtime' | 'shutdown'; done: number; durationMs: number };
  /**
   * An operator cancelled, retried or discarded a job through this process. `before` is the state read just
   * before the action (null if the job could not be read), `after` the state it left (null: discarded).
   */
  'job:operator-action': { jobId: string; job: JobRef | null; action: 'cancel' | 'retry' | 'discard'; actor: string; reason: string | null; before: JobState | null; after: JobState | null };
  /** A queue was paused or resumed through this process. */
  'queue:paused': { queue: string; actor: string; reason: string | null };
  'queue:resumed': { queue: string; actor: string; reason: string | null };
  /** The worker started claiming. */
  'worker:started': { workerId: string; queues: string[]; concurrency: number };
  /** The worker began shutting down: no more claims. */
  'worker:draining': { workerId: string; inFlight: number };
  /** The worker stopped; `aborted` jobs were returned for retry after the grace period. */
  'worker:stopped': { workerId: string; aborted: number };
  /** A batch of claims came back (useful for tests and tracing the claim loop). */
  'worker:claimed': { workerId: string; count: number };
  /**
   * A tick's run was enqueued (`late`: standing in for missed ticks; `actor`: the operator of a manual trigger, null
   * for a scheduled tick). `replaced`: no new job; the tick's job was deduplicated on a unique key that replaces a
   * waiting holder, so `jobId` is that existing job, which now runs with this tick's payload and due time. The tick
   * row says `fired` with that job either way.
   */
  'schedule:fired': { schedule: string; tickAt: Date; jobId: string; job: JobRef; late: boolean; actor: string | null; replaced: boolean };
  /**
   * A tick enqueued nothing; its tick row says `skipped`. `reason` `overlap`: a scheduled tick held back by the
   * overlap policy, because a run of the schedule was still waiting or running (`activeJobId` null: the policy
   * looks at all of them). `duplicate`: the tick's job was deduplicated on its unique key against the active job
   * `activeJobId` (a scheduled tick, or a manual trigger when `actor` is set). `actor`: the operator of a manual
   * trigger, null for a scheduled tick.
   */
  'schedule:skipped': { schedule: string; tickAt: Date; reason: 'overlap' | 'duplicate'; activeJobId: string | null; actor: string | null };
  /**
   * Ticks were missed: no scheduler ran within their grace, and the misfire policy did not run them. `count` is 1
   * for a listed tick; a long outage's older ticks come as one event from `tickAt` with their (for cron, estimated)
   * count, and have no tick rows.
   */
  'schedule:missed': { schedule: string; tickAt: Date; count: number };
  /** Overlap `replace` cancelled the previous run(s). */
  'schedule:replaced': { schedule: string; tickAt: Date; cancelledJobIds: string[] };
  /** A schedule was paused, resumed or triggered by an operator. */
  'schedule:operator-action': { schedule: string; action: 'pause' | 'resume' | 'trigger'; actor: string; reason: string | null };
  /** This process's clock differs from the database's by more than the warning threshold. */
  'clock:skew': { skewMs: number; thresholdMs: number };
  /** A lease lock was granted to this process. */
  'lock:acquired': { name: string; token: number; holder: string };
  /** A lease lock held by this process was lost (renewal refused, expired unrenewed). */
  'lock:lost': { name: string; token: number; reason: string };
  /** A lease lock was released by this process. */
  'lock:released': { name: string; token: number };
  /**
   * This instance opened an alert (a new key, or a resolved one again) and queued its notices; of several instances
   * evaluating the same rule, only the one whose write opened it emits this.
   */
  'alert:opened': { alert: AlertRow };
  /** This instance resolved an open alert and queued its resolve notices (exactly one instance emits it). */
  'alert:resolved': { alert: AlertRow };
  /**
   * A retention pass of this instance finished (it held the retention lock): jobs deleted per final state,
   * orphaned dedup keys freed and old schedule ticks deleted. `complete` is false when it stopped early (stop,
   * lost lock, per-pass cap) and the rest waits for the next pass.
   */
  'retention:pruned': { jobs: { completed: number; dead: number; cancelled: number }; keys: number; ticks: number; durationMs: number; complete: boolean };
  /** An internal error that Warden survived (database unreachable, listener lost, an event listener that failed, …). */
  error: { error: unknown; context: string };
}

/** An event name. */
export type WardenEventName = keyof WardenEventMap;
