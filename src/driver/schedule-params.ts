/**
 * Parameter and row types of the driver's schedule operations (see `Driver.schedule*` and docs/driver-contract.md),
 * and the rules both drivers share: the outcome of a tick's insert ({@link tickOutcome}) and the `limit` of a tick
 * listing ({@link tickListLimit}, also of `scheduleTicksAfter`).
 * @module
 */
import { InvalidOptionError } from '../errors.js';
import type { JobState } from '../job/job-record.js';
import type { JobInsert } from './driver.js';

/** A schedule as defined in code, for {@link ScheduleSyncParams}. */
export interface ScheduleSyncItem {
  name: string;
  /** Changes whenever what fires, or when, changes. */
  definitionHash: string;
  /**
   * The definition as JSON text (`ScheduleSpec`), for operators and display. Its `cron`, `everyMs` and `timezone`
   * (JSON null or absent when not set) also tell the sync whether a changed definition changed its tick times.
   */
  specJson: string;
  /** The first tick strictly after `now`, used for new, re-added or retimed schedules. */
  firstRunAt: Date | null;
}

/**
 * Sync of the code's schedules. A new name is inserted with `next_run_at = firstRunAt`. A name that was removed is
 * un-removed with `next_run_at = firstRunAt`. A name whose `definitionHash` differs gets the new hash and spec, and
 * `next_run_at = firstRunAt` only when its timing changed; otherwise `next_run_at` is kept, so a due tick stays due
 * and goes to the new definition's misfire policy. The timing is the same when the stored spec and `specJson` have
 * equal `cron` and equal `everyMs`, one of the two set in `specJson`, and for a cron pattern an equal `timezone`
 * (absent and JSON null are alike; a field `specJson` sets that the stored spec lacks counts as a change). The stored
 * spec is compared, not anything only this version writes, because every version writes the spec with `next_run_at`:
 * a row an older version changed during a rolling deploy or a rollback is judged by the timing it was stored with.
 * An unchanged one is left alone (its `next_run_at`, pause state and `updated_at` are kept). With `removeMissing`,
 * active schedules not in the list get `removed_at = now` and stop firing.
 */
export interface ScheduleSyncParams {
  schedules: ScheduleSyncItem[];
  removeMissing: boolean;
  now: Date | null;
}

/** One due tick to write. */
export interface ScheduleTickWrite {
  tickAt: Date;
  /** `fire` enqueues `job` (subject to the overlap fields); `missed` only records the tick. */
  action: 'fire' | 'missed';
  /** A run standing in for missed ticks. */
  late: boolean;
  /** The job to enqueue, with `scheduleName` and `tickAt` set. Null for `missed`. */
  job: JobInsert | null;
  /**
   * Skip (outcome `skipped`, no job id) if a job of this schedule is in one of these states. Empty: never skip.
   * Distinct from a job deduplicated on its unique key, whose `skipped` tick names the active job.
   */
  blockIfActiveIn: JobState[];
  /** Cancel this schedule's queued, retrying and running jobs first (overlap `replace`). */
  cancelActive: boolean;
}

export interface ScheduleAdvanceParams {
  name: string;
  /** The swap only succeeds if the stored definition hash is this one (an older deploy's scan cannot fire it). */
  definitionHash: string;
  /** The swap only succeeds if `next_run_at` still equals this. */
  expectedNextRunAt: Date;
  /** The new `next_run_at`; null when the schedule never fires again. */
  nextRunAt: Date | null;
  ticks: ScheduleTickWrite[];
  now: Date | null;
  /**
   * The scheduler instance writing these ticks, stored on each tick row it writes (`fired_by`), so that after an
   * advance whose reply was lost it can find them ({@link ScheduleTicksWrittenParams}). @default null
   */
  firedBy?: string | null;
}

/**
 * Resume of a schedule (`Driver.scheduleResume`), guarded by the definition its next run was computed from.
 */
export interface ScheduleResumeParams {
  name: string;
  /**
   * The stored definition hash `nextRunAt` was computed from (read with `scheduleGet`). The resume applies only
   * while the stored hash is still this one: a sync that changed the definition since would otherwise get a next
   * run computed from the definition it replaced.
   */
  expectedHash: string;
  /** The new `next_run_at` of a paused schedule (ignored for one not paused); null when it never fires again. */
  nextRunAt: Date | null;
  now: Date | null;
}

/** The scheduled ticks among `tickAts` that `firedBy` wrote (`Driver.scheduleTicksWrittenBy`). */
export interface ScheduleTicksWrittenParams {
  name: string;
  firedBy: string;
  tickAts: Date[];
}

/** A scheduled tick as its writer recorded it. */
export interface ScheduleTickWritten {
  tickAt: Date;
  outcome: 'fired' | 'skipped' | 'missed';
  late: boolean;
  jobId: string | null;
  /**
   * `true` for a `fired` tick whose job is not one it enqueued (its key replaced a waiting holder): told from the
   * job's own schedule and tick. Absent otherwise, and when that job no longer exists.
   */
  replaced?: boolean;
}

/**
 * What happened to one tick. `fired`: its run is job `jobId`, new, or (`replaced`) a waiting job whose payload and
 * due time its unique key replaced. `skipped`: nothing enqueued; `jobId` is the active job its key was deduplicated
 * against, or null when the overlap policy held it back. `missed`: no run.
 */
export interface ScheduleTickResult {
  tickAt: Date;
  outcome: 'fired' | 'skipped' | 'missed';
  late: boolean;
  jobId: string | null;
  /**
   * `true` when the tick's job was deduplicated on a key that replaces a waiting holder: outcome `fired`, `jobId`
   * that holder, which now runs with this tick's payload and due time (no new job). Absent (or false) otherwise.
   */
  replaced?: boolean;
  /** Jobs cancelled by overlap `replace`. */
  cancelledJobIds: string[];
  /** The queue of the job enqueued (or replaced), for wake-ups. */
  queue: string | null;
  /** The tick row already existed: it was handled before (outcome and job are what was stored then). */
  alreadyHandled: boolean;
}

export interface ScheduleAdvanceResult {
  /** False when the compare-and-swap failed and nothing was written. */
  advanced: boolean;
  ticks: ScheduleTickResult[];
}

export interface ScheduleTriggerParams {
  name: string;
  /** The job to enqueue; the driver sets `scheduleName` and `tickAt = now`. */
  job: JobInsert;
  actor: string;
  now: Date | null;
  /**
   * The schedule's definition, stored first (as a first sync would) when no row of that name exists yet, so a
   * schedule defined in code can be triggered before any scheduler ran. A removed schedule stays removed: its row
   * exists, so the trigger fails with `ScheduleNotFoundError` as without this. @default null
   */
  define?: ScheduleSyncItem | null;
}

/** What `Driver.scheduleTrigger` did. */
export interface ScheduleTriggerResult {
  /** The job enqueued, or, for a duplicate, the active job its unique key matched. */
  jobId: string;
  /** The triggered tick's time: `now`, or the first free millisecond after it. */
  tickAt: Date;
  /**
   * The job was deduplicated on its unique key against an active one: no new job. Unless `replaced`, nothing
   * runs for this trigger and the tick was recorded `skipped` with that job.
   */
  duplicate: boolean;
  /**
   * A duplicate whose key replaced a waiting holder: that job got this trigger's payload and due time, so it runs
   * for this trigger, and the tick was recorded `fired` with it.
   */
  replaced: boolean;
}

/** A stored tick. */
export interface ScheduleTickRow {
  scheduleName: string;
  tickAt: Date;
  kind: 'scheduled' | 'triggered';
  outcome: 'fired' | 'skipped' | 'missed';
  late: boolean;
  jobId: string | null;
  /** The state of that job now, when it still exists. */
  jobState: JobState | null;
  actor: string | null;
  recordedAt: Date;
}

/**
 * A range of a schedule's `scheduled` ticks, read oldest first (`Driver.scheduleTicksAfter`): those with
 * `after < tick_at <= through`. The missed-run alert reads the ticks after the last success, up to the newest one past
 * its deadline, so its cost is bounded by `limit` however long `expect.within` is and however many ticks are kept.
 */
export interface ScheduleTicksAfterParams {
  name: string;
  /** Exclusive lower bound on `tick_at`; null: from the schedule's oldest tick kept. */
  after: Date | null;
  /** Inclusive upper bound on `tick_at`. */
  through: Date;
  /** Rows at most, read as {@link tickListLimit} reads a tick listing's limit (default 100, clamped to 1..1000). */
  limit?: number;
}

/**
 * A schedule's newest success (`Driver.scheduleLastSuccess`): its newest `fired` tick, scheduled or triggered,
 * whose job completed.
 */
export interface ScheduleLastSuccess {
  /** The tick the run was for: a scheduled tick's time, or a trigger's. */
  tickAt: Date;
  /** The tick's job (`job_id`). */
  jobId: string;
  /** When that job completed. */
  finishedAt: Date;
}

/** A stored schedule. */
export interface ScheduleRow {
  name: string;
  definitionHash: string;
  /** The parsed `specJson`. */
  spec: unknown;
  paused: boolean;
  nextRunAt: Date | null;
  lastTickAt: Date | null;
  /** The newest tick row (by `recorded_at`), with its job's current state. */
  lastTick: ScheduleTickRow | null;
  createdAt: Date;
  updatedAt: Date;
}

/**
 * The outcome of a tick (scheduled or triggered) whose job went through the insert path. Deduplicated on its key
 * against an active job, it is no new run: `skipped`, naming that job. Unless its key replaced a waiting holder's
 * payload and due time: that job now runs this tick's payload, so the tick `fired`, with it.
 */
export function tickOutcome(insert: { duplicate: boolean; replaced: boolean }): 'fired' | 'skipped' {
  return insert.duplicate && !insert.replaced ? 'skipped' : 'fired';
}

/** Tick rows `Driver.scheduleTickList` returns when no `limit` is given. */
export const TICK_LIST_DEFAULT_LIMIT = 100;
/** The most tick rows `Driver.scheduleTickList` returns at once, and the largest limit `warden.schedules.ticks` accepts. */
export const TICK_LIST_MAX_LIMIT = 1000;
/** What a tick listing's `limit` must be, in words for errors. */
export const TICK_LIST_LIMIT_EXPECTED = `a whole number from 1 to ${TICK_LIST_MAX_LIMIT}`;

/**
 * The `limit` of a `scheduleTickList`, decided here once so both drivers read it alike. `warden.schedules.ticks` has
 * already refused every value outside 1..{@link TICK_LIST_MAX_LIMIT}; this is for the driver's direct callers: absent
 * it is {@link TICK_LIST_DEFAULT_LIMIT}, a whole number is clamped to 1..{@link TICK_LIST_MAX_LIMIT}, and anything
 * else (`NaN`, `Infinity`, `2.5`, not a number) is refused rather than read as some other limit.
 * @throws InvalidOptionError for a `limit` that is not a whole number.
 */
export function tickListLimit(limit: number | undefined): number {
  if (limit === undefined) return TICK_LIST_DEFAULT_LIMIT;
  if (!Number.isInteger(limit)) throw new InvalidOptionError('limit', limit, TICK_LIST_LIMIT_EXPECTED);
  return Math.min(TICK_LIST_MAX_LIMIT, Math.max(1, limit));
}
