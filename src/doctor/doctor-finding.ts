/**
 * What `warden doctor` reports: findings with a stable id, a severity and a fix, and the options of a run.
 * @module
 */
import type { Duration } from '../validation/duration.js';

/** How bad a finding is: `error` makes `warden doctor` exit 1; `warning` and `info` do not. */
export type DoctorSeverity = 'error' | 'warning' | 'info';

/** Every {@link DoctorSeverity}, worst first (the order findings are printed in). */
export const DOCTOR_SEVERITIES: readonly DoctorSeverity[] = ['error', 'warning', 'info'];

/** One item of the checklist that does not hold. */
export interface Finding {
  /** Stable identifier of the check, e.g. `"job.no-timeout"`; see docs/doctor.md for the list. */
  id: string;
  severity: DoctorSeverity;
  /** What it is about: a job, schedule or queue name, or `"alerts"`, `"clock"`, `"migrations"`. */
  subject: string;
  /** "Expected …, got …". */
  message: string;
  /** How to fix it. */
  hint: string;
}

/** The result of {@link runDoctor}. */
export interface DoctorResult {
  /** Worst first, then by id and subject. */
  findings: Finding[];
  /** True when no finding is an error. */
  ok: boolean;
}

/** Options of `warden.doctor()` / `runDoctor`. */
export interface DoctorOptions {
  /**
   * A job whose `retry.maxAttempts` is above this is reported as unbounded in practice (with the default backoff,
   * 25 attempts already spread over about half a day). @default 25
   */
  maxAttempts?: number;
  /** A run longer than this without a checkpoint is reported (`job.long-run-without-checkpoint`). @default "10m" */
  longRun?: Duration;
  /** How far back missed ticks are reported. @default "24h" */
  missedWithin?: Duration;
  /** Clock skew between this process and the database above this is an error. @default the scheduler's `clockSkewWarning` ("30s") */
  clockSkew?: Duration;
  /**
   * How to tell whether the audit trail is on: `"instance"` (this instance records, the library's view) or
   * `"trail"` (the chain has any entry, for a separate tool such as the CLI that cannot see the application's
   * options). @default "instance"
   */
  auditSource?: 'instance' | 'trail';
}
