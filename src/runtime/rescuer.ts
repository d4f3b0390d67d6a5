/**
 * The worker's rescuer: jobs whose lease expired (their worker died, or lost its database) go back to `retrying`, or
 * to `dead` once lost too often.
 * @module
 */
import type { Clock } from '../clock/clock.js';
import type { Driver } from '../driver/driver.js';
import { LEASE_EXPIRED_ERROR } from '../driver/stored-errors.js';
import type { TypedEmitter } from '../events/typed-emitter.js';
import { ref } from './attempt.js';
import { PeriodicTask } from './service.js';
import type { WorkerCounters } from './worker-counters.js';

/** What a {@link Rescuer} needs from its worker. */
export interface RescuerDeps {
  driver: Driver;
  clock: Clock;
  events: TypedEmitter;
  /** The worker option `rescueInterval` (ms): the time between passes. */
  intervalMs: number;
  /** The worker option `maxLost`: the losses after which a rescued job is dead-lettered. */
  maxLost: number;
  /** Counted here: `rescued`. */
  counters: WorkerCounters;
  /** Reports a pass that failed (it is tried again at the next interval). */
  onError: (error: unknown) => void;
  /** Wakes the worker's claim loop: a pass produced `retrying` jobs. */
  notify: () => void;
}

/**
 * A `PeriodicTask` that runs a rescue pass ({@link Rescuer.rescue}) at once and then every `intervalMs`. A pass works
 * on the expired leases of every queue, not only the queues its worker claims from.
 */
export class Rescuer {
  readonly #deps: RescuerDeps;
  readonly #task: PeriodicTask;

  constructor(deps: RescuerDeps) {
    this.#deps = deps;
    this.#task = new PeriodicTask({ clock: deps.clock, intervalMs: deps.intervalMs, tick: () => this.rescue(), onError: deps.onError, runFirstAtOnce: true });
  }

  /** Runs a pass now, then one every `intervalMs`, until stopped. */
  start(): void {
    this.#task.start();
  }

  /** Stops the passes, waiting for one in progress. */
  stop(): Promise<void> {
    return this.#task.stop();
  }

  /**
   * One rescue pass over expired leases: up to 500 jobs, each reported `job:rescued` (and `job:dead` when
   * dead-lettered).
   * @param maxLost - Losses after which a job is dead-lettered. @default the worker's `maxLost`
   */
  async rescue(maxLost = this.#deps.maxLost): Promise<void> {
    const { driver, clock, events, counters } = this.#deps;
    const rescued = await driver.jobRescue({ maxLost, limit: 500, now: clock.sqlNow() });
    for (const job of rescued) {
      counters.rescued++;
      events.emit('job:rescued', { job: ref(job), attempt: job.attempt, nextState: job.state });
      // The error the rescue stored on the job: what the dashboard and the attempt history show.
      if (job.state === 'dead') events.emit('job:dead', { job: ref(job), attempt: job.attempt, reason: 'lost', error: { ...LEASE_EXPIRED_ERROR } });
    }
    if (rescued.some((j) => j.state === 'retrying')) this.#deps.notify();
  }
}
