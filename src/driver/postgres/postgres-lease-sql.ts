/**
 * The PostgreSQL statements of a worker's lease: the claim (and the claim that registers for hand-off), lease
 * renewal, attempt endings, and the rescue of expired leases. Built with the helpers of `postgres-sql.ts`, under its
 * conventions (the schema the only identifier, every value a `$n` parameter).
 * @module
 */
import { ATTEMPT_COLUMNS, CLAIM_COLUMNS, CLAIM_FIELDS, msAt, nowAt } from './postgres-sql.js';

/**
 * Claims due jobs atomically, in one statement. Params: `$1` queues (distinct), `$2` limit, `$3` worker id,
 * `$4` lease (ms), `$5` now.
 *
 * The candidate rows are picked per queue (`unnest($1)` + `LATERAL`) rather than with `queue = ANY($1)`:
 * with `= ANY` PostgreSQL 15 cannot read `jobs_claim_idx` in `(priority, run_at, id)` order, so every claim
 * read and sorted the whole backlog (~100 ms at 50k due jobs). Per queue the index is walked in order and
 * stops after `$2` due rows; the outer `ORDER BY … LIMIT` merges the queues. Rows are locked where they are
 * read (`FOR UPDATE SKIP LOCKED`), so concurrent claimers skip each other's candidates instead of waiting on
 * or double-claiming them; candidates beyond the overall limit stay locked only until this statement's
 * transaction ends. Paused queues are filtered before their index is read. A row that changed between the
 * snapshot and the lock is re-checked by the lock itself (the newest version must still match the inner `WHERE`,
 * or it is skipped), so the outer `UPDATE` has no state condition of its own: with one, statistics that see no
 * queued rows (a million finished ones, analyzed) made the planner find the ids by walking the whole claim index
 * instead of the primary key, every claim (W5: 16,000 rows filtered per claim of 500, 24 ms instead of 4). The
 * final SELECT returns the jobs in claim order (sorted in SQL, where `run_at` has microsecond precision), each as
 * one JSON array of {@link CLAIM_FIELDS} in a single column rather than 22 columns: the worker reads one value per
 * job with one `JSON.parse`. Measured (claims of 260 over 40,000 jobs): worker CPU 6.7–8.0 → 3.1–3.3 µs a claimed
 * job, server +1.3 µs a job for building the JSON. One row per job, not the whole claim aggregated into one value
 * (`json_agg`, which cost the same): a claim of 510 jobs with 256 KiB payloads would be one 130 MB value.
 *
 * The candidates are collected with `id = ANY (ARRAY (…))`, not `id IN (…)`: the ARRAY subquery runs once, so
 * the `LIMIT` bounds the claim whatever the plan, and the planner cannot turn it into a nested loop driven by
 * stale statistics (statistics gathered while the queue was empty, with a million finished rows, made each
 * claim walk every queued row: ~150 ms per claim against ~4 ms).
 */
export function jobClaimSql(s: string): string {
  return `WITH ${claimCte(s)}
SELECT json_build_array(${CLAIM_JSON}) AS job
FROM c ORDER BY priority, run_at, id`;
}

/**
 * {@link jobClaimSql} that also registers the worker for hand-off ({@link handoffRegisterCtes}): a separate
 * statement, run by a worker whose last claim found its queues empty, so the claims of a busy worker (every claim
 * of a drain but its last) carry none of the registration's work (W4 medians ~3 % lower with it in every claim).
 * Params: as {@link jobClaimSql}, then `$6` free slots, `$7` registration lifetime (ms), `$8` lock key, `$9` jobs
 * received by hand-off, `$10` the worker's private channel (`handoffChannel`).
 */
export function jobClaimHandoffSql(s: string): string {
  return `WITH ${claimCte(s)},
${handoffRegisterCtes(s)}
SELECT json_build_array(${CLAIM_JSON}) AS job
FROM c ORDER BY priority, run_at, id`;
}

/** The claim's `UPDATE … RETURNING` as the CTE `c` (see {@link jobClaimSql}). */
function claimCte(s: string): string {
  return `c AS (
UPDATE ${s}.jobs
SET state = 'running', attempt = attempt + 1, lease_token = lease_token + 1, lease_worker = $3,
    lease_expires_at = ${nowAt(5)} + ${msAt(4)}, started_at = ${nowAt(5)}, updated_at = ${nowAt(5)}
WHERE id = ANY (ARRAY (
  SELECT d.id
  FROM unnest($1::text[]) AS q(name)
  CROSS JOIN LATERAL (
    SELECT j.id, j.priority, j.run_at FROM ${s}.jobs j
    WHERE j.queue = q.name AND j.state IN ('queued','retrying') AND j.run_at <= ${nowAt(5)}
    ORDER BY j.priority, j.run_at, j.id
    LIMIT $2
    FOR UPDATE SKIP LOCKED
  ) d
  WHERE q.name NOT IN (SELECT name FROM ${s}.queues WHERE paused)
  ORDER BY d.priority, d.run_at, d.id
  LIMIT $2
))
RETURNING ${CLAIM_COLUMNS}
)`;
}

/** {@link CLAIM_FIELDS} as `json_build_array` arguments (`id` as text): a claimed job as one JSON array. */
export const CLAIM_JSON = CLAIM_FIELDS.map((f) => (f === 'id' ? 'id::text' : f)).join(', ');

/**
 * The hand-off registration of {@link jobClaimHandoffSql} (after the claim's CTE `c`). A claim that found fewer
 * due jobs than its `$2` limit has emptied the worker's queues: it registers (or refreshes) the worker as waiting
 * until `$7` ms from now, under the advisory lock key `$8` its LISTEN connection holds, to be sent its jobs on the
 * channel `$10` that connection listens on, for `$6` slots less the
 * jobs it claimed and less the jobs handed to it it has not received yet (`handed`, counted by the enqueues, minus
 * `$9`, the hand-offs it has settled: received, or lost and handed back): without that, a registration racing a
 * hand-off would give back the slot the hand-off just took. The worker counts each job settled once (missed and
 * also handed back, it is one), but errs on the high side, as it cannot always tell a lost hand-off from a lost
 * claim's job (both leased to it unseen, lease token 1) and counts such a job settled when it hands it back: `$9`
 * above `handed` is that excess, and `handed` is raised to `$9`, so the excess is not held against later hand-offs.
 * (Counted short, a lost hand-off would take a slot for good; counted twice, a hand-off on its way would not.) Any
 * other such claim sets the worker's slots to 0 (kept, not deleted, so `handed` keeps counting): it has more to do
 * than free handlers, or none free. Data-modifying CTEs run whether or not the query
 * reads them, and the two conditions exclude each other, so each claim writes the row at most once. Registering also deletes registrations expired a minute ago (workers that died without
 * withdrawing; a live one's has no slots then, so nothing was in flight to it).
 */
function handoffRegisterCtes(s: string): string {
  const claimed = '(SELECT count(*) FROM c)::int';
  const registering = `${claimed} < $2 AND $6::int > ${claimed}`;
  return `hr AS (
  INSERT INTO ${s}.handoff_waiters AS w (worker_id, queues, slots, lease_ms, lock_key, expires_at, handed, channel)
  SELECT $3, $1::text[], $6::int - ${claimed}, $4, $8::bigint, ${nowAt(5)} + ${msAt(7)}, $9::bigint, $10
  WHERE ${registering}
  ON CONFLICT (worker_id) DO UPDATE SET queues = excluded.queues, lease_ms = excluded.lease_ms, lock_key = excluded.lock_key,
    channel = excluded.channel, expires_at = excluded.expires_at, slots = greatest(0, excluded.slots - greatest(0, w.handed - excluded.handed)),
    handed = greatest(w.handed, excluded.handed)
),
hz AS (
  UPDATE ${s}.handoff_waiters SET slots = 0
  WHERE worker_id = $3 AND slots <> 0 AND NOT (${registering})
),
hd AS (
  DELETE FROM ${s}.handoff_waiters
  WHERE ${registering} AND worker_id <> $3 AND expires_at < ${nowAt(5)} - interval '1 minute'
)`;
}

/**
 * Extends held leases. A lease matches only with its token while running; the rest are stale.
 * The rows are locked in id order first, as `jobFinishManySql` does: a worker's heartbeat and its own finish
 * write touch overlapping rows from two connections, and locking them in different orders deadlocks. Each lease
 * is looked up by id from the sorted input (`LATERAL … OFFSET 0 FOR UPDATE …`, which PostgreSQL neither flattens
 * into a join nor pushes the state check into), so the plan is the same whatever the statistics say, and the
 * update finds each row by primary key (`= ANY (ARRAY[…])`): see `jobFinishManySql` for both.
 * The lock skips rows another transaction holds locked (`SKIP LOCKED`) instead of waiting for them: a step or
 * checkpoint written inside the attempt's own open transaction (`ctx.transaction`, a transactional batch or step)
 * holds its job row until that transaction ends, and a statement waiting on it would renew no lease of the
 * worker meanwhile, so that its other jobs could expire and be rescued while healthy. A skipped row is not renewed
 * this beat, and it is not stale either while the statement's snapshot shows it still held (token and `running`):
 * it comes back with `renewed` false and the driver reports it neither applied nor stale, so its attempt is not
 * aborted. It is renewed at the first beat after its transaction ends; until then the rescue, which skips locked
 * rows too, cannot take it. A lease that a rescue or cancel is taking as the heartbeat runs (its transaction holds
 * the row, or committed after the snapshot) also comes back `renewed` false: it is reported stale at a later beat.
 * The check runs only when the update renewed fewer rows than were asked for (a one-time filter), so a beat that
 * renewed every lease reads nothing more. The driver then tries the skipped ones once more with
 * {@link jobHeartbeatWaitSql}, which waits for their locks a moment: most are held by a short write of the attempt
 * itself (a checkpoint, a step's guard), and skipping those would let a job that writes often miss beat after beat.
 * Params: `$1` ids, `$2` lease tokens, `$3` lease (ms), `$4` now. Returns `(id, lease_token, renewed)`: each
 * renewed lease, and each skipped one still held.
 */
export function jobHeartbeatSql(s: string): string {
  return `WITH l AS (
  SELECT j.id
  FROM (SELECT * FROM unnest($1::bigint[], $2::bigint[]) AS l(id, token) ORDER BY id) AS l
  CROSS JOIN LATERAL (
    SELECT j.id, j.state FROM ${s}.jobs j WHERE j.id = l.id AND j.lease_token = l.token OFFSET 0 FOR UPDATE SKIP LOCKED
  ) AS j
  WHERE j.state = 'running'
),
u AS (
  UPDATE ${s}.jobs j
  SET lease_expires_at = ${nowAt(4)} + ${msAt(3)}
  FROM l
  WHERE j.id = ANY (ARRAY[l.id])
  RETURNING j.id, j.lease_token
)
SELECT u.id, u.lease_token, true AS renewed FROM u
UNION ALL
SELECT j.id, j.lease_token, false
FROM unnest($1::bigint[], $2::bigint[]) AS h(id, token)
CROSS JOIN LATERAL (
  SELECT j.id, j.lease_token, j.state FROM ${s}.jobs j WHERE j.id = h.id AND j.lease_token = h.token OFFSET 0
) AS j
WHERE (SELECT count(*) FROM u) < cardinality($1::bigint[])
  AND j.state = 'running' AND NOT (j.id = ANY (ARRAY (SELECT u.id FROM u)))`;
}

/**
 * The leases of claimed jobs not started yet that still hold, with their queue's pause flag: one read for a worker's
 * whole buffer before it starts jobs that waited there. Each lease is looked up by id as {@link jobHeartbeatSql}'s
 * check of skipped rows does (`LATERAL … OFFSET 0`, the state check outside it), so the plan is a primary-key lookup
 * per lease whatever the statistics, on the worker's generic-plan connections too; the queue by its primary key. It
 * locks nothing: a cancel or pause committed after its snapshot is the next check's to see.
 * Params: `$1` ids, `$2` lease tokens. Returns `(id, lease_token, paused)` for each lease held.
 */
export function jobLeaseCheckSql(s: string): string {
  return `SELECT j.id, j.lease_token, coalesce(q.paused, false) AS paused
FROM unnest($1::bigint[], $2::bigint[]) AS l(id, token)
CROSS JOIN LATERAL (
  SELECT j.id, j.lease_token, j.state, j.queue FROM ${s}.jobs j WHERE j.id = l.id AND j.lease_token = l.token OFFSET 0
) AS j
LEFT JOIN ${s}.queues q ON q.name = j.queue
WHERE j.state = 'running'`;
}

/**
 * {@link jobHeartbeatSql}'s second try for the leases it skipped: the renewal alone, waiting for the row locks, run
 * in a transaction opened by {@link HEARTBEAT_WAIT_BEGIN}, whose `lock_timeout` bounds the wait. A lock still held
 * then (the attempt's own open transaction) fails the statement with `lock_not_available` (55P03): those leases
 * stay skipped this beat. The update takes each row's lock itself, walking the leases in id order (the lock order
 * of the endings), with the whole guard (id, token, `running`) in its own condition, as `jobCompleteManySql` does:
 * a row whose attempt ended meanwhile (usually what held it) is then neither renewed nor locked, so a claim of
 * that job, which skips locked rows, does not miss it while this transaction is open; one changed by a transaction
 * that commits while this one waits is re-checked on its newest version. Params as {@link jobHeartbeatSql}.
 * Returns `(id, lease_token)` of each renewed lease.
 */
export function jobHeartbeatWaitSql(s: string): string {
  return `UPDATE ${s}.jobs j
SET lease_expires_at = ${nowAt(4)} + ${msAt(3)}
FROM (SELECT i.*, 'running'::text AS running FROM unnest($1::bigint[], $2::bigint[]) AS i(id, token) ORDER BY i.id) AS i
WHERE j.id = ANY (ARRAY[i.id]) AND j.lease_token = ANY (ARRAY[i.token]) AND j.state = ANY (ARRAY[i.running])
RETURNING j.id, j.lease_token`;
}

/**
 * Opens {@link jobHeartbeatWaitSql}'s transaction: a row lock held longer than this by another transaction is not
 * waited for. Long enough for a checkpoint or a step's guard (milliseconds), short enough not to hold up the beat.
 */
export const HEARTBEAT_WAIT_BEGIN = "BEGIN; SET LOCAL lock_timeout = '200ms'";


/**
 * Ends attempts in one statement. `g` finds the jobs whose lease still holds in the statement's snapshot and
 * captures their attempt/worker/start, `u` moves them under the same guard, and `a` writes the attempt rows from
 * what `u` applied (an `UPDATE`'s `RETURNING` can name its `FROM` rows, so the old worker and start come through).
 * `u` carries the whole guard (id, lease token, `running`): when another transaction changed a row after the
 * snapshot (a rescue, a cancel, a new claim), the update waits for it and re-checks the guard on the newest version,
 * so a stale ending changes nothing and writes no attempt row. There is no separate `FOR UPDATE` step: the update's
 * own row lock is the lock, taken in id order (`g` is materialized in id order and the update walks it, looking each
 * job up by its primary key), the order the heartbeat locks in too, so the two cannot deadlock. The lock step cost
 * 1.5 ms of a 6 ms batch of 500 and wrote every row twice.
 * The state is compared with `g.running`, a constant carried from `g`, not with a literal: as a join condition it
 * cannot make the partial `jobs_lease_idx` (`WHERE state = 'running'`) usable for `u`, which with statistics that
 * saw no running jobs (a million finished rows, analyzed) let the generic plan walk every running job once per item,
 * quadratic in the batch. For the same reason `g` looks each job up through `LATERAL … OFFSET 0` with the state
 * check outside it (as a plain join, that case took 181 ms for a batch of 500 instead of 4).
 * `u` joins `g` with `j.id = ANY (ARRAY[g.id])` (and the token and state likewise) rather than `j.id = g.id`: no
 * condition is then a hashable or mergeable equality, so the only plan left is the walk of `g` in id order with a
 * primary-key lookup per job. With plain equalities, a plan made for the actual arrays (a session's first
 * executions, `preparedStatements: false`, an application's transaction) hash-joined the batch of 500 against a
 * sequential scan of every job once the table held a few thousand rows: 13–17 ms instead of 4–5 on 40,000 rows,
 * growing with the table, with the rows locked in heap order instead of id order (the order heartbeats lock in, so
 * the two could deadlock). Generic plans already took the loop (they estimate ten rows for `unnest` of a
 * parameter); the plan test checks both kinds. The lookup stays an index condition, the token and state a filter.
 * An attempt that completes its job (outcome and state `completed`) gets no row: `u` keeps it on the job row
 * (`completed_by` = its worker; attempt, lease token, start and finish are already there; migration 0011). Only a
 * final state may hold it there, which nothing overwrites. Ids must be distinct: an `UPDATE` changes a row once, so
 * of two items of one job only one would be tried. The driver sends a job's ending under another lease token (a
 * stale attempt's beside the live one's) in a statement of its own (`jobFinishMany`).
 * Params: `$1` ids, `$2` tokens, `$3` outcomes, `$4` next states, `$5` retry delays (ms), `$6` errors (JSON
 * text or NULL), `$7` now, `$8` extend-attempts flags (a yielded attempt gives its attempt back:
 * `max_attempts + 1`). Returns the applied `(id, lease_token)`.
 */
export function jobFinishManySql(s: string): string {
  return `WITH t AS (SELECT ${nowAt(7)} AS now),
i AS (
  SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::float8[], $6::text[], $8::bool[])
    AS i(id, token, outcome, state, retry_delay_ms, error, extend_attempts)
),
g AS MATERIALIZED (
  SELECT j.id, j.attempt, j.lease_token, j.lease_worker, j.started_at,
         i.outcome, i.state, i.retry_delay_ms, i.error::jsonb AS error, i.extend_attempts, 'running'::text AS running
  FROM (SELECT * FROM i ORDER BY id) AS i
  CROSS JOIN LATERAL (
    SELECT j.id, j.attempt, j.lease_token, j.lease_worker, j.started_at, j.state FROM ${s}.jobs j
    WHERE j.id = i.id AND j.lease_token = i.token
    OFFSET 0
  ) AS j
  WHERE j.state = 'running'
),
u AS (
  UPDATE ${s}.jobs j
  SET state = g.state,
      completed_by = CASE WHEN g.outcome = 'completed' AND g.state = 'completed' THEN g.lease_worker ELSE j.completed_by END,
      run_at = CASE WHEN g.state IN ('retrying','queued') THEN t.now + g.retry_delay_ms * interval '1 millisecond' ELSE j.run_at END,
      finished_at = CASE WHEN g.state IN ('completed','dead') THEN t.now END,
      max_attempts = CASE WHEN g.extend_attempts THEN j.max_attempts + 1 ELSE j.max_attempts END,
      last_error = g.error, lease_worker = NULL, lease_expires_at = NULL, updated_at = t.now
  FROM g, t
  WHERE j.id = ANY (ARRAY[g.id]) AND j.lease_token = ANY (ARRAY[g.lease_token]) AND j.state = ANY (ARRAY[g.running])
  RETURNING j.id, j.lease_token, g.attempt, g.lease_worker, g.started_at, t.now, g.outcome, g.state AS next_state, g.error
),
a AS (
  -- An attempt that completes its job is recorded on the job row (completed_by, above; see jobAttemptListSql).
  INSERT INTO ${s}.job_attempts (${ATTEMPT_COLUMNS})
  SELECT u.id, u.attempt, u.lease_token, u.lease_worker, u.started_at, u.now, u.outcome, u.error FROM u
  WHERE NOT (u.outcome = 'completed' AND u.next_state = 'completed')
)
SELECT id, lease_token FROM u`;
}

/**
 * Completes jobs, in one statement: the ending of a batch whose every item completes its job with no error and no
 * extra attempt, which is nearly every batch of a healthy drain. Such an attempt is kept on the job row
 * (`completed_by`, migration 0011), so there is no attempt row to write and nothing to capture from the row before
 * the update: `completed_by` takes the old `lease_worker` in the `SET` itself. Skipping
 * {@link jobFinishManySql}'s `g` (a second primary-key lookup per job and a materialized copy) took the driver-only
 * loop's endings from 12.3–13.3 to 9.0–9.4 µs a job.
 * The guard and the lock order are `jobFinishManySql`'s: `i` is sorted by id and the update looks each job up by its
 * primary key, whatever the statistics and whether planned generically or for the actual arrays
 * (`= ANY (ARRAY[…])`, see `jobFinishManySql`); a row another transaction changed meanwhile is re-checked on its
 * newest version.
 * `running` is a column of `i`, not a literal, so the partial `jobs_lease_idx` cannot be picked on statistics that
 * saw no running job. Ids must be distinct, as for `jobFinishManySql` (the driver sends repeats separately).
 * It answers with one value: NULL when it completed every job of `$1` (nearly always), else the ids it completed,
 * instead of a row per completed job for the worker to read (the driver-only loop of claims and completions of 260:
 * worker CPU 7.5–8.5 → 6.1–6.4 µs a job; the completion's server work the same as with a row per job, 7.8–8.3 µs a
 * job, where returning the positions of the rest instead, by an anti-join, cost it 0.3–0.7 µs a job more).
 * Params: `$1` ids, `$2` lease tokens, `$3` now.
 */
export function jobCompleteManySql(s: string): string {
  return `WITH t AS (SELECT ${nowAt(3)} AS now),
u AS (
  UPDATE ${s}.jobs j
  SET state = 'completed', completed_by = j.lease_worker, finished_at = t.now, last_error = NULL,
      lease_worker = NULL, lease_expires_at = NULL, updated_at = t.now
  FROM (SELECT i.*, 'running'::text AS running FROM unnest($1::bigint[], $2::bigint[]) AS i(id, token) ORDER BY i.id) AS i, t
  WHERE j.id = ANY (ARRAY[i.id]) AND j.lease_token = ANY (ARRAY[i.token]) AND j.state = ANY (ARRAY[i.running])
  RETURNING j.id
)
SELECT CASE WHEN (SELECT count(*) FROM u) = cardinality($1::bigint[]) THEN NULL
            ELSE coalesce((SELECT array_agg(id) FROM u), '{}') END AS applied`;
}

/**
 * Rescues running jobs whose lease expired: a `lost` attempt row, `lost_count + 1`, then `dead` when out of
 * attempts or lost too often (poison), else `retrying` due now. `SKIP LOCKED` keeps concurrent rescuers from
 * queueing behind each other. Params: `$1` maxLost, `$2` limit, `$3` error (JSON text), `$4` now.
 */
export function jobRescueSql(s: string): string {
  return `WITH t AS (SELECT ${nowAt(4)} AS now),
g AS (
  SELECT j.id, j.attempt, j.max_attempts, j.lost_count, j.lease_token, j.lease_worker, j.started_at,
         CASE WHEN j.attempt >= j.max_attempts OR j.lost_count + 1 >= $1 THEN 'dead' ELSE 'retrying' END AS next
  FROM ${s}.jobs j, t
  WHERE j.state = 'running' AND j.lease_expires_at < t.now
  ORDER BY j.lease_expires_at, j.id
  LIMIT $2
  FOR UPDATE OF j SKIP LOCKED
),
a AS (
  INSERT INTO ${s}.job_attempts (${ATTEMPT_COLUMNS})
  SELECT g.id, g.attempt, g.lease_token, g.lease_worker, g.started_at, t.now, 'lost', $3::jsonb FROM g, t
),
u AS (
  UPDATE ${s}.jobs j
  SET lost_count = j.lost_count + 1, state = g.next,
      run_at = CASE WHEN g.next = 'retrying' THEN t.now ELSE j.run_at END,
      finished_at = CASE WHEN g.next = 'dead' THEN t.now END,
      last_error = $3::jsonb, lease_worker = NULL, lease_expires_at = NULL, updated_at = t.now
  FROM g, t
  WHERE j.id = g.id
  RETURNING j.id, j.name, j.queue, j.attempt, j.lease_token, j.state
)
SELECT * FROM u ORDER BY id`;
}
