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

/**
 * Validates a payload and its options and builds the row to insert: the one path every enqueue takes (API,
 * schedules, CLI). Throws before anything is written.
 * @throws PayloadValidationError, NonJsonValueError, PayloadTooLargeError, InvalidOptionError,
 *   InvalidDurationError, InvalidNameError
 */
export async function buildJobInsert(def: JobDefinition<any, any>, payload: unknown, options: JobInsertOptions, payloadLimit: number): Promise<JobInsert> {
  if (typeof options !== 'object' || options === null) throw new InvalidOptionError('options', options, 'an object');
  const queue = validateName('queue', options.queue ?? def.queue);
  const priority = validatePriority('priority', options.priority ?? def.priority);
  const dedup = resolveEnqueueUnique(def.unique, options, payload);
  const delayMs = options.delay === undefined ? 0 : parseDuration('delay', options.delay);
  let runAt: Date | null = null;
  if (options.runAt !== undefined) {
    if (!(options.runAt instanceof Date) || Number.isNaN(options.runAt.getTime())) throw new InvalidOptionError('runAt', options.runAt, 'a valid Date');
    runAt = options.runAt;
  }
  await assertValidPayload(def.name, def.schema, payload);
  const payloadJson = encodeJson(`the payload of job "${def.name}"`, payload, payloadLimit);
  return { name: def.name, queue, payloadJson, priority, delayMs, runAt, maxAttempts: def.retry.maxAttempts, key: dedup?.key ?? null, unique: dedup?.unique ?? null };
}
