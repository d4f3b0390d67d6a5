import type { StandardSchemaV1 } from '@standard-schema/spec';
import type { Logger } from 'pino';
import { InvalidOptionError } from '../errors.js';
import { type JobRetentionOverrides, type RetentionPolicy, resolveJobRetention } from '../maintenance/retention-policy.js';
import { booleanOption } from '../validation/boolean-option.js';
import { type Duration, parseDuration } from '../validation/duration.js';
import { checkKnownKeys } from '../validation/known-keys.js';
import { validateName } from '../validation/names.js';
import type { IterateOptions, IterateResult, StepInfo, StepOptions, TransactionHandle } from './job-context-options.js';
import type { JobRow } from './job-record.js';
import { type RetryOptions, type RetryPolicy, resolveRetryPolicy } from './retry-policy.js';
import { type JobUniqueOptions, type ResolvedJobUnique, resolveJobUnique } from './unique-options.js';

/** What a handler gets besides its payload. */
export interface JobContext {
  /**
   * Aborted when the attempt must stop: its `timeout` passed (reason `JobTimeoutError`), its lease was lost
   * or the job was cancelled (`LeaseLostError`), or shutdown's grace period ran out (`ShutdownAbortError`).
   * Pass it to `fetch` and other cancellable calls.
   */
  signal: AbortSignal;
  /** This attempt's number, from 1. */
  attempt: number;
  /** The job's attempt bound. */
  maxAttempts: number;
  /** The job as claimed (id, name, queue, key, times, …). */
  job: Readonly<JobRow>;
  /** A pino logger whose every line carries the job's id, name, queue and attempt. */
  log: Logger;
  /**
   * This attempt's lease token: strictly increasing across the job's attempts. Store it with the
   * application's writes and refuse writes carrying an older one (fencing) when effects must not be applied
   * by a stale attempt.
   */
  fence: number;
  /**
   * Runs `fn` once per job, not once per attempt: its result (plain JSON, within the payload limit) is recorded
   * under (job, `name`) when it succeeds, and later attempts get the recorded result without running `fn`
   * again. Names must be unique within an attempt. `info.idempotencyKey` (`${jobId}:${name}`) is stable across
   * attempts: pass it to APIs that accept one.
   * @throws StepNameConflictError, NonJsonValueError, PayloadTooLargeError, LeaseLostError (the lease was lost:
   *   the result is not recorded), AttemptEndedError, or whatever `fn` throws (nothing recorded; a retry runs it again).
   */
  step<T>(name: string, fn: (info: StepInfo) => Promise<T> | T, options?: StepOptions): Promise<T>;
  /**
   * Runs `fn` in a database transaction and completes the job in that same transaction: the application's
   * writes through `tx` and the job's completion commit together, or not at all. Call it at most once, as the
   * handler's last act; the attempt has ended when it resolves (the handler's return value is then ignored).
   * @throws LeaseLostError when the lease was lost before commit (everything rolled back), AttemptEndedError,
   *   or whatever `fn` throws (rolled back; the attempt fails).
   */
  transaction<T>(fn: (tx: TransactionHandle) => Promise<T> | T): Promise<T>;
  /**
   * Works through a large source in batches with checkpoints: the cursor is saved (guarded by the lease) at
   * the configured interval, and a later attempt — after a crash, timeout or shutdown — resumes from it.
   * @throws IterationSourceError, NonJsonValueError / PayloadTooLargeError for a bad cursor, LeaseLostError,
   *   or whatever `batch` throws. The last good checkpoint stays saved in every case.
   */
  iterate<TItem, TCursor = unknown>(options: IterateOptions<TItem, TCursor>): Promise<IterateResult>;
}

/** A job handler. Its return value is ignored; throwing fails the attempt. */
export type JobHandler<TPayload> = (payload: TPayload, ctx: JobContext) => Promise<unknown> | unknown;

/** Options for {@link defineJob}. */
export interface JobDefinitionOptions<TInput, TOutput> {
  /** Unique job name, `^[a-z0-9][a-z0-9._-]{0,63}$`. */
  name: string;
  /**
   * Any Standard Schema validator (zod, valibot, arktype, …). Payloads are validated at enqueue and again
   * before the handler runs; the handler gets the schema's output.
   */
  schema?: StandardSchemaV1<TInput, TOutput>;
  /** The queue the job goes to unless `enqueue` says otherwise. @default "default" */
  queue?: string;
  /** Lower runs first. An integer from -1,000,000 to 1,000,000. @default 0 */
  priority?: number;
  /** @default { maxAttempts: 10, backoff: { type: "exponential", base: "1s", max: "1h", jitter: "equal" } } */
  retry?: RetryOptions;
  /** Each attempt's time limit; past it `ctx.signal` aborts and the attempt fails as `timeout`. @default none */
  timeout?: Duration;
  /**
   * How enqueue keys deduplicate for this job (window, states, replace), and optionally a function deriving
   * the key from the payload. See docs/idempotency.md. @default keys dedupe among queued, retrying and running jobs
   */
  unique?: JobUniqueOptions<TInput>;
  /**
   * Payload and error fields whose values must never be shown: redacted (as `"[redacted]"`) in logs, events
   * shown to operators, the audit trail, spans and CLI output. Dotted paths for nested fields (`"card.number"`);
   * a plain name matches that key at any depth. @default []
   */
  sensitive?: string[];
  /**
   * How much of this job the audit trail records: `"all"` every state change (regulated work), `"failures"`
   * only failures, dead letters and operator actions (chatty jobs), `"none"` operator actions only.
   * @default "all"
   */
  audit?: AuditLevel;
  /**
   * Declares that the handler has effects outside Warden (charges, emails, writes elsewhere); `warden doctor`
   * then expects a dedup key, steps or a transaction to make them happen once. @default false
   */
  sideEffects?: boolean;
  /**
   * How long this job's finished runs are kept, per final state (`false`: forever), overriding
   * `createWarden({ retention })` for the states given, e.g. `{ completed: "1d", dead: "90d" }`. Applied by
   * whichever instance runs retention, so register the definition there. @default the global policy
   */
  retention?: RetentionPolicy;
  handler: JobHandler<TOutput>;
}

/** How much of a job the audit trail records; see {@link JobDefinitionOptions.audit}. */
export type AuditLevel = 'all' | 'failures' | 'none';

/** Every {@link AuditLevel}. */
export const AUDIT_LEVELS: readonly AuditLevel[] = ['all', 'failures', 'none'];

/** A validated job definition, registered with `createWarden({ jobs })` and passed to `enqueue`. */
export interface JobDefinition<TInput = unknown, TOutput = TInput> {
  readonly name: string;
  readonly queue: string;
  readonly priority: number;
  readonly retry: RetryPolicy;
  /** `null` when the job has no time limit. */
  readonly timeoutMs: number | null;
  /** The resolved `unique` option. */
  readonly unique: ResolvedJobUnique;
  /** Field names and dotted paths to redact. */
  readonly sensitive: readonly string[];
  readonly audit: AuditLevel;
  readonly sideEffects: boolean;
  /** The states the job's `retention` option sets, in ms (null: forever); the global policy covers the rest. */
  readonly retention: Readonly<JobRetentionOverrides>;
  readonly schema: StandardSchemaV1<TInput, TOutput> | undefined;
  readonly handler: JobHandler<TOutput>;
  /** Phantom field carrying the payload type for `enqueue`. Never set. */
  readonly __input?: TInput;
}

/**
 * Every option {@link defineJob} reads: any other key is refused (a misspelt `timout` would be no time limit). Written
 * as an object checked against the interface, so an option added there cannot be missing here.
 */
const JOB_OPTION_KEYS = Object.keys({
  name: true, schema: true, queue: true, priority: true, retry: true, timeout: true, unique: true, sensitive: true, audit: true, sideEffects: true, retention: true, handler: true,
} satisfies Record<keyof JobDefinitionOptions<unknown, unknown>, true>);

/** Priority bounds, so they fit a 32-bit integer column in every database. */
export const PRIORITY_RANGE = { min: -1_000_000, max: 1_000_000 } as const;

/**
 * Checks a priority value.
 * @throws InvalidOptionError
 */
export function validatePriority(field: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < PRIORITY_RANGE.min || value > PRIORITY_RANGE.max) {
    throw new InvalidOptionError(field, value, `an integer from ${PRIORITY_RANGE.min} to ${PRIORITY_RANGE.max}`);
  }
  return value;
}

/**
 * Defines a job: its name, payload schema, queue, retry policy, timeout and handler. Every option is
 * validated here, so a bad definition fails at start-up rather than at 3 a.m.
 * @example
 * const sendEmail = defineJob({
 *   name: "send-email",
 *   schema: z.object({ to: z.string().email(), template: z.string() }),
 *   queue: "email",
 *   retry: { maxAttempts: 8, backoff: { base: "2s", max: "1h" } },
 *   timeout: "30s",
 *   handler: async ({ to, template }, ctx) => mailer.send(to, template, { signal: ctx.signal }),
 * });
 * @throws InvalidNameError, InvalidOptionError, InvalidDurationError naming the bad field.
 */
export function defineJob<TInput = unknown, TOutput = TInput>(options: JobDefinitionOptions<TInput, TOutput>): JobDefinition<TInput, TOutput> {
  if (typeof options !== 'object' || options === null) throw new InvalidOptionError('defineJob(options)', options, 'an object');
  const name = validateName('job name', options.name);
  checkKnownKeys(`job "${name}"`, options, JOB_OPTION_KEYS);
  const queue = validateName('queue', options.queue ?? 'default');
  const priority = validatePriority('priority', options.priority ?? 0);
  if (typeof options.handler !== 'function') throw new InvalidOptionError(`handler of job "${name}"`, options.handler, 'a function');
  if (options.schema !== undefined && typeof options.schema?.['~standard']?.validate !== 'function') {
    throw new InvalidOptionError(`schema of job "${name}"`, options.schema, 'a Standard Schema validator (zod, valibot, arktype, …)');
  }
  const timeoutMs = options.timeout === undefined ? null : parseDuration(`timeout of job "${name}"`, options.timeout, { allowZero: false });
  return Object.freeze({
    name,
    queue,
    priority,
    retry: resolveRetryPolicy(`retry of job "${name}"`, options.retry),
    timeoutMs,
    unique: resolveJobUnique(name, options.unique),
    sensitive: resolveSensitive(name, options.sensitive),
    audit: resolveAuditLevel(name, options.audit),
    sideEffects: booleanOption(`sideEffects of job "${name}"`, options.sideEffects, false),
    retention: resolveJobRetention(name, options.retention),
    schema: options.schema,
    handler: options.handler,
  });
}

function resolveSensitive(jobName: string, value: unknown): readonly string[] {
  if (value === undefined) return Object.freeze([]);
  if (!Array.isArray(value) || value.some((f) => typeof f !== 'string' || !/^[^.\s][^\s]{0,199}$/.test(f) || f.endsWith('.'))) {
    throw new InvalidOptionError(`sensitive of job "${jobName}"`, value, 'an array of field names or dotted paths ("card.number")');
  }
  return Object.freeze([...new Set(value as string[])]);
}

function resolveAuditLevel(jobName: string, value: unknown): AuditLevel {
  if (value === undefined) return 'all';
  if (!AUDIT_LEVELS.includes(value as AuditLevel)) throw new InvalidOptionError(`audit of job "${jobName}"`, value, `one of ${AUDIT_LEVELS.join(', ')}`);
  return value as AuditLevel;
}

