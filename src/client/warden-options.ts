import type { Logger } from 'pino';
import type { AlertsOptions } from '../alerts/alert-options.js';
import type { AuditOptions } from '../audit/audit-options.js';
import type { Clock } from '../clock/clock.js';
import type { DatabaseOptions } from '../driver/create-driver.js';
import type { Driver } from '../driver/driver.js';
import { InvalidOptionError } from '../errors.js';
import type { RetentionOptions } from '../maintenance/retention-service.js';
import type { TracingOptions } from '../observe/job-tracer.js';
import { METRICS_OPTION_KEYS as ALL_METRICS_OPTION_KEYS, type MetricsOptions } from '../observe/metrics.js';
import type { JobDefinition } from '../job/define-job.js';
import type { ScheduleDefinition } from '../schedule/define-schedule.js';
import type { WorkerOptions } from '../runtime/worker-options.js';
import { booleanOption } from '../validation/boolean-option.js';
import type { Duration } from '../validation/duration.js';
import { checkKnownKeys } from '../validation/known-keys.js';
import { isOptionsObject, optionalOptionsObject } from '../validation/options-object.js';

/** Options for `createWarden`. */
export interface WardenOptions {
  /**
   * A database URL (`sqlite:./warden.db`, `postgres://…`) or a driver instance.
   * @default process.env.WARDEN_DATABASE_URL || (empty means unset) "sqlite:./warden.db"
   */
  database?: string | Driver;
  /** PostgreSQL schema for Warden's tables. @default "warden" */
  schema?: string;
  /** Driver settings used when `database` is a URL: pool size, timeouts, SQLite durability. @default {} */
  databaseOptions?: Omit<DatabaseOptions, 'url' | 'schema' | 'onError'>;
  /** The jobs this process knows how to run (and enqueue by name). Names must be unique. @default [] */
  jobs?: JobDefinition<any, any>[];
  /** Largest payload accepted at enqueue, in bytes of UTF-8 JSON. @default 262144 (256 KiB) */
  payloadLimit?: number;
  /** Defaults for `start()`. */
  worker?: WorkerOptions;
  /** Schedules this process fires (their jobs are registered too). Names must be unique. @default [] */
  schedules?: ScheduleDefinition[];
  /** Scheduler settings. */
  scheduler?: {
    /** How often due schedules are looked for. @default "1s" */
    scanInterval?: Duration;
    /** Emit `clock:skew` when this process's clock is off the database's by more than this. @default "30s" */
    clockSkewWarning?: Duration;
  };
  /**
   * Alerting (docs/alerts.md): rules with thresholds (dead letter, failure rate, consecutive failures, missed run,
   * run too long, queue lag, leases expiring), sinks (webhook, email; the log always), heartbeat URLs. Giving it
   * turns alerting on: `start()` then runs the alert monitor and, with sinks, the delivery queue.
   * @default undefined (alerting off; schedules' `heartbeat` pings still run)
   */
  alerts?: AlertsOptions;
  /** A pino logger. @default pino at level `process.env.WARDEN_LOG_LEVEL ?? "info"` */
  logger?: Logger;
  /**
   * Replaces the system clock, e.g. with `FakeClock` from `warden/testing`. One without `monotonicNow` measures local
   * deadlines and waits on `now()` (see {@link Clock.monotonicNow}). @default systemClock
   */
  clock?: Clock;
  /**
   * Source of randomness for retry jitter, uniform in [0, 1). Worker and alert instance ids come from
   * `crypto.randomBytes` instead, so a seeded `random` cannot give two processes the same id. @default Math.random
   */
  random?: () => number;
  /**
   * Prometheus metrics for this instance (docs/observability.md): `true` for Warden's own registry, or options
   * (`registry` to share the application's, `prefix`, …). Served by `warden.httpHandler()` or
   * `warden.metrics.registry`. @default false
   */
  metrics?: boolean | Omit<MetricsOptions, 'events' | 'driver' | 'clock'>;
  /**
   * OpenTelemetry spans (a producer span per enqueue, a consumer span per attempt), created through
   * `@opentelemetry/api`: recorded only when the application registered an SDK (or passes `tracerProvider`).
   * `false` turns them off. @default {} (the global provider)
   */
  tracing?: TracingOptions | false;
  /**
   * How long finished jobs and schedule ticks are kept, pruned by the retention service that `start()` runs, in
   * one instance at a time (a lease lock). Job types can set their own (`defineJob({ retention })`). `true` or
   * `{}`: the defaults; `false`: never prune. Off by default when a `clock` is injected (tests that drive time
   * opt in explicitly). @default { completed: "7d", dead: "30d", cancelled: "7d", scheduleTicks: "30d", interval: "1h" }
   */
  retention?: RetentionOptions | boolean;
  /**
   * Record job state changes and operator actions to the tamper-evident audit trail (docs/audit.md): `true`, or
   * options. How much of each job type is recorded is its definition's `audit` level. Reading and verifying
   * (`warden.audit`) work either way. @default false
   */
  audit?: boolean | AuditOptions;
}

/** Options for one enqueue. */
export interface EnqueueOptions {
  /** Run no earlier than this long from now (database time). */
  delay?: Duration;
  /** Run no earlier than this time. Overrides `delay`. */
  runAt?: Date;
  /** Lower runs first. @default the job's priority */
  priority?: number;
  /** Overrides the job's queue. @default the job's queue */
  queue?: string;
  /**
   * Deduplication key: while a job with this key is queued, retrying or running, enqueue returns that job
   * with `duplicate: true` instead of adding another. The job definition's `unique` policy (window, states,
   * replace) applies when it has one.
   */
  key?: string;
  /**
   * Deduplication with a policy: `{ key, window?, states?, replace? }` (see docs/idempotency.md). Replaces
   * `key`; fields left out come from the job definition's `unique`, then the defaults.
   */
  unique?: import('../job/unique-options.js').UniqueOptions;
  /**
   * The application's own transaction: a `pg` client inside `BEGIN`, or a better-sqlite3 `Database` inside a
   * transaction on the same file. The job then exists if and only if that transaction commits.
   */
  tx?: unknown;
}

/** What enqueue returns. */
export interface EnqueueResult {
  /** The job's id (the existing job's, for a duplicate). */
  id: string;
  /** True when an existing job with the same key was returned instead of adding one. */
  duplicate: boolean;
  /** True when that existing job was still waiting and got this enqueue's payload and run time (`unique.replace`). */
  replaced: boolean;
  job: import('../job/job-record.js').JobRow;
}

/** Options for `warden.start()`: the worker's options, and which services to run. */
export interface StartOptions extends WorkerOptions {
  /** Run the worker (claim and run jobs). @default true */
  worker?: boolean;
  /** Run the scheduler (fire schedules). @default true when schedules are registered */
  scheduler?: boolean;
  /** Run the retention service (unless the `retention` option is `false`). @default true */
  retention?: boolean;
}

/*
 * The keys of each object of the options, checked against its interface (an option added there cannot be missing
 * here): any other key is refused, since a misspelt one would silently be ignored and its default used.
 */
type TracingObject = Exclude<NonNullable<WardenOptions['tracing']>, false>;
const WARDEN_OPTION_KEYS = Object.keys({
  database: true, schema: true, databaseOptions: true, jobs: true, payloadLimit: true, worker: true, schedules: true, scheduler: true, alerts: true,
  logger: true, clock: true, random: true, metrics: true, tracing: true, retention: true, audit: true,
} satisfies Record<keyof WardenOptions, true>);
const DATABASE_OPTION_KEYS = Object.keys({
  poolSize: true, connectTimeoutMs: true, preparedStatements: true, handoff: true, busyTimeoutMs: true, synchronous: true, sqliteWakeupMs: true,
} satisfies Record<keyof NonNullable<WardenOptions['databaseOptions']>, true>);
const SCHEDULER_OPTION_KEYS = Object.keys({ scanInterval: true, clockSkewWarning: true } satisfies Record<keyof NonNullable<WardenOptions['scheduler']>, true>);
/** `attachMetrics`'s options but those `createWarden` sets itself (the `Omit` of {@link WardenOptions.metrics}). */
const METRICS_OPTION_KEYS = ALL_METRICS_OPTION_KEYS.filter((key) => key !== 'events' && key !== 'driver' && key !== 'clock');
const TRACING_OPTION_KEYS = Object.keys({ tracerProvider: true, consumerParent: true } satisfies Record<keyof TracingObject, true>);
/** The methods Warden calls on a `clock` and a `logger`: checked at `createWarden` rather than at their first call. */
const CLOCK_METHODS = ['now', 'sqlNow', 'sleep', 'setTimer'] as const satisfies readonly (keyof Clock)[];
const LOGGER_METHODS = ['child', 'debug', 'info', 'warn', 'error', 'isLevelEnabled'] as const satisfies readonly (keyof Logger)[];
/** The switches of {@link StartOptions}, besides the worker options. */
const START_SWITCH_KEYS = Object.keys({ worker: true, scheduler: true, retention: true } satisfies Record<Exclude<keyof StartOptions, keyof WorkerOptions>, true>);

/**
 * Checks the shape of `createWarden`'s options: an object of known keys, and each option that has no resolver of its
 * own (the driver's, the worker's, `audit`, `retention`, `alerts`) of its documented type: `random` a function,
 * `clock` and `logger` objects with the methods Warden calls, `scheduler`, `databaseOptions`, `metrics` and `tracing`
 * objects of known keys (or their boolean forms). Without this a wrong one is found late, or never: a `random` that
 * is not a function fails every failure's write, leaving its job running until its lease expires.
 * @throws InvalidOptionError naming the option. A string given for the options or for `databaseOptions` is shown as
 *   `"(a string)"`: it may be a database URL with its password.
 */
export function checkWardenOptions(options: unknown): asserts options is WardenOptions {
  if (!isOptionsObject(options)) throw new InvalidOptionError('createWarden(options)', typeof options === 'string' ? '(a string)' : options, 'an object of options, or left out');
  checkKnownKeys('createWarden options', options, WARDEN_OPTION_KEYS);
  const o = options as WardenOptions;
  if (o.database !== undefined && typeof o.database !== 'string' && !isOptionsObject(o.database)) throw new InvalidOptionError('database', o.database, 'a database URL or a driver instance');
  const driverOptions = 'an object of driver options (poolSize, connectTimeoutMs, …)';
  // A database URL given here by mistake carries its password: it is not shown.
  if (typeof o.databaseOptions === 'string') throw new InvalidOptionError('databaseOptions', '(a string)', driverOptions);
  optionalOptionsObject('databaseOptions', o.databaseOptions, DATABASE_OPTION_KEYS, driverOptions);
  optionalOptionsObject('scheduler', o.scheduler, SCHEDULER_OPTION_KEYS, 'an object { scanInterval?, clockSkewWarning? }');
  if (typeof o.metrics !== 'boolean') optionalOptionsObject('metrics', o.metrics, METRICS_OPTION_KEYS, 'a boolean or an object of metrics options');
  if (o.tracing !== false) optionalOptionsObject('tracing', o.tracing, TRACING_OPTION_KEYS, 'false or an object { tracerProvider?, consumerParent? }');
  if (o.random !== undefined && typeof o.random !== 'function') throw new InvalidOptionError('random', o.random, 'a function returning a number in [0, 1)');
  withMethods('clock', o.clock, CLOCK_METHODS, 'a Clock, such as FakeClock from warden/testing');
  // Optional (a clock without it measures elapsed time on now()), but when given it is called.
  const monotonicNow = (o.clock as Partial<Clock> | undefined)?.monotonicNow;
  if (monotonicNow !== undefined && typeof monotonicNow !== 'function') throw new InvalidOptionError('clock', o.clock, 'a Clock whose monotonicNow, when given, is a method');
  withMethods('logger', o.logger, LOGGER_METHODS, 'a pino Logger');
}

/** `start()`'s switches, resolved (see {@link StartOptions}). */
export interface StartSwitches {
  worker: boolean;
  scheduler: boolean;
  retention: boolean;
}

/**
 * Checks `start()`'s options (an object of worker options and switches, known keys only) and resolves its switches
 * through `booleanOption`: `worker: "false"` would otherwise read as true and start a worker.
 * @param workerKeys the keys of the worker options (`WORKER_OPTION_KEYS`), accepted besides the switches.
 * @param schedulerDefault whether the scheduler runs when `scheduler` is not given (schedules are registered).
 * @throws InvalidOptionError
 */
export function resolveStartSwitches(options: unknown, workerKeys: readonly string[], schedulerDefault: boolean): StartSwitches {
  if (!isOptionsObject(options)) throw new InvalidOptionError('start(options)', options, 'an object of worker options and switches, or left out');
  checkKnownKeys('start options', options, [...workerKeys, ...START_SWITCH_KEYS]);
  const o = options as StartOptions;
  return {
    worker: booleanOption('worker', o.worker, true),
    scheduler: booleanOption('scheduler', o.scheduler, schedulerDefault),
    retention: booleanOption('retention', o.retention, true),
  };
}

/**
 * An optional object on which Warden calls `methods`.
 * @throws InvalidOptionError naming the first method missing.
 */
function withMethods(field: string, value: unknown, methods: readonly string[], expected: string): void {
  if (value === undefined) return;
  const missing = isOptionsObject(value) ? methods.find((m) => typeof (value as Record<string, unknown>)[m] !== 'function') : methods[0];
  if (missing !== undefined) throw new InvalidOptionError(field, value, `${expected}, with a method ${missing}()`);
}
