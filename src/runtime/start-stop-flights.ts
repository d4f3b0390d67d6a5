/**
 * The bookkeeping of a `start()`/`stop()` pair whose calls may overlap, shared by `Warden` and `HealthServer`.
 * @module
 */

const noop = (): void => undefined;

/**
 * Starts and stops in flight. Starts called while one is in progress share it, unless a stop was called in between:
 * then the new start runs after that one has settled, and each start's body can ask whether a stop came since it was
 * called ({@link StartStopFlights.stoppedSince}), to do nothing more. The latest stop is kept while in progress, so a
 * start can wait for it ({@link StartStopFlights.stopping}).
 */
export class StartStopFlights {
  /** Counts stops: a start called before a stop starts nothing, or nothing more. */
  #stops = 0;
  /** The start in progress and the stop count when it was called: later calls share it while no stop intervened. */
  #starting: { promise: Promise<void>; stops: number } | null = null;
  /** The latest stop while in progress. */
  #stopping: Promise<void> | null = null;

  /** The start in progress, if any. */
  get starting(): Promise<void> | undefined {
    return this.#starting?.promise;
  }

  /** The latest stop while it is in progress, else null. */
  get stopping(): Promise<void> | null {
    return this.#stopping;
  }

  /** Whether a stop was called since the start whose body got `stops`. */
  stoppedSince(stops: number): boolean {
    return this.#stops !== stops;
  }

  /**
   * Shares the start in progress, or runs `body` (after a start that a stop has overtaken, once it settled), given
   * the stop count at this call.
   */
  start(body: (stops: number) => Promise<void>): Promise<void> {
    const stops = this.#stops;
    const current = this.#starting;
    if (current && current.stops === stops) return current.promise;
    const run = current ? current.promise.then(noop, noop).then(() => body(stops)) : body(stops);
    const entry = {
      stops,
      promise: run.finally(() => {
        if (this.#starting === entry) this.#starting = null;
      }),
    };
    this.#starting = entry;
    return entry.promise;
  }

  /** Counts a stop and runs `body`, kept as {@link StartStopFlights.stopping} until it settles. */
  stop(body: () => Promise<void>): Promise<void> {
    this.#stops++;
    const stopping = body();
    this.#stopping = stopping;
    const forget = () => {
      if (this.#stopping === stopping) this.#stopping = null;
    };
    stopping.then(forget, forget);
    return stopping;
  }
}
