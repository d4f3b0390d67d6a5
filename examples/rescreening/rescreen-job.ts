/**
 * The hourly customer re-screening: a schedule (`0 * * * *`, overlap "skip") and the job it runs.
 *
 * ## What one run does
 * A run is one Warden job: its id is the run id, and its payload fixes `asOf`, the tick's time, so every attempt
 * of the run agrees on who is due. It walks the customers due as of `asOf` with `ctx.iterate`, in chunks of 500,
 * keyset-paginated by customer id (the cursor is the last id of the previous chunk). Each chunk has two phases:
 *
 * 1. **Screen** (network; no database transaction open): in the iteration's `source`, inside
 *    `ctx.step("screen-after-<cursor>")`. The step reads the chunk, calls the service once per customer with the
 *    idempotency key `<step key>:<customer id>` (the step key, `<job id>:<step name>`, is stable across attempts),
 *    and returns the verdicts, which Warden records under (job, step name) once the step succeeded.
 * 2. **Write** (database only; milliseconds): in `batch`, with `transaction: true`. The result rows, the
 *    customers' new `next_screening_at` and the iteration's checkpoint (the cursor past this chunk) commit in
 *    one transaction.
 *
 * Finally `ctx.transaction` writes the run's summary row and completes the job in one transaction.
 *
 * ## Why each due customer gets exactly one result row per run, and is screened once
 * - A chunk's rows commit together with the checkpoint that moves the cursor past it. The next attempt (after a
 *   crash, a timeout, a failure, or a hand-over) resumes from the last committed cursor: chunks before it are never
 *   fetched again, and the chunk in flight wrote nothing (its transaction rolled back), so it is written once, later.
 * - A stale attempt (its lease expired and another attempt took over) cannot commit a batch: the checkpoint in
 *   the same transaction is guarded by its lease token, is refused, and rolls the batch's rows back with it.
 * - A resumed attempt asks for the same step name (the cursor is the same), so a chunk that had been screened
 *   comes back from the step record without calling the service; a chunk whose step had not finished is screened
 *   again with the same keys, and the service answers what it already screened from its key store.
 * - The step reads the chunk itself, so its record fixes the chunk: a replay returns exactly the customers it
 *   screened, and the batch writes exactly those.
 * - The (run_id, customer_id) primary key is a tripwire, not the mechanism: a bug here would fail loudly rather
 *   than be quietly deduplicated.
 *
 * ## Why screening is not done inside `batch`
 * With `transaction: true` the batch runs inside the database transaction. On SQLite that is the database's one
 * write lock (`BEGIN IMMEDIATE`): heartbeats, claims and every other job's writes would wait on the network,
 * timeouts included, for seconds per chunk. Screening in the source keeps the write transaction down to the
 * inserts. That is safe only because the step is memoized: an unmemoized source fetched again after a crash would
 * screen again. One step per chunk, not per customer: one step record per 500 customers instead of 500 writes,
 * and a result of about 50 KB, well within the step result limit (the payload limit, 256 KiB by default).
 * @module
 */
import { z } from 'zod';
import { defineJob, defineSchedule, type JobDefinition, type ScheduleDefinition } from '../../src/index.js';
import type { AppDb, RunRow, ScreeningOutcome } from './app-db.js';
import { type ScreeningClientOptions, screenCustomers } from './screening-client.js';

/** The job's name, also the queue's. */
export const RESCREEN_JOB = 'rescreen-customers';
/** The schedule's name. */
export const RESCREEN_SCHEDULE = 'rescreen-customers-hourly';

/** What the job needs from the application. */
export interface RescreeningDeps {
  appDb: AppDb;
  client: ScreeningClientOptions;
  /** Customers per chunk. @default 500 */
  chunkSize?: number;
  /** Requests in flight at once while screening a chunk. @default 16 */
  concurrency?: number;
  /** The schedule's cron pattern. @default "0 * * * *" */
  cron?: string;
}

/** The job's payload: the moment "due" is measured against (the schedule's tick time). */
export interface RescreenPayload {
  asOf: string;
}

/** What a completed run reports (logged, and written to `app_screening_runs`). */
export interface RunSummary extends RunRow {
  /** Customers due when the run began (the iteration's total). */
  due: number;
  /** HTTP retries recorded with the results: `requests - screened`. */
  retries: number;
}

/** The job and its schedule, bound to the application's database and the service's client. */
export interface Rescreening {
  job: JobDefinition<RescreenPayload, RescreenPayload>;
  schedule: ScheduleDefinition;
}

/** Builds the re-screening job and its hourly schedule. */
export function defineRescreening(deps: RescreeningDeps): Rescreening {
  const { appDb, client } = deps;
  const chunkSize = deps.chunkSize ?? 500;
  const concurrency = deps.concurrency ?? 16;

  const job = defineJob({
    name: RESCREEN_JOB,
    queue: 'screening',
    schema: z.object({ asOf: z.iso.datetime() }),
    // A chunk whose step keeps failing (the service down for longer than the in-place retries) fails the attempt;
    // the next one resumes at that chunk.
    retry: { maxAttempts: 10, backoff: { base: '500ms', max: '30s' } },
    timeout: '30m',
    handler: async (payload, ctx) => {
      const asOf = new Date(payload.asOf);
      const runId = ctx.job.id;
      // Counted once per run: customers processed by an earlier attempt are no longer due, so a later attempt
      // counting again would shrink the total.
      const due = await ctx.step('count-due', () => appDb.countDue(asOf));

      const progress = await ctx.iterate<ScreeningOutcome, number>({
        source: async (cursor) => {
          const after = cursor ?? 0;
          const outcomes = await ctx.step(`screen-after-${after}`, async (info) => {
            const customers = await appDb.dueAfter(asOf, after, chunkSize);
            return screenCustomers(client, customers, info.idempotencyKey, info.signal, concurrency);
          });
          // A short page is the last one. (A full last page is followed by one empty page, which only saves the
          // final checkpoint.)
          return { items: outcomes, next: outcomes.length < chunkSize ? null : outcomes.at(-1)!.customerId, total: due };
        },
        batch: (outcomes, { tx }) => appDb.recordResults(tx, runId, asOf, outcomes),
        // Each batch's writes and its checkpoint commit together (so every batch is checkpointed; `checkpointEvery`
        // does not apply).
        transaction: true,
        // A very long run hands over to a fresh attempt at a chunk boundary instead of running into `timeout`;
        // so does a graceful shutdown (a deploy), which then does not restart the run from zero.
        maxRuntime: '10m',
      });

      // The summary row and the job's completion commit together: written once per run, even if the process
      // dies right here and the run is picked up again (the iteration then returns at once: it is finished).
      const run = await ctx.transaction((tx) => appDb.recordRun(tx, runId, asOf, ctx.attempt));
      const summary: RunSummary = { ...run, due, retries: run.requests - run.screened };
      ctx.log.info({ ...summary, progress }, 'rescreening run complete');
    },
  });

  const schedule = defineSchedule<RescreenPayload>({
    name: RESCREEN_SCHEDULE,
    cron: deps.cron ?? '0 * * * *',
    job,
    payload: ({ tickAt }) => ({ asOf: tickAt.toISOString() }),
    // A run that takes longer than an hour (a backlog, a slow provider) is not doubled up: the tick is skipped
    // and recorded as such. The next tick after the run finishes picks up whoever is due by then.
    overlap: 'skip',
    misfire: { policy: 'run-once', within: '6h' },
  });

  return { job, schedule };
}
