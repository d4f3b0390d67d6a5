/**
 * Opening and resolving alerts, and notifying: the database write decides which instance notifies (the one whose
 * `alertOpen`/`alertResolve` got the row back), the delivery jobs for the webhook and email sinks are enqueued in
 * that same transaction, and only then is the notice logged and emitted (`alert:opened`, `alert:resolved`).
 * @module
 */
import type { Logger } from 'pino';
import type { Clock } from '../clock/clock.js';
import type { EnqueueItem } from '../client/warden.js';
import type { AlertRow, AlertRule, AlertSeverity } from '../driver/alert-params.js';
import type { Driver } from '../driver/driver.js';
import type { TypedEmitter } from '../events/typed-emitter.js';
import type { AlertDelivery } from './alert-delivery.js';
import { type AlertNoticeEvent, toNotice } from './alert-notice.js';
import type { ResolvedSink } from './alert-options.js';

/** What a rule found: the alert to open under `key` unless it is open already. */
export interface AlertFinding {
  key: string;
  rule: AlertRule;
  severity: AlertSeverity;
  summary: string;
  /** Plain JSON; never a job payload. */
  details: Record<string, unknown>;
}

/** What {@link AlertNotifier} needs. */
export interface AlertNotifierDeps {
  driver: Driver;
  clock: Clock;
  events: TypedEmitter;
  logger: Logger;
  /** This instance's id, recorded as opener or resolver. */
  instance: string;
  sinks: readonly ResolvedSink[];
  delivery: AlertDelivery;
  /** The queue the delivery jobs go to. */
  deliveryQueue: string;
  /** Enqueues through Warden (so validation and events apply) inside the transaction `tx`. */
  enqueue: (items: EnqueueItem[], tx: unknown) => Promise<unknown>;
  /** Called after a commit that queued deliveries, so a worker in this process can take them at once. */
  onEnqueued: (queue: string) => void;
}

/** Opens and resolves alerts through the database and notifies when this instance's write was the one that counted. */
export class AlertNotifier {
  readonly #deps: AlertNotifierDeps;

  constructor(deps: AlertNotifierDeps) {
    this.#deps = deps;
  }

  /**
   * Opens `finding` unless its key is open (or was resolved after `since`). Returns the row when this call opened
   * it, after its notices were queued, logged and emitted; null when another instance had (nothing is sent).
   */
  async open(finding: AlertFinding, since: Date | null): Promise<AlertRow | null> {
    const { driver, clock, instance } = this.#deps;
    const detailsJson = JSON.stringify(finding.details);
    return this.#notify('opened', (tx) => driver.alertOpen({ ...finding, detailsJson, instance, since, now: clock.sqlNow(), tx }));
  }

  /**
   * Resolves `key` if it is open (and was opened by `since`). `details` replaces the stored details (null keeps
   * them). Returns the row when this call resolved it, after its resolve notices were queued; null otherwise.
   */
  async resolve(key: string, details: Record<string, unknown> | null, since: Date | null): Promise<AlertRow | null> {
    const { driver, clock, instance } = this.#deps;
    const detailsJson = details === null ? null : JSON.stringify(details);
    return this.#notify('resolved', (tx) => driver.alertResolve({ key, detailsJson, instance, since, now: clock.sqlNow(), tx }));
  }

  async #notify(event: AlertNoticeEvent, write: (tx: unknown) => Promise<AlertRow | null>): Promise<AlertRow | null> {
    const { driver, sinks, deliveryQueue } = this.#deps;
    const alert = sinks.length === 0
      ? await write(undefined)
      : await driver.transaction(async (tx) => {
          const row = await write(tx);
          if (row) await this.#deps.enqueue(this.#deliveries(row, event), tx);
          return row;
        });
    if (!alert) return null;
    if (sinks.length > 0) this.#deps.onEnqueued(deliveryQueue);
    this.#log(alert, event);
    this.#deps.events.emit(event === 'opened' ? 'alert:opened' : 'alert:resolved', { alert });
    return alert;
  }

  /** One delivery job per sink, keyed by sink and notice so a notice is never queued twice for one sink. */
  #deliveries(alert: AlertRow, event: AlertNoticeEvent): EnqueueItem[] {
    const notice = toNotice(alert, event);
    return this.#deps.sinks.map((sink) => ({
      job: this.#deps.delivery.jobFor(sink.name),
      payload: { sink: sink.name, notice },
      options: { queue: this.#deps.deliveryQueue, key: `alert:${sink.name}:${notice.id}` },
    }));
  }

  /** The log sink, always on: critical openings as errors, warnings as warnings, resolves as info. */
  #log(alert: AlertRow, event: AlertNoticeEvent): void {
    const fields = { alert: alert.key, rule: alert.rule, severity: alert.severity, episode: alert.episode, details: alert.details };
    if (event === 'resolved') this.#deps.logger.info(fields, `alert resolved: ${alert.summary}`);
    else if (alert.severity === 'critical') this.#deps.logger.error(fields, `alert opened: ${alert.summary}`);
    else this.#deps.logger.warn(fields, `alert opened: ${alert.summary}`);
  }
}
