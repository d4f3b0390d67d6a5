/**
 * The SQL of keyed inserts and key ownership in the PostgreSQL driver (migration `0004_idempotency`): the
 * `job_keys` row lock, the keyed insert round, and the keyed operator retry. Same conventions as
 * `postgres-sql.ts`.
 *
 * A key's `job_keys` row names its holder, the job deduplicated against. Every writer that may change the holder
 * (keyed insert, operator retry) first locks that row, so writers of one key are serialized across processes and
 * each decides against the holder as the previous writer committed it.
 * @module
 */
import { ACTIVE, JOB_COLUMNS, jobColumnsOf, nowAt, quoteIdentifier } from './postgres-sql.js';

/**
 * Locks the `job_keys` rows of the given keys for the rest of the transaction, creating missing ones with no
 * holder (`job_id = 0`, an id no job has). A row being inserted or locked by another transaction makes this wait
 * for that transaction; the no-op `DO UPDATE` then locks the committed row. Keys are locked in the order given,
 * which the caller sorts, so two batches with overlapping keys lock them in the same order and cannot deadlock.
 * Keys must be distinct (one statement cannot update a row twice). Params: `$1` keys.
 */
export function keyLockSql(s: string): string {
  return `INSERT INTO ${s}.job_keys (key, job_id)
SELECT u.key, 0 FROM unnest($1::text[]) WITH ORDINALITY AS u(key, ord)
ORDER BY u.ord
ON CONFLICT (key) DO UPDATE SET key = EXCLUDED.key`;
}

/**
 * One round of a batch insert: inputs with distinct keys (each key already locked by {@link keyLockSql}) and
 * unkeyed inputs. Runs after the lock statement, so its snapshot includes every holder committed by the writers
 * it waited for.
 * - `d`: inputs whose key's holder is a duplicate (state in the input's states and, with a window, created less
 *   than `window_ms` before now).
 * - `r`: of those, the ones asking to replace a waiting holder get its payload and due time replaced. The update
 *   re-checks that the holder's state is still the one decided on: a holder claimed (or otherwise moved) since this
 *   statement's snapshot is left alone and comes back as a plain duplicate in a waiting state, which the driver
 *   treats as "decide again" in the next round.
 * - `n`: every other input is inserted, in input order (so ids follow it), and becomes its key's holder (`holders`).
 * - Queues that got a job, or a replaced job that is now due, are woken (delivered at commit).
 * Every input yields one row: `outcome` `inserted` (ord NULL: matched back by id order), `replaced` or `duplicate`
 * (with the input's `ord`), then the job's columns (`JOB_COLUMNS`: a fixed list, as the statement is prepared),
 * then `round_now`: the statement's time as exact UTC ISO-8601 text (microseconds kept, whatever the session's
 * `DateStyle` or `TimeZone`), which the driver passes as `$11` to the later rounds of a call made at database time,
 * so one call has one time (see `insertJobs`).
 * Keys and jobs are joined with `= ANY (ARRAY[…])`, not `=`: no condition is then hashable or mergeable, so the
 * only plan is a lookup by primary key per input. The statement runs on a generic plan (see
 * `PostgresConnection.genericTransaction`), made once with whatever statistics there were: with plain equalities, a
 * plan made while `job_keys` was nearly empty hash-joined it by a sequential scan of every key, forever after
 * (10 ms a call at 40,000 keys instead of 0.4).
 * Params: `$1`…`$11` as `jobInsertSql`, `$12` windows (ms or NULL), `$13` duplicate states (comma-separated; NULL
 * for unkeyed), `$14` replace flags, `$15` the wake-up channel, `$16` trace contexts (JSON text or NULL).
 */
export function jobInsertRoundSql(s: string): string {
  return `WITH t AS (
  SELECT s.now, to_char(s.now AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS now_text FROM (SELECT ${nowAt(11)} AS now) s
),
i AS (
  SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int4[], $5::float8[], $6::timestamptz[], $7::int4[],
                       $8::text[], $9::text[], $10::timestamptz[], $12::float8[], $13::text[], $14::bool[], $16::text[])
    WITH ORDINALITY AS i(name, queue, payload, priority, delay_ms, run_at, max_attempts, key, schedule_name, tick_at,
                         window_ms, states, replace, trace_context, ord)
),
d AS (
  SELECT i.ord, j.id, j.state
  FROM i
  JOIN ${s}.job_keys k ON k.key = ANY (ARRAY[i.key])
  JOIN ${s}.jobs j ON j.id = ANY (ARRAY[k.job_id])
  CROSS JOIN t
  WHERE j.state = ANY(string_to_array(i.states, ','))
    AND (i.window_ms IS NULL OR j.created_at > t.now - i.window_ms * interval '1 millisecond')
),
r AS (
  UPDATE ${s}.jobs j
  SET payload = i.payload::jsonb, run_at = coalesce(i.run_at, t.now + i.delay_ms * interval '1 millisecond'), updated_at = t.now
  FROM d JOIN i ON i.ord = d.ord CROSS JOIN t
  WHERE j.id = ANY (ARRAY[d.id]) AND i.replace AND d.state IN ('queued','retrying') AND j.state = d.state
  RETURNING d.ord, ${jobColumnsOf('j')}
),
n AS (
  INSERT INTO ${s}.jobs (name, queue, payload, state, priority, run_at, max_attempts, key, schedule_name, tick_at,
                         trace_context, created_at, updated_at)
  SELECT i.name, i.queue, i.payload::jsonb, 'queued', i.priority,
         coalesce(i.run_at, t.now + i.delay_ms * interval '1 millisecond'),
         i.max_attempts, i.key, i.schedule_name, i.tick_at, i.trace_context::jsonb, t.now, t.now
  FROM i CROSS JOIN t
  WHERE NOT EXISTS (SELECT 1 FROM d WHERE d.ord = i.ord)
  ORDER BY i.ord
  RETURNING ${JOB_COLUMNS}
),
holders AS (
  UPDATE ${s}.job_keys k SET job_id = n.id FROM n WHERE k.key = ANY (ARRAY[n.key])
),
w AS (
  SELECT queue FROM n UNION SELECT r.queue FROM r CROSS JOIN t WHERE r.run_at <= t.now
),
x AS (
  SELECT 'inserted' AS outcome, NULL::bigint AS ord, n.* FROM n
  UNION ALL
  SELECT 'replaced', r.* FROM r
  UNION ALL
  SELECT 'duplicate', d.ord, ${jobColumnsOf('j')} FROM d JOIN ${s}.jobs j ON j.id = ANY (ARRAY[d.id])
  WHERE NOT EXISTS (SELECT 1 FROM r WHERE r.ord = d.ord)
)
SELECT x.*, t.now_text AS round_now, (SELECT count(*) FROM (SELECT pg_notify($15, w.queue) FROM w) AS q) AS notified
FROM x CROSS JOIN t`;
}

/** A job's key and state, or no row when the job does not exist. `$1` id. */
export function jobKeyOfSql(s: string): string {
  return `SELECT key, state FROM ${s}.jobs WHERE id = $1`;
}

/**
 * Operator retry of a keyed job, run with its key's row locked ({@link keyLockSql}) in the same transaction: a
 * `dead` or `retrying` job becomes `queued`, due now, with room for one more attempt (as `jobRetrySql`), unless it
 * would make a second active job with its key.
 * - `j` locks the job's row, so its state cannot move between the conflict test and the update (a `retrying` job
 *   claimed, failed and dead meanwhile is tested as `dead`).
 * - `conflict`: for a `dead` job, the lowest-id other job with the same key in an active state, whichever job the
 *   key row names: with `unique.replace` or custom `unique.states` a job can still run after a newer one took the
 *   key, so the key row's holder is not the only active job that can have the key. A `retrying` job is active
 *   already; retrying it adds none, so it never conflicts. Active jobs of a key appear only through writers that
 *   lock the key row first (keyed insert, this retry), and this statement's snapshot is taken after that lock is
 *   held, so no other active job of the key can appear unseen before the commit.
 * - `u`: the update, only without a conflict; `holder`: the retried job becomes the key's holder unless another
 *   active job holds it (a retried `retrying` job then leaves the newer holder in place, which later inserts go
 *   on deduplicating against).
 * Always exactly one row: `conflict_id` (the conflicting job, or NULL) and the retried job's columns, all NULL when
 * nothing was updated (a conflict, or the job missing or not `dead`/`retrying`: the driver re-reads to tell which).
 * Params: `$1` id, `$2` now.
 */
export function jobRetryKeyedSql(s: string): string {
  return `WITH j AS (
  SELECT id, key, state FROM ${s}.jobs WHERE id = $1 AND state IN ('dead','retrying') FOR UPDATE
),
conflict AS (
  SELECT o.id FROM j JOIN ${s}.jobs o ON o.key = j.key
  WHERE j.state = 'dead' AND o.id <> j.id AND o.state IN ${ACTIVE}
  ORDER BY o.id
  LIMIT 1
),
u AS (
  UPDATE ${s}.jobs x
  SET state = 'queued', run_at = ${nowAt(2)}, max_attempts = greatest(x.max_attempts, x.attempt + 1), lost_count = 0,
      finished_at = NULL, updated_at = ${nowAt(2)}
  FROM j
  WHERE x.id = j.id AND NOT EXISTS (SELECT 1 FROM conflict)
  RETURNING x.*
),
holder AS (
  UPDATE ${s}.job_keys k SET job_id = u.id FROM u
  WHERE k.key = u.key
    AND NOT EXISTS (SELECT 1 FROM ${s}.jobs h WHERE h.id = k.job_id AND h.id <> u.id AND h.state IN ${ACTIVE})
)
SELECT conflict.id AS conflict_id, u.*
FROM (SELECT 1) AS one LEFT JOIN conflict ON true LEFT JOIN u ON true`;
}

/**
 * The fast path of a keyed insert whose holder is already a duplicate: reads each input's holder without locking
 * and returns those that are duplicates under the input's policy, by the same test as `jobInsertRoundSql`. A
 * holder seen here was a duplicate at that instant, so answering with it is as correct as the locked path; any
 * input not answered goes through the locked path. Params: `$1` keys, `$2` windows (ms or NULL), `$3` states
 * (comma-separated), `$4` now. Returns `ord` (1-based input position) and the holder's columns. Joined with
 * `= ANY (ARRAY[…])` for the reason {@link jobInsertRoundSql} gives: prepared, it may switch to a generic plan.
 */
export function keyDuplicatesSql(s: string): string {
  return `SELECT i.ord, ${jobColumnsOf('j')} FROM unnest($1::text[], $2::bigint[], $3::text[]) WITH ORDINALITY AS i(key, window_ms, states, ord)
JOIN ${s}.job_keys k ON k.key = ANY (ARRAY[i.key])
JOIN ${s}.jobs j ON j.id = ANY (ARRAY[k.job_id])
WHERE j.state = ANY (string_to_array(i.states, ','))
  AND (i.window_ms IS NULL OR j.created_at > ${nowAt(4)} - i.window_ms * interval '1 millisecond')`;
}

/** Every keyed-insert and key-ownership statement, built once per driver. */
export interface PostgresKeyStatements {
  keyDuplicates: string;
  keyLock: string;
  jobInsertRound: string;
  jobKeyOf: string;
  jobRetryKeyed: string;
}

/** Builds the key statements for a schema already checked by `validateSchemaName`. */
export function buildPostgresKeyStatements(schema: string): PostgresKeyStatements {
  const s = quoteIdentifier(schema);
  return {
    keyDuplicates: keyDuplicatesSql(s),
    keyLock: keyLockSql(s),
    jobInsertRound: jobInsertRoundSql(s),
    jobKeyOf: jobKeyOfSql(s),
    jobRetryKeyed: jobRetryKeyedSql(s),
  };
}
