/**
 * The alert rules decided from the database, evaluated periodically by every instance that runs one: missed runs
 * (the dead man's switch of schedules with `expect.within`), runs that take too long, queue lag, and the resolution
 * of dead-letter alerts whose job was retried or discarded. Every instance reaches the same verdict from the same
 * rows; the database decides which one notifies (`alertOpen`/`alertResolve` return the row to one caller only), and
 * each write carries the time this pass began reading (`since`), so a pass that read before another instance's
 * change cannot undo it.
 * @module
 */
import type { Clock } from '../clock/clock.js';
import type { AlertRow } from '../driver/alert-params.js';
import type { Driver } from '../driver/driver.js';
import type { ScheduleRow } from '../driver/schedule-params.js';
import type { TypedEmitter } from '../events/typed-emitter.js';
import { PeriodicTask } from '../runtime/service.js';
import type { ScheduleSpec } from '../schedule/schedule-spec.js';
import { ALERT_DELIVERY_JOBS } from './alert-delivery.js';
import type { AlertNotifier } from './alert-notifier.js';
import type { ResolvedAlertOptions } from './alert-options.js';
import type { EventRules } from './event-rules.js';
import { findMissedRun, lastSuccessTick, type MissedRunFinding, MAX_COUNTED_TICKS, recordedTicksToRead, surelyOnTime } from './missed-run.js';

/** Running jobs read by the run-too-long rule (the driver's page limit). */
const RUNNING_READ = 1_000;
/** Open alerts read per pass. */
const OPEN_READ = 10_000;
/**
 * Dead-letter alerts checked for resolution per pass (one job read each). Each pass takes up where the last one
 * stopped, so with `n` open each is checked at least once every `ceil(n / DEAD_LETTERS_CHECKED)` passes.
 */
export const DEAD_LETTERS_CHECKED = 200;

/** What {@link AlertMonitor} needs. */
export interface AlertMonitorDeps {
  driver: Driver;
  clock: Clock;
  events: TypedEmitter;
  notifier: AlertNotifier;
  eventRules: EventRules;
  options: ResolvedAlertOptions;
}

/**
 * Evaluates the database-based rules every `alerts.checkInterval` while started (first pass at once). `check()`
 * runs one pass without starting anything. Each rule's errors are reported as `error` events and never stop the
 * others or the next pass.
 */
export class AlertMonitor {
  readonly #deps: AlertMonitorDeps;
  #task: PeriodicTask | null = null;
  /** The last dead-letter alert checked, in {@link byOpening} order: the next pass starts after it. */
  #deadLetterCursor: Pick<AlertRow, 'openedAt' | 'key'> | null = null;

  constructor(deps: AlertMonitorDeps) {
    this.#deps = deps;
  }

  /** Whether the periodic evaluation is running. */
  get running(): boolean {
    return this.#task?.running ?? false;
  }

  start(): void {
    if (this.#task?.running) return;
    const { clock, events, options } = this.#deps;
    this.#task = new PeriodicTask({
      clock,
      intervalMs: options.checkIntervalMs,
      runFirstAtOnce: true,
      tick: () => this.check(),
      onError: (error) => events.emit('error', { error, context: 'alert monitor' }),
    });
    this.#task.start();
  }

  /** Stops the periodic evaluation, waiting for a pass in progress. Safe to call twice or before start. */
  async stop(): Promise<void> {
    await this.#task?.stop();
    this.#task = null;
  }

  /** One pass over every database-based rule. */
  async check(): Promise<void> {
    const { driver, clock, options, eventRules } = this.#deps;
    const since = clock.sqlNow() ?? (await driver.dbNow());
    const open = await driver.alertList({ state: 'open', limit: OPEN_READ });
    const { rules } = options;
    const schedules = rules.missedRun || rules.runTooLong ? await this.#guard('reading schedules', () => driver.scheduleList()) : [];
    if (rules.missedRun && schedules) await this.#guard('missed-run rule', () => this.#missedRuns(schedules, open, since));
    if (rules.runTooLong && schedules) await this.#guard('run-too-long rule', () => this.#runsTooLong(schedules, open, since, rules.runTooLong!.thresholdMs));
    if (rules.queueLag) await this.#guard('queue-lag rule', () => this.#queueLag(open, since, rules.queueLag!.thresholdMs));
    await this.#guard('dead-letter resolution', () => this.#deadLetters(open, since));
    eventRules.evaluate();
  }

  async #guard<T>(context: string, fn: () => Promise<T>): Promise<T | null> {
    try {
      return await fn();
    } catch (error) {
      this.#deps.events.emit('error', { error, context });
      return null;
    }
  }

  async #missedRuns(schedules: ScheduleRow[], open: AlertRow[], since: Date): Promise<void> {
    const { driver, notifier } = this.#deps;
    const openByKey = new Map(open.filter((a) => a.rule === 'missed-run').map((a) => [a.key, a]));
    const watched = new Set<string>();
    for (const schedule of schedules) {
      const spec = schedule.spec as ScheduleSpec | null;
      if (!spec?.expect) continue;
      const key = `missed-run:${schedule.name}`;
      watched.add(key);
      // A paused schedule is expected not to run: neither opened nor resolved until it is resumed.
      if (schedule.paused) continue;
      const current = openByKey.get(key);
      // The common case, a newest tick that succeeded and covers every tick recorded: the row already read settles it.
      // An open alert is read on, for the last success its resolve notice reports.
      if (!current && surelyOnTime({ spec, schedule, now: since })) continue;
      // The last success first: only the ticks after it can be missed, however many intervals `within` spans.
      const lastSuccessTickAt = (await driver.scheduleLastSuccess({ name: schedule.name }))?.tickAt ?? null;
      const range = recordedTicksToRead({ spec, lastTickAt: schedule.lastTickAt, lastSuccessTickAt, now: since });
      // Oldest first, so the first missed tick is exact; past the cap only the count is short, and says so.
      const ticks = range ? await driver.scheduleTicksAfter({ name: schedule.name, ...range, limit: MAX_COUNTED_TICKS }) : [];
      const input = { spec, nextRunAt: schedule.nextRunAt, ticks, lastSuccessTickAt, now: since };
      const finding = findMissedRun(input);
      if (finding && !current) {
        const within = formatMs(finding.withinMs);
        await notifier.open({
          key,
          rule: 'missed-run',
          severity: 'critical',
          summary: `schedule ${schedule.name} has no successful run of its ${finding.firstMissedTickAt.toISOString()} tick within ${within}${missedCount(finding)}`,
          details: {
            schedule: schedule.name, job: spec.job, firstMissedTickAt: finding.firstMissedTickAt.toISOString(), dueBy: finding.dueBy.toISOString(),
            missedTicks: finding.missedTicks, unhandledTicks: finding.unhandledTicks, ...(finding.capped ? { ticksCapped: true } : {}),
            lastSuccessTickAt: finding.lastSuccessTickAt?.toISOString() ?? null, withinMs: finding.withinMs,
          },
        }, since);
      } else if (!finding && current) {
        await notifier.resolve(key, { ...current.details, resolution: 'a run succeeded', lastSuccessTickAt: lastSuccessTick(input)?.toISOString() ?? null }, since);
      }
    }
    // A removed schedule, or one no longer expected to run, cannot miss runs any more.
    for (const [key, alert] of openByKey) {
      if (!watched.has(key)) await notifier.resolve(key, { ...alert.details, resolution: 'the schedule was removed or no longer has expect.within' }, since);
    }
  }

  async #runsTooLong(schedules: ScheduleRow[], open: AlertRow[], since: Date, thresholdMs: number | null): Promise<void> {
    const { driver, notifier } = this.#deps;
    const maxRuntime = new Map<string, number>();
    for (const s of schedules) {
      const ms = (s.spec as ScheduleSpec | null)?.expect?.maxRuntimeMs;
      if (typeof ms === 'number' && ms > 0) maxRuntime.set(s.name, ms);
    }
    if (maxRuntime.size === 0 && thresholdMs === null && !open.some((a) => a.rule === 'run-too-long')) return;
    const running = await driver.jobList({ state: 'running', limit: RUNNING_READ });
    const current = new Set<string>();
    const openKeys = new Set(open.map((a) => a.key));
    for (const job of running) {
      // Warden's own deliveries are left out of every job rule: a delivery hanging on a slow receiver would alert
      // about itself, and that notice is one more delivery to the same receiver. One opened by an earlier version
      // resolves below, its key not being current.
      if (ALERT_DELIVERY_JOBS.includes(job.name)) continue;
      const key = `run-too-long:${job.id}:${job.attempt}`;
      current.add(key);
      const limitMs = (job.scheduleName ? maxRuntime.get(job.scheduleName) : undefined) ?? thresholdMs;
      if (limitMs === null || limitMs === undefined || !job.startedAt || openKeys.has(key)) continue;
      const elapsedMs = since.getTime() - job.startedAt.getTime();
      if (elapsedMs < limitMs) continue;
      const source = job.scheduleName && maxRuntime.has(job.scheduleName) ? `schedule ${job.scheduleName}'s expect.maxRuntime` : 'alerts.rules.runTooLong.threshold';
      await notifier.open({
        key,
        rule: 'run-too-long',
        severity: 'warning',
        summary: `job ${job.name} ${job.id} (attempt ${job.attempt}) has been running for ${formatMs(elapsedMs)}, over ${formatMs(limitMs)} (${source})`,
        details: { jobId: job.id, job: job.name, queue: job.queue, schedule: job.scheduleName, attempt: job.attempt, startedAt: job.startedAt.toISOString(), elapsedMs, limitMs, worker: job.leaseWorker },
      }, since);
    }
    // Only a complete read can tell that a job stopped running.
    if (running.length >= RUNNING_READ) return;
    for (const alert of open) {
      if (alert.rule === 'run-too-long' && !current.has(alert.key)) await notifier.resolve(alert.key, { ...alert.details, resolution: 'the attempt ended' }, since);
    }
  }

  async #queueLag(open: AlertRow[], since: Date, thresholdMs: number): Promise<void> {
    const { driver, notifier } = this.#deps;
    const openByKey = new Map(open.filter((a) => a.rule === 'queue-lag').map((a) => [a.key, a]));
    const seen = new Set<string>();
    // Only jobs not yet ended: reading every finished job kept, every check, would grow with retention.
    for (const q of await driver.queueActivity()) {
      const key = `queue-lag:${q.queue}`;
      seen.add(key);
      // A paused queue is meant to wait.
      if (q.paused) continue;
      const alert = openByKey.get(key);
      if (q.lagMs > thresholdMs && !alert) {
        const waiting = q.counts.queued + q.counts.retrying;
        await notifier.open({
          key, rule: 'queue-lag', severity: 'warning',
          summary: `queue ${q.queue} is ${formatMs(q.lagMs)} behind (over ${formatMs(thresholdMs)}), ${waiting} job(s) waiting`,
          details: { queue: q.queue, lagMs: q.lagMs, thresholdMs, waiting, running: q.counts.running },
        }, since);
      } else if (q.lagMs <= thresholdMs && alert) {
        await notifier.resolve(key, { ...alert.details, lagMs: q.lagMs, resolution: 'lag back under the threshold' }, since);
      }
    }
    for (const [key, alert] of openByKey) {
      if (!seen.has(key)) await notifier.resolve(key, { ...alert.details, lagMs: 0, resolution: 'the queue is empty' }, since);
    }
  }

  async #deadLetters(open: AlertRow[], since: Date): Promise<void> {
    const { driver, notifier } = this.#deps;
    for (const alert of this.#deadLettersToCheck(open)) {
      // Set before the read: an alert whose check throws is passed over by the next pass instead of stopping each at it.
      this.#deadLetterCursor = { openedAt: alert.openedAt, key: alert.key };
      const jobId = alert.details.jobId;
      if (typeof jobId !== 'string') continue;
      const job = await driver.jobGet({ id: jobId });
      if (job && job.state === 'dead' && job.attempt === alert.details.attempt) continue;
      await notifier.resolve(alert.key, { ...alert.details, resolution: job ? `the job was retried (now ${job.state})` : 'the job was discarded or pruned' }, since);
    }
  }

  /**
   * This pass's share of the open dead-letter alerts: every one when there are at most {@link DEAD_LETTERS_CHECKED},
   * otherwise the next {@link DEAD_LETTERS_CHECKED} after the last one checked, oldest first and around again. A
   * fixed window (say, the newest) would never reach the others however long they stay open, and reading every
   * dead job each pass would cost a read per dead letter every `checkInterval`.
   */
  #deadLettersToCheck(open: AlertRow[]): AlertRow[] {
    const alerts = open.filter((a) => a.rule === 'dead-letter').sort(byOpening);
    if (alerts.length <= DEAD_LETTERS_CHECKED) return alerts;
    const cursor = this.#deadLetterCursor;
    const next = cursor === null ? 0 : alerts.findIndex((a) => byOpening(a, cursor) > 0);
    const start = next === -1 ? 0 : next;
    return [...alerts.slice(start), ...alerts.slice(0, start)].slice(0, DEAD_LETTERS_CHECKED);
  }
}

/**
 * Oldest opening first, then by key. An open dead-letter alert is never updated, so this order stays put from pass
 * to pass and the cursor means the same place in it; alerts opened since come after it.
 */
function byOpening(a: Pick<AlertRow, 'openedAt' | 'key'>, b: Pick<AlertRow, 'openedAt' | 'key'>): number {
  return a.openedAt.getTime() - b.openedAt.getTime() || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);
}

/** The summary's count of missed ticks: none for one, "at least" when the count reached its cap. */
function missedCount(finding: MissedRunFinding): string {
  if (finding.capped) return ` (at least ${finding.missedTicks} ticks missed)`;
  return finding.missedTicks > 1 ? ` (${finding.missedTicks} ticks missed)` : '';
}

/** A duration for humans: `90s`, `5m`, `2h30m`. */
export function formatMs(ms: number): string {
  if (ms < 1_000) return `${ms}ms`;
  const s = Math.round(ms / 1_000);
  if (s < 120) return `${s}s`;
  const m = Math.round(s / 60);
  if (m < 120) return `${m}m`;
  const h = Math.floor(m / 60);
  return m % 60 === 0 ? `${h}h` : `${h}h${m % 60}m`;
}
