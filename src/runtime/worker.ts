import { LeaseLostError, ShutdownAbortError } from '../errors.js';
import type { JobRow } from '../job/job-record.js';
import type { JobLease } from '../driver/driver.js';
import { LEASE_EXPIRED_ERROR } from '../driver/stored-errors.js';
import { Attempt, type AttemptDeps, ref } from './attempt.js';
import { Completer } from './completer.js';
import type { ResolvedWorkerOptions } from './worker-options.js';
import { LoneJob } from './lone-job.js';
import { PeriodicTask } from './service.js';
import { UnreceivedJobs } from './unreceived-jobs.js';
import { WorkerListener } from './worker-listener.js';
import { Wakeup } from './wakeup.js';

/** Counters a worker keeps since it was created. */
export interface WorkerCounters {
  claimed: number;
  /** Writes (heartbeats, endings) rejected because the attempt no longer held its lease. */
  staleWritesRejected: number;
  rescued: number;
  /** Jobs aborted at the end of a shutdown grace period and returned for retry. */
  abortedOnShutdown: number;
  /**
   * Jobs found leased to this worker but never received (a claim that committed with its reply lost) and handed
   * back, instead of waiting for their leases to expire.
   */
  releasedUnreceived: number;
  /**
   * Jobs an enqueue handed straight to this worker while it waited (PostgreSQL), counted as received; also in
   * `claimed` once taken (one received as the worker stops is handed back instead).
   */
  handedOff: number;
  /** Jobs one loss from the dead letters that this worker ran alone (`isolateLost`). */
  ranAlone: number;
}

/** What a worker needs from its Warden; the rest of {@link AttemptDeps} it makes itself. */
export type WorkerDeps = Omit<AttemptDeps, 'completer' | 'onStaleWrite' | 'draining' | 'onHandlerSettled' | 'onSettled' | 'onLeaseReleased'> & {
  /**
   * Before a job handed to this worker starts: the enqueues of this process then in flight, settled (null when
   * none; see `EnqueuesInFlight`), so its `job:enqueued` comes first when it was enqueued here. @default none
   */
  enqueuesSettled?: () => Promise<void> | null;
};

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

/** A claimed job waiting in the worker's buffer, and when its lease and queue were confirmed (see {@link RECHECK_MS}). */
interface Buffered {
  readonly row: JobRow;
  confirmedAt: number;
}

/** Whether a confirmation made at `confirmedAt` still stands at `now`; one from a clock that went back does not. */
function confirmedRecently(confirmedAt: number, now: number): boolean {
  const age = now - confirmedAt;
  return age >= 0 && age <= RECHECK_MS;
}

/** The wait before trying again after `failures` failures in a row: 200 ms doubling, at most 5 s. */
function backoffMs(failures: number): number {
  return Math.min(5_000, 100 * 2 ** Math.min(failures, 6));
}

/** The lease of a claimed job, as the driver's lease methods take it. */
function leaseOf(row: JobRow): JobLease {
  return { id: row.id, leaseToken: row.leaseToken };
}

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
  readonly #rescuer: PeriodicTask;
  #loop: { controller: AbortController; done: Promise<void> } | null = null;
  readonly #listener: WorkerListener;
  #stopping: Promise<void> | null = null;
  #starting = false;
  /** {@link WorkerListener.start} of the last `start`, which a stop during the start waits for. */
  #listening: Promise<void> = Promise.resolve();
  /** Claimed jobs not started yet, oldest claim first (bounded by `prefetch` plus free slots). */
  #buffer: Buffered[] = [];
  /**
   * A look-up of the unstarted jobs' leases is in flight, or waits to be tried again after a failure: at most one at
   * a time (see {@link Worker.#recheck}).
   */
  #rechecking = false;
  /** Failed look-ups in a row, for the back-off. */
  #recheckFailures = 0;
  /** Cancels the timer of the next try after a failed look-up; null when none is waiting. */
  #cancelRecheckRetry: (() => void) | null = null;
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
  /** The heartbeat's hand-back of unreceived jobs in flight (only while a job runs alone), which claims wait for. */
  #handBack: Promise<void> | null = null;

  constructor(deps: WorkerDeps, options: ResolvedWorkerOptions) {
    this.id = deps.workerId;
    this.#deps = deps;
    this.#options = options;
    this.#lowWater = Math.floor(options.prefetch / 2);
    this.#lone = new LoneJob(options);
    this.#unreceived = new UnreceivedJobs({ driver: deps.driver, clock: deps.clock, workerId: deps.workerId });
    const onError = (context: string) => (error: unknown) => deps.events.emit('error', { error, context });
    this.#completer = new Completer({ driver: deps.driver, clock: deps.clock, onError: onError('writing attempt endings') });
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
      driver: deps.driver, events: deps.events, clock: deps.clock, workerId: deps.workerId, enqueuesSettled: deps.enqueuesSettled,
      notify: (queue) => this.notify(queue),
      onPossiblyUnreceived: () => this.#unreceived.mark(),
      onHandedOff: () => this.counters.handedOff++,
      onHandoffMissed: (jobId) => this.#unreceived.missed(jobId),
      handedBack: (row) => this.#unreceived.handedBack(row),
      take: (row, slotsLeft, receivedAt) => this.#take(row, slotsLeft, receivedAt),
    });
    this.#wakeup = new Wakeup(deps.clock);
    this.#heartbeater = new PeriodicTask({ clock: deps.clock, intervalMs: options.heartbeatMs, tick: () => this.#heartbeat(), onError: onError('renewing leases') });
    this.#rescuer = new PeriodicTask({ clock: deps.clock, intervalMs: options.rescueMs, tick: () => this.rescue(), onError: onError('rescuing expired leases'), runFirstAtOnce: true });
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
        const rows = await this.#claim(this.#options.concurrency, false);
        if (rows.length === 0) break;
        // One loss from the dead letters (LoneJob.runsAlone): held, heartbeated meanwhile, and run once the rest of
        // its claim has ended and their endings are written; the others of its kind go back for the next claims.
        const kept = this.#sortClaim(rows, this.#deps.clock.now());
        attempts += kept.length;
        await Promise.all(kept.map((row) => this.#begin(row)));
        const held = this.#lone.held;
        if (held) {
          await this.#completer.drained();
          // It waited for its whole claim to run: looked up again first, as a buffered job is. Unconfirmed (the look-up
          // failed, and was reported), it is handed back rather than run: a drain does not wait out an outage.
          if (!confirmedRecently(held.confirmedAt, this.#deps.clock.now()) && !(await this.#recheckUnstarted())) {
            const row = this.#lone.takeWaiting();
            if (row) await this.#release([row], 'handing back a job that runs alone');
          }
          // A heartbeat or the look-up may have found its lease gone (cancelled), or its queue paused: then it is not run.
          if (this.#lone.held === held) {
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
  async rescue(maxLost = this.#options.maxLost): Promise<void> {
    const { driver, clock, events } = this.#deps;
    const rescued = await driver.jobRescue({ maxLost, limit: 500, now: clock.sqlNow() });
    for (const job of rescued) {
      this.counters.rescued++;
      events.emit('job:rescued', { job: ref(job), attempt: job.attempt, nextState: job.state });
      // The error the rescue stored on the job: what the dashboard and the attempt history show.
      if (job.state === 'dead') events.emit('job:dead', { job: ref(job), attempt: job.attempt, reason: 'lost', error: { ...LEASE_EXPIRED_ERROR } });
    }
    if (rescued.some((j) => j.state === 'retrying')) this.notify();
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
          // A hand-back the heartbeat began while a job ran alone reads what is leased to this worker: a claim
          // committing meanwhile, its reply not yet read, would have its jobs handed back from under it.
          if (this.#handBack) await this.#handBack;
          if (this.#unreceived.possible) await this.#releaseUnreceived();
          rows = await this.#claim(limit, this.#listener.handoff && this.#lastClaimShort);
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
        for (const row of this.#sortClaim(rows, confirmedAt)) this.#buffer.push({ row, confirmedAt });
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
   * unstarted jobs ({@link Worker.#recheck}, which runs this again) has dropped those cancelled and handed back those
   * of paused queues.
   */
  #pump(): void {
    const held = this.#lone.held;
    if (held?.started || this.#draining.signal.aborted) return;
    // Read once, and only when a job may start: the clock is not read per job of a fast drain's pump.
    let now: number | undefined;
    while (this.#running < this.#options.concurrency && this.#buffer.length > 0) {
      const next = this.#buffer[0]!;
      now ??= this.#deps.clock.now();
      if (!confirmedRecently(next.confirmedAt, now)) {
        this.#recheck();
        return;
      }
      this.#buffer.shift();
      void this.#begin(next.row);
    }
    // Only the claim loop's worker starts it here; drain() runs its held job itself.
    if (held && this.#lone.ready && this.#buffer.length === 0 && this.#loop !== null) {
      if (!confirmedRecently(held.confirmedAt, now ?? this.#deps.clock.now())) {
        this.#recheck();
        return;
      }
      this.counters.ranAlone++;
      void this.#begin(this.#lone.start(held));
    }
  }

  /**
   * Looks up the unstarted jobs ({@link Worker.#recheckUnstarted}) unless a look-up is in flight or waiting to be
   * tried again, then starts what it confirmed. A failed look-up starts nothing it did not confirm: it is tried again
   * after a back-off, so that a database outage neither starts unconfirmed jobs nor spins.
   */
  #recheck(): void {
    if (this.#rechecking) return;
    this.#rechecking = true;
    void this.#recheckUnstarted().then((confirmed) => {
      if (confirmed || this.#draining.signal.aborted) {
        this.#rechecking = false;
        this.#recheckFailures = 0;
        this.#pump();
        this.#wake();
        return;
      }
      this.#recheckFailures++;
      this.#cancelRecheckRetry = this.#deps.clock.setTimer(backoffMs(this.#recheckFailures), () => {
        this.#cancelRecheckRetry = null;
        this.#rechecking = false;
        this.#pump();
      });
    });
  }

  /**
   * One look-up (`jobLeaseCheck`) of every claimed job not started yet: the buffer's, and a held job's that runs alone.
   * A job whose lease is gone (cancelled, rescued) is dropped and reported stale, as the heartbeat does; one of a
   * paused queue is handed back unused (no attempt counted), to be claimed once the queue is resumed; the rest are
   * confirmed as of its answer. Only jobs still waiting when it returns are touched: one started, dropped
   * or handed back meanwhile (by the heartbeat, or shutdown) is not.
   * @returns Whether it was answered; a failure is reported as an `error` event (not once shutdown has begun).
   */
  async #recheckUnstarted(): Promise<boolean> {
    const { driver, clock, events } = this.#deps;
    const sent = new Set(this.#buffer);
    const waiting = this.#lone.held?.started === false ? this.#lone.held : null;
    const leases = [...this.#buffer.map((e) => leaseOf(e.row)), ...(waiting ? [leaseOf(waiting.row)] : [])];
    if (leases.length === 0) return true;
    let result: { stale: string[]; paused: string[] };
    try {
      result = await driver.jobLeaseCheck({ leases });
    } catch (error) {
      if (!this.#draining.signal.aborted) events.emit('error', { error, context: 'looking up claimed jobs before starting them' });
      return false;
    }
    const confirmedAt = clock.now();
    const stale = new Set(result.stale);
    const paused = new Set(result.paused);
    const lost: JobRow[] = [];
    const back: JobRow[] = [];
    this.#buffer = this.#buffer.filter((e) => {
      if (!sent.has(e)) return true;
      if (stale.has(e.row.id)) lost.push(e.row);
      else if (paused.has(e.row.id)) back.push(e.row);
      else {
        e.confirmedAt = confirmedAt;
        return true;
      }
      return false;
    });
    if (waiting && this.#lone.held === waiting && !waiting.started) {
      if (stale.has(waiting.row.id)) {
        lost.push(waiting.row);
        this.#lone.clear();
        this.#resumeClaims();
      } else if (paused.has(waiting.row.id)) {
        back.push(this.#lone.takeWaiting()!);
        this.#resumeClaims();
      } else {
        waiting.confirmedAt = confirmedAt;
      }
    }
    this.#rejectUnstarted(lost);
    void this.#release(back, 'handing back claimed jobs of a paused queue');
    return true;
  }

  /** Counts and reports claimed jobs found no longer leased before they started (cancelled meanwhile): never run. */
  #rejectUnstarted(rows: Iterable<JobRow>): void {
    for (const r of rows) {
      this.counters.staleWritesRejected++;
      this.#deps.events.emit('job:stale-write-rejected', { jobId: r.id, leaseToken: r.leaseToken, write: 'heartbeat' });
    }
  }

  /**
   * The jobs of a claim this worker runs as usual ({@link LoneJob.sort}): a job that runs alone is held, or handed
   * back at once (no attempt used) when one is held already.
   */
  #sortClaim(rows: JobRow[], confirmedAt: number): JobRow[] {
    const { kept, back } = this.#lone.sort(rows, confirmedAt);
    void this.#release(back, 'handing back jobs that run alone, one at a time');
    return kept;
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
   * Claims up to `limit` due jobs. With `handoff`, a claim that empties the queues also registers this worker to
   * be handed new jobs directly, as many as its handlers free now ({@link JobClaimParams.handoff}): not buffer
   * room, so a job is handed only to a worker that starts it at once. The registration outlives three polls,
   * each of which refreshes it (an idle worker's claims all register). It reports as `received` every hand-off
   * settled ({@link Worker.#handoffsSettled}), so only those still on their way take slots.
   */
  async #claim(limit: number, handoff: boolean): Promise<JobRow[]> {
    const { driver, clock, events } = this.#deps;
    const { concurrency, pollMs } = this.#options;
    if (handoff) this.#listener.willRegister();
    const rows = await driver.jobClaim({
      queues: this.#options.queues, limit, workerId: this.id, leaseMs: this.#options.leaseMs, now: clock.sqlNow(),
      ...(handoff ? { handoff: { slots: concurrency - this.#running - this.#buffer.length, expiresInMs: 3 * pollMs, received: this.#handoffsSettled() } } : {}),
    });
    this.counters.claimed += rows.length;
    if (rows.length > 0) events.emit('worker:claimed', { workerId: this.id, count: rows.length });
    return rows;
  }

  /**
   * A job an enqueue handed to this worker (see {@link WorkerListener}), leased to it as a claim would have:
   * started at once if a handler is free (it was when the worker registered), else buffered. Once the
   * registration's last slot is taken the claim loop looks again, which registers the slots free by then.
   */
  #take(row: JobRow, slotsLeft: number, receivedAt: number): void {
    // A job runs (or waits to run) alone: nothing else may be leased to this worker meanwhile.
    if (this.#lone.held) {
      void this.#release([row], 'handing back a job handed over while a job runs alone');
      return;
    }
    this.counters.claimed++;
    this.#deps.events.emit('worker:claimed', { workerId: this.id, count: 1 });
    this.#buffer.push({ row, confirmedAt: receivedAt });
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

  /** Hands back the jobs leased to this worker that it does not hold (see {@link UnreceivedJobs}). */
  async #releaseUnreceived(): Promise<void> {
    this.counters.releasedUnreceived += await this.#unreceived.release(() => {
      const held = new Set<string>(this.#buffer.map((e) => e.row.id));
      const lone = this.#lone.held;
      if (lone) held.add(lone.row.id);
      for (const attempt of this.#inFlight.keys()) held.add(attempt.row.id);
      for (const id of this.#listener.waiting.keys()) held.add(id);
      return held;
    });
  }

  /**
   * Hand-offs received, or missed (their row unreadable) or handed back unreceived
   * ({@link UnreceivedJobs.handoffsSettled}, each counted once although a job can be both): none of them is on its
   * way. A registering claim reports this as
   * `received`: a hand-off counted as none would keep a slot of every later registration taken; one counted twice
   * would have a registration offer the slot of a hand-off still on its way (see {@link Worker.#claim}).
   */
  #handoffsSettled(): number {
    return this.counters.handedOff + this.#unreceived.handoffsSettled;
  }

  /** Hands buffered, never-started jobs back (and a held job that runs alone, not started either). */
  async #releaseBuffer(): Promise<void> {
    const rows = this.#buffer.splice(0).map((e) => e.row);
    const waiting = this.#lone.takeWaiting();
    if (waiting) rows.push(waiting);
    await this.#release(rows, 'handing back buffered jobs');
  }

  /** Hands never-started jobs back (no attempt used); on failure their leases expire and the rescue takes them. */
  async #release(rows: JobRow[], context: string): Promise<void> {
    if (rows.length === 0) return;
    const { driver, clock, events } = this.#deps;
    try {
      await driver.jobRelease({ leases: rows.map(leaseOf), now: clock.sqlNow() });
    } catch (error) {
      events.emit('error', { error, context });
      // Still leased to this worker, and held nowhere: the next look for unreceived jobs hands them back.
      this.#unreceived.mark();
    }
  }

  async #heartbeat(): Promise<void> {
    // While a job runs alone no claim is made, and so no look for unreceived jobs: jobs whose hand-back failed meanwhile
    // would wait, unrenewed, for their leases to expire and be rescued (a loss each). Handed back from here instead.
    if (this.#lone.held && this.#unreceived.possible) {
      const handBack = this.#releaseUnreceived().catch((error: unknown) => {
        this.#deps.events.emit('error', { error, context: 'handing back jobs leased to this worker and held nowhere' });
      });
      this.#handBack = handBack;
      try {
        await handBack;
      } finally {
        if (this.#handBack === handBack) this.#handBack = null;
      }
    }
    const live = [...this.#inFlight.keys()].filter((a) => !a.done);
    // Handed jobs waiting for this process's enqueues are held as the buffer's are.
    const waiting = this.#lone.waiting;
    const buffered = [...this.#buffer.map((e) => e.row), ...(waiting ? [waiting] : []), ...this.#listener.waiting.values()];
    if (live.length === 0 && buffered.length === 0) return;
    const { driver, clock, events } = this.#deps;
    const leases = [...live.map((a) => leaseOf(a.row)), ...buffered.map(leaseOf)];
    const result = await driver.jobHeartbeat({ leases, leaseMs: this.#options.leaseMs, now: clock.sqlNow() });
    if (result.stale.length === 0) return;
    const stale = new Set(result.stale);
    // A buffered job whose lease is gone (cancelled meanwhile) must not start; one that started while the heartbeat
    // was in flight is aborted as a live attempt is.
    const lostBuffered = new Set(buffered.filter((r) => stale.has(r.id)));
    const startedMeanwhile: Attempt[] = [];
    if (lostBuffered.size > 0) {
      for (const attempt of this.#inFlight.keys()) if (lostBuffered.has(attempt.row)) startedMeanwhile.push(attempt);
      for (const attempt of startedMeanwhile) lostBuffered.delete(attempt.row);
      // Only those still waiting here: one handed back meanwhile (a look-up found its queue paused, or shutdown began)
      // is queued again, not lost.
      const dropped: JobRow[] = [];
      this.#buffer = this.#buffer.filter((e) => {
        if (!lostBuffered.has(e.row)) return true;
        dropped.push(e.row);
        return false;
      });
      const lone = this.#lone.held;
      if (lone && !lone.started && lostBuffered.has(lone.row)) {
        dropped.push(lone.row);
        this.#lone.clear();
        this.#resumeClaims();
      }
      // A waiting handed job taken meanwhile is in the buffer or running, covered above; one still waiting is dropped.
      for (const r of lostBuffered) if (this.#listener.drop(r.id)) dropped.push(r);
      this.#rejectUnstarted(dropped);
    }
    for (const attempt of [...live, ...startedMeanwhile]) {
      // An attempt that ended while the heartbeat was in flight is not stale, just finished.
      if (!stale.has(attempt.row.id) || attempt.done) continue;
      attempt.done = true;
      this.counters.staleWritesRejected++;
      events.emit('job:stale-write-rejected', { jobId: attempt.row.id, leaseToken: attempt.row.leaseToken, write: 'heartbeat' });
      attempt.controller.abort(new LeaseLostError(attempt.row.id, attempt.row.leaseToken, 'a lease that expired, was cancelled, or was taken over'));
      this.#releaseLease(attempt);
    }
  }

  async #shutdown(): Promise<void> {
    const { clock, events } = this.#deps;
    const loop = this.#loop;
    if (!loop) return;
    events.emit('worker:draining', { workerId: this.id, inFlight: this.#inFlight.size });
    this.#draining.abort();
    this.#cancelRecheckRetry?.();
    loop.controller.abort();
    await loop.done;
    await this.#listener.stopAfter(this.#listening);
    await this.#releaseBuffer();
    // Hand-off on: jobs handed to it may not have arrived. Either way, a claim that failed since the last hand-back
    // (its reply lost after it committed, then the stop came during the back-off) left its jobs leased to it unseen.
    if (this.#listener.handoff || this.#unreceived.possible) await this.#releaseHandedLate();
    const graceOver = new AbortController();
    const everyoneDone = Promise.all(this.#inFlight.values());
    const finishedInTime = await Promise.race([everyoneDone.then(() => true), clock.sleep(this.#options.graceMs, graceOver.signal).then(() => false)]);
    graceOver.abort();
    let aborted = 0;
    if (!finishedInTime) {
      const error = new ShutdownAbortError(this.#options.graceMs);
      const endings: Promise<unknown>[] = [];
      for (const attempt of this.#inFlight.keys()) {
        if (attempt.done) continue;
        aborted++;
        attempt.controller.abort(error);
        const state = attempt.row.attempt >= attempt.row.maxAttempts ? 'dead' : 'queued';
        endings.push(attempt.end('aborted', state, 0, { name: error.name, message: error.message }));
      }
      this.counters.abortedOnShutdown += aborted;
      // Closed alongside, not after: while the database refuses endings the completer retries them until its close
      // deadline makes it give up, and only then do these settle (given up: their leases expire and are rescued).
      const closing = this.#completer.close(5_000);
      await Promise.all(endings);
      await closing;
    } else {
      await this.#completer.close(5_000);
    }
    await Promise.all([this.#heartbeater.stop(), this.#rescuer.stop()]);
    events.emit('worker:stopped', { workerId: this.id, aborted });
  }

  /**
   * Hands back jobs handed to this worker whose notification had not arrived when it stopped listening, and those of
   * a claim whose reply was lost (see {@link Worker.#releaseUnreceived}); on failure their leases expire and the
   * rescue takes them.
   */
  async #releaseHandedLate(): Promise<void> {
    try {
      await this.#releaseUnreceived();
    } catch (error) {
      this.#deps.events.emit('error', { error, context: 'handing back jobs handed to a stopping worker' });
    }
  }
}
