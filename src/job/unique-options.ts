/**
 * Deduplication options (`unique`) of a job definition and of one enqueue, and how they resolve into what the
 * driver enforces. See docs/idempotency.md.
 * @module
 */
import type { UniqueInsert } from '../driver/driver.js';
import { InvalidOptionError } from '../errors.js';
import { type Duration, parseDuration } from '../validation/duration.js';
import { validateKey } from '../validation/names.js';
import { ACTIVE_STATES, JOB_STATES, type JobState } from './job-record.js';

/** How a key deduplicates, shared by the job-level and enqueue-level options. */
export interface UniquePolicy {
  /**
   * How long after the existing job was enqueued a new enqueue of its key is still a duplicate. Without a
   * window, the key is taken for as long as the existing job is in `states`. @default none
   */
  window?: Duration;
  /**
   * States in which the existing job counts as a duplicate.
   * @default ["queued","retrying","running"]; with `window`: also "completed"; with `replace`: ["queued","retrying"]
   */
  states?: JobState[];
  /**
   * Debounce: a duplicate that is still waiting (`queued` or `retrying`) gets this enqueue's payload and run time
   * (`replaced: true`). @default false
   */
  replace?: boolean;
}

/** `unique` of one enqueue: a key and how it deduplicates. */
export interface UniqueOptions extends UniquePolicy {
  /** The dedup key: 1 to 255 characters, no control characters. */
  key: string;
}

/** `unique` of a job definition: how its keys deduplicate, and optionally how to derive a key from a payload. */
export interface JobUniqueOptions<TInput> extends UniquePolicy {
  /** Derives the key from the payload, for enqueues that give neither `key` nor `unique`. @default none */
  key?: (payload: TInput) => string;
}

/** A resolved job-level policy. */
export interface ResolvedJobUnique {
  key: ((payload: unknown) => string) | null;
  policy: UniqueInsert | null;
}

/**
 * Validates a policy and fills in its defaults.
 * @throws InvalidOptionError, InvalidDurationError
 */
export function resolveUniquePolicy(field: string, options: UniquePolicy, base: UniqueInsert | null = null): UniqueInsert {
  if (typeof options !== 'object' || options === null) throw new InvalidOptionError(field, options, 'an object');
  const replace = options.replace ?? base?.replace ?? false;
  if (typeof replace !== 'boolean') throw new InvalidOptionError(`${field}.replace`, replace, 'a boolean');
  const windowMs = options.window === undefined ? (base?.windowMs ?? null) : parseDuration(`${field}.window`, options.window, { allowZero: false });
  let states: readonly JobState[];
  if (options.states !== undefined) {
    if (!Array.isArray(options.states) || options.states.length === 0 || options.states.some((s) => !JOB_STATES.includes(s))) {
      throw new InvalidOptionError(`${field}.states`, options.states, `a non-empty array of job states (${JOB_STATES.join(', ')})`);
    }
    states = [...new Set(options.states)];
  } else if (base && options.window === undefined && options.replace === undefined) {
    states = base.states;
  } else if (replace) {
    states = ['queued', 'retrying'];
  } else if (windowMs !== null) {
    states = [...ACTIVE_STATES, 'completed'];
  } else {
    states = ACTIVE_STATES;
  }
  return { windowMs, states, replace };
}

/**
 * Validates a job definition's `unique`.
 * @throws InvalidOptionError, InvalidDurationError
 */
export function resolveJobUnique(jobName: string, options: JobUniqueOptions<any> | undefined): ResolvedJobUnique {
  if (options === undefined) return { key: null, policy: null };
  const field = `unique of job "${jobName}"`;
  if (options.key !== undefined && typeof options.key !== 'function') throw new InvalidOptionError(`${field}.key`, options.key, 'a function from payload to key');
  return { key: options.key ?? null, policy: resolveUniquePolicy(field, options) };
}

/**
 * The key and policy of one enqueue: its `unique`, else its `key` with the job's policy, else the job's key
 * function applied to the payload. `null` when the job is not deduplicated.
 * @throws InvalidOptionError, InvalidNameError, InvalidDurationError
 */
export function resolveEnqueueUnique(
  job: ResolvedJobUnique,
  options: { key?: string; unique?: UniqueOptions },
  payload: unknown,
): { key: string; unique: UniqueInsert | null } | null {
  if (options.unique !== undefined) {
    if (options.key !== undefined) throw new InvalidOptionError('key', options.key, 'left out when unique is given (unique.key replaces it)');
    if (typeof options.unique !== 'object' || options.unique === null) throw new InvalidOptionError('unique', options.unique, 'an object { key, window?, states?, replace? }');
    return { key: validateKey(options.unique.key), unique: resolveUniquePolicy('unique', options.unique, job.policy) };
  }
  if (options.key !== undefined) return { key: validateKey(options.key), unique: job.policy };
  if (job.key === null) return null;
  let key: unknown;
  try {
    key = job.key(payload);
  } catch (error) {
    throw new InvalidOptionError('the result of unique.key(payload)', error, 'a key, but the key function threw', { cause: error });
  }
  return { key: validateKey(key), unique: job.policy };
}
