/**
 * Deduplication options (`unique`) of a job definition and of one enqueue, and how they resolve into what the
 * driver enforces. See docs/idempotency.md.
 * @module
 */
import type { UniqueInsert } from '../driver/driver.js';
import { InvalidOptionError } from '../errors.js';
import { type Duration, parseDuration } from '../validation/duration.js';
import { checkKnownKeys } from '../validation/known-keys.js';
import { isOptionsObject } from '../validation/options-object.js';
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
   * States in which the existing job counts as a duplicate. On an enqueue, left out: the states the job
   * definition's `unique` named, else these defaults (from the window and replace in force, the enqueue's or the
   * definition's).
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
  /**
   * The states the definition named itself, or null when its `policy.states` are the defaults derived from its
   * window and replace. An enqueue-level `unique` keeps named states but derives defaults again from its own
   * window and replace: a definition's `states: ["queued"]` must survive an enqueue that only sets a window.
   */
  states: readonly JobState[] | null;
}

/**
 * Validates a policy and fills in what it leaves out: from `base` (a job definition's resolved `unique`) first,
 * then the defaults. `states` left out are the base's only when the base named them; otherwise they are derived
 * from the resulting window and replace, as documented on {@link UniquePolicy.states}.
 * @throws InvalidOptionError, InvalidDurationError
 */
export function resolveUniquePolicy(field: string, options: UniquePolicy, base: ResolvedJobUnique | null = null): UniqueInsert {
  if (!isOptionsObject(options)) throw new InvalidOptionError(field, options, 'an object');
  // `key` too: both callers' objects carry it (a function on a definition, the key itself on an enqueue).
  checkKnownKeys(field, options, ['key', 'window', 'states', 'replace']);
  const replace = options.replace ?? base?.policy?.replace ?? false;
  if (typeof replace !== 'boolean') throw new InvalidOptionError(`${field}.replace`, replace, 'a boolean');
  const windowMs = options.window === undefined ? (base?.policy?.windowMs ?? null) : parseDuration(`${field}.window`, options.window, { allowZero: false });
  let states: readonly JobState[];
  if (options.states !== undefined) {
    states = validStates(`${field}.states`, options.states);
  } else if (base?.states) {
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

/** `states` checked: a non-empty array of job states, without repeats. */
function validStates(field: string, states: unknown): readonly JobState[] {
  if (!Array.isArray(states) || states.length === 0 || states.some((s) => !JOB_STATES.includes(s))) {
    throw new InvalidOptionError(field, states, `a non-empty array of job states (${JOB_STATES.join(', ')})`);
  }
  return [...new Set(states as JobState[])];
}

/**
 * Validates a job definition's `unique`.
 * @throws InvalidOptionError, InvalidDurationError
 */
export function resolveJobUnique(jobName: string, options: JobUniqueOptions<any> | undefined): ResolvedJobUnique {
  if (options === undefined) return { key: null, policy: null, states: null };
  const field = `unique of job "${jobName}"`;
  // Before `options.key` is read: null would otherwise be a TypeError instead of this error.
  if (!isOptionsObject(options)) throw new InvalidOptionError(field, options, 'an object { key?, window?, states?, replace? }');
  if (options.key !== undefined && typeof options.key !== 'function') throw new InvalidOptionError(`${field}.key`, options.key, 'a function from payload to key');
  const policy = resolveUniquePolicy(field, options);
  return { key: options.key ?? null, policy, states: options.states === undefined ? null : policy.states };
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
    if (!isOptionsObject(options.unique)) throw new InvalidOptionError('unique', options.unique, 'an object { key, window?, states?, replace? }');
    return { key: validateKey(options.unique.key), unique: resolveUniquePolicy('unique', options.unique, job) };
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
