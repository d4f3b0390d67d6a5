/**
 * The rules decided from this process's event stream: dead letters (`job:dead`, once per dead job), consecutive
 * failures and failure rate per job type (`job:failed` / `job:completed`), and leases that keep expiring
 * (`job:rescued`). Counts are this process's own: each instance sees the attempts it ran and the rescues it did.
 *
 * Dead-letter alerts are resolved by the monitor from the database (the job was retried or discarded); the monitor
 * also opens, through {@link EventRules.openFoundDeadLetter}, those of dead jobs whose open from `job:dead` was never
 * written. The others are resolved by an instance that has itself seen the condition hold (it "adopted" the alert, by
 * opening it or by finding it open) once its own counts clear, so an instance with no traffic of a job type never
 * resolves what another instance is still seeing; `warden.alerts.resolve(key)` closes one whose instances are gone.
 * @module
 */
import type { Clock } from '../clock/clock.js';
import { deadLetterKey } from '../driver/alert-params.js';
import type { Driver } from '../driver/driver.js';
import type { WardenEventMap } from '../events/event-map.js';
import type { TypedEmitter } from '../events/typed-emitter.js';
import type { JobDefinition } from '../job/define-job.js';
import type { AttemptOutcome, ErrorInfo, JobRow } from '../job/job-record.js';
import { collectSensitiveValues, redactText } from '../observe/redact.js';
import { ALERT_DELIVERY_JOBS } from './alert-delivery.js';
import type { AlertFinding, AlertNotifier } from './alert-notifier.js';
import type { ResolvedAlertOptions } from './alert-options.js';
import { WindowCounts } from './window-counts.js';

/** Attempt outcomes that count as failures for the failure rules (not shutdown, cancel, yield or a lost lease). */
const FAILURES: ReadonlySet<AttemptOutcome> = new Set<AttemptOutcome>(['failed', 'timeout', 'invalid']);

/** A failure-rate alert resolves once the rate is below this fraction of the threshold, so it does not flap. */
const RATE_HYSTERESIS = 0.5;

/** A dead job as a dead-letter alert describes it: the `job:dead` event, or a dead job found without its alert. */
interface DeadJob {
  job: { id: string; name: string; queue: string; scheduleName?: string | null };
  attempt: number;
  /** How its last attempt ended; null when no attempt row records it. */
  reason: AttemptOutcome | null;
  error: ErrorInfo | null;
}

/** What {@link EventRules} needs. */
export interface EventRulesDeps {
  events: TypedEmitter;
  clock: Clock;
  driver: Driver;
  notifier: AlertNotifier;
  rules: ResolvedAlertOptions['rules'];
  /** Job definitions by name, for their `sensitive` fields. */
  definitions: ReadonlyMap<string, JobDefinition<any, any>>;
  /** Keeps track of asynchronous work started from a listener, so it can be awaited and its errors reported. */
  track: (work: Promise<unknown>, context: string) => void;
}

/** Event-driven alert rules. {@link attach} subscribes; {@link evaluate} clears window-based alerts over time. */
export class EventRules {
  readonly #deps: EventRulesDeps;
  readonly #consecutive = new Map<string, number>();
  readonly #attempts: WindowCounts | null;
  readonly #rescues: WindowCounts | null;
  /** Keys of process-local alerts this instance has seen hold while open: it may resolve them. */
  readonly #adopted = new Set<string>();
  /** Keys with an open or resolve write in flight, and which. */
  readonly #inflight = new Map<string, 'open' | 'resolve'>();
  /**
   * The latest open or resolve asked for while the other write of that key was in flight, run when it ends: the
   * event that asked may be the last of its kind for a while (a completion ends a run of failures once), so
   * dropping it would leave the alert in the state the in-flight write set.
   */
  readonly #deferred = new Map<string, () => void>();

  constructor(deps: EventRulesDeps) {
    this.#deps = deps;
    const { failureRate, leaseExpiry } = deps.rules;
    this.#attempts = failureRate ? new WindowCounts(failureRate.windowMs) : null;
    this.#rescues = leaseExpiry ? new WindowCounts(leaseExpiry.windowMs) : null;
  }

  /** Subscribes to the events the rules read; returns the unsubscribe function. */
  attach(): () => void {
    const { events } = this.#deps;
    const offs = [
      events.on('job:dead', (e) => this.#onDead(e)),
      events.on('job:failed', (e) => this.#onAttempt(e.job.name, FAILURES.has(e.outcome) ? 'failed' : 'other')),
      events.on('job:completed', (e) => this.#onAttempt(e.job.name, 'completed')),
      events.on('job:rescued', (e) => this.#onRescued(e)),
    ];
    return () => offs.forEach((off) => off());
  }

  /** Resolves adopted window-based alerts whose counts have cleared (called by the monitor's periodic check). */
  evaluate(): void {
    const now = this.#deps.clock.now();
    const { failureRate, leaseExpiry } = this.#deps.rules;
    if (failureRate && this.#attempts) {
      for (const job of this.#adoptedNames('failure-rate:')) {
        const { total, failed } = this.#attempts.totals(job, now);
        if (total === 0 || (total >= failureRate.minAttempts && failed / total < failureRate.threshold * RATE_HYSTERESIS)) {
          this.#clear(`failure-rate:${job}`, { job, attempts: total, failed, rate: total === 0 ? 0 : failed / total, threshold: failureRate.threshold, windowMs: failureRate.windowMs });
        }
      }
      this.#attempts.prune(now);
    }
    if (leaseExpiry && this.#rescues) {
      for (const job of this.#adoptedNames('lease-expiry:')) {
        if (this.#rescues.totals(job, now).total === 0) this.#clear(`lease-expiry:${job}`, { job, rescued: 0, threshold: leaseExpiry.count, windowMs: leaseExpiry.windowMs });
      }
      this.#rescues.prune(now);
    }
  }

  /**
   * Opens the dead-letter alert of a dead job that has none, which the monitor found in the database: the open from
   * its `job:dead` failed, or the process died between the job's dead state and that write, or the process that
   * dead-lettered it does not alert. Both ways open the same key (the job and the attempt it died at), and an open
   * key is opened once, so the alert is raised once whichever write comes first. Nothing is opened for a job that is
   * no longer dead (retried or discarded since it was read).
   * @param since - When the monitor's pass began reading: an alert of this key resolved after it is not opened again.
   */
  async openFoundDeadLetter(jobId: string, since: Date): Promise<void> {
    const { driver } = this.#deps;
    const job = await driver.jobGet({ id: jobId });
    if (!job || job.state !== 'dead') return;
    // The attempt it died at says how (the event's reason); the job row keeps only its error.
    const ending = (await driver.jobAttemptList({ id: jobId })).find((a) => a.attempt === job.attempt);
    await this.#openDeadLetter({ job, attempt: job.attempt, reason: ending?.outcome ?? null, error: ending?.error ?? job.lastError }, since, job);
  }

  #onDead(e: WardenEventMap['job:dead']): void {
    if (!this.#deps.rules.deadLetter || ALERT_DELIVERY_JOBS.includes(e.job.name)) return;
    this.#deps.track(this.#openDeadLetter(e, null), `dead-letter alert for job ${e.job.id}`);
  }

  /** @param row - The job's row when already read (its payload is what the error message is scrubbed of). */
  async #openDeadLetter(e: DeadJob, since: Date | null, row?: JobRow): Promise<void> {
    const error = e.error ? { name: e.error.name, message: await this.#scrub(e.job.id, e.job.name, e.error.message, row) } : null;
    await this.#deps.notifier.open({
      key: deadLetterKey(e.job.id, e.attempt),
      rule: 'dead-letter',
      severity: 'critical',
      summary: `job ${e.job.name} ${e.job.id} is dead after ${e.attempt} attempt(s) (${e.reason ?? 'how is not recorded'})`,
      details: { jobId: e.job.id, job: e.job.name, queue: e.job.queue, schedule: e.job.scheduleName ?? null, attempt: e.attempt, reason: e.reason, error },
    }, since);
  }

  /** An error message with copies of the job's sensitive payload values replaced (key redaction cannot see them). */
  async #scrub(jobId: string, jobName: string, message: string, row?: JobRow): Promise<string> {
    const sensitive = this.#deps.definitions.get(jobName)?.sensitive ?? [];
    if (sensitive.length === 0) return message;
    const job = row ?? (await this.#deps.driver.jobGet({ id: jobId }).catch(() => null));
    return redactText(message, collectSensitiveValues(job?.payload, sensitive));
  }

  #onAttempt(job: string, result: 'completed' | 'failed' | 'other'): void {
    if (ALERT_DELIVERY_JOBS.includes(job) || result === 'other') return;
    const { consecutiveFailures, failureRate } = this.#deps.rules;
    const now = this.#deps.clock.now();
    if (consecutiveFailures) {
      const key = `consecutive-failures:${job}`;
      if (result === 'completed') {
        this.#consecutive.delete(job);
        this.#clear(key, { job, consecutiveFailures: 0, threshold: consecutiveFailures.count, recoveredAt: new Date(now).toISOString() });
      } else {
        const count = (this.#consecutive.get(job) ?? 0) + 1;
        this.#consecutive.set(job, count);
        if (count >= consecutiveFailures.count) {
          this.#raise({ key, rule: 'consecutive-failures', severity: 'warning', summary: `job ${job}: ${count} attempts failed in a row`, details: { job, consecutiveFailures: count, threshold: consecutiveFailures.count } });
        }
      }
    }
    if (failureRate && this.#attempts) {
      this.#attempts.add(job, now, result === 'failed');
      const { total, failed } = this.#attempts.totals(job, now);
      if (result === 'failed' && total >= failureRate.minAttempts && failed / total >= failureRate.threshold) {
        const percent = Math.round((failed / total) * 100);
        this.#raise({
          key: `failure-rate:${job}`, rule: 'failure-rate', severity: 'warning',
          summary: `job ${job}: ${percent}% of ${total} attempts failed in the last ${Math.round(failureRate.windowMs / 60_000)}m`,
          details: { job, attempts: total, failed, rate: failed / total, threshold: failureRate.threshold, windowMs: failureRate.windowMs },
        });
      }
    }
  }

  #onRescued(e: WardenEventMap['job:rescued']): void {
    const { leaseExpiry } = this.#deps.rules;
    if (!leaseExpiry || !this.#rescues || ALERT_DELIVERY_JOBS.includes(e.job.name)) return;
    const now = this.#deps.clock.now();
    this.#rescues.add(e.job.name, now, true);
    const { total } = this.#rescues.totals(e.job.name, now);
    if (total < leaseExpiry.count) return;
    this.#raise({
      key: `lease-expiry:${e.job.name}`, rule: 'lease-expiry', severity: 'warning',
      summary: `job ${e.job.name}: ${total} leases expired in the last ${Math.round(leaseExpiry.windowMs / 60_000)}m (workers dying, stalling or losing the database)`,
      details: { job: e.job.name, queue: e.job.queue, rescued: total, threshold: leaseExpiry.count, windowMs: leaseExpiry.windowMs, lastJobId: e.job.id },
    });
  }

  /**
   * Opens a process-local alert unless it is open (the database decides, see {@link AlertNotifier.open}); adopts it
   * either way. Asked while its resolve is in flight, it opens again once that resolve ends.
   *
   * Every finding asks the database, even for a key this instance has adopted: another instance, or an operator, may
   * have resolved the alert since, and an instance that still sees the condition must open the next episode. At
   * most one write per key is in flight (findings meanwhile are folded into it), and while the alert is open the
   * write changes nothing and notifies nothing.
   */
  #raise(finding: AlertFinding): void {
    const { key } = finding;
    const inflight = this.#inflight.get(key);
    if (inflight) {
      // The newest request wins: an open in flight already does what this asks, and cancels a resolve asked since.
      if (inflight === 'open') this.#deferred.delete(key);
      else this.#deferred.set(key, () => this.#raise(finding));
      return;
    }
    this.#inflight.set(key, 'open');
    const work = this.#deps.notifier.open(finding, null).then(() => {
      this.#adopted.add(key);
    });
    this.#deps.track(work.finally(() => this.#settle(key)), `${finding.rule} alert ${key}`);
  }

  /**
   * Resolves a process-local alert this instance adopted. Asked while its open is in flight, it resolves once that
   * open ends.
   *
   * The key stays adopted until the resolve write has ended without error: a write that fails (the error is
   * reported) leaves the alert open, and the next clearing count (a success, or the periodic evaluation) must try
   * again. Whether the write resolved it or found it resolved already, the alert is no longer open.
   */
  #clear(key: string, details: Record<string, unknown>): void {
    const inflight = this.#inflight.get(key);
    if (inflight) {
      if (inflight === 'resolve') this.#deferred.delete(key);
      else this.#deferred.set(key, () => this.#clear(key, details));
      return;
    }
    if (!this.#adopted.has(key)) return;
    this.#inflight.set(key, 'resolve');
    const work = this.#deps.notifier.resolve(key, details, null).then(() => {
      this.#adopted.delete(key);
    });
    this.#deps.track(work.finally(() => this.#settle(key)), `resolving alert ${key}`);
  }

  /** Ends a key's write and runs what was asked meanwhile; synchronously, so `settled()` also waits for that write. */
  #settle(key: string): void {
    this.#inflight.delete(key);
    const next = this.#deferred.get(key);
    this.#deferred.delete(key);
    next?.();
  }

  #adoptedNames(prefix: string): string[] {
    return [...this.#adopted].filter((k) => k.startsWith(prefix)).map((k) => k.slice(prefix.length));
  }
}
