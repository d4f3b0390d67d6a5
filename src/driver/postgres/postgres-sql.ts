/**
 * Every SQL statement of the PostgreSQL driver, and nothing else. Schedule, lease-lock, keyed-insert and step
 * statements live in the sibling modules `postgres-schedule-sql.ts`, `postgres-lock-sql.ts`, `postgres-keys-sql.ts`
 * and `postgres-steps-sql.ts`, built with the helpers exported here.
 *
 * Each builder takes `s`, the schema name already checked by `validateSchemaName` and double-quoted by
 * {@link quoteIdentifier}; it is the only identifier ever put into SQL text. Every value is a `$n` parameter.
 * The driver builds all strings once, in its constructor.
 *
 * Conventions:
 * - Time-dependent statements take a `now` parameter (`Date | null`) used as `coalesce($n::timestamptz, now())`,
 *   so tests can pass a fake clock and production uses database time.
 * - Durations arrive as milliseconds (`float8`) and are turned into intervals in SQL.
 * - Lists (keys, queues) are one array parameter: `= ANY($n)`, or `unnest($n)` where each element should get
 *   its own ordered index scan (the claim).
 * - Batch writes `unnest` parallel arrays so one statement, one round trip, handles a whole batch.
 * @module
 */

/**
 * Double-quotes an identifier that was already validated (the schema, or the channel derived from it).
 * Validation is what makes this safe; doubling quotes is only a second line of defence.
 */
export function quoteIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** `now` expression for parameter number `n`: the caller's time, or the database's when NULL. */
export function nowAt(n: number): string {
  return `coalesce($${n}::timestamptz, now())`;
}

/** Milliseconds in parameter number `n` as an interval. float8 so fractional delays are not rejected. */
export function msAt(n: number): string {
  return `($${n}::float8 * interval '1 millisecond')`;
}

/** The active states: a job in one may still run (and, by default, holds its dedup key). */
export const ACTIVE = `('queued','retrying','running')`;

/**
 * Every column of `jobs`, as the statements prepared once per connection return them. Named rather than `*`: a
 * prepared statement's result columns are fixed when it is prepared, so a later migration that adds a column
 * (another process upgrading while this one runs) would make `RETURNING *` fail with "cached plan must not change
 * result type"; a fixed list keeps returning what this version reads. Append new columns here with their migration.
 */
export const JOB_COLUMNS =
  'id, name, queue, payload, state, priority, run_at, attempt, max_attempts, lost_count, lease_token, lease_worker, ' +
  'lease_expires_at, started_at, key, last_error, created_at, updated_at, finished_at, schedule_name, tick_at, ' +
  'checkpoint, progress_done, progress_total, checkpoint_at, trace_context';

/**
 * {@link JOB_COLUMNS} qualified by a table alias (`j.id, j.name, …`): for statements that join `jobs` to tables
 * sharing column names, where a bare list would be ambiguous and `j.*` would change with the next migration.
 */
export function jobColumnsOf(alias: string): string {
  return JOB_COLUMNS.split(', ').map((column) => `${alias}.${column}`).join(', ');
}

/**
 * What an insert of new jobs reads back: what the database decides (id, due and creation time from its clock) and
 * the queue its wake-up names. The rest of the row is the insert's own values and the schema's defaults.
 */
export const INSERTED_COLUMNS = 'id, queue, run_at, created_at';

/**
 * The columns a claim returns: {@link JOB_COLUMNS} but those the claim itself sets to values the caller knows
 * (`state` 'running', `lease_worker` its own id, `started_at` = `updated_at` = `lease_expires_at` - lease). Every
 * claimed row costs the server a text form per column, timestamps most, and the worker a read per column.
 * The claim hands each job over as one JSON array in this order ({@link jobClaimSql}); `id` as text (a `bigint` may
 * not fit a JSON number).
 */
export const CLAIM_FIELDS = [
  'id', 'name', 'queue', 'payload', 'priority', 'run_at', 'attempt', 'max_attempts', 'lost_count', 'lease_token',
  'lease_expires_at', 'key', 'last_error', 'created_at', 'finished_at', 'schedule_name', 'tick_at',
  'checkpoint', 'progress_done', 'progress_total', 'checkpoint_at', 'trace_context',
] as const;

/** {@link CLAIM_FIELDS} as a column list. */
export const CLAIM_COLUMNS = CLAIM_FIELDS.join(', ');

/** Columns of an attempt row, in the order the INSERTs below fill them. */
export const ATTEMPT_COLUMNS = 'job_id, attempt, lease_token, worker_id, started_at, finished_at, outcome, error';

/** Starts a transaction. */
export const BEGIN_SQL = 'BEGIN';
/** Commits a transaction. */
export const COMMIT_SQL = 'COMMIT';
/** Rolls a transaction back. */
export const ROLLBACK_SQL = 'ROLLBACK';

/**
 * The database's wall clock. `now()` is frozen at transaction start, so `clock_timestamp()` is used to report
 * the actual current time. No parameters.
 */
export const DB_NOW_SQL = 'SELECT clock_timestamp() AS now';

/**
 * Serializes migrators of one schema for the rest of the transaction. The key is derived from the schema
 * name so different schemas in one database migrate independently. `$1` = schema name (unquoted).
 * Taken before `CREATE SCHEMA`, because two concurrent `CREATE SCHEMA IF NOT EXISTS` can still collide.
 */
export const MIGRATE_LOCK_SQL = `SELECT pg_advisory_xact_lock(hashtext('warden:migrate:' || $1)::bigint)`;

/** Whether a schema exists. `$1` = schema name (unquoted). */
export const SCHEMA_EXISTS_SQL = 'SELECT 1 FROM pg_namespace WHERE nspname = $1';

/** Creates the schema. Only run (under the migrate lock) when {@link SCHEMA_EXISTS_SQL} found none. */
export function schemaCreateSql(s: string): string {
  return `CREATE SCHEMA IF NOT EXISTS ${s}`;
}

/** Creates the migrations ledger. */
export function migrationTableCreateSql(s: string): string {
  return `CREATE TABLE IF NOT EXISTS ${s}.migrations (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`;
}

/**
 * Whether the ledger exists, without creating anything. `$1` = the qualified, quoted table name as text
 * (e.g. `"warden".migrations`); `to_regclass` returns NULL when it does not exist.
 */
export const MIGRATION_TABLE_EXISTS_SQL = 'SELECT to_regclass($1) IS NOT NULL AS exists';

/** Names of the applied migrations. */
export function migrationListSql(s: string): string {
  return `SELECT name FROM ${s}.migrations ORDER BY name`;
}

/** Records one applied migration. `$1` = name. */
export function migrationRecordSql(s: string): string {
  return `INSERT INTO ${s}.migrations (name) VALUES ($1)`;
}

/**
 * Inserts a batch of jobs in input order, without deduplication: keyed batches go through the `job_keys` lock and
 * `jobInsertRoundSql` (`postgres-keys-sql.ts`) instead. `ORDER BY ordinality` makes `bigserial` ids follow input
 * order, which is how results are matched back to their inputs. Returns {@link INSERTED_COLUMNS} only: the driver
 * builds the rest of each row from its input (`insertedJobRow`).
 * Params: `$1` names, `$2` queues, `$3` payloads (JSON text), `$4` priorities, `$5` delays (ms),
 * `$6` runAt (timestamptz or NULL), `$7` maxAttempts, `$8` keys (NULL = none), `$9` schedule names (NULL =
 * none), `$10` tick times (timestamptz or NULL), `$11` now, and `$<traceParam>` trace contexts (JSON text or NULL).
 */
export function jobInsertSql(s: string, traceParam: number): string {
  return `INSERT INTO ${s}.jobs (name, queue, payload, state, priority, run_at, max_attempts, key, schedule_name, tick_at,
                     trace_context, created_at, updated_at)
SELECT i.name, i.queue, i.payload::jsonb, 'queued', i.priority,
       coalesce(i.run_at, t.now + i.delay_ms * interval '1 millisecond'),
       i.max_attempts, i.key, i.schedule_name, i.tick_at, i.trace_context::jsonb, t.now, t.now
FROM unnest($1::text[], $2::text[], $3::text[], $4::int4[], $5::float8[], $6::timestamptz[], $7::int4[], $8::text[],
            $9::text[], $10::timestamptz[], $${traceParam}::text[])
       WITH ORDINALITY AS i(name, queue, payload, priority, delay_ms, run_at, max_attempts, key, schedule_name, tick_at,
                            trace_context, ord)
CROSS JOIN (SELECT ${nowAt(11)} AS now) t
ORDER BY i.ord
RETURNING ${INSERTED_COLUMNS}`;
}

/**
 * The insert and its wake-ups in one autocommit statement: one round trip instead of BEGIN, INSERT, NOTIFY and
 * COMMIT (inside a caller's transaction it is still one statement). Only for batches without keys, which need no
 * `job_keys` lock. The scalar subquery makes PostgreSQL run the NOTIFY (a CTE that is not
 * referenced would not run); notifications are delivered at this statement's commit.
 * Params: as {@link jobInsertSql}, plus `$12` the channel and `$13` the trace contexts.
 */
export function jobInsertNotifySql(s: string): string {
  return `WITH ins AS (
${jobInsertSql(s, 13)}
)
SELECT ins.id, ins.run_at, ins.created_at,
       (SELECT count(*) FROM (SELECT pg_notify($12, q) FROM (SELECT DISTINCT queue FROM ins) AS d(q)) AS n) AS notified
FROM ins`;
}

/**
 * {@link jobInsertNotifySql} for a single job, with scalar parameters: an application's awaited one-at-a-time
 * enqueue skips the arrays and `unnest` (~10 % of such a call, most of the rest being the commit).
 *
 * It also hands the job to an idle worker when it may (`$13`: outside a caller's transaction), the job is due now,
 * and one waits on its queue ({@link handoffRegisterCtes}): the registration with the most free slots whose worker
 * still holds its LISTEN connection's advisory lock (a free lock, which `pg_try_advisory_xact_lock_shared` then
 * takes until commit, means that worker is gone), in a queue neither paused nor holding any due job (a waiting job
 * goes first: no overtaking). Those two checks run only when some registration could take the job (the `CASE`:
 * as plain conditions they ran on every enqueue, reading the queue and the claim index for nothing, 0.016 of 0.084
 * ms of execution). The lock is tried on the registrations in that order, one at a time until one passes (the
 * outer `LIMIT 1` pulls the locked, sorted rows one by one; `OFFSET 0` keeps PostgreSQL from pushing the lock's
 * condition down into the scan, where it ran for every idle worker's registration). The job is then inserted
 * `running`, leased to that worker exactly as its claim would have (attempt 1, lease token 1, the worker's lease length), one
 * slot is taken, and the notification names the job for that worker instead of naming the queue:
 * `[worker id, slots left, lease ms, job id]`, never job data (any role that can connect may LISTEN). The worker
 * reads the row on its LISTEN connection (`postgres-handoff.ts`): one commit instead of two (the enqueue's, then
 * the worker's claim), the claim's write and fsync saved. Otherwise it is inserted `queued` and the queue woken.
 * Params: `$1` name, `$2` queue, `$3` payload (JSON text), `$4` priority, `$5` delay (ms), `$6` run at, `$7` max
 * attempts, `$8` schedule name, `$9` tick at, `$10` trace context (JSON text), `$11` now, `$12` channel, `$13` may
 * hand off. No key: keyed inserts go through the `job_keys` lock.
 */
export function jobInsertOneNotifySql(s: string): string {
  return `WITH t AS (SELECT ${nowAt(11)} AS now),
hw AS (
  SELECT c.worker_id FROM (
    SELECT w.worker_id, w.lock_key FROM ${s}.handoff_waiters w
    WHERE $2 = ANY (w.queues) AND w.slots > 0 AND w.expires_at > (SELECT now FROM t)
      AND CASE WHEN $13::boolean AND $6::timestamptz IS NULL AND $5::float8 <= 0
                    AND EXISTS (SELECT 1 FROM ${s}.handoff_waiters x WHERE $2 = ANY (x.queues) AND x.slots > 0)
               THEN NOT EXISTS (SELECT 1 FROM ${s}.queues q WHERE q.name = $2 AND q.paused)
                    AND NOT EXISTS (SELECT 1 FROM ${s}.jobs j WHERE j.queue = $2 AND j.state IN ('queued','retrying') AND j.run_at <= (SELECT now FROM t))
               ELSE false END
    ORDER BY w.slots DESC, w.worker_id
    OFFSET 0
    FOR UPDATE OF w SKIP LOCKED
  ) c
  WHERE NOT pg_try_advisory_xact_lock_shared(c.lock_key)
  LIMIT 1
),
ht AS (
  UPDATE ${s}.handoff_waiters w SET slots = w.slots - 1, handed = w.handed + 1 FROM hw WHERE w.worker_id = hw.worker_id
  RETURNING w.worker_id, w.slots, w.lease_ms
),
ins AS (
INSERT INTO ${s}.jobs (name, queue, payload, state, priority, run_at, max_attempts, schedule_name, tick_at, trace_context,
                   created_at, updated_at, attempt, lease_token, lease_worker, lease_expires_at, started_at)
SELECT $1, $2, $3::jsonb, CASE WHEN ht.worker_id IS NULL THEN 'queued' ELSE 'running' END, $4,
       coalesce($6::timestamptz, t.now + $5::float8 * interval '1 millisecond'), $7, $8, $9::timestamptz, $10::jsonb, t.now, t.now,
       CASE WHEN ht.worker_id IS NULL THEN 0 ELSE 1 END, CASE WHEN ht.worker_id IS NULL THEN 0 ELSE 1 END, ht.worker_id,
       t.now + ht.lease_ms * interval '1 millisecond', CASE WHEN ht.worker_id IS NULL THEN NULL ELSE t.now END
FROM t LEFT JOIN ht ON true
RETURNING ${INSERTED_COLUMNS}, lease_worker, lease_expires_at
)
SELECT ins.id, ins.run_at, ins.created_at, ins.lease_worker, ins.lease_expires_at,
       pg_notify($12, CASE WHEN ins.lease_worker IS NULL THEN ins.queue
         ELSE json_build_array(ins.lease_worker, ht.slots, ht.lease_ms, ins.id::text)::text END)
FROM ins LEFT JOIN ht ON true`;
}

/**
 * One wake-up per queue. Run on the inserting connection so it is delivered only if that transaction
 * commits. `$1` channel, `$2` distinct queue names.
 */
export const NOTIFY_SQL = 'SELECT pg_notify($1, q) FROM unnest($2::text[]) AS q';

/** Subscribes the current connection to the wake-up channel (identifier, so it cannot be a parameter). */
export function listenSql(channel: string): string {
  return `LISTEN ${quoteIdentifier(channel)}`;
}

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
 * received by hand-off.
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
 * until `$7` ms from now, under the advisory lock key `$8` its LISTEN connection holds, for `$6` slots less the
 * jobs it claimed and less the jobs handed to it it has not received yet (`handed`, counted by the enqueues, minus
 * `$9`, what it has received): without that, a registration racing a hand-off would give back the slot the
 * hand-off just took. Any other such claim sets the worker's slots to 0 (kept, not deleted, so `handed` keeps
 * counting): it has more to do than free handlers, or none free. Data-modifying CTEs run whether or not the query
 * reads them, and the two conditions exclude each other, so each claim writes the row at most once. Registering also deletes registrations expired a minute ago (workers that died without
 * withdrawing; a live one's has no slots then, so nothing was in flight to it).
 */
function handoffRegisterCtes(s: string): string {
  const claimed = '(SELECT count(*) FROM c)::int';
  const registering = `${claimed} < $2 AND $6::int > ${claimed}`;
  return `hr AS (
  INSERT INTO ${s}.handoff_waiters AS w (worker_id, queues, slots, lease_ms, lock_key, expires_at, handed)
  SELECT $3, $1::text[], $6::int - ${claimed}, $4, $8::bigint, ${nowAt(5)} + ${msAt(7)}, $9::bigint
  WHERE ${registering}
  ON CONFLICT (worker_id) DO UPDATE SET queues = excluded.queues, lease_ms = excluded.lease_ms, lock_key = excluded.lock_key,
    expires_at = excluded.expires_at, slots = greatest(0, excluded.slots - greatest(0, w.handed - excluded.handed))
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
 * is looked up by id from the sorted input (`LATERAL … OFFSET 0 FOR UPDATE`, which PostgreSQL neither flattens
 * into a join nor pushes the state check into), so the plan is the same whatever the statistics say, and the
 * update finds each row by primary key (`= ANY (ARRAY[…])`): see `jobFinishManySql` for both.
 * Params: `$1` ids, `$2` lease tokens, `$3` lease (ms), `$4` now. Returns the renewed `(id, lease_token)`.
 */
export function jobHeartbeatSql(s: string): string {
  return `WITH l AS (
  SELECT j.id
  FROM (SELECT * FROM unnest($1::bigint[], $2::bigint[]) AS l(id, token) ORDER BY id) AS l
  CROSS JOIN LATERAL (
    SELECT j.id, j.state FROM ${s}.jobs j WHERE j.id = l.id AND j.lease_token = l.token OFFSET 0 FOR UPDATE
  ) AS j
  WHERE j.state = 'running'
)
UPDATE ${s}.jobs j
SET lease_expires_at = ${nowAt(4)} + ${msAt(3)}
FROM l
WHERE j.id = ANY (ARRAY[l.id])
RETURNING j.id, j.lease_token`;
}

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
 * final state may hold it there, which nothing overwrites. Ids must be distinct (the driver dedupes).
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
 * saw no running job. Ids must be distinct.
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

/**
 * Cancels queued, retrying or running jobs in one guarded statement. `old` locks the rows (in id order) and keeps
 * their pre-update state, so a running attempt gets a `cancelled` attempt row; the job leaves `running`, which
 * makes that attempt's later writes stale. `match` selects the jobs: `id = $1` (operator cancel) or
 * `schedule_name = $1` (overlap `replace`). Params: `$1` id or schedule, `$2` error (JSON text), `$3` now.
 * Returns the cancelled rows, by id. No row: none matched (for an id, the driver re-reads to tell why).
 */
export function jobCancelSql(s: string, match: 'id' | 'schedule_name' = 'id'): string {
  return `WITH t AS (SELECT ${nowAt(3)} AS now),
old AS (
  SELECT id, state, attempt, lease_token, lease_worker, started_at
  FROM ${s}.jobs WHERE ${match} = $1 AND state IN ${ACTIVE}
  ORDER BY id
  FOR UPDATE
),
a AS (
  INSERT INTO ${s}.job_attempts (${ATTEMPT_COLUMNS})
  SELECT old.id, old.attempt, old.lease_token, old.lease_worker, old.started_at, t.now, 'cancelled', $2::jsonb
  FROM old, t WHERE old.state = 'running'
),
u AS (
  UPDATE ${s}.jobs j
  SET state = 'cancelled', finished_at = t.now, lease_worker = NULL, lease_expires_at = NULL, updated_at = t.now,
      -- A running attempt ends with the cancel as its error, as on SQLite; a waiting job keeps its last error.
      last_error = CASE WHEN old.state = 'running' THEN $2::jsonb ELSE j.last_error END
  FROM old, t
  WHERE j.id = old.id
  RETURNING j.*
)
SELECT * FROM u ORDER BY id`;
}

/**
 * Operator retry: `dead`/`retrying` → `queued` due now, with room for at least one more attempt; checkpoint and
 * steps are kept. A keyed job becomes its key's holder: the driver runs this with the `job_keys` row locked, after
 * checking that no other active job holds the key. Params: `$1` id, `$2` now.
 */
export function jobRetrySql(s: string): string {
  return `WITH u AS (
  UPDATE ${s}.jobs
  SET state = 'queued', run_at = ${nowAt(2)}, max_attempts = greatest(max_attempts, attempt + 1), lost_count = 0,
      finished_at = NULL, updated_at = ${nowAt(2)}
  WHERE id = $1 AND state IN ('dead','retrying')
  RETURNING *
),
holder AS (
  UPDATE ${s}.job_keys k SET job_id = u.id FROM u WHERE k.key = u.key
)
SELECT * FROM u`;
}

/**
 * Deletes a job that is not running, with its attempts (explicitly: migration 0008 dropped the foreign key, whose
 * per-row check cost every batch of endings; steps still go by `ON DELETE CASCADE`). No attempt can be written
 * for a job that is not running, so none can appear after this statement's snapshot. `$1` id.
 */
export function jobDiscardSql(s: string): string {
  return `WITH d AS (DELETE FROM ${s}.jobs WHERE id = $1 AND state <> 'running' RETURNING *),
a AS (DELETE FROM ${s}.job_attempts x USING d WHERE x.job_id = d.id)
SELECT * FROM d`;
}

/** One job by id. `$1` id. */
export function jobGetSql(s: string): string {
  return `SELECT * FROM ${s}.jobs WHERE id = $1`;
}

/**
 * Lists jobs newest first; each NULL filter is off. Params: `$1` state, `$2` queue, `$3` name,
 * `$4` before id, `$5` limit.
 */
export function jobListSql(s: string): string {
  return `SELECT * FROM ${s}.jobs
WHERE ($1::text IS NULL OR state = $1) AND ($2::text IS NULL OR queue = $2) AND ($3::text IS NULL OR name = $3)
  AND ($4::bigint IS NULL OR id < $4)
ORDER BY id DESC
LIMIT $5`;
}

/**
 * A job's finished attempts, oldest first: its `job_attempts` rows and, for a job completed since migration 0011,
 * the completing attempt, which is kept on the job row (`completed_by` is its worker). `$1` job id.
 */
export function jobAttemptListSql(s: string): string {
  return `SELECT ${ATTEMPT_COLUMNS} FROM ${s}.job_attempts WHERE job_id = $1
UNION ALL
SELECT id, attempt, lease_token, completed_by, started_at, finished_at, 'completed', NULL::jsonb
FROM ${s}.jobs WHERE id = $1 AND completed_by IS NOT NULL
ORDER BY attempt, lease_token`;
}

/**
 * Per-queue counts for every queue that has jobs or a `queues` row, with pause state and lag (ms since the
 * oldest due waiting job became due; 0 when none). Sorted bytewise (`COLLATE "C"`) so the order does not
 * depend on the database's locale. No parameters.
 */
export function queueListSql(s: string): string {
  return `WITH c AS (
  SELECT queue, state, count(*)::int AS n,
         min(run_at) FILTER (WHERE state IN ('queued','retrying') AND run_at <= now()) AS oldest_due
  FROM ${s}.jobs GROUP BY queue, state
),
names AS (SELECT queue AS name FROM c UNION SELECT name FROM ${s}.queues)
SELECT names.name AS queue, coalesce(q.paused, false) AS paused,
       coalesce(sum(c.n) FILTER (WHERE c.state = 'queued'), 0)::int AS queued,
       coalesce(sum(c.n) FILTER (WHERE c.state = 'retrying'), 0)::int AS retrying,
       coalesce(sum(c.n) FILTER (WHERE c.state = 'running'), 0)::int AS running,
       coalesce(sum(c.n) FILTER (WHERE c.state = 'completed'), 0)::int AS completed,
       coalesce(sum(c.n) FILTER (WHERE c.state = 'dead'), 0)::int AS dead,
       coalesce(sum(c.n) FILTER (WHERE c.state = 'cancelled'), 0)::int AS cancelled,
       coalesce(round(extract(epoch FROM now() - min(c.oldest_due)) * 1000), 0)::float8 AS lag_ms
FROM names
LEFT JOIN ${s}.queues q ON q.name = names.name
LEFT JOIN c ON c.queue = names.name
GROUP BY names.name, q.paused
ORDER BY names.name COLLATE "C"`;
}

/**
 * {@link queueListSql} for the jobs not yet ended only: waiting counts and lag from the jobs `jobs_claim_idx`
 * holds, running counts from those `jobs_lease_idx` holds (each `WHERE` written as its index's), so finished jobs,
 * however many are kept, are not read. One row per queue with such jobs or a `queues` row. No parameters.
 */
export function queueActivitySql(s: string): string {
  return `WITH w AS (
  SELECT queue, count(*) FILTER (WHERE state = 'queued')::int AS queued, count(*) FILTER (WHERE state = 'retrying')::int AS retrying,
         min(run_at) FILTER (WHERE run_at <= now()) AS oldest_due
  FROM ${s}.jobs WHERE state IN ('queued','retrying') GROUP BY queue
),
r AS (SELECT queue, count(*)::int AS running FROM ${s}.jobs WHERE state = 'running' GROUP BY queue),
names AS (SELECT queue AS name FROM w UNION SELECT queue FROM r UNION SELECT name FROM ${s}.queues)
SELECT names.name AS queue, coalesce(q.paused, false) AS paused, coalesce(w.queued, 0) AS queued,
       coalesce(w.retrying, 0) AS retrying, coalesce(r.running, 0) AS running,
       coalesce(round(extract(epoch FROM now() - w.oldest_due) * 1000), 0)::float8 AS lag_ms
FROM names
LEFT JOIN ${s}.queues q ON q.name = names.name
LEFT JOIN w ON w.queue = names.name
LEFT JOIN r ON r.queue = names.name
ORDER BY names.name COLLATE "C"`;
}

/** Sets a queue's pause flag, creating its row if needed. Params: `$1` queue, `$2` paused. */
export function queueSetPausedSql(s: string): string {
  return `INSERT INTO ${s}.queues (name, paused, updated_at) VALUES ($1, $2, now())
ON CONFLICT (name) DO UPDATE SET paused = excluded.paused, updated_at = excluded.updated_at`;
}

/** Every schema-dependent statement, built once per driver (see {@link buildPostgresStatements}). */
export interface PostgresStatements {
  /** The schema, double-quoted, for `{{schema}}` in migrations. */
  quotedSchema: string;
  schemaCreate: string;
  migrationTableCreate: string;
  migrationList: string;
  migrationRecord: string;
  jobInsertNotify: string;
  jobInsertOneNotify: string;
  jobClaim: string;
  jobClaimHandoff: string;
  jobHeartbeat: string;
  jobFinishMany: string;
  jobCompleteMany: string;
  jobRescue: string;
  jobCancel: string;
  jobRetry: string;
  jobDiscard: string;
  jobGet: string;
  jobList: string;
  jobAttemptList: string;
  queueList: string;
  queueActivity: string;
  queueSetPaused: string;
}

/** Builds every statement for a schema already checked by `validateSchemaName`. */
export function buildPostgresStatements(schema: string): PostgresStatements {
  const s = quoteIdentifier(schema);
  return {
    quotedSchema: s,
    schemaCreate: schemaCreateSql(s),
    migrationTableCreate: migrationTableCreateSql(s),
    migrationList: migrationListSql(s),
    migrationRecord: migrationRecordSql(s),
    jobInsertNotify: jobInsertNotifySql(s),
    jobInsertOneNotify: jobInsertOneNotifySql(s),
    jobClaim: jobClaimSql(s),
    jobClaimHandoff: jobClaimHandoffSql(s),
    jobHeartbeat: jobHeartbeatSql(s),
    jobFinishMany: jobFinishManySql(s),
    jobCompleteMany: jobCompleteManySql(s),
    jobRescue: jobRescueSql(s),
    jobCancel: jobCancelSql(s),
    jobRetry: jobRetrySql(s),
    jobDiscard: jobDiscardSql(s),
    jobGet: jobGetSql(s),
    jobList: jobListSql(s),
    jobAttemptList: jobAttemptListSql(s),
    queueList: queueListSql(s),
    queueActivity: queueActivitySql(s),
    queueSetPaused: queueSetPausedSql(s),
  };
}
