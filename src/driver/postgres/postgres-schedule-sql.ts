/**
 * The SQL of the PostgreSQL driver's schedule operations (migration `0002_schedules_and_locks`), and nothing
 * else. Same conventions as `postgres-sql.ts`: each builder takes `s`, the validated, double-quoted schema (the
 * only identifier put into SQL text); every value is a `$n` parameter; time comes in as a `now` parameter used as
 * `coalesce($n::timestamptz, statement_timestamp())` (`nowAt`). The driver builds all strings once, in its constructor.
 * @module
 */
import { jobCancelSql } from './postgres-job-admin-sql.js';
import { nowAt, quoteIdentifier } from './postgres-sql.js';

/**
 * Serializes schedule syncs of one schema for the rest of the transaction. Upserts alone never fail against each
 * other, but two syncs with different lists and `removeMissing` lock rows in different orders (one's upsert,
 * the other's removal) and could deadlock; behind this lock concurrent syncs simply run one after the other.
 * `$1` = schema name (unquoted).
 */
export const SCHEDULE_SYNC_LOCK_SQL = `SELECT pg_advisory_xact_lock(hashtext('warden:schedule-sync:' || $1)::bigint)`;

/**
 * Upserts the code's schedules. A new name is inserted with `next_run_at = firstRunAt`; an existing one is
 * updated only when its hash differs or it was removed (then it is un-removed; `paused` is kept); an unchanged
 * active one is left alone. An updated row gets `next_run_at = firstRunAt` unless it was active and its stored spec
 * has the new spec's timing: the same `cron` and `everyMs` (one of them set in the new spec) and, for a cron pattern,
 * the same `timezone`. Then its ticks are the same and it keeps `next_run_at` (a due tick stays due). The stored
 * spec, not a column of this version's own, because every version writes it with `next_run_at`: a row changed by an
 * older version (a rolling deploy, a rollback) is compared with the timing it was really stored with. NULL-safe: a
 * field the stored spec lacks compares as a change, so the doubtful case resets. Names must be distinct (the driver
 * dedupes); rows are written in name order. Params: `$1` names, `$2` hashes, `$3` specs (JSON text), `$4` first run
 * times, `$5` now.
 */
export function scheduleUpsertSql(s: string): string {
  return `INSERT INTO ${s}.schedules AS sc (name, definition_hash, spec, next_run_at, created_at, updated_at)
SELECT i.name, i.definition_hash, i.spec::jsonb, i.first_run_at, t.now, t.now
FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[]) AS i(name, definition_hash, spec, first_run_at)
CROSS JOIN (SELECT ${nowAt(5)} AS now) t
ORDER BY i.name
ON CONFLICT (name) DO UPDATE
SET definition_hash = excluded.definition_hash, spec = excluded.spec,
    next_run_at = CASE WHEN sc.removed_at IS NULL
        AND coalesce(excluded.spec->>'cron', excluded.spec->>'everyMs') IS NOT NULL
        AND (sc.spec->>'cron') IS NOT DISTINCT FROM (excluded.spec->>'cron')
        AND (sc.spec->>'everyMs') IS NOT DISTINCT FROM (excluded.spec->>'everyMs')
        AND (excluded.spec->>'cron' IS NULL OR (sc.spec->>'timezone') IS NOT DISTINCT FROM (excluded.spec->>'timezone'))
      THEN sc.next_run_at ELSE excluded.next_run_at END,
    removed_at = NULL, updated_at = excluded.updated_at
WHERE sc.definition_hash <> excluded.definition_hash OR sc.removed_at IS NOT NULL`;
}

/**
 * Stores one schedule only if no row of its name exists (never synced); a removed or active one is left as it is.
 * Params: `$1` name, `$2` hash, `$3` spec (JSON text), `$4` first run time, `$5` now.
 */
export function scheduleInsertMissingSql(s: string): string {
  return `INSERT INTO ${s}.schedules (name, definition_hash, spec, next_run_at, created_at, updated_at)
SELECT $1, $2, $3::jsonb, $4, t.now, t.now FROM (SELECT ${nowAt(5)} AS now) t
ON CONFLICT (name) DO NOTHING`;
}

/** Marks every active schedule not in the list removed. Params: `$1` names to keep, `$2` now. */
export function scheduleRemoveMissingSql(s: string): string {
  return `UPDATE ${s}.schedules SET removed_at = ${nowAt(2)}, updated_at = ${nowAt(2)}
WHERE removed_at IS NULL AND NOT (name = ANY($1::text[]))`;
}

/**
 * The read shape of a schedule: the columns of `source` (aliased `sc`; a table, a CTE or a parenthesized
 * subquery) plus its newest tick (by `recorded_at`, then `tick_at`) flattened into `lt_*` columns, with that
 * tick's job's current state. No ORDER BY: callers append it.
 */
function scheduleWithLastTick(s: string, source: string): string {
  return `SELECT sc.name, sc.definition_hash, sc.spec, sc.paused, sc.next_run_at, sc.last_tick_at, sc.created_at, sc.updated_at,
       lt.tick_at AS lt_tick_at, lt.kind AS lt_kind, lt.outcome AS lt_outcome, lt.late AS lt_late,
       lt.job_id AS lt_job_id, lt.job_state AS lt_job_state, lt.actor AS lt_actor, lt.recorded_at AS lt_recorded_at
FROM ${source} sc
LEFT JOIN LATERAL (
  SELECT t.tick_at, t.kind, t.outcome, t.late, t.job_id, t.actor, t.recorded_at, j.state AS job_state
  FROM ${s}.schedule_ticks t LEFT JOIN ${s}.jobs j ON j.id = t.job_id
  WHERE t.schedule_name = sc.name
  ORDER BY t.recorded_at DESC, t.tick_at DESC, t.kind DESC
  LIMIT 1
) lt ON true`;
}

/**
 * Active, unpaused schedules due at `now`, soonest first (names bytewise), with their newest tick.
 * Params: `$1` now, `$2` limit.
 */
export function scheduleDueSql(s: string): string {
  return `${scheduleWithLastTick(s, `(
  SELECT * FROM ${s}.schedules
  WHERE removed_at IS NULL AND NOT paused AND next_run_at <= ${nowAt(1)}
  ORDER BY next_run_at, name COLLATE "C"
  LIMIT $2
)`)}
ORDER BY sc.next_run_at, sc.name COLLATE "C"`;
}

/** Every schedule not removed, by name (bytewise), with its newest tick. No parameters. */
export function scheduleListSql(s: string): string {
  return `${scheduleWithLastTick(s, `(SELECT * FROM ${s}.schedules WHERE removed_at IS NULL)`)}
ORDER BY sc.name COLLATE "C"`;
}

/** One schedule that is not removed, with its newest tick; no row when it is missing or removed. `$1` name. */
export function scheduleGetSql(s: string): string {
  return scheduleWithLastTick(s, `(SELECT * FROM ${s}.schedules WHERE name = $1 AND removed_at IS NULL)`);
}

/** Whether a schedule exists and is not removed (a row or none). `$1` name. */
export function scheduleExistsActiveSql(s: string): string {
  return `SELECT 1 AS present FROM ${s}.schedules WHERE name = $1 AND removed_at IS NULL`;
}

/** Pauses an active schedule; no row when it is missing or removed. Params: `$1` name, `$2` now. */
export function schedulePauseSql(s: string): string {
  return `WITH u AS (
  UPDATE ${s}.schedules SET paused = true, updated_at = ${nowAt(2)}
  WHERE name = $1 AND removed_at IS NULL
  RETURNING *
)
${scheduleWithLastTick(s, 'u')}`;
}

/**
 * Unpauses an active schedule and, if it was paused, sets its `next_run_at`, so ticks during the pause are not
 * misfires; one not paused keeps its `next_run_at` (a tick already due stays due). The SET reads the row as it
 * was. Only while the stored definition hash is `$4`, the one the next run was computed from: a sync that
 * committed another definition meanwhile (the UPDATE re-checks the row it waited for) makes it match nothing. No
 * row when it is missing, removed or changed. Params: `$1` name, `$2` next run (timestamptz or NULL), `$3` now,
 * `$4` expected definition hash.
 */
export function scheduleResumeSql(s: string): string {
  return `WITH u AS (
  UPDATE ${s}.schedules
  SET paused = false, next_run_at = CASE WHEN paused THEN $2::timestamptz ELSE next_run_at END, updated_at = ${nowAt(3)}
  WHERE name = $1 AND removed_at IS NULL AND definition_hash = $4
  RETURNING *
)
${scheduleWithLastTick(s, 'u')}`;
}

/**
 * The compare-and-swap that lets exactly one caller handle a schedule's due ticks: it matches only while the
 * schedule still has this hash and `next_run_at`, is active and unpaused. A concurrent caller with the same
 * expectation waits on the row lock, then re-checks against the committed row and matches nothing. The row
 * lock is held to the end of the transaction, which serializes everything else written for this schedule.
 * `greatest` ignores NULL, so `$5` NULL (no ticks) keeps `last_tick_at`.
 * Params: `$1` name, `$2` definition hash, `$3` expected `next_run_at`, `$4` new `next_run_at` (or NULL),
 * `$5` newest tick (or NULL), `$6` now. Returns the schedule's name when it matched.
 */
export function scheduleSwapSql(s: string): string {
  return `UPDATE ${s}.schedules
SET next_run_at = $4::timestamptz, last_tick_at = greatest(last_tick_at, $5::timestamptz), updated_at = ${nowAt(6)}
WHERE name = $1 AND definition_hash = $2 AND next_run_at = $3::timestamptz AND removed_at IS NULL AND NOT paused
RETURNING name`;
}

/**
 * Records a tick unless a row for it exists (the primary key decides). Params: `$1` schedule, `$2` tick time,
 * `$3` kind, `$4` outcome, `$5` late, `$6` job id (or NULL), `$7` actor (or NULL), `$8` now (`recorded_at`), `$9`
 * the scheduler instance writing it (or NULL). Returns the row when it was inserted, nothing when the tick was
 * already recorded.
 */
export function tickInsertSql(s: string): string {
  return `INSERT INTO ${s}.schedule_ticks (schedule_name, tick_at, kind, outcome, late, job_id, actor, recorded_at, fired_by)
VALUES ($1, $2, $3, $4, $5, $6, $7, ${nowAt(8)}, $9)
ON CONFLICT (schedule_name, tick_at, kind) DO NOTHING
RETURNING tick_at`;
}

/**
 * Waits for any transaction holding a schedule's row (an advance in flight) to end, and holds it for the rest of
 * this one. No row for an unknown schedule. `$1` name.
 */
export function scheduleWaitSql(s: string): string {
  return `SELECT name FROM ${s}.schedules WHERE name = $1 FOR UPDATE`;
}

/**
 * The scheduled ticks among `$3` (timestamps) that scheduler instance `$2` wrote for schedule `$1`. `replaced`: a
 * `fired` tick whose job is not the one it enqueued (that job's schedule or tick differs), so its key replaced a
 * waiting holder's payload; false when the job is gone.
 */
export function ticksWrittenBySql(s: string): string {
  return `SELECT t.tick_at, t.outcome, t.late, t.job_id,
       (t.outcome = 'fired' AND j.id IS NOT NULL AND (j.schedule_name IS DISTINCT FROM t.schedule_name OR j.tick_at IS DISTINCT FROM t.tick_at)) AS replaced
FROM ${s}.schedule_ticks t LEFT JOIN ${s}.jobs j ON j.id = t.job_id
WHERE t.schedule_name = $1 AND t.kind = 'scheduled' AND t.fired_by = $2 AND t.tick_at = ANY ($3::timestamptz[])
ORDER BY t.tick_at`;
}

/** The stored outcome of one tick. Params: `$1` schedule, `$2` tick time, `$3` kind. */
export function tickGetSql(s: string): string {
  return `SELECT outcome, late, job_id FROM ${s}.schedule_ticks WHERE schedule_name = $1 AND tick_at = $2 AND kind = $3`;
}

/** Sets the final outcome of a tick recorded earlier in the same transaction. Params as {@link tickGetSql}, `$4` outcome, `$5` job id. */
export function tickSetOutcomeSql(s: string): string {
  return `UPDATE ${s}.schedule_ticks SET outcome = $4, job_id = $5
WHERE schedule_name = $1 AND tick_at = $2 AND kind = $3`;
}

/** Whether a job of the schedule is in one of the given states (overlap `skip`/`queue-one`). Params: `$1` schedule, `$2` states. */
export function scheduleHasJobInSql(s: string): string {
  return `SELECT EXISTS (SELECT 1 FROM ${s}.jobs WHERE schedule_name = $1 AND state = ANY($2::text[])) AS blocked`;
}

/**
 * Locks an active schedule for a manual trigger (serializing it with advances and other triggers of that
 * schedule); no row when it is missing or removed. `$1` name.
 */
export function scheduleLockActiveSql(s: string): string {
  return `SELECT name FROM ${s}.schedules WHERE name = $1 AND removed_at IS NULL FOR NO KEY UPDATE`;
}

/**
 * The time of a manual trigger: `now` at millisecond precision (so it round-trips through a JS Date into the
 * job's `tick_at`), or the first millisecond after it with no triggered tick yet, so two triggers at one instant
 * (a fake clock, a double click) both get a tick row. NULL only if the whole second after `now` is taken. Run
 * after {@link scheduleLockActiveSql}, in a new statement, so it sees triggers committed while waiting for that
 * lock. Params: `$1` name, `$2` now.
 */
export function triggerTickAtSql(s: string): string {
  return `SELECT c.at AS tick_at
FROM generate_series(0, 999) AS o(ms)
CROSS JOIN LATERAL (SELECT date_trunc('milliseconds', ${nowAt(2)}) + o.ms * interval '1 millisecond' AS at) c
WHERE NOT EXISTS (
  SELECT 1 FROM ${s}.schedule_ticks k WHERE k.schedule_name = $1 AND k.tick_at = c.at AND k.kind = 'triggered'
)
ORDER BY o.ms
LIMIT 1`;
}

/**
 * A schedule's ticks, newest first, with each job's current state. Params: `$1` schedule, `$2` limit.
 */
export function tickListSql(s: string): string {
  return `SELECT t.schedule_name, t.tick_at, t.kind, t.outcome, t.late, t.job_id, t.actor, t.recorded_at, j.state AS job_state
FROM ${s}.schedule_ticks t LEFT JOIN ${s}.jobs j ON j.id = t.job_id
WHERE t.schedule_name = $1
ORDER BY t.tick_at DESC, t.kind DESC
LIMIT $2`;
}

/**
 * A schedule's newest success: its newest `fired` tick (by `tick_at`, then `kind`, as {@link tickListSql} orders
 * them) whose job exists and is `completed`, with that job's `finished_at`; no row when there is none. The job is
 * read by scalar subqueries rather than a join on purpose: PostgreSQL never turns them into a join, so the plan is
 * always a backward walk of the primary key `(schedule_name, tick_at, kind)` that stops at the first completed job,
 * each tick's job read through `jobs_pkey`. A join is planned from statistics: with few completed jobs among many
 * kept it became a parallel hash join reading every job, even for a schedule whose newest tick is the success.
 * Params: `$1` schedule.
 */
export function scheduleLastSuccessSql(s: string): string {
  return `SELECT t.tick_at, t.job_id, (SELECT j.finished_at FROM ${s}.jobs j WHERE j.id = t.job_id) AS finished_at
FROM ${s}.schedule_ticks t
WHERE t.schedule_name = $1 AND t.outcome = 'fired'
  AND (SELECT j.state FROM ${s}.jobs j WHERE j.id = t.job_id) = 'completed'
ORDER BY t.tick_at DESC, t.kind DESC
LIMIT 1`;
}

/**
 * A range of a schedule's `scheduled` ticks, oldest first: `$2 < tick_at <= $3` (`$2` NULL: no lower bound), at most
 * `$4`, with each job's current state. The plan is a forward range scan of the primary key
 * `(schedule_name, tick_at, kind)` that stops after `$4` rows, so the ticks before `$2` (every tick up to the last
 * success, for the missed-run alert) are never read. The job's state is read by a scalar subquery through
 * `jobs_pkey` for the reason given at {@link scheduleLastSuccessSql}: a join could be planned as a hash join over
 * every job. Params: `$1` schedule, `$2` after (or NULL), `$3` through, `$4` limit.
 */
export function ticksAfterSql(s: string): string {
  return `SELECT t.schedule_name, t.tick_at, t.kind, t.outcome, t.late, t.job_id, t.actor, t.recorded_at,
       (SELECT j.state FROM ${s}.jobs j WHERE j.id = t.job_id) AS job_state
FROM ${s}.schedule_ticks t
WHERE t.schedule_name = $1 AND t.kind = 'scheduled'
  AND t.tick_at > coalesce($2::timestamptz, '-infinity'::timestamptz) AND t.tick_at <= $3::timestamptz
ORDER BY t.tick_at
LIMIT $4`;
}

/** Every schedule statement, built once per driver (see {@link buildPostgresScheduleStatements}). */
export interface PostgresScheduleStatements {
  scheduleUpsert: string;
  scheduleInsertMissing: string;
  scheduleRemoveMissing: string;
  scheduleDue: string;
  scheduleList: string;
  scheduleGet: string;
  scheduleExistsActive: string;
  schedulePause: string;
  scheduleResume: string;
  scheduleSwap: string;
  scheduleCancelActive: string;
  scheduleHasJobIn: string;
  scheduleLockActive: string;
  tickInsert: string;
  tickGet: string;
  tickSetOutcome: string;
  tickList: string;
  scheduleLastSuccess: string;
  ticksAfter: string;
  triggerTickAt: string;
  scheduleWait: string;
  ticksWrittenBy: string;
}

/** Builds every schedule statement for a schema already checked by `validateSchemaName`. */
export function buildPostgresScheduleStatements(schema: string): PostgresScheduleStatements {
  const s = quoteIdentifier(schema);
  return {
    scheduleUpsert: scheduleUpsertSql(s),
    scheduleInsertMissing: scheduleInsertMissingSql(s),
    scheduleRemoveMissing: scheduleRemoveMissingSql(s),
    scheduleDue: scheduleDueSql(s),
    scheduleList: scheduleListSql(s),
    scheduleGet: scheduleGetSql(s),
    scheduleExistsActive: scheduleExistsActiveSql(s),
    schedulePause: schedulePauseSql(s),
    scheduleResume: scheduleResumeSql(s),
    scheduleSwap: scheduleSwapSql(s),
    // Exactly jobCancel's effects, for every active job of the schedule (overlap `replace`).
    scheduleCancelActive: jobCancelSql(s, 'schedule_name'),
    scheduleHasJobIn: scheduleHasJobInSql(s),
    scheduleLockActive: scheduleLockActiveSql(s),
    tickInsert: tickInsertSql(s),
    tickGet: tickGetSql(s),
    tickSetOutcome: tickSetOutcomeSql(s),
    tickList: tickListSql(s),
    scheduleLastSuccess: scheduleLastSuccessSql(s),
    ticksAfter: ticksAfterSql(s),
    triggerTickAt: triggerTickAtSql(s),
    scheduleWait: scheduleWaitSql(s),
    ticksWrittenBy: ticksWrittenBySql(s),
  };
}
