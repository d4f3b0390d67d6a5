/**
 * A worker's claims: one `jobClaim` each, with the hand-off registration when asked for it.
 * @module
 */
import type { Clock } from '../clock/clock.js';
import type { Driver } from '../driver/driver.js';
import type { TypedEmitter } from '../events/typed-emitter.js';
import type { JobRow } from '../job/job-record.js';
import type { UnreceivedJobs } from './unreceived-jobs.js';
import type { WorkerCounters } from './worker-counters.js';
import type { WorkerListener } from './worker-listener.js';
import type { ResolvedWorkerOptions } from './worker-options.js';

/** What a {@link Claimer} needs from its worker. */
export interface ClaimerDeps {
  driver: Driver;
  clock: Clock;
  events: TypedEmitter;
  workerId: string;
  options: Pick<ResolvedWorkerOptions, 'queues' | 'leaseMs' | 'pollMs'>;
  /** Told before a registering claim is sent, so that its stop withdraws the registration. */
  listener: Pick<WorkerListener, 'willRegister'>;
  /** The hand-offs settled without being received ({@link UnreceivedJobs.handoffsSettled}). */
  unreceived: Pick<UnreceivedJobs, 'handoffsSettled'>;
  /** Counted here: `claimed`; read: `handedOff`. */
  counters: WorkerCounters;
  /** The handlers free now, less the jobs waiting for one: what a registration offers. */
  freeSlots: () => number;
}

/**
 * Claims due jobs for its worker, counts them and reports them (`worker:claimed`). Called once per claim, never per
 * job.
 */
export class Claimer {
  readonly #deps: ClaimerDeps;

  constructor(deps: ClaimerDeps) {
    this.#deps = deps;
  }

  /**
   * Claims up to `limit` due jobs. With `handoff`, a claim that empties the queues also registers this worker to
   * be handed new jobs directly, as many as its handlers free now ({@link JobClaimParams.handoff}): not buffer
   * room, so a job is handed only to a worker that starts it at once. The registration outlives three polls,
   * each of which refreshes it (an idle worker's claims all register). It reports as `received` every hand-off
   * settled ({@link Claimer.#handoffsSettled}), so only those still on their way take slots.
   */
  async claim(limit: number, handoff: boolean): Promise<JobRow[]> {
    const { driver, clock, events, workerId, options, counters } = this.#deps;
    if (handoff) this.#deps.listener.willRegister();
    const rows = await driver.jobClaim({
      queues: options.queues, limit, workerId, leaseMs: options.leaseMs, now: clock.sqlNow(),
      ...(handoff ? { handoff: { slots: this.#deps.freeSlots(), expiresInMs: 3 * options.pollMs, received: this.#handoffsSettled() } } : {}),
    });
    counters.claimed += rows.length;
    if (rows.length > 0) events.emit('worker:claimed', { workerId, count: rows.length });
    return rows;
  }

  /**
   * Hand-offs received, or missed (their row unreadable) or handed back unreceived
   * ({@link UnreceivedJobs.handoffsSettled}, each counted once although a job can be both): none of them is on its
   * way. A registering claim reports this as `received`: a hand-off counted as none would keep a slot of every later
   * registration taken; one counted twice would have a registration offer the slot of a hand-off still on its way
   * (see {@link Claimer.claim}).
   */
  #handoffsSettled(): number {
    return this.#deps.counters.handedOff + this.#deps.unreceived.handoffsSettled;
  }
}
