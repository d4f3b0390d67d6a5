/**
 * Parameter and row types of the driver's alert operations (see `Driver.alert*`, migration `0006_alerts`).
 * An alert row is keyed by a stable key (`missed-run:<schedule>`, `queue-lag:<queue>`, …) and is either open or
 * resolved; opening an open alert and resolving a resolved one change nothing, which is how every instance can
 * evaluate the same rules while exactly one of them notifies.
 * @module
 */
import { InvalidOptionError } from '../errors.js';
import { isJobIdText, JOB_ID_EXPECTED, jobListBounds } from './job-params.js';

/** The built-in alert rules. */
export type AlertRule =
  | 'dead-letter'
  | 'failure-rate'
  | 'consecutive-failures'
  | 'missed-run'
  | 'run-too-long'
  | 'queue-lag'
  | 'lease-expiry';

/** Every {@link AlertRule}. */
export const ALERT_RULES: readonly AlertRule[] = ['dead-letter', 'failure-rate', 'consecutive-failures', 'missed-run', 'run-too-long', 'queue-lag', 'lease-expiry'];

/** How urgent an alert is: `critical` work was lost or not done; `warning` work is degraded. */
export type AlertSeverity = 'critical' | 'warning';

/** Whether an alert's condition still holds (as last decided by an instance). */
export type AlertState = 'open' | 'resolved';

/** `Driver.alertOpen`: the alert to open under `key` unless it is open. */
export interface AlertOpenParams {
  key: string;
  rule: AlertRule;
  severity: AlertSeverity;
  /** One line for humans, e.g. `schedule "nightly" has had no successful run since …`. */
  summary: string;
  /** The rule's findings as JSON text (already plain JSON). */
  detailsJson: string;
  /** The instance opening it (recorded as `openedBy`). */
  instance: string;
  /**
   * A resolved alert of this key is opened again (a new episode) only if it was resolved at or before this time:
   * the caller's observation began then, so a resolve that happened since is newer than what it saw. Null: no
   * such guard (event-driven rules, which have nothing stale to compare).
   */
  since: Date | null;
  now: Date | null;
  /** Open it inside this transaction (a `Driver.transaction` handle), with the notifications it enqueues. */
  tx?: unknown;
}

/** `Driver.alertResolve`: the open alert to resolve. */
export interface AlertResolveParams {
  key: string;
  /** The details when resolved, as JSON text; null keeps the last ones. */
  detailsJson: string | null;
  /** The instance resolving it (recorded as `resolvedBy`). */
  instance: string;
  /** Only an alert opened at or before this time is resolved (see {@link AlertOpenParams.since}). Null: no guard. */
  since: Date | null;
  now: Date | null;
  /** As in {@link AlertOpenParams.tx}. */
  tx?: unknown;
}

/**
 * The key of the dead-letter alert of a job's attempt: `dead-letter:<jobId>:<attempt>`. Both drivers' `alertDeadJobList`
 * build the same text in SQL to find the dead jobs without one.
 */
export function deadLetterKey(jobId: string, attempt: number): string {
  return `dead-letter:${jobId}:${attempt}`;
}

/** `Driver.alertDeadJobList`: a page of the dead jobs, newest id first. */
export interface AlertDeadJobListParams {
  /** Only jobs with an id below this one (a job id as `isJobIdText` accepts it). @default from the newest */
  beforeId?: string;
  /** Dead jobs in the page; a whole number, clamped to 1..1,000 as `jobList` reads it. @default 50 */
  limit?: number;
}

/** A dead job as `Driver.alertDeadJobList` returns it. */
export interface AlertDeadJob {
  id: string;
  name: string;
  /** The attempt it died at (its `attempt`), the one its dead-letter alert is keyed by. */
  attempt: number;
  /** Whether an alert keyed {@link deadLetterKey} of this id and attempt exists, open or resolved. */
  alerted: boolean;
}

/** `Driver.alertRunningJobList`: running attempts that started at or before a time, oldest start first. */
export interface AlertRunningJobListParams {
  /** Only attempts with `started_at <= startedBefore`. */
  startedBefore: Date;
  /** Only attempts after this one in the order (`started_at`, then id): where the previous page ended. @default from the oldest */
  after?: { startedAt: Date; id: string };
  /** Attempts in the page; a whole number, clamped to 1..1,000 as `jobList` reads it. @default 50 */
  limit?: number;
}

/**
 * The page size and cursor of an `alertRunningJobList` call, alike on both drivers.
 * @throws InvalidOptionError for a `limit` that is not a whole number, a `startedBefore` that is not a valid Date, or an
 * `after` that is not a valid time and job id.
 */
export function runningJobListBounds(params: AlertRunningJobListParams): { limit: number; after: { startedAt: Date; id: string } | null } {
  const { limit } = jobListBounds({ limit: params.limit });
  if (!(params.startedBefore instanceof Date) || Number.isNaN(params.startedBefore.getTime())) throw new InvalidOptionError('startedBefore', params.startedBefore, 'a valid Date');
  const after = params.after ?? null;
  if (after !== null && (!(after.startedAt instanceof Date) || Number.isNaN(after.startedAt.getTime()) || !isJobIdText(after.id))) {
    throw new InvalidOptionError('after', after, `{ startedAt: a valid Date, id: ${JOB_ID_EXPECTED} }`);
  }
  return { limit, after };
}

/** A running attempt as `Driver.alertRunningJobList` returns it. */
export interface AlertRunningJob {
  id: string;
  name: string;
  queue: string;
  scheduleName: string | null;
  attempt: number;
  startedAt: Date;
  /** The worker holding its lease. */
  leaseWorker: string | null;
}

/** `Driver.alertList`: which alerts, newest change first. */
export interface AlertListParams {
  state?: AlertState;
  rule?: AlertRule;
  /** @default 100 */
  limit?: number;
}

/** A stored alert. */
export interface AlertRow {
  key: string;
  rule: AlertRule;
  state: AlertState;
  severity: AlertSeverity;
  summary: string;
  /** The parsed details, as last written (at open, or at resolve when given). */
  details: Record<string, unknown>;
  /** 1 for the first opening of this key, +1 each time it is opened again after being resolved. */
  episode: number;
  /** When the current (or last) episode was opened (database time). */
  openedAt: Date;
  /** When it was resolved; null while open. */
  resolvedAt: Date | null;
  updatedAt: Date;
  /** The instance that opened the current episode, and so notified it. */
  openedBy: string;
  /** The instance that resolved it, and so sent the resolve notice; null while open. */
  resolvedBy: string | null;
  /** Notices sent for this key over its life (each opening and each resolve is one, fanned out to every sink). */
  notices: number;
}
