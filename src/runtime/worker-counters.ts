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
