/**
 * Jobs leased to a worker that it never received, and their hand-back.
 * @module
 */
import type { Clock } from '../clock/clock.js';
import { MAX_LEASED_TO } from '../driver/check-leased-to-limit.js';
import type { Driver, JobLease } from '../driver/driver.js';

/**
 * Keeps track of whether jobs may be leased to a worker that never received them, and hands them back: a claim
 * whose reply was lost after it committed, and (PostgreSQL) a job handed to the worker whose notification or read
 * was lost, or that arrived as it stopped. Without this they wait for their leases to expire and are rescued, a
 * `lost` attempt each. The release (`jobRelease`) takes the attempt back.
 */
export class UnreceivedJobs {
  /** Times {@link UnreceivedJobs.mark} was called. */
  #marks = 0;
  /** {@link UnreceivedJobs.#marks} when the last release began: what that release looked for. */
  #lookedFor = 0;
  readonly #deps: { driver: Driver; clock: Clock; workerId: string };
  /** Leases (`id:token`) whose ending was given up on: still the worker's, received, left for the rescue. */
  readonly #givenUp = new Set<string>();

  constructor(deps: { driver: Driver; clock: Clock; workerId: string }) {
    this.#deps = deps;
  }

  /** Jobs may be leased to the worker unseen: marked since the last release began. @default false */
  get possible(): boolean {
    return this.#marks !== this.#lookedFor;
  }

  /** Says jobs may be leased to the worker unseen (a failed claim, a lost hand-off): the next release looks. */
  mark(): void {
    this.#marks++;
  }

  /**
   * Remembers a lease whose ending was given up on, the oldest forgotten past {@link MAX_LEASED_TO} (a database
   * refusing endings for good, with no release to prune them): forgotten, such a lease could be handed back, its
   * attempt taken back, instead of being rescued as lost, although it ran.
   */
  rememberGivenUp(lease: JobLease): void {
    this.#givenUp.add(`${lease.id}:${lease.leaseToken}`);
    if (this.#givenUp.size > MAX_LEASED_TO) this.#givenUp.delete(this.#givenUp.values().next().value!);
  }

  /**
   * Hands back the running jobs leased to the worker that it does not hold (`held()`: buffered, running, with an
   * ending pending, or received and about to be taken) and did not run with an ending given up on; then nothing is
   * {@link UnreceivedJobs.possible}, unless marked again while it ran (a hand-off whose read failed after the
   * leases were read: that job was not among them). `held` is asked once the leases are read, so a job received
   * while the read was in flight (a hand-off) counts as held: asked before, it would be handed back and then run.
   * @returns How many were handed back.
   */
  async release(held: () => ReadonlySet<string>): Promise<number> {
    const { driver, clock, workerId } = this.#deps;
    const marks = this.#marks;
    const leased = await driver.jobLeasedTo({ workerId, limit: MAX_LEASED_TO });
    const holding = held();
    const leaseKeys = new Set(leased.map((l) => `${l.id}:${l.leaseToken}`));
    // A given-up lease no longer listed was rescued meanwhile: nothing to remember.
    for (const key of this.#givenUp) if (!leaseKeys.has(key)) this.#givenUp.delete(key);
    const unreceived = leased.filter((l) => !holding.has(l.id) && !this.#givenUp.has(`${l.id}:${l.leaseToken}`));
    let released = 0;
    if (unreceived.length > 0) released = (await driver.jobRelease({ leases: unreceived, now: clock.sqlNow() })).applied.length;
    this.#lookedFor = marks;
    return released;
  }
}
