import type { Logger } from 'pino';
import type { AlertsOptions } from '../alerts/alert-options.js';
import type { AuditOptions } from '../audit/audit-options.js';
import type { Clock } from '../clock/clock.js';
import type { DatabaseOptions } from '../driver/create-driver.js';
import type { Driver } from '../driver/driver.js';
import type { RetentionOptions } from '../maintenance/retention-service.js';
import type { TracingOptions } from '../observe/job-tracer.js';
import type { MetricsOptions } from '../observe/metrics.js';
import type { JobDefinition } from '../job/define-job.js';
import type { ScheduleDefinition } from '../schedule/define-schedule.js';
import type { WorkerOptions } from '../runtime/worker-options.js';
import type { Duration } from '../validation/duration.js';

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
  /** Replaces the system clock, e.g. with `FakeClock` from `warden/testing`. @default systemClock */
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
