/**
 * The error of a scheduler pass in which some due schedules could not be handled.
 * @module
 */
import { WardenError } from '../errors.js';

/** One due schedule a scheduler pass could not handle, and why. */
export interface ScheduleAdvanceFailure {
  schedule: string;
  error: unknown;
}

/**
 * Some due schedules of a scheduler pass could not be advanced (their advance failed: a lost connection, a
 * statement the database refused). Every other due schedule of the pass was handled first: one failing schedule
 * never holds back the rest. Each failure was also reported as an `error` event naming its schedule; the failed
 * schedules keep their due ticks, and the next pass tries them again (an advance whose reply was lost is settled
 * first). `cause` is the first failure's error. Code `SCHEDULE_ADVANCE_FAILED`.
 */
export class ScheduleAdvanceError extends WardenError {
  /** The schedules that failed, in the order the pass met them, each with its error. */
  readonly failures: readonly ScheduleAdvanceFailure[];
  /** How many schedules the pass advanced (what it would have resolved with). */
  readonly advanced: number;
  constructor(failures: readonly ScheduleAdvanceFailure[], advanced: number) {
    // Names only (at most 5): a pass has up to 100 due schedules, and each error was reported already.
    const names = failures.slice(0, 5).map((f) => f.schedule).join(', ') + (failures.length > 5 ? `, and ${failures.length - 5} more` : '');
    super(
      'SCHEDULE_ADVANCE_FAILED',
      `Expected every due schedule to be advanced, got ${failures.length} failed (${names}); the others were handled (${advanced} advanced), and the first failure is the cause`,
      { cause: failures[0]?.error },
    );
    this.failures = failures;
    this.advanced = advanced;
  }
}
