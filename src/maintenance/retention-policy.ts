/**
 * How long finished jobs and schedule ticks are kept: the policy types shared by `defineJob({ retention })` and
 * `createWarden({ retention })`, and their validation.
 * @module
 */
import type { PrunableState } from '../driver/retention-params.js';
import { InvalidOptionError } from '../errors.js';
import type { RetentionOptions } from './retention-service.js';
import { type Duration, parseDuration } from '../validation/duration.js';
import { checkKnownKeys } from '../validation/known-keys.js';
import { isOptionsObject } from '../validation/options-object.js';

/** How long jobs in each final state are kept after they finished; `false` keeps them forever. */
export interface RetentionPolicy {
  /** @default "7d" (globally) */
  completed?: Duration | false;
  /** Dead letters stay longer by default: someone has to look at them. @default "30d" (globally) */
  dead?: Duration | false;
  /** @default "7d" (globally) */
  cancelled?: Duration | false;
}

/** Per final state: milliseconds to keep, or null for forever. */
export type ResolvedRetentionPolicy = Record<PrunableState, number | null>;

/** A job type's own policy: only the states it sets (the global policy covers the rest). */
export type JobRetentionOverrides = Partial<ResolvedRetentionPolicy>;

/** Every state retention prunes, in the order a pass handles them. */
export const PRUNABLE_STATES: readonly PrunableState[] = ['completed', 'dead', 'cancelled'];

/**
 * The other options of `createWarden({ retention })` (`RetentionOptions`, read by the retention service), which
 * arrive in one object with the global policy: known keys there, unknown in a job type's own `retention`. Checked
 * against the interface, so an option added there cannot be missing here.
 */
const SERVICE_OPTION_KEYS = Object.keys({ scheduleTicks: true, interval: true, batchSize: true, maxPerPass: true } satisfies Record<Exclude<keyof RetentionOptions, keyof RetentionPolicy>, true>);

/** The global defaults: completed and cancelled jobs 7 days, dead letters 30 days. */
export const DEFAULT_RETENTION: Readonly<ResolvedRetentionPolicy> = Object.freeze({ completed: 7 * 86_400_000, dead: 30 * 86_400_000, cancelled: 7 * 86_400_000 });

function resolveOne(field: string, value: unknown): number | null {
  if (value === false) return null;
  return parseDuration(field, value, { allowZero: false });
}

/**
 * Checks a job type's `retention` option; returns only the states it sets.
 * @throws InvalidOptionError, InvalidDurationError naming the bad field.
 */
export function resolveJobRetention(jobName: string, value: unknown): Readonly<JobRetentionOverrides> {
  if (value === undefined) return Object.freeze({});
  checkPolicyShape(`retention of job "${jobName}"`, value, PRUNABLE_STATES);
  const out: JobRetentionOverrides = {};
  for (const state of PRUNABLE_STATES) {
    const given = (value as Record<string, unknown>)[state];
    if (given !== undefined) out[state] = resolveOne(`retention.${state} of job "${jobName}"`, given);
  }
  return Object.freeze(out);
}

/**
 * Checks the global policy; states left out get {@link DEFAULT_RETENTION}. `value` is the whole `retention` option:
 * its keys are checked against the states and the retention service's own options.
 * @throws InvalidOptionError, InvalidDurationError naming the bad field.
 */
export function resolveRetentionPolicy(field: string, value: RetentionPolicy): ResolvedRetentionPolicy {
  checkPolicyShape(field, value, [...PRUNABLE_STATES, ...SERVICE_OPTION_KEYS]);
  const out = { ...DEFAULT_RETENTION };
  for (const state of PRUNABLE_STATES) {
    const given = (value as Record<string, unknown>)[state];
    if (given !== undefined) out[state] = resolveOne(`${field}.${state}`, given);
  }
  return out;
}

/** An object of known keys only: `retention: { complete: "1d" }` would otherwise keep completed jobs the default 7 days. */
function checkPolicyShape(field: string, value: unknown, known: readonly string[]): void {
  if (!isOptionsObject(value)) throw new InvalidOptionError(field, value, 'an object such as { completed: "7d", dead: "30d" }');
  checkKnownKeys(field, value, known);
}
