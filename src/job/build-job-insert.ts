import type { JobInsert } from '../driver/driver.js';
import { InvalidOptionError } from '../errors.js';
import { parseDuration } from '../validation/duration.js';
import { validateName } from '../validation/names.js';
import { type JobDefinition, validatePriority } from './define-job.js';
import { assertValidPayload, encodeJson } from './payload.js';
import { resolveEnqueueUnique, type UniqueOptions } from './unique-options.js';

/** The per-enqueue options that shape a stored job (everything but the transaction). */
export interface JobInsertOptions {
  delay?: import('../validation/duration.js').Duration;
  runAt?: Date;
  priority?: number;
  queue?: string;
  key?: string;
  unique?: UniqueOptions;
}

/** The earliest run time a job may have, in epoch milliseconds: 0001-01-01T00:00:00.000Z. */
export const MIN_RUN_AT_MS = -62_135_596_800_000;
/** The latest run time a job may have, in epoch milliseconds: 9999-12-31T23:59:59.999Z. */
export const MAX_RUN_AT_MS = 253_402_300_799_999;

/**
 * The run times both drivers store and read back alike: years 1 to 9999, UTC. SQLite keeps any Date (integer
 * milliseconds), but PostgreSQL's `timestamptz` ends at 4713 BC, so an earlier Date fails inside the statement (and
 * aborts an application's transaction it runs in); `pg` writes years before 1 with a ` BC` suffix and years past 9999
 * with five digits, which only its slow parser reads back; and `toISOString` (events, CLI, audit) switches to the
 * expanded `±YYYYYY` form outside 0 to 9999. No real due time lies outside these years.
 */
const RUN_AT_RANGE = 'from 0001-01-01T00:00:00.000Z to 9999-12-31T23:59:59.999Z (years 1 to 9999, UTC)';

/**
 * Validates a payload and its options and builds the row to insert: the one path every enqueue takes (API,
 * schedules, CLI). Throws before anything is written. The payload is checked against the job's schema before the
 * definition's `unique.key` function sees it: that function is written for valid payloads (it is typed on the
 * schema's input), so on an invalid one it would throw, or derive a key from garbage, instead of the caller getting
 * the payload's issues.
 * @throws PayloadValidationError, NonJsonValueError, PayloadTooLargeError, InvalidOptionError,
 *   InvalidDurationError, InvalidNameError
 */
export async function buildJobInsert(def: JobDefinition<any, any>, payload: unknown, options: JobInsertOptions, payloadLimit: number): Promise<JobInsert> {
  if (typeof options !== 'object' || options === null) throw new InvalidOptionError('options', options, 'an object');
  const queue = validateName('queue', options.queue ?? def.queue);
  const priority = validatePriority('priority', options.priority ?? def.priority);
  const delayMs = options.delay === undefined ? 0 : parseDuration('delay', options.delay);
  let runAt: Date | null = null;
  if (options.runAt !== undefined) {
    if (!(options.runAt instanceof Date) || Number.isNaN(options.runAt.getTime())) throw new InvalidOptionError('runAt', options.runAt, 'a valid Date');
    if (!isRunTimeInRange(options.runAt.getTime())) throw new InvalidOptionError('runAt', options.runAt, `a Date ${RUN_AT_RANGE}; this one is ${options.runAt.toISOString()}`);
    runAt = options.runAt;
  }
  await assertValidPayload(def.name, def.schema, payload);
  const dedup = resolveEnqueueUnique(def.unique, options, payload);
  const payloadJson = encodeJson(`the payload of job "${def.name}"`, payload, payloadLimit);
  return { name: def.name, queue, payloadJson, priority, delayMs, runAt, maxAttempts: def.retry.maxAttempts, key: dedup?.key ?? null, unique: dedup?.unique ?? null };
}

/**
 * Checks the times an insert at `now` writes when the clock, not the database, decides `now` (an injected clock;
 * `null`, database time, is the real present, and a delay of at most 365 days keeps it far inside the range): the
 * creation time `now` and, without `runAt` (checked by {@link buildJobInsert}), the run time `now + delay`.
 * @throws InvalidOptionError naming `delay` when `now + delay` is outside years 1 to 9999 UTC, or the clock when
 *   `now` is.
 */
export function assertInsertTimesInRange(job: JobInsert, now: Date | null): void {
  if (now === null) return;
  const nowMs = now instanceof Date ? now.getTime() : Number.NaN;
  if (!isRunTimeInRange(nowMs)) throw new InvalidOptionError("the clock's sqlNow()", now, `a Date ${RUN_AT_RANGE}`);
  if (job.runAt === null && !isRunTimeInRange(nowMs + job.delayMs)) {
    throw new InvalidOptionError('delay', job.delayMs, `a delay that keeps the run time (the clock's now, ${now.toISOString()}, plus the delay) ${RUN_AT_RANGE}`);
  }
}

/** Whether `ms` is a time from {@link MIN_RUN_AT_MS} to {@link MAX_RUN_AT_MS} (false for NaN). */
function isRunTimeInRange(ms: number): boolean {
  return ms >= MIN_RUN_AT_MS && ms <= MAX_RUN_AT_MS;
}
