/**
 * The leases a worker holds (its running attempts, its claimed jobs not started yet), renewed by its heartbeat, and
 * the hand-back of the jobs leased to it that it does not hold.
 * @module
 */
import type { Clock } from '../clock/clock.js';
import type { Driver } from '../driver/driver.js';
import { LeaseLostError } from '../errors.js';
import type { TypedEmitter } from '../events/typed-emitter.js';
import type { JobRow } from '../job/job-record.js';
import type { Attempt } from './attempt.js';
import { type ClaimBuffer, leaseOf } from './claim-buffer.js';
import type { LoneJob } from './lone-job.js';
import type { UnreceivedJobs } from './unreceived-jobs.js';
import type { WorkerCounters } from './worker-counters.js';
import type { WorkerListener } from './worker-listener.js';

/** What {@link HeldLeases} needs from its worker: the places where it holds jobs, read when needed. */
export interface HeldLeasesDeps {
  driver: Driver;
  clock: Clock;
  events: TypedEmitter;
  /** The lease each renewal grants (ms): the worker option `lease`. */
  leaseMs: number;
  /** Attempts started and not yet ended (the worker's own map, only read here). */
  inFlight: ReadonlyMap<Attempt, unknown>;
  /** Claimed jobs not started yet. */
  buffer: ClaimBuffer;
  /** A job held to run alone, started or not. */
  lone: LoneJob;
  /** Handed jobs waiting for this process's enqueues: held as the buffer's are. */
  listener: Pick<WorkerListener, 'waiting' | 'drop'>;
  /** Whether jobs may be leased to the worker unseen, and their hand-back. */
  unreceived: UnreceivedJobs;
  /** Counted here: `staleWritesRejected` (attempts whose lease a heartbeat found gone) and `releasedUnreceived`. */
  counters: WorkerCounters;
  /** The worker's count of a lease released (an attempt found stale no longer holds one). */
  releaseLease: (attempt: Attempt) => void;
  /** A held job that runs alone was let go of (its lease found gone): the worker claims again. */
  resumeClaims: () => void;
}

/**
 * What a worker holds, and the two things done with it: a heartbeat ({@link HeldLeases.renew}) renews every lease
 * held in one `jobHeartbeat`, drops the unstarted jobs whose lease it found gone and aborts the attempts whose lease
 * it found gone; a hand-back ({@link HeldLeases.releaseUnreceived}) returns the jobs leased to the worker that it
 * holds nowhere. Neither is on the per-job path: both read the worker's collections when they run.
 */
export class HeldLeases {
  readonly #deps: HeldLeasesDeps;
  /** The heartbeat's hand-back of unreceived jobs in flight (only while a job runs alone), which claims wait for. */
  #handBack: Promise<void> | null = null;

  constructor(deps: HeldLeasesDeps) {
    this.#deps = deps;
  }

  /** The heartbeat's hand-back of unreceived jobs is in flight ({@link HeldLeases.beforeClaim} waits for it). */
  get handingBack(): boolean {
    return this.#handBack !== null;
  }

  /**
   * Before a claim: waits for the heartbeat's hand-back in flight, then hands back the jobs that may be leased to the
   * worker unseen ({@link UnreceivedJobs.possible}). A hand-back reads what is leased to the worker: a claim committing
   * meanwhile, its reply not yet read, would have its jobs handed back from under it. Rejects when the hand-back
   * fails, as a failed claim does.
   */
  async beforeClaim(): Promise<void> {
    if (this.#handBack) await this.#handBack;
    if (this.#deps.unreceived.possible) await this.releaseUnreceived();
  }

  /**
   * At shutdown: hands back jobs handed to this worker whose notification had not arrived when it stopped listening,
   * and those of a claim whose reply was lost ({@link HeldLeases.releaseUnreceived}). A failure is reported as an
   * `error` event: their leases expire and the rescue takes them.
   */
  releaseOnStop(): Promise<void> {
    return this.#releaseReporting('handing back jobs handed to a stopping worker');
  }

  /** {@link HeldLeases.releaseUnreceived}, its failure reported as an `error` event with `context`. */
  #releaseReporting(context: string): Promise<void> {
    return this.releaseUnreceived().catch((error: unknown) => {
      this.#deps.events.emit('error', { error, context });
    });
  }

  /** Hands back the jobs leased to this worker that it does not hold (see {@link UnreceivedJobs}). */
  async releaseUnreceived(): Promise<void> {
    const { buffer, lone, inFlight, listener, unreceived, counters } = this.#deps;
    counters.releasedUnreceived += await unreceived.release(() => {
      const held = new Set<string>(buffer.rows().map((r) => r.id));
      const alone = lone.held;
      if (alone) held.add(alone.row.id);
      for (const attempt of inFlight.keys()) held.add(attempt.row.id);
      for (const id of listener.waiting.keys()) held.add(id);
      return held;
    });
  }

  /**
   * One heartbeat: renews the leases of the live attempts and of the jobs held unstarted (buffered, held to run alone,
   * handed and waiting); a job among them whose lease is gone (cancelled, rescued) is dropped and reported, and an
   * attempt whose lease is gone is aborted with `LeaseLostError`.
   */
  async renew(): Promise<void> {
    const { driver, clock, events, inFlight, buffer, lone, listener, unreceived, counters } = this.#deps;
    // While a job runs alone no claim is made, and so no look for unreceived jobs: jobs whose hand-back failed meanwhile
    // would wait, unrenewed, for their leases to expire and be rescued (a loss each). Handed back from here instead.
    if (lone.held && unreceived.possible) {
      const handBack = this.#releaseReporting('handing back jobs leased to this worker and held nowhere');
      this.#handBack = handBack;
      try {
        await handBack;
      } finally {
        if (this.#handBack === handBack) this.#handBack = null;
      }
    }
    const live = [...inFlight.keys()].filter((a) => !a.done);
    // Handed jobs waiting for this process's enqueues are held as the buffer's are.
    const waiting = lone.waiting;
    const buffered = [...buffer.rows(), ...(waiting ? [waiting] : []), ...listener.waiting.values()];
    if (live.length === 0 && buffered.length === 0) return;
    const leases = [...live.map((a) => leaseOf(a.row)), ...buffered.map(leaseOf)];
    const result = await driver.jobHeartbeat({ leases, leaseMs: this.#deps.leaseMs, now: clock.sqlNow() });
    if (result.stale.length === 0) return;
    const stale = new Set(result.stale);
    // A buffered job whose lease is gone (cancelled meanwhile) must not start; one that started while the heartbeat
    // was in flight is aborted as a live attempt is.
    const lostBuffered = new Set(buffered.filter((r) => stale.has(r.id)));
    const startedMeanwhile: Attempt[] = [];
    if (lostBuffered.size > 0) {
      for (const attempt of inFlight.keys()) if (lostBuffered.has(attempt.row)) startedMeanwhile.push(attempt);
      for (const attempt of startedMeanwhile) lostBuffered.delete(attempt.row);
      // Only those still waiting here: one handed back meanwhile (a look-up found its queue paused, or shutdown began)
      // is queued again, not lost.
      const dropped: JobRow[] = [];
      buffer.dropLost(lostBuffered, dropped);
      const alone = lone.held;
      if (alone && !alone.started && lostBuffered.has(alone.row)) {
        dropped.push(alone.row);
        lone.clear();
        this.#deps.resumeClaims();
      }
      // A waiting handed job taken meanwhile is in the buffer or running, covered above; one still waiting is dropped.
      for (const r of lostBuffered) if (listener.drop(r.id)) dropped.push(r);
      buffer.rejectUnstarted(dropped);
    }
    for (const attempt of [...live, ...startedMeanwhile]) {
      // An attempt that ended while the heartbeat was in flight is not stale, just finished.
      if (!stale.has(attempt.row.id) || attempt.done) continue;
      attempt.done = true;
      counters.staleWritesRejected++;
      events.emit('job:stale-write-rejected', { jobId: attempt.row.id, leaseToken: attempt.row.leaseToken, write: 'heartbeat' });
      attempt.controller.abort(new LeaseLostError(attempt.row.id, attempt.row.leaseToken, 'a lease that expired, was cancelled, or was taken over'));
      this.#deps.releaseLease(attempt);
    }
  }
}
