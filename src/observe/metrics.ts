/**
 * Prometheus metrics derived from the event stream, like the log subscriber: counting is never a separate code
 * path. Counters and the histogram count what happened in this process (sum them across instances in PromQL);
 * queue depth, lag and schedule successes are read from the database at scrape time, so every instance reports
 * the same, whole-system numbers for them.
 * @module
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { type Clock, systemClock } from '../clock/clock.js';
import type { Driver } from '../driver/driver.js';
import { InvalidOptionError } from '../errors.js';
import type { TypedEmitter } from '../events/typed-emitter.js';
import { JOB_STATES } from '../job/job-record.js';
import { type Duration, parseDuration } from '../validation/duration.js';
import { checkKnownKeys } from '../validation/known-keys.js';
import { DatabaseSnapshot } from './database-snapshot.js';

/**
 * Attempt-duration buckets in seconds: from 5ms to an hour, because jobs range from a cache write to a
 * nightly batch; prom-client's defaults stop at 10s.
 */
export const DEFAULT_DURATION_BUCKETS: readonly number[] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600];

/** Options of {@link attachMetrics}. */
export interface MetricsOptions {
  /** The event stream to count, usually `warden.events`. */
  events: TypedEmitter;
  /** The database to read queue depth, lag and schedule successes from at scrape time, usually `warden.driver`. */
  driver: Driver;
  /**
   * The prom-client registry to register in, e.g. the application's own so one `/metrics` serves both. It must
   * not already hold metrics with these names (detach the previous attachment first). Warden registers nothing
   * else: add Node's process metrics with prom-client's `collectDefaultMetrics({ register })` if wanted.
   * @default a new `Registry` of Warden's own
   */
  registry?: Registry;
  /** Prepended to every metric name. @default "warden_" */
  prefix?: string;
  /** How long a database read is reused by later scrapes, so frequent scrapes don't load the database. @default "5s" */
  cache?: Duration;
  /**
   * How long the `queue_depth` of finished states (`completed`, `dead`, `cancelled`) is reused. Counting them reads
   * every finished job kept (about 120 ms at 1,000,000 on PostgreSQL), while the other database gauges read only
   * the jobs not yet ended (under 2 ms at any retention) with every `cache` period. "0s" counts them at every read.
   * @default "1m"
   */
  finishedCache?: Duration;
  /** How long a scrape waits for the database before serving the counters without the database gauges. @default "5s" */
  collectTimeout?: Duration;
  /** Buckets of the attempt-duration histogram, in seconds, increasing. @default DEFAULT_DURATION_BUCKETS */
  durationBuckets?: readonly number[];
  /**
   * The `lock` label for a lock name. Lock names are meant to be stable names chosen in code (`"nightly-report"`),
   * which makes them fine as a label; map names that embed ids (`"customer:42"`) to their stable part here, since
   * every distinct value is a new time series. @default the name unchanged
   */
  lockLabel?: (name: string) => string;
  /** Stamps schedule successes seen through events (a `FakeClock` in tests). @default systemClock */
  clock?: Clock;
}

/**
 * Every key of {@link MetricsOptions}, checked against the interface so an option added there is known here: any
 * other is refused, since a misspelt one (`collectTimout`) would silently be its default.
 */
export const METRICS_OPTION_KEYS: readonly string[] = Object.keys({
  events: true, driver: true, registry: true, prefix: true, cache: true, finishedCache: true, collectTimeout: true, durationBuckets: true, lockLabel: true, clock: true,
} satisfies Record<keyof MetricsOptions, true>);

/** What {@link attachMetrics} returns. */
export interface MetricsHandle {
  /** The registry holding the metrics: the one given, or Warden's own. Serve it with `createHttpEndpoints`. */
  readonly registry: Registry;
  /** Unsubscribes from the events and removes the metrics from the registry. Safe to call twice. */
  detach(): void;
}

/** Every metric name {@link attachMetrics} registers, without the prefix. */
export const METRIC_NAMES: readonly string[] = [
  'metrics_collect_errors_total',
  'jobs_enqueued_total',
  'jobs_deduplicated_total',
  'jobs_completed_total',
  'jobs_failed_total',
  'jobs_dead_total',
  'jobs_rescued_total',
  'schedule_runs_total',
  'schedule_skipped_total',
  'schedule_missed_total',
  'lock_acquisitions_total',
  'lock_losses_total',
  'stale_writes_rejected_total',
  'job_attempt_duration_seconds',
  'queue_depth',
  'queue_lag_seconds',
  'queue_paused',
  'schedule_last_success_timestamp_seconds',
];

const PREFIX_PATTERN = /^([a-zA-Z_:][a-zA-Z0-9_:]*)?$/;

/**
 * Registers Warden's metrics and keeps them up to date from `events`. Labels are bounded sets only: job, queue,
 * schedule and lock names, outcomes and states, never a job id.
 *
 * Counters (this process): `jobs_enqueued_total{job,queue}` (new jobs; duplicates go to
 * `jobs_deduplicated_total`), `jobs_completed_total{job,queue}`, `jobs_failed_total{job,queue,outcome}` (failed
 * attempts, whether retried or not), `jobs_dead_total{job,queue,reason}`, `jobs_rescued_total{job,queue}`,
 * `schedule_runs_total{schedule}` (ticks whose run was enqueued, manual triggers included),
 * `schedule_skipped_total{schedule,reason}` (`overlap` or `duplicate`), `schedule_missed_total{schedule}` (missed
 * ticks, not events),
 * `lock_acquisitions_total{lock}`, `lock_losses_total{lock}`, `stale_writes_rejected_total{write}`,
 * `metrics_collect_errors_total`. Histogram: `job_attempt_duration_seconds{job,queue,outcome}` (every attempt
 * run here, `yielded` hand-overs of long iterations included).
 * Gauges (database, at scrape): `queue_depth{queue,state}`, `queue_lag_seconds{queue}`, `queue_paused{queue}`,
 * `schedule_last_success_timestamp_seconds{schedule}`.
 *
 * `jobs_enqueued_total` counts enqueues through `warden.enqueue`/`enqueueMany` and runs enqueued by schedules
 * (ticks and manual triggers) in this process; an enqueue inside an application transaction that later rolls
 * back is still counted.
 * @throws InvalidOptionError for a bad or unknown option, or a registry that already holds one of these metric names.
 * @throws InvalidDurationError for a bad `cache`, `finishedCache` or `collectTimeout`.
 * @example
 * const { registry } = attachMetrics({ events: warden.events, driver: warden.driver });
 * http.createServer(createHttpEndpoints({ registry })).listen(9464);
 */
export function attachMetrics(options: MetricsOptions): MetricsHandle {
  if (typeof options !== 'object' || options === null) throw new InvalidOptionError('attachMetrics(options)', options, 'an object { events, driver, … }');
  checkKnownKeys('metrics options', options, METRICS_OPTION_KEYS);
  const { events, driver } = options;
  if (typeof events?.on !== 'function') throw new InvalidOptionError('events', events, "Warden's event emitter (warden.events)");
  if (typeof driver?.queueList !== 'function') throw new InvalidOptionError('driver', driver, 'a Warden driver (warden.driver)');
  const registry = options.registry ?? new Registry();
  // Duck-typed: an application's prom-client may be another copy than Warden's, so instanceof would refuse it.
  if (typeof registry?.registerMetric !== 'function' || typeof registry.getSingleMetric !== 'function') throw new InvalidOptionError('registry', registry, 'a prom-client Registry');
  const prefix = options.prefix ?? 'warden_';
  if (typeof prefix !== 'string' || !PREFIX_PATTERN.test(prefix)) throw new InvalidOptionError('prefix', prefix, 'a Prometheus name prefix matching /^[a-zA-Z_:][a-zA-Z0-9_:]*$/ or ""');
  const buckets = validateBuckets(options.durationBuckets ?? DEFAULT_DURATION_BUCKETS);
  const lockLabel = options.lockLabel ?? ((name: string) => name);
  if (typeof lockLabel !== 'function') throw new InvalidOptionError('lockLabel', lockLabel, 'a function from lock name to label value');
  const cacheMs = parseDuration('cache', options.cache ?? '5s');
  const finishedCacheMs = parseDuration('finishedCache', options.finishedCache ?? '1m');
  const timeoutMs = parseDuration('collectTimeout', options.collectTimeout ?? '5s', { allowZero: false });
  const clock = options.clock ?? systemClock;

  const names = METRIC_NAMES.map((n) => prefix + n);
  const taken = names.find((n) => registry.getSingleMetric(n) !== undefined);
  if (taken) throw new InvalidOptionError('registry', registry, `a registry without a metric named ${taken} (detach the previous attachMetrics first, or use another prefix)`);

  const registers = [registry];
  const counter = (name: string, help: string, labelNames: string[], collect?: (this: Counter) => Promise<void>) =>
    new Counter({ name: prefix + name, help, labelNames, registers, ...(collect ? { collect } : {}) });

  // Collected after the scrape's database read, so a failing scrape already counts itself.
  const collectErrors = counter('metrics_collect_errors_total', 'Scrapes whose database read failed or timed out; the database gauges were left out of them.', [], async () => {
    await snapshot.get();
  });
  const snapshot = new DatabaseSnapshot({
    driver,
    cacheMs,
    finishedCacheMs,
    timeoutMs,
    onError: (error) => {
      collectErrors.inc();
      events.emit('error', { error, context: 'reading the database for metrics' });
    },
  });
  /**
   * Schedule counters start at 0 for every schedule in the database, so `increase()` and absence alerts work
   * before the first tick. Counter collect runs in parallel with the gauges', sharing one database read.
   */
  const zeroForSchedules = async function (this: Counter) {
    const data = await snapshot.get();
    for (const s of data?.schedules ?? []) this.inc({ schedule: s.name }, 0);
  };
  /**
   * Skips start at 0 for the reason a schedule's own ticks are held back by (`overlap`); `duplicate` (a unique key
   * matched an active job) is a property of the job's key or an operator's trigger, and appears when it happens.
   */
  const zeroOverlapForSchedules = async function (this: Counter) {
    const data = await snapshot.get();
    for (const s of data?.schedules ?? []) this.inc({ schedule: s.name, reason: 'overlap' }, 0);
  };

  const enqueued = counter('jobs_enqueued_total', 'Jobs inserted by this process (duplicates excluded).', ['job', 'queue']);
  const deduplicated = counter('jobs_deduplicated_total', 'Enqueues by this process that returned an existing job with the same key.', ['job', 'queue']);
  const completed = counter('jobs_completed_total', 'Jobs completed by this process.', ['job', 'queue']);
  const failed = counter('jobs_failed_total', 'Attempts that ended other than completed in this process, by outcome (retried or not).', ['job', 'queue', 'outcome']);
  const dead = counter('jobs_dead_total', 'Jobs moved to the dead letters by this process, by the outcome of their last attempt.', ['job', 'queue', 'reason']);
  const rescued = counter('jobs_rescued_total', 'Jobs whose lease expired, rescued by this process.', ['job', 'queue']);
  const scheduleRuns = counter('schedule_runs_total', 'Schedule ticks (and manual triggers) whose run was enqueued (a new job, or a waiting one given their payload), in this process.', ['schedule'], zeroForSchedules);
  const scheduleSkipped = counter('schedule_skipped_total', 'Schedule ticks (and manual triggers) that enqueued nothing, by reason: overlap (the overlap policy) or duplicate (the job\'s unique key matched an active job), in this process.', ['schedule', 'reason'], zeroOverlapForSchedules);
  const scheduleMissed = counter('schedule_missed_total', 'Schedule ticks missed (no scheduler ran within their grace), recorded by this process.', ['schedule'], zeroForSchedules);
  const lockAcquired = counter('lock_acquisitions_total', 'Lease locks granted to this process.', ['lock']);
  const lockLost = counter('lock_losses_total', 'Lease locks lost by this process (renewal refused or expired).', ['lock']);
  const staleWrites = counter('stale_writes_rejected_total', 'Writes by attempts that no longer held their lease, rejected by the database.', ['write']);
  const duration = new Histogram({
    name: `${prefix}job_attempt_duration_seconds`,
    help: 'Duration of job attempts run by this process, by outcome.',
    labelNames: ['job', 'queue', 'outcome'],
    buckets: [...buckets],
    registers,
  });
  new Gauge({
    name: `${prefix}queue_depth`,
    help: 'Jobs in the database by queue and state (read at scrape time).',
    labelNames: ['queue', 'state'],
    registers,
    async collect() {
      const data = await snapshot.get();
      this.reset();
      for (const q of data?.queues ?? []) for (const state of JOB_STATES) this.set({ queue: q.queue, state }, q.counts[state] ?? 0);
    },
  });
  new Gauge({
    name: `${prefix}queue_lag_seconds`,
    help: 'Age of the oldest due job waiting in the queue (queued or retrying), 0 when none (read at scrape time).',
    labelNames: ['queue'],
    registers,
    async collect() {
      const data = await snapshot.get();
      this.reset();
      for (const q of data?.queues ?? []) this.set({ queue: q.queue }, q.lagMs / 1000);
    },
  });
  new Gauge({
    name: `${prefix}queue_paused`,
    help: 'Whether the queue is paused: 1 paused, 0 not (read at scrape time).',
    labelNames: ['queue'],
    registers,
    async collect() {
      const data = await snapshot.get();
      this.reset();
      for (const q of data?.queues ?? []) this.set({ queue: q.queue }, q.paused ? 1 : 0);
    },
  });
  new Gauge({
    name: `${prefix}schedule_last_success_timestamp_seconds`,
    help: 'When the newest successful run of the schedule finished, in seconds since the epoch.',
    labelNames: ['schedule'],
    registers,
    async collect() {
      await snapshot.get();
      this.reset();
      for (const [schedule, seconds] of snapshot.lastSuccessSeconds()) this.set({ schedule }, seconds);
    },
  });

  const offs = [
    events.on('job:enqueued', (e) => (e.duplicate ? deduplicated : enqueued).inc({ job: e.job.name, queue: e.job.queue })),
    events.on('job:completed', (e) => {
      const labels = { job: e.job.name, queue: e.job.queue };
      completed.inc(labels);
      duration.observe({ ...labels, outcome: 'completed' }, e.durationMs / 1000);
      // A schedule's run completing here is its newest success, without waiting for the next database read.
      if (e.job.scheduleName) snapshot.record(e.job.scheduleName, e.job.id, clock.now() / 1000);
    }),
    events.on('job:yielded', (e) => duration.observe({ job: e.job.name, queue: e.job.queue, outcome: 'yielded' }, e.durationMs / 1000)),
    events.on('job:failed', (e) => {
      const labels = { job: e.job.name, queue: e.job.queue, outcome: e.outcome };
      duration.observe(labels, e.durationMs / 1000);
      failed.inc(labels);
    }),
    events.on('job:dead', (e) => dead.inc({ job: e.job.name, queue: e.job.queue, reason: e.reason })),
    events.on('job:rescued', (e) => rescued.inc({ job: e.job.name, queue: e.job.queue })),
    events.on('job:stale-write-rejected', (e) => staleWrites.inc({ write: e.write })),
    events.on('schedule:fired', (e) => scheduleRuns.inc({ schedule: e.schedule })),
    events.on('schedule:skipped', (e) => scheduleSkipped.inc({ schedule: e.schedule, reason: e.reason })),
    events.on('schedule:missed', (e) => scheduleMissed.inc({ schedule: e.schedule }, e.count)),
    events.on('lock:acquired', (e) => lockAcquired.inc({ lock: lockLabel(e.name) })),
    events.on('lock:lost', (e) => lockLost.inc({ lock: lockLabel(e.name) })),
  ];

  let detached = false;
  return {
    registry,
    detach() {
      if (detached) return;
      detached = true;
      for (const off of offs) off();
      for (const name of names) registry.removeSingleMetric(name);
    },
  };
}

function validateBuckets(buckets: readonly number[]): readonly number[] {
  const ok = Array.isArray(buckets) && buckets.length > 0
    && buckets.every((b, i) => typeof b === 'number' && Number.isFinite(b) && b > 0 && (i === 0 || b > buckets[i - 1]!));
  if (!ok) throw new InvalidOptionError('durationBuckets', buckets, 'a non-empty array of increasing positive numbers of seconds');
  return buckets;
}
