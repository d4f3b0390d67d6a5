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
 *
 * A hand-off's notification travels on the LISTEN connection, apart from the release's statements: it can arrive
 * after a release found its job unreceived and handed it back. Started then, the job would run under a lease taken
 * back while its next claim runs it again. So the leases a release hands back are remembered (the most recent
 * {@link MAX_LEASED_TO}, what one release can hand back) and such a late notice is dropped
 * ({@link UnreceivedJobs.handedBack}).
 *
 * It also counts the hand-offs settled without being received ({@link UnreceivedJobs.handoffsSettled}), each once
 * by job id: one job can be both missed (its notice's read failed, or found it handed back) and handed back, in
 * either order, and counted twice it would have the next registration offer a slot a hand-off on its way took.
 */
export class UnreceivedJobs {
  /** Times {@link UnreceivedJobs.mark} was called. */
  #marks = 0;
  /** {@link UnreceivedJobs.#marks} when the last release began: what that release looked for. */
  #lookedFor = 0;
  readonly #deps: { driver: Driver; clock: Clock; workerId: string };
  /** Leases (`id:token`) whose ending was given up on: still the worker's, received, left for the rescue. */
  readonly #givenUp = new Set<string>();
  /** Leases a release handed back (or tried to), by job id, oldest first: a late notice for one is dropped. */
  readonly #handedBack = new Map<string, number>();
  /**
   * Hand-offs counted in {@link UnreceivedJobs.handoffsSettled}, by job id (a hand-off leases a new job, lease
   * token 1), oldest first, the most recent {@link MAX_LEASED_TO} kept: the missed path and a release both settle
   * the same job only within moments of each other.
   */
  readonly #settled = new Set<string>();
  /**
   * Hand-offs (lease token 1) a release sent and failed on, by job id: it may have committed with its reply lost,
   * and the next look settles those it no longer finds leased to the worker (see {@link UnreceivedJobs.release}).
   */
  readonly #releaseUnsure = new Set<string>();
  #handoffsSettled = 0;

  constructor(deps: { driver: Driver; clock: Clock; workerId: string }) {
    this.#deps = deps;
  }

  /** Jobs may be leased to the worker unseen: marked since the last release began. @default false */
  get possible(): boolean {
    return this.#marks !== this.#lookedFor;
  }

  /**
   * Hand-offs the worker will never receive, each counted once: those {@link UnreceivedJobs.missed}, and the leases
   * the releases so far handed back (applied, or found gone; or sent in a release that failed and no longer leased
   * to the worker at the next look) that a hand-off may have given: lease token 1, as every hand-off leases its
   * job. Such a hand-off is settled: its notice, should it still come, is dropped or missed, so the worker never
   * receives it. A first claim's job (also token 1) whose reply was lost is counted too: the registration takes
   * that excess back (see `jobClaimHandoffSql`).
   */
  get handoffsSettled(): number {
    return this.#handoffsSettled;
  }

  /**
   * Counts the hand-off of job `id` settled: its notice came, but its row could not be read (the read failed, or
   * found the job no longer the worker's, as when a release handed it back first). Not again when a release hands
   * it back, or already did.
   */
  missed(id: string): void {
    this.#settle(id);
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
   * Whether a release handed `lease` back (or tried to) before it was received: then its hand-off's notice came
   * late and must not start it. A lease is handed off once, so it is forgotten once asked about.
   */
  handedBack(lease: JobLease): boolean {
    if (this.#handedBack.get(lease.id) !== lease.leaseToken) return false;
    this.#handedBack.delete(lease.id);
    return true;
  }

  /**
   * Hands back the running jobs leased to the worker that it does not hold (`held()`: buffered, running, with an
   * ending pending, or received and about to be taken) and did not run with an ending given up on; then nothing is
   * {@link UnreceivedJobs.possible}, unless marked again while it ran (a hand-off whose read failed after the
   * leases were read: that job was not among them). `held` is asked once the leases are read, so a job received
   * while the read was in flight (a hand-off) counts as held: asked before, it would be handed back and then run.
   * The leases to hand back are remembered in the same step, before the release is sent, so a notice arriving
   * from then on is dropped ({@link UnreceivedJobs.handedBack}). Should the release fail, it may still have
   * committed (its reply lost), and then the next look no longer finds those jobs: its hand-offs are remembered,
   * and the next look settles those no longer leased to the worker, else none would ever count and each would keep
   * a slot of every later registration taken.
   * @returns How many were handed back.
   */
  async release(held: () => ReadonlySet<string>): Promise<number> {
    const { driver, clock, workerId } = this.#deps;
    const marks = this.#marks;
    const leased = await driver.jobLeasedTo({ workerId, limit: MAX_LEASED_TO });
    const holding = held();
    const leaseKeys = new Set(leased.map((l) => `${l.id}:${l.leaseToken}`));
    // Gone since a failed release sent them: it committed (or the job was cancelled or rescued meanwhile); listed,
    // they are handed back below. A full listing may leave some out: those wait for a look that is not full.
    if (this.#releaseUnsure.size > 0 && leased.length < MAX_LEASED_TO) {
      for (const id of this.#releaseUnsure) if (!leaseKeys.has(`${id}:1`)) this.#settle(id);
      this.#releaseUnsure.clear();
    }
    // A given-up lease no longer listed was rescued meanwhile: nothing to remember.
    for (const key of this.#givenUp) if (!leaseKeys.has(key)) this.#givenUp.delete(key);
    const unreceived = leased.filter((l) => !holding.has(l.id) && !this.#givenUp.has(`${l.id}:${l.leaseToken}`));
    let released = 0;
    if (unreceived.length > 0) {
      for (const lease of unreceived) this.#rememberHandedBack(lease);
      try {
        released = (await driver.jobRelease({ leases: unreceived, now: clock.sqlNow() })).applied.length;
      } catch (error) {
        // Maybe committed with its reply lost: the next look counts those it no longer finds, and hands back the rest.
        for (const lease of unreceived) if (lease.leaseToken === 1) this.#rememberUnsure(lease.id);
        throw error;
      }
      for (const lease of unreceived) if (lease.leaseToken === 1) this.#settle(lease.id);
    }
    this.#lookedFor = marks;
    return released;
  }

  /** Counts the hand-off of job `id` settled unless it already was; the oldest forgotten past {@link MAX_LEASED_TO}. */
  #settle(id: string): void {
    if (this.#settled.has(id)) return;
    this.#settled.add(id);
    if (this.#settled.size > MAX_LEASED_TO) this.#settled.delete(this.#settled.values().next().value!);
    this.#handoffsSettled++;
  }

  /** Remembers a hand-off a failed release sent, the oldest forgotten past {@link MAX_LEASED_TO}. */
  #rememberUnsure(id: string): void {
    this.#releaseUnsure.add(id);
    if (this.#releaseUnsure.size > MAX_LEASED_TO) this.#releaseUnsure.delete(this.#releaseUnsure.values().next().value!);
  }

  /** Remembers a lease handed back, the oldest forgotten past {@link MAX_LEASED_TO}. */
  #rememberHandedBack(lease: JobLease): void {
    this.#handedBack.delete(lease.id);
    this.#handedBack.set(lease.id, lease.leaseToken);
    if (this.#handedBack.size > MAX_LEASED_TO) this.#handedBack.delete(this.#handedBack.keys().next().value!);
  }
}
