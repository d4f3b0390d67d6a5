import { elapsedSince, markClock } from '../clock/clock.js';
import { InvalidOptionError, IterationSourceError, IterationYieldError, WardenError } from '../errors.js';
import type { IterateOptions, IterateResult, IterationCheckpoint, TransactionHandle } from '../job/job-context-options.js';
import { encodeJson } from '../job/payload.js';
import { booleanOption } from '../validation/boolean-option.js';
import { parseDuration } from '../validation/duration.js';
import type { Attempt } from './attempt.js';
import { ref } from './attempt.js';
import type { JobTransaction } from './job-transaction.js';

/** Checkpoint cadence when `checkpointEvery` leaves it out. */
export const DEFAULT_CHECKPOINT_EVERY = { items: 1000, seconds: 5 } as const;

/**
 * `ctx.iterate`: pages through a keyset source in batches, saving `{ cursor, finished }` with the job's progress
 * under the attempt's lease, and resuming from the saved cursor on a later attempt. See docs/idempotency.md.
 *
 * A crash loses at most the batches since the last save: those are processed again by the next attempt (at
 * least once, never skipped). With `transaction: true` each batch commits with its own checkpoint instead; a batch
 * that joined another call's open transaction commits or rolls back with it, and the iteration never goes on into
 * another transaction past one that may still roll back (see the loop).
 */
export async function runIteration<TItem, TCursor>(attempt: Attempt, options: IterateOptions<TItem, TCursor>): Promise<IterateResult> {
  const settings = resolveIterateOptions(options as IterateOptions<unknown, unknown>);
  const row = attempt.row;
  const { driver, clock, events, payloadLimit, draining } = attempt.deps;
  const signal = attempt.controller.signal;
  const stored = readCheckpoint(row.checkpoint);
  const resumed = stored !== null;
  let cursor: TCursor | null = stored ? (stored.cursor as TCursor | null) : (options.initial ?? null);
  let done = row.progress?.done ?? 0;
  let total = row.progress?.total ?? null;
  let processed = 0;
  if (stored?.finished) return { processed, done, total, resumed };

  let unsavedItems = 0;
  // Whether the cursor moved since the last save. Tracked apart from the items: an empty page with a `next` moves
  // the cursor too, and a hand-over that did not save it would have the next attempt read that page again (for
  // ever, when reading the empty range alone takes `maxRuntime`).
  let cursorMoved = false;
  // Elapsed time, not wall time: a wall clock stepped back would hold the next save back by the step.
  let lastSave = markClock(clock);
  // The transaction the last batch joined (another call opened it), until it is known to have committed: that
  // batch's writes and checkpoint commit with it, after the batch returned, or roll back with it.
  let uncommitted: JobTransaction | null = null;
  const what = `the checkpoint cursor of job ${row.id}`;
  const save = async (checkpointJson: string, progressDone: number, tx: TransactionHandle = attempt.activeTx) => {
    await attempt.guardedWrite('checkpoint', 'a checkpoint of ctx.iterate', () =>
      driver.jobCheckpoint({ id: row.id, leaseToken: row.leaseToken, checkpointJson, progressDone, progressTotal: total, now: clock.sqlNow(), tx }),
    );
  };
  // Whether the checkpoint a hand-over leaves is not known to be committed: the last batch's is in a transaction it
  // joined, or (without `transaction: true`) the hand-over's own would go into the transaction open for the job
  // context's writes. Run inside that transaction's opener (a transactional step, ctx.transaction), the hand-over would
  // throw through it and roll the checkpoint back: every attempt would hand over from the same cursor, never counted.
  // Beside it, the transaction may still roll back too, and a yielded attempt must not end past a lost checkpoint.
  const checkpointHeld = () => (settings.transaction ? uncommitted !== null : attempt.activeTx !== undefined);
  const afterSave = (progressDone: number) => {
    unsavedItems = 0;
    cursorMoved = false;
    lastSave = markClock(clock);
    events.emit('job:checkpointed', { job: ref(row), attempt: row.attempt, done: progressDone, total });
  };

  for (;;) {
    attempt.assertRunning('ctx.iterate');
    const page = await fetchPage(options, cursor, row.id, signal);
    if (page.total !== undefined) total = page.total;
    const finished = page.next === null;
    // Encoded before the batch runs, so a cursor that cannot be saved fails the attempt before any work is
    // repeated for nothing; the last good checkpoint stays as it was.
    const checkpointJson = encodeJson(what, { cursor: finished ? cursor : page.next, finished } satisfies IterationCheckpoint, payloadLimit);
    const batchCursor = cursor;
    if (settings.transaction) {
      // While the last batch's transaction takes calls, this batch joins it too and shares its fate (or is refused
      // with the failure it will roll back for). Otherwise this batch goes into another one (one transaction takes
      // calls at a time: see Attempt.joinableTransaction), whose checkpoint must not commit past the last batch's
      // unless that one committed. Checked in the turn inTransaction decides, so that it joins the one compared.
      // Sealed or ended, it waits for nothing of this iteration: wait for it, and throw the failure it rolled back for.
      if (uncommitted !== null && uncommitted !== attempt.joinableTransaction) {
        await uncommitted.committed();
        uncommitted = null;
      }
      // Progress counts once the batch's transaction committed (a rollback takes the batch back entirely), or, for one
      // it joined, once it returned: a rollback of that one then fails this iteration or its attempt (see below).
      const progressDone = done + page.items.length;
      const holder = await attempt.inTransaction(
        'a batch of ctx.iterate',
        (tx) => (page.items.length > 0 ? options.batch(page.items, { cursor: batchCursor, tx, signal }) : undefined),
        async (_, tx, transaction) => {
          await save(checkpointJson, progressDone, tx);
          return transaction;
        },
      );
      // One this batch opened has committed by now; one it joined commits when its opener does. The attempt checks
      // the last one before it completes: the iteration may return before it ends (it can run inside its opener).
      uncommitted = holder.outcome?.committed === true ? null : holder;
      attempt.batchTransaction = uncommitted;
      done = progressDone;
      processed += page.items.length;
      afterSave(done);
    } else {
      if (page.items.length > 0) await options.batch(page.items, { cursor: batchCursor, tx: undefined, signal });
      done += page.items.length;
      processed += page.items.length;
      unsavedItems += page.items.length;
      cursorMoved = true;
      const due = finished || unsavedItems >= settings.everyItems || elapsedSince(clock, lastSave) >= settings.everyMs;
      if (due) {
        await save(checkpointJson, done);
        afterSave(done);
      }
    }
    if (finished) return { processed, done, total, resumed };
    cursor = page.next;
    const reason = draining.aborted ? 'shutdown' : settings.maxRuntimeMs !== null && elapsedSince(clock, attempt.started) >= settings.maxRuntimeMs ? 'max-runtime' : null;
    // maxRuntime hands over at the first batch boundary whose checkpoint is surely committed (see checkpointHeld):
    // inside a transactional step or ctx.transaction the iteration goes on to its end. A shutdown hands over at once
    // even there: the enclosing transaction rolls back and the next attempt resumes from the last committed cursor,
    // uncounted, where running on would be aborted at the end of the grace period and counted (dead on a last
    // attempt); the next worker is not draining, so this does not repeat.
    if (reason === 'shutdown' || (reason !== null && !checkpointHeld())) {
      if (cursorMoved) {
        await save(checkpointJson, done);
        afterSave(done);
      }
      attempt.yieldRequest = { reason, done };
      throw new IterationYieldError(row.id, reason);
    }
  }
}

async function fetchPage<TItem, TCursor>(options: IterateOptions<TItem, TCursor>, cursor: TCursor | null, jobId: string, signal: AbortSignal) {
  let page: unknown;
  try {
    page = await options.source(cursor, { signal });
  } catch (error) {
    // Warden's own errors (lease lost, timeout) and a deliberate NonRetryableError keep their meaning.
    if (error instanceof WardenError || signal.aborted) throw error;
    const message = error instanceof Error ? error.message : String(error);
    throw new IterationSourceError(jobId, cursor, `an error: ${message}`, { cause: error });
  }
  if (typeof page !== 'object' || page === null || !Array.isArray((page as { items?: unknown }).items)) {
    throw new IterationSourceError(jobId, cursor, `${page === null ? 'null' : typeof page === 'object' ? 'an object without an items array' : typeof page}`);
  }
  const { next, total } = page as { next?: unknown; total?: unknown };
  if (next === undefined) throw new IterationSourceError(jobId, cursor, 'next undefined (use null on the last page)');
  if (total !== undefined && (typeof total !== 'number' || !Number.isSafeInteger(total) || total < 0)) {
    throw new IterationSourceError(jobId, cursor, `total ${String(total)} (expected a non-negative integer)`);
  }
  return page as { items: TItem[]; next: TCursor | null; total?: number };
}

function readCheckpoint(stored: unknown): IterationCheckpoint | null {
  if (typeof stored !== 'object' || stored === null || !('finished' in stored)) return null;
  const { cursor, finished } = stored as { cursor?: unknown; finished?: unknown };
  return { cursor: cursor ?? null, finished: finished === true };
}

function resolveIterateOptions(options: IterateOptions<unknown, unknown>) {
  if (typeof options !== 'object' || options === null) throw new InvalidOptionError('ctx.iterate(options)', options, 'an object');
  if (typeof options.source !== 'function') throw new InvalidOptionError('ctx.iterate source', options.source, 'a function (cursor) => { items, next }');
  if (typeof options.batch !== 'function') throw new InvalidOptionError('ctx.iterate batch', options.batch, 'a function (items, info) => void');
  const every = options.checkpointEvery ?? {};
  if (typeof every !== 'object' || every === null) throw new InvalidOptionError('ctx.iterate checkpointEvery', every, 'an object { items?, seconds? }');
  const everyItems = every.items ?? DEFAULT_CHECKPOINT_EVERY.items;
  if (!Number.isSafeInteger(everyItems) || everyItems < 1) throw new InvalidOptionError('ctx.iterate checkpointEvery.items', everyItems, 'a positive integer');
  const seconds = every.seconds ?? DEFAULT_CHECKPOINT_EVERY.seconds;
  if (typeof seconds !== 'number' || !Number.isFinite(seconds) || seconds <= 0) throw new InvalidOptionError('ctx.iterate checkpointEvery.seconds', seconds, 'a positive number');
  const transaction = booleanOption('ctx.iterate transaction', options.transaction, false);
  const maxRuntimeMs = options.maxRuntime === undefined ? null : parseDuration('ctx.iterate maxRuntime', options.maxRuntime, { allowZero: false });
  return { everyItems, everyMs: seconds * 1000, transaction, maxRuntimeMs };
}
