/**
 * Option and result types of the job context's idempotency tools: `ctx.step`, `ctx.transaction` and
 * `ctx.iterate`. See docs/idempotency.md.
 * @module
 */
import type { Duration } from '../validation/duration.js';

/**
 * A database transaction handle as Warden hands it out: a `pg` client inside `BEGIN` on PostgreSQL, a
 * better-sqlite3 `Database` inside `BEGIN IMMEDIATE` on SQLite. Run the application's own writes through it, and
 * pass it as `tx` to `warden.enqueue` to enqueue in the same transaction.
 */
export type TransactionHandle = unknown;

/** What a step's function gets. */
export interface StepInfo {
  /**
   * A key stable across every attempt of this job: `${jobId}:${stepName}`. Pass it to third-party APIs that
   * accept an idempotency key, so a retry after a crash between their effect and the step's record is
   * recognised by them as the same request.
   */
  idempotencyKey: string;
  /** The attempt's abort signal. */
  signal: AbortSignal;
  /**
   * With `{ transaction: true }`: the transaction the step's result commits in. Otherwise undefined. Usable while the
   * step's function runs: used after it returned (or after its transaction ended), it throws `TransactionEndedError`.
   */
  tx: TransactionHandle;
}

/** Options of `ctx.step`. */
export interface StepOptions {
  /**
   * Run the step's function inside a database transaction and record its result in the same transaction, so
   * the step's own database writes (through `info.tx`) happen exactly once. Called while another transactional step
   * or batch of the attempt has its transaction open, the step joins that transaction, which then commits only once
   * both have finished, or rolls back for both. @default false
   */
  transaction?: boolean;
}

/** One page from an iteration's source: keyset pagination. */
export interface IterationPage<TItem, TCursor> {
  /** The items of this page, processed as one batch. */
  items: TItem[];
  /** The cursor of the next page, or null when this page is the last. */
  next: TCursor | null;
  /** The total number of items, when the source knows it (shown as progress). */
  total?: number;
}

/** What a batch function gets besides its items. */
export interface BatchInfo<TCursor> {
  /** The cursor this batch's page was fetched with. */
  cursor: TCursor | null;
  /**
   * With `transaction: true`: the transaction the batch's checkpoint commits in. Otherwise undefined. Usable while the
   * batch function runs: used after it returned (or after its transaction ended), it throws `TransactionEndedError`.
   */
  tx: TransactionHandle;
  signal: AbortSignal;
}

/** Options of `ctx.iterate`. */
export interface IterateOptions<TItem, TCursor> {
  /**
   * Fetches the page after `cursor` (null on the very first call, unless `initial` is set). Must be keyset
   * pagination: the same cursor returns the items after it, whatever was processed before.
   */
  source: (cursor: TCursor | null, info: { signal: AbortSignal }) => Promise<IterationPage<TItem, TCursor>> | IterationPage<TItem, TCursor>;
  /** Processes one page. Throwing fails the attempt; the next attempt resumes from the last saved checkpoint. */
  batch: (items: TItem[], info: BatchInfo<TCursor>) => Promise<void> | void;
  /**
   * Save the cursor once this many items were processed since the last save, or this long has passed (elapsed
   * time, which a wall clock stepped back does not move), whichever comes first (checked after each batch). With `transaction: true` every batch is saved.
   * @default { items: 1000, seconds: 5 }
   */
  checkpointEvery?: { items?: number; seconds?: number };
  /**
   * Run each batch in a database transaction that also saves the checkpoint: the batch's own database writes
   * (through `info.tx`) and its checkpoint commit together, so no item's write is repeated after a crash.
   * @default false
   */
  transaction?: boolean;
  /**
   * Hand over to a fresh attempt once this attempt has run this long (elapsed time): the checkpoint is saved, the job is
   * queued again at once, and the attempt does not count against `maxAttempts`. A graceful shutdown does the
   * same at the next batch boundary. `maxRuntime` hands over only at a boundary whose checkpoint has surely
   * committed: inside a `{ transaction: true }` step or `ctx.transaction` the iteration runs to its end (a hand-over
   * there would roll its checkpoint back, every attempt restarting from the same cursor). @default none
   */
  maxRuntime?: Duration;
  /** The cursor of the first page when the job has no checkpoint yet. @default null */
  initial?: TCursor | null;
}

/** What `ctx.iterate` did. */
export interface IterateResult {
  /** Items processed by this attempt. */
  processed: number;
  /** Items processed across all attempts (the saved progress). */
  done: number;
  /** The total, when the source reported one. */
  total: number | null;
  /** True when this attempt started from a saved checkpoint. */
  resumed: boolean;
}

/**
 * How `ctx.iterate` stores its checkpoint (`JobRow.checkpoint`): the cursor of the next page to fetch and
 * whether the iteration reached its end. When finished, `cursor` is the cursor the last page was fetched with.
 */
export interface IterationCheckpoint<TCursor = unknown> {
  cursor: TCursor | null;
  finished: boolean;
}
