import { InvalidOptionError } from '../errors.js';
import { type Duration, parseDuration } from '../validation/duration.js';
import { integerInRange } from '../validation/integer-in-range.js';
import { optionalOptionsObject } from '../validation/options-object.js';

/** How retries are spaced. */
export interface BackoffOptions {
  /** `exponential`: `base * 2^(attempt-1)`, capped at `max`; `fixed`: always `base`. @default "exponential" */
  type?: 'exponential' | 'fixed';
  /** The first delay. @default "1s" */
  base?: Duration;
  /** The longest delay. @default "1h" */
  max?: Duration;
  /**
   * Randomness, so that many jobs failing together do not retry in lockstep.
   * `full`: uniform in [0, d); `equal`: uniform in [d/2, d); `none`: exactly d (whole milliseconds, rounded down).
   * @default "equal"
   */
  jitter?: 'full' | 'equal' | 'none';
}

/** A job's retry bound and spacing. */
export interface RetryOptions {
  /** Attempts in all, including the first. After the last, the job is `dead`. @default 10 */
  maxAttempts?: number;
  backoff?: BackoffOptions;
}

/** A validated, resolved retry policy. */
export interface RetryPolicy {
  maxAttempts: number;
  type: 'exponential' | 'fixed';
  baseMs: number;
  maxMs: number;
  jitter: 'full' | 'equal' | 'none';
}

/** Defaults applied to every job that does not say otherwise. */
export const DEFAULT_RETRY: RetryPolicy = Object.freeze({ maxAttempts: 10, type: 'exponential', baseMs: 1_000, maxMs: 3_600_000, jitter: 'equal' });

/** Upper bound on `maxAttempts`, so a typo cannot create a job that retries for years. */
export const MAX_ATTEMPTS_LIMIT = 1_000;

/**
 * Validates and resolves retry options. `options` and its `backoff` must be objects when given: anything else
 * (`retry: 3`, `backoff: "fixed"`) has no field to read, and would otherwise quietly be the default policy.
 * @throws InvalidOptionError / InvalidDurationError naming the field.
 */
export function resolveRetryPolicy(field: string, options: RetryOptions | undefined): RetryPolicy {
  optionalOptionsObject(field, options, ['maxAttempts', 'backoff'], 'an object { maxAttempts?, backoff? }');
  const maxAttempts = options?.maxAttempts ?? DEFAULT_RETRY.maxAttempts;
  integerInRange(`${field}.maxAttempts`, maxAttempts, MAX_ATTEMPTS_LIMIT);
  const b = optionalOptionsObject(`${field}.backoff`, options?.backoff, ['type', 'base', 'max', 'jitter'], 'an object { type?, base?, max?, jitter? }') ?? {};
  const type = b.type ?? DEFAULT_RETRY.type;
  if (type !== 'exponential' && type !== 'fixed') throw new InvalidOptionError(`${field}.backoff.type`, type, '"exponential" or "fixed"');
  const jitter = b.jitter ?? DEFAULT_RETRY.jitter;
  if (jitter !== 'full' && jitter !== 'equal' && jitter !== 'none') throw new InvalidOptionError(`${field}.backoff.jitter`, jitter, '"full", "equal" or "none"');
  const baseMs = b.base === undefined ? DEFAULT_RETRY.baseMs : parseDuration(`${field}.backoff.base`, b.base);
  const maxMs = b.max === undefined ? Math.max(DEFAULT_RETRY.maxMs, baseMs) : parseDuration(`${field}.backoff.max`, b.max);
  if (maxMs < baseMs) throw new InvalidOptionError(`${field}.backoff.max`, b.max, `a duration >= backoff.base (${baseMs}ms)`);
  return Object.freeze({ maxAttempts, type, baseMs, maxMs, jitter });
}

/**
 * The delay before the next attempt after attempt number `attempt` (1-based) failed.
 * @param random a source of uniform numbers in [0, 1); a result outside it (or not a number) is replaced by
 *   `Math.random()`'s, so a faulty source can neither break the jitter's bounds nor make the delay `NaN`, which the
 *   database refuses (the ending would fail and the job be left leased until the rescue). @default Math.random
 */
export function retryDelayMs(policy: RetryPolicy, attempt: number, random: () => number = Math.random): number {
  const exponent = Math.min(Math.max(attempt - 1, 0), 52);
  const raw = policy.type === 'fixed' ? policy.baseMs : Math.min(policy.maxMs, policy.baseMs * 2 ** exponent);
  const d = Math.min(raw, policy.maxMs);
  switch (policy.jitter) {
    case 'none':
      return d;
    case 'full':
      return Math.floor(unit(random) * d);
    case 'equal':
      return Math.floor(d / 2 + unit(random) * (d / 2));
  }
}

/** A number in [0, 1) from `random`, or from `Math.random` when `random` gave anything else. */
function unit(random: () => number): number {
  const r = random();
  return typeof r === 'number' && r >= 0 && r < 1 ? r : Math.random();
}
