import type { JobRow } from '../job/job-record.js';
import { Attempt, type AttemptDeps } from './attempt.js';
import { backoffMs, ClaimBuffer, confirmedRecently } from './claim-buffer.js';
import { Claimer } from './claimer.js';
import { Completer } from './completer.js';
import { finishInFlight } from './finish-in-flight.js';
import { HeldLeases } from './held-leases.js';
import type { WorkerCounters } from './worker-counters.js';
import type { ResolvedWorkerOptions } from './worker-options.js';
import { LoneJob } from './lone-job.js';
import { Rescuer } from './rescuer.js';
import { PeriodicTask } from './service.js';
import { UnreceivedJobs } from './unreceived-jobs.js';
import { WorkerListener } from './worker-listener.js';
import { Wakeup } from './wakeup.js';

export type { WorkerCounters } from './worker-counters.js';
/** The age after which a buffered job is looked up before it starts (see {@link ClaimBuffer}); exported here too. */
export { RECHECK_MS } from './claim-buffer.js';

/** What a worker needs from its Warden; the rest of {@link AttemptDeps} it makes itself. */
export type WorkerDeps = Omit<AttemptDeps, 'completer' | 'onStaleWrite' | 'draining' | 'onHandlerSettled' | 'onSettled' | 'onLeaseReleased'> & {
  /**
   * Before a job handed to this worker starts: the enqueues of this process then in flight, settled (null when
   * none; see `EnqueuesInFlight`), so its `job:enqueued` comes first when it was enqueued here. @default none
   */
  enqueuesSettled?: () => Promise<void> | null;
};

/** What {@link Worker.drain} did. */
export interface DrainResult {
  /** Attempts run. */
  attempts: number;
}

/**
 * The worker runtime of one process: a claim loop, attempts running concurrently, a heartbeater renewing
 * their leases, a rescuer for other workers' expired leases, and a completer writing endings in batches.
 *
 * Shutdown (`stop`): claiming stops at once; in-flight attempts get `graceMs` to finish; the rest are aborted
 * through their signal and returned for retry with the attempt counted. Safe to call twice or before `start`.
 */
export class Worker {
  readonly id: string;
  readonly counters: WorkerCounters = { claimed: 0, staleWritesRejected: 0, rescued: 0, abortedOnShutdown: 0, releasedUnreceived: 0, handedOff: 0, ranAlone: 0 };
  readonly #deps: WorkerDeps;
  readonly #options: ResolvedWorkerOptions;
  readonly #completer: Completer;
  readonly #attemptDeps: AttemptDeps;
  /** Attempts started and not yet ended, with the promise of {@link Attempt.run}. */
  readonly #inFlight = new Map<Attempt, Promise<void>>();
  readonly #wakeup: Wakeup;
  readonly #heartbeater: PeriodicTask;
  readonly #rescuer: Rescuer;
  #loop: { controller: AbortController; done: Promise<void> } | null = null;
  readonly #listener: WorkerListener;
  #stopping: Promise<void> | null = null;
  #starting = false;
  /** {@link WorkerListener.start} of the last `start`, which a stop during the start waits for. */
  #listening: Promise<void> = Promise.resolve();
  /** Claimed jobs not started yet, oldest claim first (bounded by `prefetch` plus free slots), and their look-ups. */
  readonly #buffer: ClaimBuffer;
  /** Its claims, and their hand-off registrations. */
  readonly #claimer: Claimer;
  /** The leases held, renewed by the heartbeat, and the hand-back of jobs leased to this worker and held nowhere. */
  readonly #leases: HeldLeases;
  /** Handlers running now: the slots taken. */
  #running = 0;
  /** The last claim filled every slot it asked for, so more jobs are probably due. */
  #maybeMore = true;
  #slotFreed: (() => void) | null = null;
  /** The claim loop claims again once the buffer is down to this many jobs (half of `prefetch`). */
  readonly #lowWater: number;
  /** Aborted when shutdown begins, so iterations hand over at their next batch boundary. */
  readonly #draining = new AbortController();
  /** Jobs leased to this worker that it may never have received (a failed claim, a lost hand-off). */
  readonly #unreceived: UnreceivedJobs;
  /**
   * The last claim found the queues empty, so the next one registers for hand-off (and, finding work, sets the
   * registration's slots to 0). A busy worker's claims skip the registration's work. False at start: the first
   * claim that comes up short is followed by a registering one at the next poll or wake-up.
   */
  #lastClaimShort = false;
  /**
   * `isolateLost`: the job held to run alone ({@link LoneJob.runsAlone}), which starts once every other attempt of
   * this worker has ended and its ending is written, and no claim is made until it ends; and the leases held.
   */
  readonly #lone: LoneJob;

  constructor(deps: WorkerDeps, options: ResolvedWorkerOptions) {
    const { driver, clock, events, workerId } = deps;
    this.id = workerId;
    this.#deps = deps;
    this.#options = options;
    this.#lowWater = Math.floor(options.prefetch / 2);
    this.#lone = new LoneJob(options);
    this.#unreceived = new UnreceivedJobs({ driver, clock, workerId });
    const onError = (context: string) => (error: unknown) => events.emit('error', { error, context });
    this.#completer = new Completer({ driver, clock, onError: onError('writing attempt endings') });
    this.#attemptDeps = {
      ...deps,
      completer: this.#completer,
      draining: this.#draining.signal,
      onStaleWrite: () => this.counters.staleWritesRejected++,
      // The slot frees when the handler settles, before the ending is written (see #begin).
      onHandlerSettled: () => {
        this.#running--;
        this.#pump();
        this.#wake();
      },
      onSettled: (attempt) => {
        this.#inFlight.delete(attempt);
        if (attempt.endingGivenUp) this.#unreceived.rememberGivenUp(attempt.row);
        this.#releaseLease(attempt);
        this.#wake();
      },
      onLeaseReleased: (attempt) => this.#releaseLease(attempt),
    };
    this.#listener = new WorkerListener({
      driver, events, clock, workerId, enqueuesSettled: deps.enqueuesSettled,
      notify: (queue) => this.notify(queue),
      onPossiblyUnreceived: () => this.#unreceived.mark(),
      onHandedOff: () => this.counters.handedOff++,
      onHandoffMissed: (jobId) => this.#unreceived.missed(jobId),
      handedBack: (row) => this.#unreceived.handedBack(row),
      take: (row, slotsLeft, receivedAt) => this.#take(row, slotsLeft, receivedAt),
    });
    this.#claimer = new Claimer({
      driver, clock, events, workerId, options, listener: this.#listener, unreceived: this.#unreceived, counters: this.counters,
      freeSlots: () => options.concurrency - this.#running - this.#buffer.length,
    });
    this.#buffer = new ClaimBuffer({
      driver, clock, events, lone: this.#lone, unreceived: this.#unreceived, draining: this.#draining.signal, counters: this.counters,
      resumeClaims: () => this.#resumeClaims(),
      pump: () => this.#pump(),
      wake: () => this.#wake(),
    });
    this.#leases = new HeldLeases({
      driver, clock, events, leaseMs: options.leaseMs, inFlight: this.#inFlight, buffer: this.#buffer,
      lone: this.#lone, listener: this.#listener, unreceived: this.#unreceived, counters: this.counters,
      releaseLease: (attempt) => this.#releaseLease(attempt),
      resumeClaims: () => this.#resumeClaims(),
    });
    this.#wakeup = new Wakeup(clock);
    this.#heartbeater = new PeriodicTask({ clock, intervalMs: options.heartbeatMs, tick: () => this.#leases.renew(), onError: onError('renewing leases') });
    this.#rescuer = new Rescuer({
      driver, clock, events, intervalMs: options.rescueMs, maxLost: options.maxLost, counters: this.counters,
      onError: onError('rescuing expired leases'),
      notify: () => this.notify(),
    });
  }

  /** Attempts started and not yet ended (running, or with their ending being written). */
  get inFlight(): number {
    return this.#inFlight.size;
  }

  /** Between `start()` being called and the claim loop starting (or the start failing or being stopped). */
  get starting(): boolean {
    return this.#starting;
  }

  /** Claimed jobs waiting in the buffer. */
  get buffered(): number {
    return this.#buffer.length;
  }

  /** The resolved options this worker runs with. */
  get options(): Readonly<ResolvedWorkerOptions> {
    return this.#options;
  }

  /**
   * Begins claiming and running jobs. Calling it again while running does nothing.
   * @param ready - The caller's own check before any job may be claimed (`Warden.start`: no migration pending),
   *   run while this worker opens its connections and starts listening, so a start pays for the slowest of them
   *   instead of their sum. When it rejects, or listening cannot start, nothing has been claimed: the worker
   *   stops listening, cannot be started again, and `start` rejects with that error.
   */
  async start(ready?: Promise<unknown>): Promise<void> {
    if (this.#loop || this.#stopping) {
      // Started (or stopped) already: the caller's check is moot, and its failure must not go unhandled.
      ready?.catch(() => undefined);
      return;
    }
    const controller = new AbortController();
    this.#loop = { controller, done: Promise.resolve() };
    this.#starting = true;
    try {
      await this.#startLoop(controller, ready);
    } finally {
      this.#starting = false;
    }
  }

  async #startLoop(controller: AbortController, ready?: Promise<unknown>): Promise<void> {
    // Each is a new server process on PostgreSQL: opened side by side (and beside `ready`), the first claim waits
    // for the slowest, not for their sum.
    const warming = this.#deps.driver.workerConnectionsWarm?.();
    this.#listening = this.#listener.start();
    // All settled, so the caller's error (a pending migration) wins over a listener's that came first.
    const failed = (await Promise.allSettled([ready, this.#listening, warming])).find((r) => r.status === 'rejected');
    if (failed) {
      this.#stopping ??= this.#listener.stopAfter(this.#listening);
      await this.#stopping;
      throw failed.reason;
    }
    // stop() was called while starting: it has stopped listening and waits for nothing else.
    if (this.#stopping) return;
    this.#heartbeater.start();
    this.#rescuer.start();
    this.#loop!.done = this.#claimLoop(controller.signal);
    this.#deps.events.emit('worker:started', { workerId: this.id, queues: this.#options.queues, concurrency: this.#options.concurrency });
  }

  /** Says that jobs may be due in `queue` (or in any queue): the claim loop looks at once. */
  notify(queue?: string): void {
    if (queue !== undefined && !this.#options.queues.includes(queue)) return;
    this.#maybeMore = true;
    this.#wakeup.wake();
  }

  /** Graceful shutdown; see the class comment. Resolves when done. */
  stop(): Promise<void> {
    this.#stopping ??= this.#shutdown();
    return this.#stopping;
  }

  /**
   * Runs every due job now, in this process, until none is due; then returns. For tests and scripts; do not
   * combine with `start()` on the same worker.
   */
  async drain(): Promise<DrainResult> {
    let attempts = 0;
    this.#heartbeater.start();
    try {
      for (;;) {
        const rows = await this.#claimer.claim(this.#options.concurrency, false);
        if (rows.length === 0) break;
        // One loss from the dead letters (LoneJob.runsAlone): held, heartbeated meanwhile, and run once the rest of
        // its claim has ended and their endings are written; the others of its kind go back for the next claims.
        const kept = this.#buffer.sortClaim(rows, this.#deps.clock.now());
        attempts += kept.length;
        await Promise.all(kept.map((row) => this.#begin(row)));
        const held = this.#lone.held;
        if (held) {
          await this.#completer.drained();
          // Looked up again first, as a buffered job is: found cancelled (here or by a heartbeat), its queue paused, or
          // unconfirmed, it is not run. Checked again after the await, in the turn it starts: a heartbeat answering in
          // between may have dropped it as cancelled (and, the job not started, had nothing to abort).
          if ((await this.#buffer.confirmHeld(held)) && this.#lone.held === held) {
            this.counters.ranAlone++;
            attempts++;
            await this.#begin(this.#lone.start(held));
          }
          this.#lone.clear();
        }
      }
      await this.#completer.drained();
    } finally {
      await this.#heartbeater.stop();
    }
    return { attempts };
  }

  /**
   * One rescue pass over expired leases (also run periodically while started).
   * @param maxLost - Losses after which a job is dead-lettered. @default this worker's `maxLost`
   */
  rescue(maxLost?: number): Promise<void> {
    return this.#rescuer.rescue(maxLost);
  }

  /**
   * Keeps the buffer topped up: claims when it falls to half of `prefetch` (empty when 0) and there is room,
   * where room counts running handlers, buffered jobs and endings not yet written beyond `concurrency + prefetch`
   * against `concurrency + prefetch`. Starting buffered jobs happens in {@link Worker.#pump}, also on every freed slot.
   */
  async #claimLoop(signal: AbortSignal): Promise<void> {
    const { clock, events } = this.#deps;
    const { concurrency, prefetch, batchSize, pollMs } = this.#options;
    const capacity = concurrency + prefetch;
    const lowWater = this.#lowWater;
    let failures = 0;
    while (!signal.aborted) {
      this.#pump();
      // Endings waiting for the completer's next batch hold no slot; up to `capacity` of them are free of charge,
      // so claims go on while one batch of endings is being written (charging them beyond `concurrency` put the
      // claim and the completer in lockstep: W1 on PostgreSQL 22,000 -> 34,000 jobs/s with prefetch 500), while a
      // completer that falls further behind slows claims, which bounds the attempts held in memory.
      const pendingEndings = this.#inFlight.size - this.#running;
      const room = capacity - this.#running - Math.max(0, pendingEndings - capacity) - this.#buffer.length;
      if (this.#maybeMore && room > 0 && this.#buffer.length <= lowWater && !this.#lone.held) {
        // A worker with nothing to do (just started, or its last claim emptied the queues) claims first only what
        // its handlers start at once: that claim returns sooner (it locks, sends and parses fewer rows), and the
        // next, for the buffer, runs while those jobs do. Starting on a backlog of 20,000: first job 60-68 -> 38-46 ms.
        const idle = this.#running === 0 && this.#buffer.length === 0 && (this.#lastClaimShort || this.counters.claimed === 0);
        const limit = Math.min(room, batchSize, idle ? concurrency : Infinity);
        let rows: JobRow[];
        let confirmedAt: number;
        try {
          // Jobs leased to this worker unseen are handed back first; checked here, so the usual claim awaits nothing more.
          if (this.#leases.handingBack || this.#unreceived.possible) await this.#leases.beforeClaim();
          rows = await this.#claimer.claim(limit, this.#listener.handoff && this.#lastClaimShort);
          confirmedAt = clock.now();
          this.#lastClaimShort = rows.length < limit;
          failures = 0;
        } catch (error) {
          events.emit('error', { error, context: 'claiming jobs' });
          this.#unreceived.mark();
          failures++;
          await clock.sleep(backoffMs(failures), signal);
          continue;
        }
        // A claim that was in flight when shutdown began still holds its jobs: shutdown hands them back.
        this.#buffer.addClaim(rows, confirmedAt);
        this.#maybeMore = rows.length === limit;
        continue;
      }
      if (!this.#maybeMore) {
        await this.#wakeup.wait(pollMs, signal);
        // The poll timer elapsing (or a wake-up) is a reason to look again.
        this.#maybeMore = true;
        continue;
      }
      // Full: wait for a slot or an ending (or shutdown), not for the poll timer.
      await new Promise<void>((resolve) => {
        const onAbort = () => resolve();
        this.#slotFreed = () => {
          signal.removeEventListener('abort', onAbort);
          resolve();
        };
        signal.addEventListener('abort', onAbort, { once: true });
      });
    }
  }

  /**
   * Starts buffered jobs while slots are free. Synchronous, so a freed slot is reused without a round trip. A held
   * job that runs alone starts once nothing else is in flight, and nothing starts beside it. A job whose lease and
   * queue were confirmed more than {@link RECHECK_MS} ago is not started: nothing more starts until a look-up of the
   * unstarted jobs ({@link ClaimBuffer.recheck}, which runs this again) has dropped those cancelled and handed back those
   * of paused queues.
   */
  #pump(): void {
    const held = this.#lone.held;
    if (held?.started || this.#draining.signal.aborted) return;
    // Read once, and only when a job may start: the clock is not read per job of a fast drain's pump.
    let now: number | undefined;
    const buffer = this.#buffer;
    while (this.#running < this.#options.concurrency && buffer.length > 0) {
      now ??= this.#deps.clock.now();
      const row = buffer.shiftIfConfirmed(now);
      if (row === null) {
        buffer.recheck();
        return;
      }
      void this.#begin(row);
    }
    // Only the claim loop's worker starts it here; drain() runs its held job itself.
    if (held && this.#lone.ready && buffer.length === 0 && this.#loop !== null) {
      if (!confirmedRecently(held.confirmedAt, now ?? this.#deps.clock.now())) {
        buffer.recheck();
        return;
      }
      this.counters.ranAlone++;
      void this.#begin(this.#lone.start(held));
    }
  }

  /**
   * Counts `attempt`'s lease released, once ({@link LoneJob.leaseReleased}). With a job held to run alone: the held
   * job may start now, or, when it was that job, claims go on.
   */
  #releaseLease(attempt: Attempt): void {
    if (attempt.leaseReleased) return;
    attempt.leaseReleased = true;
    const released = this.#lone.leaseReleased(attempt.row);
    if (released === 'other') this.#pump();
    else if (released === 'held') this.#resumeClaims();
  }

  /** Wakes the claim loop wherever it waits: for a wake-up or the poll (notify), or for a free slot (#wake). */
  #resumeClaims(): void {
    this.notify();
    this.#wake();
  }

  /**
   * A job an enqueue handed to this worker (see {@link WorkerListener}), leased to it as a claim would have:
   * started at once if a handler is free (it was when the worker registered), else buffered. Once the
   * registration's last slot is taken the claim loop looks again, which registers the slots free by then.
   */
  #take(row: JobRow, slotsLeft: number, receivedAt: number): void {
    // A job runs (or waits to run) alone: nothing else may be leased to this worker meanwhile.
    if (this.#lone.held) {
      void this.#buffer.release([row], 'handing back a job handed over while a job runs alone');
      return;
    }
    this.counters.claimed++;
    this.#deps.events.emit('worker:claimed', { workerId: this.id, count: 1 });
    this.#buffer.add(row, receivedAt);
    this.#pump();
    if (slotsLeft <= 0) this.notify();
  }

  /**
   * Runs one attempt. Its slot frees when the handler settles, before its ending is written, so the next job
   * starts while the ending waits for the completer's next batch; the attempt stays in `#inFlight` (heartbeats,
   * shutdown) until the ending is written.
   */
  #begin(row: JobRow): Promise<void> {
    this.#running++;
    this.#lone.leaseTaken();
    const attempt = new Attempt(row, this.#attemptDeps);
    // run() reaches its first await before it could call onSettled, so the entry is there to be deleted.
    const settled = attempt.run();
    this.#inFlight.set(attempt, settled);
    return settled;
  }

  /**
   * Wakes the claim loop when it waits for a free slot or an ending, and could now claim. While the buffer is
   * above the low-water mark it could not (it waits there with `#maybeMore` set, so only the buffer decides):
   * waking it would only have it wait again, a promise and an abort listener per job.
   */
  #wake(): void {
    const resolve = this.#slotFreed;
    if (!resolve || this.#buffer.length > this.#lowWater) return;
    this.#slotFreed = null;
    resolve();
  }

  async #shutdown(): Promise<void> {
    const { clock, events } = this.#deps;
    const loop = this.#loop;
    if (!loop) return;
    events.emit('worker:draining', { workerId: this.id, inFlight: this.#inFlight.size });
    this.#draining.abort();
    this.#buffer.cancelRetry();
    loop.controller.abort();
    await loop.done;
    await this.#listener.stopAfter(this.#listening);
    await this.#buffer.releaseAll();
    // Hand-off on: jobs handed to it may not have arrived. Either way, a claim that failed since the last hand-back
    // (its reply lost after it committed, then the stop came during the back-off) left its jobs leased to it unseen.
    if (this.#listener.handoff || this.#unreceived.possible) await this.#leases.releaseOnStop();
    const aborted = await finishInFlight({
      inFlight: this.#inFlight, completer: this.#completer, clock, graceMs: this.#options.graceMs,
      onAborted: (count) => (this.counters.abortedOnShutdown += count),
    });
    await Promise.all([this.#heartbeater.stop(), this.#rescuer.stop()]);
    events.emit('worker:stopped', { workerId: this.id, aborted });
  }
}
