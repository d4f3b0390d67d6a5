/**
 * The alert rules decided from the database, evaluated periodically by every instance that runs one: missed runs
 * (the dead man's switch of schedules with `expect.within`), runs that take too long, queue lag, dead jobs whose
 * dead-letter alert was never opened (its write from `job:dead` failed, or its process died first), and the
 * resolution of dead-letter alerts whose job was retried or discarded. Every instance reaches the same verdict from
 * the same rows; the database decides which one notifies (`alertOpen`/`alertResolve` return the row to one caller
 * only), and each write carries the time this pass began reading (`since`), so a pass that read before another
 * instance's change cannot undo it.
 * @module
 */
import type { Clock } from '../clock/clock.js';
import type { AlertRow, AlertRule } from '../driver/alert-params.js';
import type { Driver } from '../driver/driver.js';
import type { ScheduleRow } from '../driver/schedule-params.js';
import type { TypedEmitter } from '../events/typed-emitter.js';
import type { JobRow } from '../job/job-record.js';
import { PeriodicTask } from '../runtime/service.js';
import type { ScheduleSpec } from '../schedule/schedule-spec.js';
import { ALERT_DELIVERY_JOBS } from './alert-delivery.js';
import type { AlertNotifier } from './alert-notifier.js';
import type { ResolvedAlertOptions } from './alert-options.js';
import type { EventRules } from './event-rules.js';
import { findMissedRun, lastSuccessTick, type MissedRunFinding, MAX_COUNTED_TICKS, recordedTicksToRead, surelyOnTime } from './missed-run.js';

/** Open alerts read per pass (the driver's most), and open run-too-long alerts read per pass. */
const OPEN_READ = 10_000;
/**
 * Dead-letter alerts, and run-too-long alerts, checked for resolution per pass (their jobs read in one
 * `jobGetMany` per rule). Checks go in rounds over the alerts open when the round began, each pass taking up where the
 * last one stopped: with `n` open at a round's start, the round takes `ceil(n / ALERTS_CHECKED)` passes, and an
 * alert opened meanwhile waits for the next round, so no number of them can hold a round back.
 */
export const ALERTS_CHECKED = 200;
/**
 * Dead jobs looked at per pass for one without its dead-letter alert (one statement; the driver's page limit). Each
 * pass reads on below the last, newest first and around again, so with `n` dead jobs each is looked at at least once
 * every `ceil(n / DEAD_JOBS_READ)` passes.
 */
export const DEAD_JOBS_READ = 1_000;
/** Dead-letter alerts the monitor opens per pass at most (each a transaction with its notices); the rest wait a pass. */
export const DEAD_LETTERS_OPENED = 100;
/**
 * Running attempts past the smallest run-time limit read per pass, oldest start first (the driver's page limit). Each
 * pass reads on after the last, so with `n` such attempts each is read at least once every `ceil(n / RUNNING_READ)`
 * passes.
 */
export const RUNNING_READ = 1_000;

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
  /** Per rule with more alerts open than a pass checks, the round of resolution checks under way. */
  readonly #rounds = new Map<AlertRule, CheckRound>();
  /** The lowest id of the last full page of dead jobs: the next pass reads below it (undefined: from the newest). */
  #deadJobCursor: string | undefined;
  /** The last attempt of the last full page of running ones: the next pass reads after it (undefined: from the oldest). */
  #runningCursor: { startedAt: Date; id: string } | undefined;

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
    if (rules.runTooLong && schedules) await this.#guard('run-too-long rule', () => this.#runsTooLong(schedules, since, rules.runTooLong!.thresholdMs));
    if (rules.queueLag) await this.#guard('queue-lag rule', () => this.#queueLag(open, since, rules.queueLag!.thresholdMs));
    if (rules.deadLetter) await this.#guard('dead-letter rule', () => this.#unalertedDeadLetters(since));
    await this.#guard('dead-letter resolution', () => this.#resolveEnded('dead-letter', open, since, deadLetterResolution));
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

  async #runsTooLong(schedules: ScheduleRow[], since: Date, thresholdMs: number | null): Promise<void> {
    const { driver, notifier } = this.#deps;
    const maxRuntime = new Map<string, number>();
    for (const s of schedules) {
      const ms = (s.spec as ScheduleSpec | null)?.expect?.maxRuntimeMs;
      if (typeof ms === 'number' && ms > 0) maxRuntime.set(s.name, ms);
    }
    // Read apart from the other open alerts: many dead letters open must not crowd these out.
    const open = await driver.alertList({ state: 'open', rule: 'run-too-long', limit: OPEN_READ });
    const limits = [...maxRuntime.values(), ...(thresholdMs === null ? [] : [thresholdMs])];
    if (limits.length > 0) {
      // Only attempts already past the smallest limit can be over theirs, and the oldest are the likeliest.
      const running = await driver.alertRunningJobList({ startedBefore: new Date(since.getTime() - Math.min(...limits)), after: this.#runningCursor, limit: RUNNING_READ });
      const last = running.at(-1);
      this.#runningCursor = running.length === RUNNING_READ && last ? { startedAt: last.startedAt, id: last.id } : undefined;
      const openKeys = new Set(open.map((a) => a.key));
      for (const job of running) {
        // Warden's own deliveries are left out of every job rule: a delivery hanging on a slow receiver would alert
        // about itself, and that notice is one more delivery to the same receiver.
        if (ALERT_DELIVERY_JOBS.includes(job.name)) continue;
        const key = `run-too-long:${job.id}:${job.attempt}`;
        const limitMs = (job.scheduleName ? maxRuntime.get(job.scheduleName) : undefined) ?? thresholdMs;
        const elapsedMs = since.getTime() - job.startedAt.getTime();
        if (limitMs === null || openKeys.has(key) || elapsedMs < limitMs) continue;
        const source = job.scheduleName && maxRuntime.has(job.scheduleName) ? `schedule ${job.scheduleName}'s expect.maxRuntime` : 'alerts.rules.runTooLong.threshold';
        await notifier.open({
          key,
          rule: 'run-too-long',
          severity: 'warning',
          summary: `job ${job.name} ${job.id} (attempt ${job.attempt}) has been running for ${formatMs(elapsedMs)}, over ${formatMs(limitMs)} (${source})`,
          details: { jobId: job.id, job: job.name, queue: job.queue, schedule: job.scheduleName, attempt: job.attempt, startedAt: job.startedAt.toISOString(), elapsedMs, limitMs, worker: job.leaseWorker },
        }, since);
      }
    }
    // Each open alert's own job says whether its attempt ended: no read of the running jobs can be complete.
    await this.#resolveEnded('run-too-long', open, since, (job, alert) => {
      // One about a delivery job was opened by an earlier version.
      if (ALERT_DELIVERY_JOBS.includes(alert.details.job as string)) return "Warden's own deliveries are left out of the rule";
      return job?.state === 'running' && job.attempt === alert.details.attempt ? null : 'the attempt ended';
    });
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

  /**
   * Opens the dead-letter alerts of dead jobs that have none: the open from `job:dead` failed, or its process died
   * before writing it (or does not alert). A page of {@link DEAD_JOBS_READ} dead jobs a pass, at most
   * {@link DEAD_LETTERS_OPENED} opened. A job whose open fails is passed over until the pages come round to it again.
   */
  async #unalertedDeadLetters(since: Date): Promise<void> {
    const { driver, eventRules } = this.#deps;
    const page = await driver.alertDeadJobList({ beforeId: this.#deadJobCursor, limit: DEAD_JOBS_READ });
    // A full page: the next pass reads on below it; a short one was the end, and the next starts from the newest.
    this.#deadJobCursor = page.length === DEAD_JOBS_READ ? page.at(-1)!.id : undefined;
    const missing = page.filter((job) => !job.alerted && !ALERT_DELIVERY_JOBS.includes(job.name));
    for (const [i, job] of missing.entries()) {
      if (i === DEAD_LETTERS_OPENED) {
        // The next pass reads on below the last one opened, so it starts with this one.
        this.#deadJobCursor = missing[i - 1]!.id;
        return;
      }
      await eventRules.openFoundDeadLetter(job.id, since);
    }
  }

  /**
   * Resolves the alerts of `rule`, about one attempt of a job each (details `jobId`, `attempt`), whose condition
   * `resolution` finds ended on reading the job (null: it still holds). This pass's share of them, their jobs read
   * in one statement.
   */
  async #resolveEnded(rule: AlertRule, open: AlertRow[], since: Date, resolution: (job: JobRow | null, alert: AlertRow) => string | null): Promise<void> {
    const { driver, notifier } = this.#deps;
    const alerts = this.#toCheck(rule, open);
    if (alerts.length === 0) return;
    // Passed before the read: a read that throws (say, on a row it cannot decode) passes this share over, where
    // trying it again would stop every pass at it.
    this.#passed(rule, alerts.at(-1)!);
    const ids = alerts.map((a) => a.details.jobId).filter((id): id is string => typeof id === 'string');
    // An id that names no job (or is no job id) has no row, and reads as `jobGet`'s null.
    const jobs = new Map((ids.length === 0 ? [] : await driver.jobGetMany({ ids })).map((job) => [job.id, job]));
    for (const alert of alerts) {
      // Set before the resolve: an alert whose resolve throws is passed over, and the next pass checks those after it.
      this.#passed(rule, alert);
      const jobId = alert.details.jobId;
      if (typeof jobId !== 'string') continue;
      const ended = resolution(jobs.get(jobId) ?? null, alert);
      if (ended !== null) await notifier.resolve(alert.key, { ...alert.details, resolution: ended }, since);
    }
  }

  /**
   * This pass's share of the open alerts of `rule`: every one when there are at most {@link ALERTS_CHECKED}.
   * Otherwise the next {@link ALERTS_CHECKED} of the round under way, oldest first, or, when that round is done,
   * the first of a new one over every alert open now. A fixed window (say, the newest) would never reach the others
   * however long they stay open, reading every alert's job each pass would cost a read per open alert every
   * `checkInterval`, and a round that took in the alerts opened during it would never end while more than
   * {@link ALERTS_CHECKED} opened a pass, never coming back to those it had checked.
   */
  #toCheck(rule: AlertRule, open: AlertRow[]): AlertRow[] {
    const alerts = open.filter((a) => a.rule === rule).sort(byOpening);
    if (alerts.length <= ALERTS_CHECKED) {
      this.#rounds.delete(rule);
      return alerts;
    }
    const round = this.#rounds.get(rule);
    const rest = round ? alerts.filter((a) => (round.after === undefined || byOpening(a, round.after) > 0) && byOpening(a, round.last) <= 0) : [];
    if (rest.length > 0) return rest.slice(0, ALERTS_CHECKED);
    const { openedAt, key } = alerts.at(-1)!;
    this.#rounds.set(rule, { last: { openedAt, key } });
    return alerts.slice(0, ALERTS_CHECKED);
  }

  /** Records `alert` as checked in its rule's round, if one is under way: the next pass starts after it. */
  #passed(rule: AlertRule, alert: AlertRow): void {
    const round = this.#rounds.get(rule);
    if (round) round.after = { openedAt: alert.openedAt, key: alert.key };
  }
}

/**
 * A round of resolution checks of one rule: the alerts open when it began, oldest first, {@link ALERTS_CHECKED} a
 * pass. Places are in {@link byOpening} order, which an open alert keeps from pass to pass.
 */
interface CheckRound {
  /** The newest alert open when the round began: those opened after it wait for the next round. */
  readonly last: OpeningCursor;
  /** The last alert checked in this round (undefined: none yet). */
  after?: OpeningCursor;
}

/** Where a dead-letter alert's job stands: null while it is still dead at that attempt. */
function deadLetterResolution(job: JobRow | null, alert: AlertRow): string | null {
  if (job && job.state === 'dead' && job.attempt === alert.details.attempt) return null;
  return job ? `the job was retried (now ${job.state})` : 'the job was discarded or pruned';
}

/** A place in {@link byOpening} order. */
type OpeningCursor = Pick<AlertRow, 'openedAt' | 'key'>;

/**
 * Oldest opening first, then by key. An open alert is never updated (opening it again changes nothing), so this order
 * stays put from pass to pass and the cursor means the same place in it; alerts opened since come after it.
 */
function byOpening(a: OpeningCursor, b: OpeningCursor): number {
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
