import type { Clock } from '../clock/clock.js';
import type { Driver, JobFinish } from '../driver/driver.js';
import type { AttemptOutcome } from '../job/job-record.js';

/** Failures of a single ending, written alone, before a non-transient error makes the completer give up on it. */
const MAX_SINGLE_FAILURES = 3;

/** Most event-loop turns the first write of a burst waits for more endings (never time: no clock involved). */
const LINGER_TURNS = 4;

/** Whether a finish was committed or rejected as stale. */
export type FinishResult = 'applied' | 'stale';

interface Pending {
  item: JobFinish;
  resolve: (result: FinishResult) => void;
  reject: (error: unknown) => void;
  /**
   * A write carrying this ending failed, so it may have committed all the same (the connection was lost after the
   * statement was sent). A later write then finds the job already ended: {@link Completer} asks which ending.
   */
  unsure?: boolean;
}

/** Options for {@link Completer}. */
export interface CompleterOptions {
  driver: Driver;
  clock: Clock;
  /** Most items written by one statement. @default 500 */
  maxBatch?: number;
  /** Called when a write fails; the completer keeps the items and tries again. */
  onError: (error: unknown) => void;
}

/**
 * Writes attempt endings in batches ("group commit"): while one batch is being written, new endings queue
 * up and go in the next statement. Under light load every ending is written at once; under heavy load one
 * round trip carries hundreds. Each ending stays guarded by its lease token in the driver.
 *
 * When the database is unreachable, batches are retried with backoff until {@link Completer.close} gives up
 * on them; the jobs are then rescued after their leases expire, which is the at-least-once fallback.
 *
 * A batch may hold two endings of one job: a stale attempt's beside the live one's, after its job was handed back
 * or rescued and claimed again. The driver applies each by its own lease and reports by job id, so such a job is
 * both applied and stale; the applied ending is the one under the newest lease (see `appliedOfRepeats`).
 *
 * A failed write may have committed (the connection dropped after the statement was sent). Its retry then finds
 * the lease gone and reports the ending stale, though it is this very ending that ended the job: the job would
 * be completed with no `job:completed` event and no audit entry for it. So an ending retried after a failure and
 * found stale is looked up in the job's attempt history: an attempt with its lease token and outcome means it was
 * applied (a lease token is held by one attempt only, and only that attempt's ending writes its outcome).
 */
export class Completer {
  readonly #driver: Driver;
  readonly #clock: Clock;
  readonly #maxBatch: number;
  readonly #onError: (error: unknown) => void;
  #queue: Pending[] = [];
  #flushing: Promise<void> | null = null;
  #closing = new AbortController();

  constructor(options: CompleterOptions) {
    this.#driver = options.driver;
    this.#clock = options.clock;
    this.#maxBatch = options.maxBatch ?? 500;
    this.#onError = options.onError;
  }

  /** Number of endings not yet written. */
  get pending(): number {
    return this.#queue.length;
  }

  /** Queues an ending; resolves once it is committed or found stale. */
  finish(item: JobFinish): Promise<FinishResult> {
    if (this.#closing.signal.aborted) return Promise.reject(new Error('Expected an open completer, got one already closed'));
    return new Promise((resolve, reject) => {
      this.#queue.push({ item, resolve, reject });
      this.#flushing ??= this.#flushLoop();
    });
  }

  /** Resolves when everything queued so far is written (or given up on). */
  async drained(): Promise<void> {
    while (this.#flushing) await this.#flushing;
  }

  /**
   * Stops retrying failed writes after `deadlineMs`; pending endings are rejected so callers can move on.
   */
  async close(deadlineMs: number): Promise<void> {
    const cancel = this.#clock.setTimer(deadlineMs, () => this.#closing.abort());
    try {
      await this.drained();
    } finally {
      cancel();
      this.#closing.abort();
    }
  }

  async #flushLoop(): Promise<void> {
    try {
      // Yield so endings produced in the same tick share the first batch, and a few turns more while they keep
      // coming: each commit has a fixed cost (on SQLite, written in this thread), so fewer, larger batches.
      for (let turns = 0, before = -1; turns < LINGER_TURNS && this.#queue.length > before && this.#queue.length < this.#maxBatch; turns++) {
        before = this.#queue.length;
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
      let failures = 0;
      // After a failed batch, endings are written one at a time until one succeeds, so a single ending the
      // database refuses cannot hold back the others.
      let isolate = false;
      while (this.#queue.length > 0) {
        const batch = this.#queue.slice(0, isolate ? 1 : this.#maxBatch);
        try {
          const result = await this.#driver.jobFinishMany({ items: batch.map((p) => p.item), now: this.#clock.sqlNow() });
          this.#queue.splice(0, batch.length);
          failures = 0;
          isolate = false;
          const stale = new Set(result.stale);
          // Only a batch with a stale ending can hold two endings of one job, one of them applied.
          const applied = stale.size === 0 ? null : appliedOfRepeats(batch, result.applied, stale);
          const unsure: Pending[] = [];
          for (const p of batch) {
            const repeat = applied?.get(p.item.id);
            if (repeat === undefined ? !stale.has(p.item.id) : repeat === p) p.resolve('applied');
            else if (p.unsure) unsure.push(p);
            else p.resolve('stale');
          }
          if (unsure.length > 0) await this.#settleUnsure(unsure);
        } catch (error) {
          this.#onError(error);
          for (const p of batch) p.unsure = true;
          if (this.#closing.signal.aborted) {
            for (const p of this.#queue.splice(0)) p.reject(error);
            break;
          }
          failures += 1;
          if (batch.length > 1) {
            isolate = true;
            continue;
          }
          if (failures >= MAX_SINGLE_FAILURES && !this.#driver.isTransientError(error)) {
            // The database refuses this one ending for good; give up on it. Its lease expires and the job is
            // rescued, which is the at-least-once fallback, while every other ending goes through.
            this.#queue.shift()!.reject(error);
            failures = 0;
            continue;
          }
          await this.#clock.sleep(Math.min(5_000, 50 * 2 ** Math.min(failures, 7)), this.#closing.signal);
        }
      }
    } finally {
      this.#flushing = null;
    }
  }

  /**
   * Settles endings a retry found stale after an earlier write of theirs failed: applied when the job's history
   * holds an attempt with their lease token and outcome (the failed write committed), else stale. When the history
   * cannot be read, the rest go back to the front of the queue, still unsure, to be written (and asked about) again
   * after the flush loop's usual backoff: the error is rethrown to it.
   */
  async #settleUnsure(unsure: Pending[]): Promise<void> {
    for (const [i, p] of unsure.entries()) {
      try {
        p.resolve((await endingRecorded(this.#driver, { id: p.item.id, leaseToken: p.item.leaseToken }, p.item.outcome)) ? 'applied' : 'stale');
      } catch (error) {
        this.#queue.unshift(...unsure.slice(i));
        throw error;
      }
    }
  }
}

/**
 * The ending applied of each job that has one ending applied and another stale in `batch`: a stale attempt's
 * ending beside the live one's (its job handed back or rescued, and claimed again), which the driver reports by job
 * id only (`applied` and `stale` both name it). It is the ending under the newest lease, the batch's highest lease
 * token for that job: a job's lease tokens only grow, and a newer lease was issued only after every older one
 * ended, so no older ending could apply (of one lease sent twice, the first applies). Null when there is none.
 */
function appliedOfRepeats(batch: readonly Pending[], applied: readonly string[], stale: ReadonlySet<string>): Map<string, Pending> | null {
  const both = new Set(applied.filter((id) => stale.has(id)));
  if (both.size === 0) return null;
  const newest = new Map<string, Pending>();
  for (const p of batch) {
    if (!both.has(p.item.id)) continue;
    const current = newest.get(p.item.id);
    if (current === undefined || p.item.leaseToken > current.item.leaseToken) newest.set(p.item.id, p);
  }
  return newest;
}

/**
 * Whether the job's history holds the ending of the attempt under `lease` with `outcome`: a lease token belongs to
 * one attempt, and only its ending writes that outcome, so such a row can only be that ending, committed (a write
 * whose reply was lost). With `onError`, a history that cannot be read is reported there and answered false (not
 * known to have committed); without, the error is thrown.
 */
export async function endingRecorded(driver: Pick<Driver, 'jobAttemptList'>, lease: { id: string; leaseToken: number }, outcome: AttemptOutcome, onError?: (error: unknown) => void): Promise<boolean> {
  try {
    const attempts = await driver.jobAttemptList({ id: lease.id });
    return attempts.some((a) => a.leaseToken === lease.leaseToken && a.outcome === outcome);
  } catch (error) {
    if (!onError) throw error;
    onError(error);
    return false;
  }
}
