import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { pino, type Logger } from 'pino';
import { AlertManager } from '../alerts/alert-manager.js';
import { AuditApi } from '../audit/audit-api.js';
import { resolveAuditOptions } from '../audit/audit-options.js';
import { AuditTrail } from '../audit/audit-trail.js';
import { type Clock, systemClock } from '../clock/clock.js';
import { createDriver, DEFAULT_DATABASE_URL } from '../driver/create-driver.js';
import type { Driver, MigrateResult, MigrationStatus } from '../driver/driver.js';
import { InvalidOptionError, MigrationRequiredError, WardenClosedError, WardenError } from '../errors.js';
import type { DoctorOptions, DoctorResult } from '../doctor/doctor-finding.js';
import { runDoctorChecks } from '../doctor/run-doctor.js';
import type { WardenEventMap, WardenEventName } from '../events/event-map.js';
import { TypedEmitter } from '../events/typed-emitter.js';
import type { JobDefinition } from '../job/define-job.js';
import type { JobState, QueueStats } from '../job/job-record.js';
import { JOB_STATES } from '../job/job-record.js';
import { LockManager } from '../lock/lock-manager.js';
import { resolveRetentionOptions, type RetentionResult, RetentionService } from '../maintenance/retention-service.js';
import { createHttpEndpoints, type HttpEndpointsHandler, type HttpEndpointsOptions } from '../observe/http-endpoints.js';
import { JobTracer } from '../observe/job-tracer.js';
import { attachMetrics, type MetricsHandle } from '../observe/metrics.js';
import { createReadinessCheck, type ReadinessCheck } from '../observe/readiness-check.js';
import { subscribeLogger } from '../runtime/log-subscriber.js';
import type { ScheduleDefinition } from '../schedule/define-schedule.js';
import { ScheduleOperations } from '../schedule/schedule-operations.js';
import { Scheduler } from '../schedule/scheduler.js';
import { type DrainResult, Worker, type WorkerCounters } from '../runtime/worker.js';
import { StartStopFlights } from '../runtime/start-stop-flights.js';
import { type ResolvedWorkerOptions, resolveWorkerOptions, WORKER_OPTION_KEYS, type WorkerOptions } from '../runtime/worker-options.js';
import { parseDuration } from '../validation/duration.js';
import { optionalOptionsObject } from '../validation/options-object.js';
import { Enqueuer, type EnqueueItem } from './enqueuer.js';
import { registerDefinitions } from './register-definitions.js';
import { createJobOperations, createQueueOperations, type JobOperations, type QueueOperations } from './job-operations.js';
import { checkWardenOptions, type EnqueueOptions, type EnqueueResult, resolveStartSwitches, type StartOptions, type StartSwitches, type WardenOptions } from './warden-options.js';

/** Default payload limit: 256 KiB of UTF-8 JSON. */
export const DEFAULT_PAYLOAD_LIMIT = 256 * 1024;

export type { EnqueueItem } from './enqueuer.js';

/** Totals across queues. */
export interface WardenStats {
  queues: QueueStats[];
  totals: Record<JobState, number>;
}

/** What worker options must be, for the message refusing them. */
const WORKER_OPTIONS = 'an object of worker options';

/** Ignores a settled promise's outcome where only its settling matters. */
const noop = (): void => undefined;

/**
 * A Warden instance: enqueue jobs, run a worker, operate on jobs and queues. Create with {@link createWarden}.
 * Implements `Symbol.asyncDispose`, so `await using warden = createWarden(…)` closes it.
 */
export class Warden {
  /** The typed event stream that logs, metrics and users subscribe to. */
  readonly events = new TypedEmitter();
  readonly driver: Driver;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly #ownsDriver: boolean;
  readonly #registry: Map<string, JobDefinition<any, any>>;
  readonly #payloadLimit: number;
  readonly #workerDefaults: WorkerOptions;
  /** The `grace` of the worker defaults, in ms: how long `close()` waits for the writes accepted before it. */
  readonly #closeGraceMs: number;
  readonly #random: () => number;
  readonly #schedules: Map<string, ScheduleDefinition>;
  readonly #schedulerOptions: { scanMs: number; skewWarnMs: number };
  #worker: Worker | null = null;
  #scheduler: Scheduler | null = null;
  #closing: Promise<void> | null = null;
  /**
   * Set once `close()` has stopped this instance's worker and scheduler: from then on every write through this
   * instance is refused with `WardenClosedError`. Not at the call of `close()`: handlers finishing in the stop's
   * grace period still enqueue their follow-up jobs.
   */
  #closed = false;
  /** Enqueues and operator actions in flight: `close()` waits for them before it stops the audit trail and driver. */
  #writesInFlight = 0;
  /** Resolves `close()`'s wait for {@link Warden.#writesInFlight} to reach 0; null while nothing waits. */
  #writesDrained: (() => void) | null = null;
  /**
   * Counts a write in flight down. One function shared by every write, and a count rather than a set of promises:
   * tracking then costs an enqueue one `then` (a `Set` of promises cost it 0.8 µs, measured).
   */
  readonly #writeSettled = (): void => {
    if (--this.#writesInFlight === 0 && this.#writesDrained) {
      this.#writesDrained();
      this.#writesDrained = null;
    }
  };
  #manualScheduler: Scheduler | null = null;
  #lastCounters: Readonly<WorkerCounters> | null = null;
  #manualSynced = false;
  /** Starts and stops in flight: a `start()` called before a stop (or `close()`) starts nothing, or nothing more. */
  readonly #flights = new StartStopFlights();
  /** Lease locks with fencing tokens, stored in the database. */
  readonly locks: LockManager;
  /** Operator actions on schedules: list, ticks, pause, resume, trigger. */
  readonly schedules: ScheduleOperations;
  /** Reading and operating on jobs. Every action is attributed to `actor` in its event. */
  readonly jobs: JobOperations;
  /** Queue pause state (persisted; honoured by every worker) and counts. */
  readonly queues: QueueOperations;
  /** This instance's Prometheus metrics (the `metrics` option): `registry` to serve; null when off. */
  readonly metrics: MetricsHandle | null;
  /** Producer and consumer spans; null when `tracing: false`. */
  readonly #tracer: JobTracer | null;
  /** Validates, writes and announces enqueued jobs. */
  readonly #enqueuer: Enqueuer;
  /** Pruning of finished jobs, started by `start()`; null when `retention: false`. */
  readonly #retention: RetentionService | null;
  /**
   * Readiness for `/readyz`: ready when this Warden is not closed, its worker is not draining or stopped, and the
   * database answers in time with no migration of this release pending; otherwise not ready with a reason
   * (`closed` from `close()` on, `worker draining: shutting down`, `worker stopped`, `database unreachable: …`,
   * `migrations pending: …`). Follows this instance's worker events from construction on; `httpHandler()` serves
   * it, `readiness.check` plugs into `startHealthServer`.
   */
  readonly readiness: ReadinessCheck;
  /** The audit trail: head, verify, export, prune (see docs/audit.md). Recording is the `audit` option. */
  readonly audit: AuditApi;
  /** Records events to the audit trail; null unless the `audit` option enables it. */
  readonly #auditTrail: AuditTrail | null;
  /** Alerts: list, check, resolve (see docs/alerts.md). Rules and sinks are the `alerts` option. */
  readonly alerts: AlertManager;

  constructor(options: WardenOptions = {}) {
    // Everything is checked before the driver is created below: a refused option must not leave a connection open.
    checkWardenOptions(options);
    const payloadLimit = options.payloadLimit ?? DEFAULT_PAYLOAD_LIMIT;
    if (!Number.isInteger(payloadLimit) || payloadLimit < 2 || payloadLimit > 64 * 1024 * 1024) {
      throw new InvalidOptionError('payloadLimit', payloadLimit, 'an integer number of bytes from 2 to 67108864 (64 MiB)');
    }
    const definitions = registerDefinitions(options.jobs ?? [], options.schedules ?? []);
    this.#registry = definitions.jobs;
    this.#schedules = definitions.schedules;
    this.#schedulerOptions = {
      scanMs: parseDuration('scheduler.scanInterval', options.scheduler?.scanInterval ?? '1s', { allowZero: false }),
      skewWarnMs: parseDuration('scheduler.clockSkewWarning', options.scheduler?.clockSkewWarning ?? '30s', { allowZero: false }),
    };
    const auditOptions = resolveAuditOptions(options.audit);
    // On by default, except with an injected clock: tests that drive time themselves opt in explicitly.
    const retention = options.retention ?? options.clock === undefined;
    const retentionOptions = retention === false ? null : resolveRetentionOptions(retention === true ? {} : retention);
    this.#tracer = options.tracing === false ? null : new JobTracer(options.tracing);
    this.#payloadLimit = payloadLimit;
    // Checked now, not first at start(): a producer never starts, and close() reads the grace from them. Their queues
    // are checked against the registered ones at start(); a placeholder stands in for them here, so an instance
    // without jobs (a producer, an operator tool) is not refused for having none.
    this.#workerDefaults = optionalOptionsObject('worker', options.worker, WORKER_OPTION_KEYS, WORKER_OPTIONS) ?? {};
    this.#closeGraceMs = resolveWorkerOptions(this.#workerDefaults, ['default']).graceMs;
    this.#random = options.random ?? Math.random;
    this.clock = options.clock ?? systemClock;
    this.logger = options.logger ?? pino({ level: process.env.WARDEN_LOG_LEVEL ?? 'info' });
    const database = options.database ?? (process.env.WARDEN_DATABASE_URL || DEFAULT_DATABASE_URL);
    this.#ownsDriver = typeof database === 'string';
    this.driver = typeof database === 'string'
      ? createDriver({ ...options.databaseOptions, url: database, schema: options.schema, onError: (error) => this.events.emit('error', { error, context: 'idle database connection' }) })
      : database;
    subscribeLogger(this.events, this.logger, this.#registry);
    this.#enqueuer = new Enqueuer({
      driver: this.driver, clock: this.clock, events: this.events, registry: this.#registry, payloadLimit, tracer: this.#tracer,
      onQueueReady: (queue) => this.#worker?.notify(queue),
    });
    this.locks = new LockManager({ driver: this.driver, clock: this.clock, events: this.events });
    this.#retention = retentionOptions && new RetentionService({ driver: this.driver, clock: this.clock, events: this.events, locks: this.locks, definitions: this.#registry }, retentionOptions);
    this.readiness = createReadinessCheck({ driver: this.driver, events: this.events });
    this.metrics = options.metrics ? attachMetrics({ ...(options.metrics === true ? {} : options.metrics), events: this.events, driver: this.driver, clock: this.clock }) : null;
    this.schedules = new ScheduleOperations({ driver: this.driver, clock: this.clock, events: this.events, definitions: this.#schedules, payloadLimit, onEnqueued: (q) => this.#worker?.notify(q), afterAction: () => this.#auditBarrier(), whileOpen: (call, write) => this.#whileOpen(call, write) });
    const operations = {
      driver: this.driver, clock: this.clock, events: this.events, onQueueReady: (q: string) => this.#worker?.notify(q), afterAction: () => this.#auditBarrier(),
      whileOpen: <T>(call: string, write: () => Promise<T>) => this.#whileOpen(call, write),
    };
    this.jobs = createJobOperations(operations);
    this.queues = createQueueOperations(operations);
    // Subscribed from construction on, so a producer that never calls start() still records its enqueues.
    this.#auditTrail = auditOptions.enabled ? new AuditTrail({ driver: this.driver, clock: this.clock, events: this.events, jobs: this.#registry, schedules: this.#schedules, options: auditOptions }) : null;
    this.#auditTrail?.start();
    this.audit = new AuditApi({ driver: this.driver, chain: auditOptions.chain, trail: this.#auditTrail });
    this.alerts = new AlertManager({
      options: options.alerts, driver: this.driver, clock: this.clock, events: this.events, logger: this.logger, definitions: this.#registry, schedules: this.#schedules,
      // Not from `random` (as the worker id): a fixed or seeded one gives two instances of one process one id, and
      // each would then resolve process-local alerts only the other has seen hold.
      instance: `${hostname()}/${process.pid}/${randomBytes(4).toString('hex')}`,
      // Not through enqueueMany's closed check: `close()` flushes the alerts (and their delivery jobs) after it.
      enqueue: (items, tx) => this.#enqueuer.enqueueMany(items, { tx }),
      onEnqueued: (queue) => this.#worker?.notify(queue),
      whileOpen: (call, write) => this.#whileOpen(call, write),
    });
    for (const def of this.alerts.deliveryJobs) {
      if (this.#registry.has(def.name)) throw new InvalidOptionError('jobs[]', def.name, 'a name other than those of the built-in alert delivery jobs');
      this.#registry.set(def.name, def);
    }
  }

  /** The registered job definitions, by name. */
  get definitions(): ReadonlyMap<string, JobDefinition<any, any>> {
    return this.#registry;
  }

  /** The counters of the running worker, or of the last one after it stopped; null before any start. */
  get workerCounters(): Readonly<WorkerCounters> | null {
    return this.#worker?.counters ?? this.#lastCounters;
  }

  /**
   * Applies pending migrations under a lock. Safe to run from many processes at once.
   * @throws WardenClosedError once `close()` has stopped this instance.
   */
  migrate(): Promise<MigrateResult> {
    return this.#whileOpen('migrate()', () => this.driver.migrate());
  }

  migrationStatus(): Promise<MigrationStatus> {
    return this.driver.migrationStatus();
  }

  /**
   * Enqueues one job. The payload is validated against the job's schema, checked to be plain JSON within the
   * payload limit, and only then written; on any error nothing is written.
   * @throws UnknownJobError, PayloadValidationError, NonJsonValueError, PayloadTooLargeError, InvalidOptionError,
   *   InvalidDurationError, InvalidNameError, InvalidTransactionError
   * @throws WardenClosedError once `close()` has stopped this instance (see {@link Warden.close}).
   */
  enqueue<TInput>(job: JobDefinition<TInput, any> | string, payload: TInput, options: EnqueueOptions = {}): Promise<EnqueueResult> {
    return this.#whileOpen('enqueue()', () => this.#enqueuer.enqueue(job, payload, options));
  }

  /**
   * Enqueues many jobs in one transaction and one round trip. Every item is validated first; if any is
   * invalid, nothing is written and the error names the item's index. `options.tx` covers every item; a `tx` in
   * an item's options is refused.
   * @throws the errors of {@link Warden.enqueue}, with `items[i]` in the message
   */
  enqueueMany(items: EnqueueItem[], options: { tx?: unknown } = {}): Promise<EnqueueResult[]> {
    return this.#whileOpen('enqueueMany()', () => this.#enqueuer.enqueueMany(items, options));
  }

  /**
   * Starts this process's worker and, when schedules are registered, its scheduler. Requires the schema to be
   * migrated.
   * Calls made while one is in progress share its outcome, unless `stop()` was called in between. A call made
   * while `stop()` is in progress waits for it, then starts afresh.
   * @throws MigrationRequiredError when migrations are pending.
   * @throws WardenClosedError once `close()` was called.
   * @throws InvalidOptionError, InvalidDurationError, InvalidNameError for bad options (an unknown key, a switch that is
   *   not a boolean, a bad worker option), before anything starts.
   */
  start(options: StartOptions = {}): Promise<void> {
    if (this.#closing) return Promise.reject(new WardenClosedError('start()'));
    let switches: StartSwitches;
    let resolved: ResolvedWorkerOptions | null;
    try {
      // Refused before anything starts, or waits on a start or stop in flight.
      switches = resolveStartSwitches(options, WORKER_OPTION_KEYS, this.#schedules.size > 0);
      const { worker: _worker, scheduler: _scheduler, retention: _retention, ...workerOptions } = options;
      resolved = switches.worker ? resolveWorkerOptions({ ...this.#workerDefaults, ...workerOptions }, this.#defaultQueues()) : null;
    } catch (error) {
      return Promise.reject(error);
    }
    // None in progress, or one that a stop called since will end without starting anything: this call starts
    // afresh once that one has settled, with its own options.
    return this.#flights.start((stops) => this.#start(switches, resolved, stops));
  }

  /**
   * @param resolved - the worker's options, or null when `worker: false`.
   * @param stops - the stop count when `start()` was called: a stop called after it wins.
   */
  async #start(switches: StartSwitches, resolved: ResolvedWorkerOptions | null, stops: number): Promise<void> {
    // A stop in progress finishes first. It still holds the worker it is stopping (this start would see a worker
    // and do nothing), and it stops the alert monitor and retention, which this start would have started already.
    // Awaited only when there is one: awaiting nothing still yields a turn, in which a stop called right after this
    // start would overtake it before its worker exists (and that worker's stop events would never come).
    const stopping = this.#flights.stopping;
    if (stopping) await stopping.catch(noop);
    // A stop called after this start wins (a close stops first), as one called during it does below.
    if (this.#flights.stoppedSince(stops)) return;
    if (this.#worker || this.#scheduler) return;
    const migrated = this.driver.migrationStatus().then((status) => {
      if (status.pending.length > 0) throw new MigrationRequiredError(status.pending);
    });
    // Awaited below (by the worker, or here); marked handled in case something in between throws first.
    migrated.catch(() => undefined);
    // Notices reach the sinks as jobs of the delivery queue: every worker runs it, whatever queues it was given.
    const deliveryQueue = this.alerts.deliveryQueue;
    if (resolved && deliveryQueue && !resolved.queues.includes(deliveryQueue)) resolved.queues.push(deliveryQueue);
    if (resolved) {
      const worker = this.#createWorker(resolved);
      this.#worker = worker;
      try {
        // The worker sets up its connections while the migrations are checked; it claims only if none is pending.
        await worker.start(migrated);
      } catch (error) {
        // Nothing was claimed and the worker stopped: start() may be called again.
        if (this.#worker === worker) this.#worker = null;
        throw error;
      }
    } else {
      await migrated;
    }
    // stop() was called while this start awaited: it stopped the worker and found nothing else to stop.
    if (this.#flights.stoppedSince(stops)) return;
    if (switches.scheduler) {
      this.#scheduler = this.#createScheduler();
      this.#scheduler.start();
    }
    if (switches.retention) this.#retention?.start();
    this.alerts.start();
  }

  /**
   * Stops the scheduler, then gracefully stops the worker (see `WorkerOptions.grace`). Safe to call twice or
   * before `start`; `start` may be called again afterwards.
   */
  stop(): Promise<void> {
    return this.#flights.stop(() => this.#stop());
  }

  async #stop(): Promise<void> {
    // What was started before this call: a start() called after it is not undone by it.
    const scheduler = this.#scheduler;
    const worker = this.#worker;
    // A worker still starting is stopped now, not after the services below: in the meantime its start could
    // finish and it would claim. (A running one is stopped after the scheduler, as documented.)
    if (worker?.starting) worker.stop().catch(noop);
    await this.alerts.stop();
    await this.#retention?.stop();
    await scheduler?.stop();
    if (this.#scheduler === scheduler) this.#scheduler = null;
    await worker?.stop();
    // A stopped worker cannot restart; forgetting it lets start() create a fresh one.
    if (worker) this.#lastCounters = worker.counters;
    if (this.#worker === worker) this.#worker = null;
    // The worker's last transitions are queued for the audit trail; a failed write is already an `error` event.
    await this.#auditTrail?.barrier().catch(() => undefined);
  }

  /** The registered schedules, by name. */
  get scheduleDefinitions(): ReadonlyMap<string, ScheduleDefinition> {
    return this.#schedules;
  }

  /**
   * One scheduler pass in this process, without starting anything: syncs the schedules (on the first call) and
   * fires every due tick. For tests and scripts that drive time themselves.
   * @throws ScheduleAdvanceError after handling the other due schedules, when some could not be advanced.
   */
  runSchedulerOnce(): Promise<number> {
    return this.#whileOpen('runSchedulerOnce()', async () => {
      this.#manualScheduler ??= this.#createScheduler();
      if (!this.#manualSynced) {
        await this.#manualScheduler.sync();
        this.#manualSynced = true;
      }
      return this.#manualScheduler.scan();
    });
  }

  /**
   * One retention pass now, in this process (see the `retention` option): deletes finished jobs past their
   * retention, orphaned dedup keys and old schedule ticks. Resolves with what it deleted, or null when another
   * instance is running a pass.
   * @throws InvalidOptionError when this instance was created with `retention: false`.
   */
  runRetentionOnce(): Promise<RetentionResult | null> {
    return this.#whileOpen('runRetentionOnce()', () => {
      if (!this.#retention) return Promise.reject(new InvalidOptionError('retention', false, 'retention enabled to run a retention pass'));
      return this.#retention.runOnce();
    });
  }

  /**
   * A request handler serving `/metrics` (this instance's registry, when the `metrics` option is on), `/livez` and
   * `/readyz` ({@link Warden.readiness}: 200 when not closed, the worker not draining or stopped, the database
   * reachable and no migration of this release pending; else 503 with the reason, e.g. `migrations pending: …` or
   * `closed` after `close()`), to mount in an existing server:
   * `http.createServer(warden.httpHandler())`, or `app.use(warden.httpHandler())` (other paths go to `next`).
   */
  httpHandler(options: Pick<HttpEndpointsOptions, 'paths'> = {}): HttpEndpointsHandler {
    return createHttpEndpoints({ registry: this.metrics?.registry, ready: this.readiness.check, paths: options.paths });
  }

  /** Runs every due job now in this process, until none is due. For tests and scripts. */
  drain(options: Pick<WorkerOptions, 'queues' | 'concurrency'> = {}): Promise<DrainResult> {
    return this.#whileOpen('drain()', () => {
      optionalOptionsObject('drain options', options, ['queues', 'concurrency'], WORKER_OPTIONS);
      const worker = this.#createWorker(resolveWorkerOptions({ ...this.#workerDefaults, ...options }, this.#defaultQueues()));
      return worker.drain();
    });
  }

  /** One pass of the rescuer: moves jobs whose lease expired back for retry (or to the dead letters). */
  rescue(options: Pick<WorkerOptions, 'maxLost'> = {}): Promise<void> {
    return this.#whileOpen('rescue()', () => {
      optionalOptionsObject('rescue options', options, ['maxLost'], WORKER_OPTIONS);
      return this.#rescue(options);
    });
  }

  async #rescue(options: Pick<WorkerOptions, 'maxLost'>): Promise<void> {
    // Rescue does not claim, so an instance without registered jobs (an operator tool) may still run it.
    const queues = this.#defaultQueues();
    // Resolved (so checked) even when a worker is started: a `maxLost` given here applies to this pass, not the
    // started worker's own.
    const resolved = resolveWorkerOptions({ ...this.#workerDefaults, ...options }, queues.length > 0 ? queues : ['default']);
    const worker = this.#worker ?? this.#createWorker(resolved);
    await worker.rescue(options.maxLost === undefined ? undefined : resolved.maxLost);
  }

  /**
   * Runs the `warden doctor` checklist on this instance's jobs, schedules, options and database (reads only; see
   * docs/doctor.md). The clock-skew threshold defaults to this instance's `scheduler.clockSkewWarning`.
   */
  doctor(options: DoctorOptions = {}): Promise<DoctorResult> {
    return runDoctorChecks(this, options, this.#schedulerOptions.skewWarnMs);
  }

  /**
   * Stops the worker and closes the database connections this instance opened. Once the worker has stopped (after
   * the grace period its running jobs get, during which their handlers may still enqueue), every write through this
   * instance is refused with `WardenClosedError`: `enqueue`, `enqueueMany`, the `jobs` and `queues` operator actions,
   * `migrate`, `drain`, `rescue`, `runSchedulerOnce`, `runRetentionOnce`, the `schedules` writes (`sync`, `pause`,
   * `resume`, `trigger`) and `alerts.check`/`alerts.resolve`, whether or not it opened its driver. Calls accepted
   * before then are waited for, for at most the worker's grace period (`error` event past it), so each is written and
   * recorded in the audit trail. Locks (`warden.locks`) and `audit.prune` go to the database directly and are not
   * refused: with a driver passed in they still work; with its own they fail once the driver is closed.
   */
  close(): Promise<void> {
    // Every caller waits for the same close, so a second call cannot return while the first is in progress.
    this.#closing ??= (async () => {
      // Not ready from the first moment (/readyz), and not blamed on the database once its own driver is closed.
      this.readiness.markClosed();
      await this.stop();
      // A start called before this close ends without starting anything (the stop came after it), but may still be
      // checking the migrations or opening connections: it must not find the driver closed under it.
      await this.#flights.starting?.catch(noop);
      // Refused from here on, also with a driver passed in (which stays open): the audit trail stops below, so a
      // later write would go unrecorded, and with a driver of its own it would fail with that driver's error.
      this.#closed = true;
      await this.#writesSettled();
      // Alert writes started by the worker's last events still need the database.
      await this.alerts.close();
      this.metrics?.detach();
      this.readiness.detach();
      await this.#auditTrail?.stop();
      if (this.#ownsDriver) await this.driver.close();
    })();
    return this.#closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** Counts per queue and in total. */
  async stats(): Promise<WardenStats> {
    const queues = await this.driver.queueList();
    const totals = Object.fromEntries(JOB_STATES.map((s) => [s, 0])) as Record<JobState, number>;
    for (const q of queues) for (const s of JOB_STATES) totals[s] += q.counts[s];
    return { queues, totals };
  }

  /** Subscribes to an event; returns an unsubscribe function. Shorthand for `events.on`. */
  on<K extends WardenEventName>(event: K, listener: (payload: WardenEventMap[K]) => void): () => void {
    return this.events.on(event, listener);
  }

  /**
   * Waits for the writes accepted before `close()` (see {@link Warden.#whileOpen}), for at most the worker's grace
   * period in real time: one that never settles (a database that stopped answering, a schema check that hangs) must
   * not keep `close()` and the process's shutdown from ending. Past it, `close()` goes on and says so (`error`).
   */
  async #writesSettled(): Promise<void> {
    if (this.#writesInFlight === 0) return;
    const drained = new Promise<void>((resolve) => (this.#writesDrained = resolve));
    // Resolved at construction: resolving the worker options here could throw (they need queues), and close() would
    // then reject and leave everything after this open.
    const graceMs = this.#closeGraceMs;
    let cancel = noop;
    const timedOut = new Promise<boolean>((resolve) => (cancel = systemClock.setTimer(graceMs, () => resolve(true))));
    const late = await Promise.race([drained.then(() => false), timedOut]);
    cancel();
    if (!late) return;
    this.#writesDrained = null;
    const error = new WardenError('CLOSE_WRITES_PENDING', `Expected the writes accepted before close() to settle within ${graceMs} ms, got ${this.#writesInFlight} still in flight; closing without them`);
    this.events.emit('error', { error, context: 'closing' });
  }

  /**
   * Runs a write through this instance (see {@link Warden.close}): refused once closed, tracked until it settles.
   * @throws WardenClosedError naming `call`
   */
  #whileOpen<T>(call: string, write: () => Promise<T>): Promise<T> {
    if (this.#closed) return Promise.reject(new WardenClosedError(call));
    let promise: Promise<T>;
    try {
      promise = write();
    } catch (error) {
      return Promise.reject(error);
    }
    this.#writesInFlight++;
    promise.then(this.#writeSettled, this.#writeSettled);
    return promise;
  }

  /**
   * Waits until the audit entries queued so far (an operator action's, queued by its event) are written, so an
   * operator action never returns unrecorded. @throws AuditWriteError when they are not written in time.
   */
  #auditBarrier(): Promise<void> {
    return this.#auditTrail?.barrier() ?? Promise.resolve();
  }

  #defaultQueues(): string[] {
    return [...new Set([...[...this.#registry.values()].map((d) => d.queue), ...[...this.#schedules.values()].map((s) => s.queue), ...(this.alerts.deliveryQueue ? [this.alerts.deliveryQueue] : [])])];
  }

  #createScheduler(): Scheduler {
    return new Scheduler({
      driver: this.driver,
      clock: this.clock,
      events: this.events,
      schedules: [...this.#schedules.values()],
      payloadLimit: this.#payloadLimit,
      ...this.#schedulerOptions,
      onEnqueued: (queue) => this.#worker?.notify(queue),
      // Not from `random`: a seeded one (tests) would give every instance the same id and shift its sequence.
      instanceId: `${hostname()}/${process.pid}/${randomBytes(4).toString('hex')}`,
    });
  }

  #createWorker(options: ReturnType<typeof resolveWorkerOptions>): Worker {
    // Not from `random`, as the scheduler's instanceId: a fixed or seeded one (tests, reproducible jitter) gives two
    // workers of one process the same id, and each would then hand back the other's running jobs as unreceived.
    const suffix = randomBytes(4).toString('hex');
    return new Worker(
      {
        driver: this.driver, clock: this.clock, events: this.events, logger: this.logger, registry: this.#registry, random: this.#random,
        payloadLimit: this.#payloadLimit, workerId: `${hostname()}/${process.pid}/${suffix}`, tracer: this.#tracer,
        enqueuesSettled: () => this.#enqueuer.settled(),
      },
      options,
    );
  }
}

/**
 * Creates a Warden instance. Opens (lazily) the database; call `migrate()` once per deploy, then `start()`.
 * @example
 * const warden = createWarden({ database: "sqlite:./warden.db", jobs: [sendEmail] });
 * await warden.migrate();
 * await warden.enqueue(sendEmail, { to: "a@example.com", template: "welcome" }, { key: "welcome:42" });
 * await warden.start({ concurrency: 20 });
 */
export function createWarden(options: WardenOptions = {}): Warden {
  return new Warden(options);
}
