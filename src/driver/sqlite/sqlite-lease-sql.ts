/**
 * The SQLite statements of a worker's lease: the claim, lease renewal and hand-back, the jobs leased to a worker,
 * attempt endings and the rescue of expired leases. Conventions and shared fragments: `sqlite-sql.ts`.
 * @module
 */
import { NOW } from './sqlite-sql.js';

/** The job columns that are NULL for nearly every claimed job, packed into {@link CLAIM_COLUMNS}' `rare`, in this order. */
export const CLAIM_RARE_COLUMNS = ['last_error', 'finished_at', 'checkpoint', 'progress_done', 'progress_total', 'checkpoint_at'] as const;
const CLAIM_RARE_LIST = CLAIM_RARE_COLUMNS.join(', ');

/**
 * The columns {@link JOB_CLAIM} returns: a job row without `state`, `lease_worker`, `started_at` and `updated_at`,
 * which the claim sets to values the caller knows (`toClaimedJobRow`); `started_at` = `updated_at` =
 * `lease_expires_at - @leaseMs`, all three written from one `now` (SQLite fixes the clock for a statement's step).
 * The six columns that are NULL for nearly every claimed job (`last_error` after a failure, `finished_at`, and the
 * checkpoint and progress of an iteration) come back as one column, `rare`: NULL when all six are, else a JSON array
 * of them in {@link CLAIM_RARE_COLUMNS} order (text values as JSON strings, so a stored error or checkpoint comes
 * back as the exact text). Each returned column costs every claimed row whatever its value: 17 columns instead of
 * 22 took the claim statement from 9.0 to 8.2 µs a job (medians of 5 interleaved runs, 20,000 jobs, batches of 500).
 */
export const CLAIM_COLUMNS =
  'id, name, queue, payload, priority, run_at, attempt, max_attempts, lost_count, lease_token, lease_expires_at, key, ' +
  'created_at, schedule_name, tick_at, trace_context, ' +
  `CASE WHEN coalesce(${CLAIM_RARE_LIST}) IS NULL THEN NULL ELSE json_array(${CLAIM_RARE_LIST}) END AS rare`;

/**
 * Claims up to `@limit` due jobs of the queues in `@queues` (JSON array), skipping paused queues, in
 * `priority, run_at, id` order. Runs inside `BEGIN IMMEDIATE`, which makes the inner SELECT and the UPDATE
 * one atomic step across processes, so the outer UPDATE needs no second state check (PostgreSQL's does).
 * `INDEXED BY jobs_claim_idx`: without ANALYZE statistics the planner preferred a state index (the
 * `jobs_state_id_idx` of migrations before 0009) and scanned every waiting job of every queue; the partial claim index only holds waiting jobs and is searched per
 * queue (a statement that could not use it would fail to prepare, rather than silently scan). RETURNING
 * order is unspecified, so the caller sorts. It returns {@link CLAIM_COLUMNS}, not `*`: what the claim itself set
 * (state, worker, start and update time) the driver fills in, and the rarely set columns come packed in one, since
 * each column read costs. Params: `@queues, @limit, @workerId, @leaseMs, @now`.
 */
export const JOB_CLAIM = `
UPDATE jobs
SET state = 'running',
    attempt = attempt + 1,
    lease_token = lease_token + 1,
    lease_worker = @workerId,
    lease_expires_at = ${NOW} + @leaseMs,
    started_at = ${NOW},
    updated_at = ${NOW}
WHERE id IN (
    SELECT id FROM jobs INDEXED BY jobs_claim_idx
    WHERE state IN ('queued','retrying')
      AND run_at <= ${NOW}
      AND queue IN (SELECT value FROM json_each(@queues))
      AND queue NOT IN (SELECT name FROM queues WHERE paused = 1)
    ORDER BY priority, run_at, id
    LIMIT @limit)
RETURNING ${CLAIM_COLUMNS}`;

/** Renews one lease if it still holds. `changes` = 1 when applied. Params: `@id, @leaseToken, @leaseMs, @now`. */
export const JOB_HEARTBEAT = `
UPDATE jobs SET lease_expires_at = ${NOW} + @leaseMs
WHERE id = @id AND lease_token = @leaseToken AND state = 'running'`;

/**
 * Hands back a claimed job that never started (a worker's prefetch buffer on shutdown): the claim's attempt is
 * taken back, the lease token stays raised. Params: `@id, @leaseToken, @now`.
 */
export const JOB_RELEASE = `
UPDATE jobs SET state = 'queued', attempt = attempt - 1, lease_worker = NULL, lease_expires_at = NULL,
  started_at = CASE WHEN attempt = 1 THEN NULL ELSE started_at END, updated_at = ${NOW}
WHERE id = @id AND lease_token = @leaseToken AND state = 'running'`;

/**
 * The leases of `@leases` (a JSON array of `[id, leaseToken]`) that still hold, with their queue's pause flag: one
 * read for a worker's whole buffer before it starts jobs that waited there. Each lease is looked up by rowid in the
 * order given, as {@link ATTEMPT_INSERT_FROM_LEASES} does (`CROSS JOIN`, `NOT INDEXED`, `jsonb_each`), the same guard
 * as every lease write. Returns `(id, lease_token, paused)` for each lease held; a lease not returned is stale.
 */
export const JOB_LEASE_CHECK = `
SELECT j.id, j.lease_token, coalesce(q.paused, 0) AS paused
FROM jsonb_each(@leases) AS l CROSS JOIN jobs AS j NOT INDEXED ON j.id = l.value ->> 0
LEFT JOIN queues AS q ON q.name = j.queue
WHERE j.lease_token = l.value ->> 1 AND j.state = 'running'`;

/** The running jobs leased to a worker, by id, at most `@limit`. Params: `@workerId, @limit`. */
export const JOB_LEASED_TO = `
SELECT id, lease_token FROM jobs WHERE state = 'running' AND lease_worker = @workerId ORDER BY id LIMIT @limit`;

// ---------------------------------------------------------------------------------------------- finish / rescue

/**
 * Records the attempt of a lease that still holds, copying attempt, token, worker and start time from the job
 * before the rescue update clears them. `changes` = 0 means the lease is stale. Rescue's; endings use the batch
 * form {@link ATTEMPT_INSERT_FROM_LEASES}.
 * Params: `@id, @leaseToken, @outcome, @error` (JSON or NULL), `@now`.
 */
export const ATTEMPT_INSERT_FROM_LEASE = `
INSERT INTO job_attempts (job_id, attempt, lease_token, worker_id, started_at, finished_at, outcome, error)
SELECT id, attempt, lease_token, lease_worker, started_at, ${NOW}, @outcome, @error
FROM jobs WHERE id = @id AND lease_token = @leaseToken AND state = 'running'`;

/**
 * A batch of endings as one JSON array `@items` of `[id, leaseToken, outcome, state, retryDelayMs, error, extend]`
 * (`error`: JSON text or null; `extend`: 0 or 1), ids distinct (the update changes a row once: the driver runs a
 * job's ending under another lease token in a round of its own). Two statements per batch instead of two per job:
 * each statement call costs more than the row work for a no-op job. Same guard as
 * {@link ATTEMPT_INSERT_FROM_LEASE}; run before {@link JOB_FINISH_MANY}, in one transaction, since the job update
 * clears the worker the attempt row copies. An attempt that completes its job (outcome and state `completed`) gets
 * no row: {@link JOB_FINISH_MANY} keeps it on the job row (migration 0011), and {@link ATTEMPT_LIST} reads it from
 * there. Only a final state may hold it there, which nothing overwrites.
 * The batch is the outer loop and each job is found by rowid: `CROSS JOIN` fixes the order and `NOT INDEXED`
 * (rowid lookups stay allowed) keeps the planner from walking every running job through an index on state
 * (`jobs_lease_idx`, or the `jobs_state_id_idx` of migrations before 0009) and scanning the batch for each,
 * which made a batch of 500 cost 50 times more. `jsonb_each`, not `json_each`: the array is parsed once into
 * SQLite's binary JSON, so each `->>` reads binary instead of re-parsing the item's text (a batch's reads
 * 3.6 → 2.2 µs a row).
 */
export const ATTEMPT_INSERT_FROM_LEASES = `
INSERT INTO job_attempts (job_id, attempt, lease_token, worker_id, started_at, finished_at, outcome, error)
SELECT j.id, j.attempt, j.lease_token, j.lease_worker, j.started_at, @now, i.value ->> 2, i.value ->> 5
FROM jsonb_each(@items) AS i CROSS JOIN jobs AS j NOT INDEXED ON j.id = i.value ->> 0
WHERE j.lease_token = i.value ->> 1 AND j.state = 'running'
  AND NOT (i.value ->> 2 = 'completed' AND i.value ->> 3 = 'completed')`;

/**
 * The job updates of {@link ATTEMPT_INSERT_FROM_LEASES}'s batch, each under its lease: to its state;
 * `completed`/`dead` get `finished_at`, `retrying`/`queued` become due at `now + retryDelayMs`; lease fields are
 * cleared (`lease_token` stays as the fence); `extend` (0 or 1) is added to `max_attempts`, so a yielded attempt
 * does not use up the budget. An attempt that completes its job is recorded here: `completed_by` takes the
 * worker (SET reads the row as it was, before `lease_worker` is cleared), and `attempt`, `lease_token`,
 * `started_at` and `finished_at` are that attempt's. `jsonb_each` as there. Returns the ids applied.
 */
export const JOB_FINISH_MANY = `
UPDATE jobs NOT INDEXED
SET state = i.value ->> 3,
    completed_by = CASE WHEN i.value ->> 2 = 'completed' AND i.value ->> 3 = 'completed' THEN lease_worker ELSE completed_by END,
    last_error = i.value ->> 5,
    max_attempts = max_attempts + (i.value ->> 6),
    lease_worker = NULL,
    lease_expires_at = NULL,
    finished_at = CASE WHEN i.value ->> 3 IN ('completed','dead') THEN @now ELSE NULL END,
    run_at = CASE WHEN i.value ->> 3 IN ('retrying','queued') THEN @now + (i.value ->> 4) ELSE run_at END,
    updated_at = @now
FROM jsonb_each(@items) AS i
WHERE jobs.id = i.value ->> 0 AND jobs.lease_token = i.value ->> 1 AND jobs.state = 'running'
RETURNING jobs.id`;

/**
 * {@link JOB_FINISH_MANY} for a batch whose every item completes its job with no error and no extra attempt
 * (`isPlainCompletion`): `@items` is a JSON array of `[id, leaseToken]` only, and there is no attempt row to write
 * first ({@link ATTEMPT_INSERT_FROM_LEASES} would insert none). The same guard, the same row written (`completed_by`
 * takes the worker as there), two `->>` reads a job instead of twelve: endings 4.2–4.8 → 3.0–3.5 µs a job in the
 * driver-only loop. Returns nothing: its `changes` counts the jobs completed (the ids are distinct, and each row
 * changes at most once), which is every job of a batch whose leases all hold; see {@link JOB_COMPLETE_MANY}.
 */
export const JOB_COMPLETE_MANY_COUNTED = `
UPDATE jobs NOT INDEXED
SET state = 'completed',
    completed_by = lease_worker,
    last_error = NULL,
    lease_worker = NULL,
    lease_expires_at = NULL,
    finished_at = @now,
    updated_at = @now
FROM jsonb_each(@items) AS i
WHERE jobs.id = i.value ->> 0 AND jobs.lease_token = i.value ->> 1 AND jobs.state = 'running'`;

/**
 * {@link JOB_COMPLETE_MANY_COUNTED} returning the ids it completed: run when the counted statement completed fewer
 * jobs than it was sent, after undoing it (`ROLLBACK TO` {@link COMPLETE_SAVEPOINT}), to learn which. Returning the
 * ids on every batch cost 0.4–0.6 µs a job of a 2.2–2.8 µs completion (sqlite-costs runs, 20,000 jobs, batches of
 * 500), and nearly every batch has every lease held.
 */
export const JOB_COMPLETE_MANY = `${JOB_COMPLETE_MANY_COUNTED}
RETURNING jobs.id`;

/** The savepoint a counted completion can be undone to (see {@link JOB_COMPLETE_MANY}). */
export const COMPLETE_SAVEPOINT = 'SAVEPOINT warden_complete';
/** Undoes the counted completion, keeping the savepoint. */
export const COMPLETE_ROLLBACK = 'ROLLBACK TO warden_complete';
/** Ends the savepoint, keeping what was written since (the enclosing transaction commits it). */
export const COMPLETE_RELEASE = 'RELEASE warden_complete';

/**
 * Running jobs whose lease expired before now, oldest expiry first. `INDEXED BY jobs_lease_idx` makes this a
 * range scan in expiry order with no sort (unforced, the planner picked the
 * `jobs_state_id_idx` of migrations before 0009 and sorted).
 * Params: `@limit, @now`.
 */
export const JOB_RESCUE_CANDIDATES = `
SELECT id, lease_token FROM jobs INDEXED BY jobs_lease_idx
WHERE state = 'running' AND lease_expires_at < ${NOW}
ORDER BY lease_expires_at, id
LIMIT @limit`;

/**
 * Rescues one lost lease: `lost_count + 1`; `dead` (finished now) when attempts are used up or the job was lost
 * `@maxLost` times (poison), else `retrying` due now. SET expressions read the old row values.
 * Params: `@id, @leaseToken, @maxLost, @error, @now`.
 */
export const JOB_RESCUE = `
UPDATE jobs
SET lost_count = lost_count + 1,
    state = CASE WHEN attempt >= max_attempts OR lost_count + 1 >= @maxLost THEN 'dead' ELSE 'retrying' END,
    run_at = CASE WHEN attempt >= max_attempts OR lost_count + 1 >= @maxLost THEN run_at ELSE ${NOW} END,
    finished_at = CASE WHEN attempt >= max_attempts OR lost_count + 1 >= @maxLost THEN ${NOW} ELSE NULL END,
    last_error = @error,
    lease_worker = NULL,
    lease_expires_at = NULL,
    updated_at = ${NOW}
WHERE id = @id AND lease_token = @leaseToken AND state = 'running'
RETURNING id, name, queue, attempt, lease_token, state`;
