/**
 * Parameter and row types of the driver's schedule operations (see `Driver.schedule*` and docs/driver-contract.md).
 * @module
 */
import type { JobState } from '../job/job-record.js';
import type { JobInsert } from './driver.js';

/** A schedule as defined in code, for {@link ScheduleSyncParams}. */
export interface ScheduleSyncItem {
  name: string;
  /** Changes whenever what fires, or when, changes. */
  definitionHash: string;
  /** The definition as JSON text, for operators and display. */
  specJson: string;
  /** The first tick strictly after `now`, used for new, changed or re-added schedules. */
  firstRunAt: Date | null;
}

/**
 * Sync of the code's schedules. A new name is inserted; a name whose hash differs, or that was removed, is updated
 * with `next_run_at = firstRunAt` and un-removed; an unchanged one is left alone (its `next_run_at` and pause state
 * are kept). With `removeMissing`, active schedules not in the list get `removed_at = now` and stop firing.
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
  /** Skip (outcome `skipped`) if a job of this schedule is in one of these states. Empty: never skip. */
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
}

/** What happened to one tick. */
export interface ScheduleTickResult {
  tickAt: Date;
  outcome: 'fired' | 'skipped' | 'missed';
  late: boolean;
  jobId: string | null;
  /** Jobs cancelled by overlap `replace`. */
  cancelledJobIds: string[];
  /** The queue of the job enqueued, for wake-ups. */
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
   * The job was deduplicated on its unique key against an active one: no run was enqueued, and the tick was
   * recorded `skipped` with that job.
   */
  duplicate: boolean;
  /** A duplicate whose key asked to replace a waiting holder: that job got this trigger's payload and due time. */
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
