/**
 * The claimed jobs a worker has not started yet: its prefetch buffer, the look-up that confirms them before they
 * start, and their hand-back.
 * @module
 */
import type { Clock } from '../clock/clock.js';
import type { Driver, JobLease } from '../driver/driver.js';
import type { TypedEmitter } from '../events/typed-emitter.js';
import type { JobRow } from '../job/job-record.js';
import type { HeldJob, LoneJob } from './lone-job.js';
import type { UnreceivedJobs } from './unreceived-jobs.js';
import type { WorkerCounters } from './worker-counters.js';

/**
 * How long (ms) after its lease and its queue's pause flag were confirmed a claimed job not started yet may still
 * start. A claim confirms the jobs it returns when its answer comes, and so does a look-up (`jobLeaseCheck`, one
 * statement for every unstarted job of the worker): a job confirmed longer ago is not started until a look-up has
 * confirmed it again, so a cancel or pause committed at `t` starts no buffered job after `t + RECHECK_MS` (plus the
 * run time of a confirming statement that had begun before `t`). In a fast drain jobs wait in the buffer a few
 * milliseconds and nothing is looked up; jobs waiting behind long handlers cost one look-up per `RECHECK_MS` at most.
 * Confirmed on the answer rather than the sending, so a database slower than this still starts jobs.
 */
export const RECHECK_MS = 250;

/**
 * Whether a confirmation made at `confirmedAt` (wall-clock ms) still stands at `now`. One from a clock that went back
 * does not: a step back costs one look-up, while counting it as fresh could start a job confirmed long before.
 */
export function confirmedRecently(confirmedAt: number, now: number): boolean {
  const age = now - confirmedAt;
  return age >= 0 && age <= RECHECK_MS;
}

/** The wait (ms) before trying again after `failures` failures in a row: 200 ms doubling, at most 5 s. */
export function backoffMs(failures: number): number {
  return Math.min(5_000, 100 * 2 ** Math.min(failures, 6));
}

/** The lease of a claimed job, as the driver's lease methods take it. */
export function leaseOf(row: JobRow): JobLease {
  return { id: row.id, leaseToken: row.leaseToken };
}

/** A claimed job waiting in the buffer, and when its lease and queue were confirmed (see {@link RECHECK_MS}). */
interface Buffered {
  readonly row: JobRow;
  confirmedAt: number;
}

/** What a {@link ClaimBuffer} needs from its worker. */
export interface ClaimBufferDeps {
  driver: Driver;
  clock: Clock;
  events: TypedEmitter;
  /** The worker's `isolateLost` book-keeping: a held job not started yet is looked up and handed back with the buffer's. */
  lone: LoneJob;
  /** Marked when a hand-back fails: its jobs are still leased to the worker and held nowhere. */
  unreceived: UnreceivedJobs;
  /** Aborted when shutdown begins: a failed look-up is then neither reported nor the reason to wait for a retry. */
  draining: AbortSignal;
  /** Counted here: `staleWritesRejected`, for a claimed job found no longer leased before it started. */
  counters: WorkerCounters;
  /** The held job that runs alone was let go of (its lease gone, or handed back): the worker claims again. */
  resumeClaims: () => void;
  /** Starts what may start (the worker's pump): after a look-up, and when a failed one may be tried again. */
  pump: () => void;
  /** Wakes the claim loop if it waits for room: after a look-up, which may have emptied the buffer. */
  wake: () => void;
}

/**
 * The claimed jobs a worker holds but has not started: the buffer (oldest claim first, bounded by `prefetch` plus
 * free slots), each with when its lease and queue were last confirmed, and the one held to run alone (kept by
 * {@link LoneJob}, looked up and handed back from here). A job confirmed longer than {@link RECHECK_MS} ago waits for
 * a look-up ({@link ClaimBuffer.recheck}): at most one in flight, tried again after a back-off when it fails.
 *
 * The worker's pump reads {@link ClaimBuffer.length} and calls {@link ClaimBuffer.shiftIfConfirmed} per job started:
 * neither allocates nor reads the clock (the caller reads it once per pump).
 */
export class ClaimBuffer {
  readonly #deps: ClaimBufferDeps;
  #entries: Buffered[] = [];
  /**
   * A look-up of the unstarted jobs' leases is in flight, or waits to be tried again after a failure: at most one at
   * a time (see {@link ClaimBuffer.recheck}).
   */
  #rechecking = false;
  /** Failed look-ups in a row, for the back-off. */
  #recheckFailures = 0;
  /** Cancels the timer of the next try after a failed look-up; null when none is waiting. */
  #cancelRecheckRetry: (() => void) | null = null;

  constructor(deps: ClaimBufferDeps) {
    this.#deps = deps;
  }

  /** Claimed jobs waiting in the buffer. */
  get length(): number {
    return this.#entries.length;
  }

  /** The buffered jobs, oldest first, in a new array. */
  rows(): JobRow[] {
    return this.#entries.map((e) => e.row);
  }

  /** Buffers a job whose lease and queue were confirmed at `confirmedAt` (clock ms: a claim's answer, a hand-off's notice). */
  add(row: JobRow, confirmedAt: number): void {
    this.#entries.push({ row, confirmedAt });
  }

  /** Buffers the jobs of a claim answered at `confirmedAt`, but those that run alone ({@link ClaimBuffer.sortClaim}). */
  addClaim(rows: JobRow[], confirmedAt: number): void {
    for (const row of this.sortClaim(rows, confirmedAt)) this.#entries.push({ row, confirmedAt });
  }

  /**
   * The jobs of a claim the worker runs as usual ({@link LoneJob.sort}): a job that runs alone is held, or handed
   * back at once (no attempt used) when one is held already.
   */
  sortClaim(rows: JobRow[], confirmedAt: number): JobRow[] {
    const { kept, back } = this.#deps.lone.sort(rows, confirmedAt);
    void this.release(back, 'handing back jobs that run alone, one at a time');
    return kept;
  }

  /**
   * Takes the oldest buffered job out and returns it when its confirmation still stands at `now`; otherwise (or when
   * the buffer is empty) returns null and leaves the buffer as it is: the caller starts a look-up.
   */
  shiftIfConfirmed(now: number): JobRow | null {
    const next = this.#entries[0];
    if (next === undefined || !confirmedRecently(next.confirmedAt, now)) return null;
    this.#entries.shift();
    return next.row;
  }

  /**
   * Takes out the buffered jobs whose row is in `lost` (their leases found gone), adding them to `dropped`. Only those
   * still waiting here: one started or handed back meanwhile is not touched.
   */
  dropLost(lost: ReadonlySet<JobRow>, dropped: JobRow[]): void {
    this.#entries = this.#entries.filter((e) => {
      if (!lost.has(e.row)) return true;
      dropped.push(e.row);
      return false;
    });
  }

  /**
   * Looks up the unstarted jobs ({@link ClaimBuffer.lookUp}) unless a look-up is in flight or waiting to be tried
   * again, then starts what it confirmed. A failed look-up starts nothing it did not confirm: it is tried again after
   * a back-off, so that a database outage neither starts unconfirmed jobs nor spins.
   */
  recheck(): void {
    if (this.#rechecking) return;
    this.#rechecking = true;
    void this.lookUp().then((confirmed) => {
      if (confirmed || this.#deps.draining.aborted) {
        this.#rechecking = false;
        this.#recheckFailures = 0;
        this.#deps.pump();
        this.#deps.wake();
        return;
      }
      this.#recheckFailures++;
      this.#cancelRecheckRetry = this.#deps.clock.setTimer(backoffMs(this.#recheckFailures), () => {
        this.#cancelRecheckRetry = null;
        this.#rechecking = false;
        this.#deps.pump();
      });
    });
  }

  /** Cancels the retry of a failed look-up, at shutdown: nothing more starts, so nothing more is looked up. */
  cancelRetry(): void {
    this.#cancelRecheckRetry?.();
  }

  /**
   * One look-up (`jobLeaseCheck`) of every claimed job not started yet: the buffer's, and a held job's that runs alone.
   * A job whose lease is gone (cancelled, rescued) is dropped and reported stale, as the heartbeat does; one of a
   * paused queue is handed back unused (no attempt counted), to be claimed once the queue is resumed; the rest are
   * confirmed as of its answer. Only jobs still waiting when it returns are touched: one started, dropped
   * or handed back meanwhile (by the heartbeat, or shutdown) is not.
   * @returns Whether it was answered; a failure is reported as an `error` event (not once shutdown has begun).
   */
  async lookUp(): Promise<boolean> {
    const { driver, clock, events, lone } = this.#deps;
    const sent = new Set(this.#entries);
    const waiting = lone.held?.started === false ? lone.held : null;
    const leases = [...this.#entries.map((e) => leaseOf(e.row)), ...(waiting ? [leaseOf(waiting.row)] : [])];
    if (leases.length === 0) return true;
    let result: { stale: string[]; paused: string[] };
    try {
      result = await driver.jobLeaseCheck({ leases });
    } catch (error) {
      if (!this.#deps.draining.aborted) events.emit('error', { error, context: 'looking up claimed jobs before starting them' });
      return false;
    }
    const confirmedAt = clock.now();
    const stale = new Set(result.stale);
    const paused = new Set(result.paused);
    const lost: JobRow[] = [];
    const back: JobRow[] = [];
    this.#entries = this.#entries.filter((e) => {
      if (!sent.has(e)) return true;
      if (stale.has(e.row.id)) lost.push(e.row);
      else if (paused.has(e.row.id)) back.push(e.row);
      else {
        e.confirmedAt = confirmedAt;
        return true;
      }
      return false;
    });
    if (waiting && lone.held === waiting && !waiting.started) {
      if (stale.has(waiting.row.id)) {
        lost.push(waiting.row);
        lone.clear();
        this.#deps.resumeClaims();
      } else if (paused.has(waiting.row.id)) {
        back.push(lone.takeWaiting()!);
        this.#deps.resumeClaims();
      } else {
        waiting.confirmedAt = confirmedAt;
      }
    }
    this.rejectUnstarted(lost);
    void this.release(back, 'handing back claimed jobs of a paused queue');
    return true;
  }

  /**
   * For `drain()`, which runs the job held to run alone itself once the rest of its claim has run: as a buffered job
   * is, it is looked up again first when its confirmation is older than {@link RECHECK_MS}. Unconfirmed (the look-up
   * failed, and was reported), it is handed back rather than run: a drain does not wait out an outage.
   * @returns Whether `held` is still held (not found cancelled, paused or unconfirmed, here or by a heartbeat): to run.
   */
  async confirmHeld(held: HeldJob): Promise<boolean> {
    const { clock, lone } = this.#deps;
    if (!confirmedRecently(held.confirmedAt, clock.now()) && !(await this.lookUp())) {
      const row = lone.takeWaiting();
      if (row) await this.release([row], 'handing back a job that runs alone');
    }
    return lone.held === held;
  }

  /** Counts and reports claimed jobs found no longer leased before they started (cancelled meanwhile): never run. */
  rejectUnstarted(rows: Iterable<JobRow>): void {
    for (const r of rows) {
      this.#deps.counters.staleWritesRejected++;
      this.#deps.events.emit('job:stale-write-rejected', { jobId: r.id, leaseToken: r.leaseToken, write: 'heartbeat' });
    }
  }

  /** Hands buffered, never-started jobs back (and a held job that runs alone, not started either). */
  async releaseAll(): Promise<void> {
    const rows = this.#entries.splice(0).map((e) => e.row);
    const waiting = this.#deps.lone.takeWaiting();
    if (waiting) rows.push(waiting);
    await this.release(rows, 'handing back buffered jobs');
  }

  /**
   * Hands never-started jobs back (no attempt used). On failure they are marked unreceived, for the worker's next
   * hand-back of the jobs leased to it and held nowhere; failing that, their leases expire and the rescue takes them.
   */
  async release(rows: JobRow[], context: string): Promise<void> {
    if (rows.length === 0) return;
    const { driver, clock, events } = this.#deps;
    try {
      await driver.jobRelease({ leases: rows.map(leaseOf), now: clock.sqlNow() });
    } catch (error) {
      events.emit('error', { error, context });
      // Still leased to this worker, and held nowhere: the next look for unreceived jobs hands them back.
      this.#deps.unreceived.mark();
    }
  }
}
