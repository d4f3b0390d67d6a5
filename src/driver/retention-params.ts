/**
 * Parameter types of the driver's retention operations (`Driver.jobPrune`, `jobKeyPrune`, `scheduleTickPrune`),
 * run by the maintenance service (`src/maintenance/`).
 * @module
 */

/** The final states retention prunes. */
export type PrunableState = 'completed' | 'dead' | 'cancelled';

/** Which finished jobs `Driver.jobPrune` deletes. */
export interface JobPruneParams {
  /** Only jobs in this final state. */
  state: PrunableState;
  /** Only jobs whose `finished_at` is at least this many ms before `now`. */
  olderThanMs: number;
  /** Only jobs with one of these names; null or absent: any name. An empty array matches nothing. */
  names?: readonly string[] | null;
  /** Never jobs with one of these names; null or absent: none excluded. */
  excludeNames?: readonly string[] | null;
  /** Delete at most this many (one bounded statement). */
  limit: number;
  /** `null`: the database's clock. */
  now: Date | null;
}

/** One step of a sweep over `job_keys` (`Driver.jobKeyPrune`). */
export interface JobKeyPruneParams {
  /** Look at keys after this one (code-unit order on SQLite, the column's collation on PostgreSQL); null: from the first. */
  afterKey: string | null;
  /** Look at most at this many keys. */
  limit: number;
}

/** What one step of the key sweep did. */
export interface JobKeyPruneResult {
  /** Key rows deleted: their holder no longer exists. */
  deleted: number;
  /** The last key looked at, to continue after; null when the end of the keys was reached. */
  lastKey: string | null;
}

/** Which schedule ticks `Driver.scheduleTickPrune` deletes. */
export interface ScheduleTickPruneParams {
  /** Only ticks recorded at least this many ms before `now`. Each schedule's newest tick is always kept. */
  olderThanMs: number;
  /**
   * Keep, however old, each schedule's ticks from the tick of its newest completed job (its last success, or the
   * newest success is later: a trigger's) through this many `scheduled` ticks after it (from its oldest tick when it
   * has no completed job): the ticks the missed-run alert reads (`MAX_COUNTED_TICKS`), so that retention never hides
   * a missed run or its last success. At least 1.
   */
  keepAfterSuccess: number;
  /** Delete at most this many. */
  limit: number;
  /** `null`: the database's clock. */
  now: Date | null;
}

/** `keepAfterSuccess` as both drivers bind it: a whole number, at least 1 (the statement keeps through the nth tick). */
export function keepAfterSuccess(params: ScheduleTickPruneParams): number {
  return Math.max(1, Math.trunc(params.keepAfterSuccess));
}
