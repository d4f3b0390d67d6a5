/**
 * Alerting as one part of a Warden instance (`warden.alerts`): the event-driven rules, the periodic monitor of the
 * database-based rules, the notifier and its delivery jobs, and the schedules' heartbeat pings. Built by the Warden
 * constructor from `createWarden({ alerts })`; the monitor runs while `warden.start()` has started it.
 * @module
 */
import type { Logger } from 'pino';
import type { Clock } from '../clock/clock.js';
import type { EnqueueItem } from '../client/warden.js';
import type { AlertListParams, AlertRow } from '../driver/alert-params.js';
import type { Driver } from '../driver/driver.js';
import { InvalidOptionError } from '../errors.js';
import type { TypedEmitter } from '../events/typed-emitter.js';
import type { JobDefinition } from '../job/define-job.js';
import type { ScheduleDefinition } from '../schedule/define-schedule.js';
import { type AlertDelivery, createAlertDelivery } from './alert-delivery.js';
import { AlertMonitor } from './alert-monitor.js';
import { AlertNotifier } from './alert-notifier.js';
import { type AlertsOptions, type ResolvedAlertOptions, resolveAlertOptions } from './alert-options.js';
import { EventRules } from './event-rules.js';
import { HeartbeatPinger } from './heartbeat-pinger.js';

/** What {@link AlertManager} needs from its Warden. */
export interface AlertManagerDeps {
  /** `createWarden({ alerts })`; undefined leaves alerting off (heartbeat pings still run). */
  options: AlertsOptions | undefined;
  driver: Driver;
  clock: Clock;
  events: TypedEmitter;
  logger: Logger;
  /** The registered job definitions (read for their `sensitive` fields). */
  definitions: ReadonlyMap<string, JobDefinition<any, any>>;
  /** The registered schedules (read for their `heartbeat`). */
  schedules: ReadonlyMap<string, ScheduleDefinition>;
  /** This instance's id, recorded as the opener or resolver of alerts. */
  instance: string;
  /** Enqueues through Warden inside the transaction `tx`. */
  enqueue: (items: EnqueueItem[], tx: unknown) => Promise<unknown>;
  /** Wakes a local worker for a queue that just got jobs. */
  onEnqueued: (queue: string) => void;
  /**
   * Runs an operator call (`check`, `resolve`): the Warden refuses it once closed and waits for it before closing.
   * @default runs it as it is
   */
  whileOpen?: <T>(call: string, write: () => Promise<T>) => Promise<T>;
}

/** Options of {@link AlertManager.resolve}. */
export interface AlertResolveOptions {
  /** Who resolves it, recorded in its details. @default "api" */
  actor?: string;
  /** Why, recorded in its details. @default none */
  reason?: string;
}

/** `warden.alerts`: list, check and resolve alerts; see docs/alerts.md. */
export class AlertManager {
  /** Whether `createWarden({ alerts })` was given. */
  readonly configured: boolean;
  /** The validated options; null when not configured. */
  readonly options: ResolvedAlertOptions | null;
  /** The built-in delivery jobs to register (one per sink type configured). */
  readonly deliveryJobs: readonly JobDefinition<any, any>[];
  /** The queue notices are delivered through, when webhook or email sinks are configured; null otherwise. */
  readonly deliveryQueue: string | null;
  readonly #deps: AlertManagerDeps;
  readonly #notifier: AlertNotifier | null = null;
  readonly #monitor: AlertMonitor | null = null;
  readonly #delivery: AlertDelivery | null = null;
  readonly #pinger: HeartbeatPinger | null = null;
  readonly #detach: (() => void)[] = [];
  readonly #inflight = new Set<Promise<unknown>>();

  /** @throws InvalidOptionError, InvalidDurationError, InvalidNameError for invalid `alerts` options. */
  constructor(deps: AlertManagerDeps) {
    this.#deps = deps;
    this.options = deps.options === undefined ? null : resolveAlertOptions(deps.options);
    this.configured = this.options !== null;
    const urls = new Map<string, string>();
    for (const schedule of deps.schedules.values()) if (schedule.heartbeat) urls.set(schedule.name, schedule.heartbeat.url);
    for (const [name, url] of this.options?.heartbeats ?? []) urls.set(name, url);
    if (urls.size > 0) {
      this.#pinger = new HeartbeatPinger({ events: deps.events, clock: deps.clock, logger: deps.logger, urls, timeoutMs: this.options?.heartbeatTimeoutMs ?? 5_000 });
      this.#detach.push(this.#pinger.attach());
    }
    const options = this.options;
    if (!options) {
      this.deliveryJobs = [];
      this.deliveryQueue = null;
      return;
    }
    const delivery = (this.#delivery = createAlertDelivery(options, deps.clock));
    this.deliveryJobs = delivery.jobs;
    this.deliveryQueue = options.sinks.length > 0 ? options.delivery.queue : null;
    const notifier = (this.#notifier = new AlertNotifier({
      driver: deps.driver, clock: deps.clock, events: deps.events, logger: deps.logger, instance: deps.instance,
      sinks: options.sinks, delivery, deliveryQueue: options.delivery.queue, enqueue: deps.enqueue, onEnqueued: deps.onEnqueued,
    }));
    const eventRules = new EventRules({
      events: deps.events, clock: deps.clock, driver: deps.driver, notifier, rules: options.rules, definitions: deps.definitions,
      track: (work, context) => this.#track(work, context),
    });
    this.#detach.push(eventRules.attach());
    this.#monitor = new AlertMonitor({ driver: deps.driver, clock: deps.clock, events: deps.events, notifier, eventRules, options });
  }

  /** Whether the periodic evaluation is running (`warden.start()` starts it when alerting is configured). */
  get running(): boolean {
    return this.#monitor?.running ?? false;
  }

  /** The configured sinks (the log sink is always on and not listed). */
  get sinks(): { name: string; type: 'webhook' | 'email' }[] {
    return (this.options?.sinks ?? []).map((s) => ({ name: s.name, type: s.type }));
  }

  /** Alerts in the database, most recently changed first (works without `alerts` configured). */
  list(params: AlertListParams = {}): Promise<AlertRow[]> {
    return this.#deps.driver.alertList(params);
  }

  /**
   * One evaluation of the database-based rules (missed runs, runs too long, queue lag, dead-letter resolution) in
   * this process, without starting the periodic monitor. For tests and scripts that drive time themselves; wait
   * for event-driven notices with {@link settled}.
   * @throws InvalidOptionError when alerting is not configured.
   */
  check(): Promise<void> {
    return this.#whileOpen('alerts.check()', async () => {
      if (!this.#monitor) throw new InvalidOptionError('alerts', undefined, 'configured with createWarden({ alerts }) to check alert rules');
      await this.#monitor.check();
    });
  }

  /**
   * Resolves an open alert by hand (e.g. a process-local alert whose instances are gone), recording `actor` and
   * `reason` in its details. Resolve notices are queued when this instance has sinks configured.
   * @returns the resolved row, or null when it was not open.
   */
  resolve(key: string, options: AlertResolveOptions = {}): Promise<AlertRow | null> {
    return this.#whileOpen('alerts.resolve()', () => this.#resolve(key, options));
  }

  async #resolve(key: string, options: AlertResolveOptions): Promise<AlertRow | null> {
    if (typeof key !== 'string' || key === '') throw new InvalidOptionError('alert key', key, 'a non-empty string');
    // Read by its key: a listing is capped, and an alert past the cap is open all the same.
    const current = await this.#deps.driver.alertGet({ key });
    if (current?.state !== 'open') return null;
    const details = { ...current.details, resolution: 'resolved by an operator', actor: options.actor ?? 'api', reason: options.reason ?? null };
    // Only the episode read: one opened again since was not the operator's to close, nor are these its details. Its
    // opening time as read, to the millisecond after it: PostgreSQL keeps microseconds, and a Date read drops them.
    const since = new Date(current.openedAt.getTime() + 1);
    if (this.#notifier) return this.#notifier.resolve(key, details, since);
    const { driver, clock, instance } = this.#deps;
    return driver.alertResolve({ key, detailsJson: JSON.stringify(details), instance, since, now: clock.sqlNow() });
  }

  /** Starts the periodic evaluation when alerting is configured. Idempotent. */
  start(): void {
    this.#monitor?.start();
  }

  /** Stops the periodic evaluation, waiting for a pass in progress. Safe to call twice or before start. */
  async stop(): Promise<void> {
    await this.#monitor?.stop();
  }

  /** Resolves when every event-driven alert write and heartbeat ping started so far has finished. */
  async settled(): Promise<void> {
    while (this.#inflight.size > 0) await Promise.allSettled([...this.#inflight]);
    await this.#pinger?.settled();
  }

  /** Stops, unsubscribes, waits for work in flight and closes the SMTP transports. Safe to call twice. */
  async close(): Promise<void> {
    await this.stop();
    for (const off of this.#detach.splice(0)) off();
    await this.settled();
    this.#delivery?.close();
  }

  #whileOpen<T>(call: string, write: () => Promise<T>): Promise<T> {
    return this.#deps.whileOpen ? this.#deps.whileOpen(call, write) : write();
  }

  #track(work: Promise<unknown>, context: string): void {
    const tracked = work.catch((error: unknown) => this.#deps.events.emit('error', { error, context }));
    this.#inflight.add(tracked);
    void tracked.finally(() => this.#inflight.delete(tracked));
  }
}
