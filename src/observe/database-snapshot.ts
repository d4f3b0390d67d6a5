import { type ClockMark, elapsedSince, markClock, systemClock } from '../clock/clock.js';
import type { Driver } from '../driver/driver.js';
import type { ScheduleRow } from '../driver/schedule-params.js';
import type { QueueActivity, QueueStats } from '../job/job-record.js';
import { withTimeout } from './with-timeout.js';

/** What the metrics read from the database at scrape time. */
export interface DatabaseSnapshotData {
  queues: QueueStats[];
  /** Every schedule not removed. */
  schedules: ScheduleRow[];
}

/** Options of {@link DatabaseSnapshot}. */
export interface DatabaseSnapshotOptions {
  driver: Driver;
  /** A snapshot younger than this is served again instead of querying. 0 queries on every call. */
  cacheMs: number;
  /**
   * How long the counts of finished jobs (`completed`, `dead`, `cancelled`) are reused: reading them reads every job
   * kept (`queueList`), while the rest of a snapshot (`queueActivity`) reads only the jobs not yet ended. 0 reads
   * them with every snapshot.
   */
  finishedCacheMs: number;
  /** How long one fetch may take before the scrape gives up on it. */
  timeoutMs: number;
  /** Called with each failed fetch (the database unreachable, too slow, not migrated). */
  onError: (error: unknown) => void;
}

/**
 * The database side of the metrics: queue counts and lag, schedules, and each schedule's last success, fetched
 * at scrape time. Every gauge of one scrape awaits the same fetch, and a fetch is reused for `cacheMs`, so a
 * burst of scrapes (several Prometheus servers, a dashboard) costs one round of queries. A failed fetch resolves
 * to null rather than rejecting, so the process-local counters are still served.
 */
export class DatabaseSnapshot {
  readonly #options: DatabaseSnapshotOptions;
  #cached: { data: DatabaseSnapshotData; at: ClockMark } | null = null;
  /** The last full read of the queues (finished counts included), and when it was made. */
  #full: { queues: QueueStats[]; at: ClockMark } | null = null;
  #inFlight: Promise<DatabaseSnapshotData | null> | null = null;
  /** The job each known success was read from, so an unchanged last tick costs no query. */
  readonly #lastSuccess = new Map<string, { jobId: string; seconds: number }>();
  /** Per schedule, its newest tick (and that tick's job and its state) as of the last read of its last success. */
  readonly #searched = new Map<string, string>();

  constructor(options: DatabaseSnapshotOptions) {
    this.#options = options;
  }

  /** The current snapshot, from the cache when fresh enough; null when the database could not be read. */
  get(): Promise<DatabaseSnapshotData | null> {
    // Real time, not Warden's injected clock: the cache bounds load on the real database whatever a test's clock says.
    // Elapsed time, so a wall clock stepped back does not keep serving the same numbers for as long as the step.
    if (this.#cached && elapsedSince(systemClock, this.#cached.at) < this.#options.cacheMs) return Promise.resolve(this.#cached.data);
    this.#inFlight ??= this.#fetch().finally(() => {
      this.#inFlight = null;
    });
    return this.#inFlight;
  }

  async #fetch(): Promise<DatabaseSnapshotData | null> {
    const { driver, timeoutMs } = this.#options;
    try {
      const data = await withTimeout(
        (async () => {
          const [queues, schedules] = await Promise.all([this.#queues(), driver.scheduleList()]);
          await this.#updateLastSuccess(schedules);
          return { queues, schedules };
        })(),
        timeoutMs,
        'the database to answer the metrics queries',
      );
      this.#cached = { data, at: markClock(systemClock) };
      return data;
    } catch (error) {
      // Stale numbers would hide an outage; serve none until the database answers again.
      this.#cached = null;
      this.#options.onError(error);
      return null;
    }
  }

  /**
   * Every queue's counts: all of them from a full read when the last one is older than `finishedCacheMs`, else the
   * counts of jobs not yet ended, lag and pause flags read now, with the finished counts of the last full read.
   */
  async #queues(): Promise<QueueStats[]> {
    const { driver, finishedCacheMs } = this.#options;
    const now = markClock(systemClock);
    if (!this.#full || elapsedSince(systemClock, this.#full.at) >= finishedCacheMs) {
      const queues = await driver.queueList();
      this.#full = { queues, at: now };
      return queues;
    }
    return mergeFinished(await driver.queueActivity(), this.#full.queues);
  }

  /**
   * Reads the finish time of each schedule's newest completed run (`scheduleLastSuccess`), but only when the
   * schedule's newest tick, its job or that job's state changed since the last read, and not when the newest tick's
   * completed job is the success already known (seen through this process's events): an unchanged schedule costs no
   * query beyond the schedule list. Schedules no longer in `schedules` (removed) are forgotten, so this process
   * stops serving their last success as every other instance does; `schedules` is only ever a list that was read,
   * so a failed read keeps them.
   */
  async #updateLastSuccess(schedules: ScheduleRow[]): Promise<void> {
    const { driver } = this.#options;
    const listed = new Set(schedules.map((s) => s.name));
    for (const known of [this.#lastSuccess, this.#searched]) {
      for (const name of known.keys()) if (!listed.has(name)) known.delete(name);
    }
    await Promise.all(schedules.map(async (schedule) => {
      const { name, lastTick: last } = schedule;
      const searchKey = last ? `${last.tickAt.getTime()}|${last.kind}|${last.outcome}|${last.jobId}|${last.jobState}` : 'none';
      if (this.#searched.get(name) === searchKey) return;
      const seen = last?.outcome === 'fired' && last.jobState === 'completed' && this.#lastSuccess.get(name)?.jobId === last.jobId;
      if (last && !seen) {
        const success = await driver.scheduleLastSuccess({ name });
        if (success) this.record(name, success.jobId, success.finishedAt.getTime() / 1000);
      }
      // A read that failed threw before this: the next scrape reads again.
      this.#searched.set(name, searchKey);
    }));
  }

  /** Records a success seen by this process (from events); the newest success wins. */
  record(schedule: string, jobId: string, seconds: number): void {
    const known = this.#lastSuccess.get(schedule);
    if (!known || seconds >= known.seconds) this.#lastSuccess.set(schedule, { jobId, seconds });
  }

  /**
   * Per schedule, when its newest known successful run finished, in seconds since the epoch: read from the
   * database by {@link get}, or recorded from this process's events. Kept when the database becomes unreachable,
   * since a success that happened stays true.
   */
  lastSuccessSeconds(): ReadonlyMap<string, number> {
    return new Map([...this.#lastSuccess].map(([name, s]) => [name, s.seconds]));
  }
}

/**
 * Queue stats from `activity` read now and the finished counts of an earlier full read: a queue in either is listed
 * (one with finished jobs only shows no active work and is unpaused, since a pause row would have put it in
 * `activity`), sorted by name bytewise as both reads are.
 */
function mergeFinished(activity: readonly QueueActivity[], earlier: readonly QueueStats[]): QueueStats[] {
  const merged = new Map<string, QueueStats>();
  for (const q of earlier) merged.set(q.queue, { queue: q.queue, paused: false, counts: { ...q.counts, queued: 0, retrying: 0, running: 0 }, lagMs: 0 });
  for (const a of activity) {
    const before = merged.get(a.queue)?.counts;
    const counts = { ...a.counts, completed: before?.completed ?? 0, dead: before?.dead ?? 0, cancelled: before?.cancelled ?? 0 };
    merged.set(a.queue, { queue: a.queue, paused: a.paused, counts, lagMs: a.lagMs });
  }
  return [...merged.values()].sort((x, y) => Buffer.compare(Buffer.from(x.queue), Buffer.from(y.queue)));
}
