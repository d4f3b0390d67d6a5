import type { JobRow } from '../job/job-record.js';

/** What {@link LoneJob} needs of the worker's options. */
export interface LoneJobOptions {
  /** The worker option `isolateLost`: off, no job runs alone. */
  isolateLost: boolean;
  /** The worker option `maxLost`: the losses after which a job is dead-lettered. */
  maxLost: number;
}

/** A claimed job a {@link LoneJob} holds to run alone, and whether it has started. */
export interface HeldJob {
  readonly row: JobRow;
  started: boolean;
  /**
   * When its lease and its queue's pause flag were last confirmed (clock ms): its claim's, then the worker's latest
   * look-up of its unstarted leases. It waits for every other attempt to end, so it is looked up again before it
   * starts once this is older than the worker's `RECHECK_MS`.
   */
  confirmedAt: number;
}

/**
 * The worker's book-keeping for `isolateLost`: the one job it holds to run alone, and how many of its attempts may
 * still hold a lease. A crash is charged as a loss to every job its process ran, so a job one loss from the dead
 * letters must run with nothing else leased to the worker: were it to crash the process again, it alone is charged.
 * The held job starts once no other attempt holds its lease ({@link LoneJob.ready}), and the worker claims nothing
 * until it ends. It only counts and decides; the worker starts, hands back and wakes.
 */
export class LoneJob {
  readonly #options: LoneJobOptions;
  #held: HeldJob | null = null;
  /**
   * Attempts started that may still hold their lease: their ending not yet written, refused or given up on, and
   * their lease not found lost. A held job starts once none is left, whether or not their handlers returned: a
   * handler that ignores its signal after its timeout's ending was written holds nothing.
   */
  #holding = 0;

  constructor(options: LoneJobOptions) {
    this.#options = options;
  }

  /** The job held to run alone, started or not; null when none (the worker then claims as usual). */
  get held(): HeldJob | null {
    return this.#held;
  }

  /** The held job when it has not started yet (it is then heartbeated and handed back as a buffered job is). */
  get waiting(): JobRow | null {
    return this.#held && !this.#held.started ? this.#held.row : null;
  }

  /** A job is held and nothing else holds a lease: it may start now. */
  get ready(): boolean {
    return this.#held !== null && !this.#held.started && this.#holding === 0;
  }

  /**
   * Whether `row` is a job lost before whose next loss would dead-letter it: lost `maxLost - 1` times, or lost and on
   * its last attempt. Only those run alone: a job lost once with losses and attempts to spare runs beside the others,
   * so a single crash (or leases expired in a database outage) costs no throughput, while a job that crashes its
   * process every time is alone by its last crash and charged alone.
   */
  runsAlone(row: JobRow): boolean {
    return row.lostCount > 0 && this.#options.isolateLost && (row.lostCount + 1 >= this.#options.maxLost || row.attempt >= row.maxAttempts);
  }

  /**
   * Sorts a claim: `kept`, the jobs the worker runs as usual; the first that runs alone is held (unless one is held
   * already); `back`, the others that run alone, to hand back at once unused (their next claim, here or by another
   * worker, holds them in turn). Held ones count as leased to the worker, so were it to die while they wait, each
   * would be charged a loss as if it had run: hence one at a time. `confirmedAt`: when the claim's answer came (see
   * {@link HeldJob.confirmedAt}).
   */
  sort(rows: JobRow[], confirmedAt: number): { kept: JobRow[]; back: JobRow[] } {
    if (!rows.some((r) => this.runsAlone(r))) return { kept: rows, back: [] };
    const kept: JobRow[] = [];
    const back: JobRow[] = [];
    for (const row of rows) {
      if (!this.runsAlone(row)) kept.push(row);
      else if (this.#held === null) this.#held = { row, started: false, confirmedAt };
      else back.push(row);
    }
    return { kept, back };
  }

  /** Marks the held job started and returns it. Call only when {@link LoneJob.ready} (or in `drain()`, its own turn). */
  start(held: HeldJob): JobRow {
    held.started = true;
    return held.row;
  }

  /** An attempt began: one more lease held. */
  leaseTaken(): void {
    this.#holding++;
  }

  /**
   * An attempt's lease was released (its ending written, refused or given up on, or the lease found lost); call once
   * per attempt. `'held'` when it was the held job's own (nothing is held any more: claims go on), `'other'` when a
   * job is held (it may be ready now), `'none'` when none is.
   */
  leaseReleased(row: JobRow): 'held' | 'other' | 'none' {
    this.#holding--;
    if (!this.#held) return 'none';
    if (row !== this.#held.row) return 'other';
    this.#held = null;
    return 'held';
  }

  /** Lets go of the held job: its lease found gone before it started, or `drain()` done with it. */
  clear(): void {
    this.#held = null;
  }

  /** Lets go of the held job if it has not started, and returns it (to be handed back); null otherwise. */
  takeWaiting(): JobRow | null {
    const row = this.waiting;
    if (row) this.#held = null;
    return row;
  }
}
