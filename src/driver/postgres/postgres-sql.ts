/**
 * The PostgreSQL driver's shared SQL helpers and column lists, and its migration, insert and LISTEN statements.
 * The other statements live in sibling modules built with the helpers exported here: claims and the writes that
 * hold a lease in `postgres-lease-sql.ts`, operator actions and reads in `postgres-job-admin-sql.ts`, schedules,
 * lease locks, keyed inserts and steps in `postgres-schedule-sql.ts`, `postgres-lock-sql.ts`, `postgres-keys-sql.ts`
 * and `postgres-steps-sql.ts`; `postgres-statements.ts` builds the driver's set.
 *
 * Each builder takes `s`, the schema name already checked by `validateSchemaName` and double-quoted by
 * {@link quoteIdentifier}; it is the only identifier ever put into SQL text. Every value is a `$n` parameter.
 * The driver builds all strings once, in its constructor.
 *
 * Conventions:
 * - Time-dependent statements take a `now` parameter (`Date | null`) used as
 *   `coalesce($n::timestamptz, statement_timestamp())` ({@link nowAt}), so tests can pass a fake clock and
 *   production uses database time.
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

/**
 * `now` expression for parameter number `n`: the caller's time, or the database's when NULL. The database's is the
 * statement's start (`statement_timestamp()`, one value throughout the statement, as SQLite's time is), not `now()`,
 * the start of the transaction: inside an application's transaction, or after a keyed insert waited on its key's
 * lock, `now()` lies in the past, and a `delay` counted from it made the job due that much early (at once, in a
 * transaction older than the delay). No statement relies on sharing its time with the others of its transaction;
 * those of one write that must agree (a job row and its attempt row) are one statement.
 */
export function nowAt(n: number): string {
  return `coalesce($${n}::timestamptz, statement_timestamp())`;
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
 * The claim hands each job over as one JSON array in this order (`jobClaimSql` in postgres-lease-sql.ts); `id` as text (a `bigint` may
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

/** The server's version, as a number (`150020`) and as it names itself (`15.2 (Debian …)`), checked before migrating. */
export const SERVER_VERSION_SQL = `SELECT current_setting('server_version_num')::int AS num, current_setting('server_version') AS version`;

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
 * The most bytes of a handed job's row its notification carries ({@link jobInsertOneNotifySql}): the whole payload
 * must stay under PostgreSQL's 8,000 bytes, and the rest of it is at most 55. A larger row is named by id and read
 * by the worker on its LISTEN connection.
 */
export const HANDOFF_INLINE_MAX_BYTES = 7_900;

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
 * slot is taken, and the notification goes to that worker's private channel instead of naming the queue:
 * `[slots left, lease ms, "job id", row]`, the row as its claim would return it (`CLAIM_JSON`), or `null` in its
 * place when that is over {@link HANDOFF_INLINE_MAX_BYTES} (the worker then reads it). One commit instead of two (the
 * enqueue's, then the worker's claim), and no read: the claim's write and fsync saved, and the round trip of
 * reading the row (W3 p50 1.84–1.94 → 1.47–1.60 ms against BullMQ's 1.45–1.61, interleaved runs). A registration written by a
 * version before migration 0017 has no channel: that worker is sent `[worker id, slots left, lease ms, "job id"]`
 * on the shared channel, as that version expects. Otherwise the job is inserted `queued` and the queue woken.
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
  RETURNING w.worker_id, w.slots, w.lease_ms, w.channel
),
ins AS (
INSERT INTO ${s}.jobs (name, queue, payload, state, priority, run_at, max_attempts, schedule_name, tick_at, trace_context,
                   created_at, updated_at, attempt, lease_token, lease_worker, lease_expires_at, started_at)
SELECT $1, $2, $3::jsonb, CASE WHEN ht.worker_id IS NULL THEN 'queued' ELSE 'running' END, $4,
       coalesce($6::timestamptz, t.now + $5::float8 * interval '1 millisecond'), $7, $8, $9::timestamptz, $10::jsonb, t.now, t.now,
       CASE WHEN ht.worker_id IS NULL THEN 0 ELSE 1 END, CASE WHEN ht.worker_id IS NULL THEN 0 ELSE 1 END, ht.worker_id,
       t.now + ht.lease_ms * interval '1 millisecond', CASE WHEN ht.worker_id IS NULL THEN NULL ELSE t.now END
FROM t LEFT JOIN ht ON true
RETURNING ${CLAIM_COLUMNS}, lease_worker
)
SELECT ins.id, ins.run_at, ins.created_at, ins.lease_worker, ins.lease_expires_at,
       pg_notify(coalesce(ht.channel, $12), CASE WHEN ins.lease_worker IS NULL THEN ins.queue
         WHEN ht.channel IS NULL THEN json_build_array(ins.lease_worker, ht.slots, ht.lease_ms, ins.id::text)::text
         ELSE (SELECT concat('[', ht.slots, ',', ht.lease_ms, ',"', ins.id, '",',
                             CASE WHEN octet_length(r.job) <= ${HANDOFF_INLINE_MAX_BYTES} THEN r.job ELSE 'null' END, ']')
               FROM (SELECT json_build_array(${CLAIM_FIELDS.map((f) => (f === 'id' ? 'ins.id::text' : `ins.${f}`)).join(', ')})::text) AS r(job)) END)
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
