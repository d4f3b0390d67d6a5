/**
 * The single enqueues of one Warden whose reply has not been handled yet, so that a job handed to this process's
 * own worker starts only after its `job:enqueued`.
 * @module
 */

/**
 * Tracks the enqueues in flight that may hand their job to an idle worker (PostgreSQL). The enqueue's statement
 * commits, then notifies the worker; the worker may read the job and start it before the enqueue's own reply has
 * been handled (a server process descheduled between the two, a busy event loop), and `job:started` would then be
 * emitted (and audited) before `job:enqueued` for the same job. A worker in the same process waits, before starting
 * a handed job, for the enqueues in flight when it received it: its job's enqueue, if it came from this process, is
 * among them. Enqueues of other processes have no such order to keep.
 */
export class EnqueuesInFlight {
  readonly #pending = new Set<Promise<unknown>>();

  /** Tracks `enqueue` until it settles (resolved or rejected); returns it unchanged. */
  track<T>(enqueue: Promise<T>): Promise<T> {
    const settled = enqueue.then(noop, noop);
    this.#pending.add(settled);
    void settled.then(() => this.#pending.delete(settled));
    return enqueue;
  }

  /**
   * Resolves once every enqueue in flight now has settled (not those begun later); null when there is none, so
   * the common case, a job handed by another process's enqueue, starts without waiting a turn.
   */
  settled(): Promise<void> | null {
    if (this.#pending.size === 0) return null;
    return Promise.all([...this.#pending]).then(noop);
  }
}

function noop(): void {}
