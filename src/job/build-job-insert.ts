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
 * An enqueue's values as they were when it was called, taken before its first `await` by {@link snapshotJobInsert}:
 * a caller that changes its payload object or `runAt` Date once the call returned (one object reused in a loop of
 * unawaited enqueues) changes neither what is validated nor what is keyed and stored.
 */
export interface JobInsertSnapshot {
  /** The job's definition: its schema and key function run on the snapshot. */
  readonly def: JobDefinition<any, any>;
  /**
   * The row to insert: everything but a key the definition's `unique.key` derives ({@link completeJobInsert} fills
   * it in). Incomplete, and never inserted, when {@link JobInsertSnapshot.refusal} is set.
   */
  readonly insert: JobInsert;
  /**
   * What the schema and a derived key see: a copy parsed from `insert.payloadJson`, the value the worker will read,
   * when either needs it (undefined otherwise); the caller's own value when the payload could not be encoded.
   */
  readonly payload: unknown;
  /** The key comes from the definition's `unique.key(payload)`, once the schema accepted the payload. */
  readonly deriveKey: boolean;
  /**
   * Why the enqueue cannot go on, thrown once the schema had its say (else null): the `key`/`unique` options
   * refused, else the payload not storable (not plain JSON, too large). The first, as when the options were resolved
   * after the schema and the payload encoded after them.
   */
  readonly refusal: { error: unknown } | null;
}

/**
 * Validates a payload and its options and builds the row to insert: the one path every enqueue takes (API,
 * schedules, CLI). Throws before anything is written. {@link snapshotJobInsert} then {@link completeJobInsert}.
 * @throws PayloadValidationError, NonJsonValueError, PayloadTooLargeError, InvalidOptionError,
 *   InvalidDurationError, InvalidNameError
 */
export async function buildJobInsert(def: JobDefinition<any, any>, payload: unknown, options: JobInsertOptions, payloadLimit: number): Promise<JobInsert> {
  return completeJobInsert(snapshotJobInsert(def, payload, options, payloadLimit));
}

/**
 * The synchronous half of {@link buildJobInsert}, to be called before any `await` of the enqueue: checks the
 * options, resolves a key given in them, copies `runAt`, and encodes the payload once, the text stored as it is.
 * The schema and a derived key then see a copy parsed from that text (what the worker reads), never the caller's
 * object, which may have changed by the time they run; the copy is made only when one of them needs it, so a bulk
 * enqueue of a job with neither encodes each payload once and parses nothing.
 * @throws InvalidOptionError, InvalidDurationError, InvalidNameError for `queue`, `priority`, `delay` or `runAt`
 *   (a refused `key` or `unique`, and a payload's refusal, wait for the schema: see {@link completeJobInsert})
 */
export function snapshotJobInsert(def: JobDefinition<any, any>, payload: unknown, options: JobInsertOptions, payloadLimit: number): JobInsertSnapshot {
  if (typeof options !== 'object' || options === null) throw new InvalidOptionError('options', options, 'an object');
  const queue = validateName('queue', options.queue ?? def.queue);
  const priority = validatePriority('priority', options.priority ?? def.priority);
  const delayMs = options.delay === undefined ? 0 : parseDuration('delay', options.delay);
  const runAt = copyRunAt(options.runAt);
  // A key of the options is resolved now, like the other options (the caller may change its `unique` object once the
  // call returned); one the definition derives waits for the schema. Its refusal waits for the schema too: the
  // schema runs first (docs/guarantees.md), and the key options were always checked after it.
  const deriveKey = options.unique === undefined && options.key === undefined && def.unique.key !== null;
  let dedup: ReturnType<typeof resolveEnqueueUnique> = null;
  let refusal: JobInsertSnapshot['refusal'] = null;
  try {
    if (!deriveKey) dedup = resolveEnqueueUnique(def.unique, options, undefined);
  } catch (error) {
    refusal = { error };
  }
  let payloadJson = '';
  let copy: unknown;
  let storable = true;
  try {
    payloadJson = encodeJson(`the payload of job "${def.name}"`, payload, payloadLimit);
    if (def.schema || deriveKey) copy = JSON.parse(payloadJson);
  } catch (error) {
    storable = false;
    refusal ??= { error };
  }
  const insert: JobInsert = { name: def.name, queue, payloadJson, priority, delayMs, runAt, maxAttempts: def.retry.maxAttempts, key: dedup?.key ?? null, unique: dedup?.unique ?? null };
  return { def, insert, payload: storable ? copy : payload, deriveKey, refusal };
}

/**
 * The asynchronous half of {@link buildJobInsert}: validates the snapshot's payload against the job's schema, then
 * throws the snapshot's refusal, if any, then derives the key. The schema goes first, as it always did: the
 * definition's `unique.key` is written for valid payloads (it is typed on the schema's input), so on an invalid one
 * it would throw, or derive a key from garbage, instead of the caller getting the payload's issues; and a payload
 * that is both refused by the schema and not storable, or comes with a refused `key`/`unique` option, gets the
 * schema's issues. Nothing is written, so the caller's own value is what a not storable payload's schema sees.
 * @throws PayloadValidationError, NonJsonValueError, PayloadTooLargeError, InvalidOptionError,
 *   InvalidDurationError, InvalidNameError
 */
export async function completeJobInsert(snapshot: JobInsertSnapshot): Promise<JobInsert> {
  const { def, insert, payload, refusal } = snapshot;
  // Only with a schema: a job without one (the bulk case) goes through no validator call.
  if (def.schema) await assertValidPayload(def.name, def.schema, payload);
  if (refusal) throw refusal.error;
  if (snapshot.deriveKey) {
    const dedup = resolveEnqueueUnique(def.unique, {}, payload)!;
    insert.key = dedup.key;
    insert.unique = dedup.unique;
  }
  return insert;
}

/**
 * `runAt` checked and copied: the caller's Date may be changed once the call returned (`setTime`), so the insert
 * gets a Date of its own, of the time that was checked.
 */
function copyRunAt(runAt: unknown): Date | null {
  if (runAt === undefined) return null;
  const ms = runAt instanceof Date ? runAt.getTime() : Number.NaN;
  if (Number.isNaN(ms)) throw new InvalidOptionError('runAt', runAt, 'a valid Date');
  if (!isRunTimeInRange(ms)) throw new InvalidOptionError('runAt', runAt, `a Date ${RUN_AT_RANGE}; this one is ${new Date(ms).toISOString()}`);
  return new Date(ms);
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
