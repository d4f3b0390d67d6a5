/**
 * The SQL of PostgreSQL retention (`postgres-retention.ts`): one bounded autocommit statement per operation, built
 * once per schema.
 * @module
 */
import { msAt, nowAt, quoteIdentifier } from './postgres-sql.js';

/** The retention statements of one schema. */
export interface PostgresRetentionStatements {
  jobPrune: string;
  jobKeyPrune: string;
  scheduleTickPrune: string;
}

/**
 * Up to `$5` jobs in state `$1` finished at least `$2` ms before now (`$6`), name by name, each name's oldest first:
 * the names `$3`, or (NULL) every name with finished jobs in that state; never the names `$4` (NULL: none left out)
 * nor a schedule's newest completed job. Rows locked by another transaction (an operator retry of a dead job) are
 * skipped. Frees the keys they held. Returns the count.
 *
 * Each name's jobs are one range of `jobs_finished_name_idx (state, name, finished_at)`, so a statement reads about
 * the rows it deletes, however many jobs of other names are kept (a type's own shorter retention beside the global
 * one, a type kept forever): filtering names row by row along `(state, finished_at)` read every kept job of the other
 * names in every batch. With no names given, the names are found by skipping through the same index, one probe per
 * name (`seen`). A name's range stops at the age cut-off, so a name with nothing old enough costs one probe.
 *
 * The candidates are a MATERIALIZED CTE, chosen once: as `id IN (SELECT … LIMIT … FOR UPDATE SKIP LOCKED)` the
 * planner may rescan the subquery for every outer row, each rescan skipping the rows already deleted and picking
 * new ones, so the limit would not hold.
 */
export function jobPruneSql(s: string): string {
  return `WITH RECURSIVE seen(name) AS (
  SELECT (SELECT f.name FROM ${s}.jobs f WHERE f.state = $1 AND f.finished_at IS NOT NULL ORDER BY f.name LIMIT 1)
  WHERE $3::text[] IS NULL
  UNION ALL
  SELECT (SELECT f.name FROM ${s}.jobs f WHERE f.state = $1 AND f.finished_at IS NOT NULL AND f.name > seen.name ORDER BY f.name LIMIT 1)
  FROM seen WHERE seen.name IS NOT NULL
),
n AS (
  SELECT seen.name FROM seen WHERE seen.name IS NOT NULL
  UNION
  SELECT unnest($3::text[])
),
c AS MATERIALIZED (
  SELECT x.id FROM n CROSS JOIN LATERAL (
    SELECT j.id FROM ${s}.jobs j
    WHERE j.state = $1 AND j.name = n.name AND j.finished_at IS NOT NULL AND j.finished_at <= ${nowAt(6)} - ${msAt(2)}
      AND NOT (j.state = 'completed' AND j.schedule_name IS NOT NULL AND j.id = (
        SELECT max(k.id) FROM ${s}.jobs k WHERE k.schedule_name = j.schedule_name AND k.state = 'completed'))
    ORDER BY j.finished_at
    LIMIT $5
    FOR UPDATE SKIP LOCKED
  ) x
  WHERE $4::text[] IS NULL OR NOT (n.name = ANY($4::text[]))
  LIMIT $5
),
d AS (
  DELETE FROM ${s}.jobs j USING c WHERE j.id = c.id AND j.state = $1
  RETURNING j.id, j.key
),
k AS (
  DELETE FROM ${s}.job_keys k USING d WHERE d.key IS NOT NULL AND k.key = d.key AND k.job_id = d.id
),
-- Attempts go with their job explicitly (migration 0008 dropped the foreign key); a job in a final state gets no
-- new attempt, so none can appear after this statement's snapshot.
a AS (
  DELETE FROM ${s}.job_attempts x USING d WHERE x.job_id = d.id
)
SELECT count(*)::int AS deleted FROM d`;
}

/**
 * Looks at up to `$2` key rows after `$1` (NULL: from the first), in key order, and deletes those whose holder no
 * longer exists, each only if it still names that holder. Returns the count and the last key looked at.
 */
export function jobKeyPruneSql(s: string): string {
  return `WITH w AS MATERIALIZED (
  SELECT c.key, c.job_id FROM ${s}.job_keys c WHERE $1::text IS NULL OR c.key > $1::text ORDER BY c.key LIMIT $2
),
d AS (
  DELETE FROM ${s}.job_keys k USING w
  WHERE k.key = w.key AND k.job_id = w.job_id AND NOT EXISTS (SELECT 1 FROM ${s}.jobs j WHERE j.id = w.job_id)
  RETURNING k.key
)
SELECT (SELECT count(*)::int FROM d) AS deleted, (SELECT count(*)::int FROM w) AS seen,
       (SELECT w.key FROM w ORDER BY w.key DESC LIMIT 1) AS last_key`;
}

/**
 * Up to `$2` ticks recorded at least `$1` ms before now (`$3`) that are neither their schedule's newest (in the order
 * of `schedule_ticks_recent_idx`: `recorded_at, tick_at, kind`) nor among the ticks its missed-run check reads (`k`):
 * from its last success, the tick of its newest completed job (which `jobPruneSql` keeps, so the newest success, found
 * by walking back from the newest tick, is never earlier), through the `$4`th scheduled tick after that; from its
 * oldest tick when it has none. Those are kept whatever their age: a schedule whose `expect.within` is longer than the
 * tick retention, or that has been failing longer, would otherwise lose its last success and the ticks it missed
 * (the alert would never open). `k` costs, per schedule, two index probes and at most `$4` ticks of one that is
 * failing; the kept ticks at the old end of `schedule_ticks_recorded_idx` (at most `$4` + 2 per schedule) are read
 * again by each batch.
 */
export function scheduleTickPruneSql(s: string): string {
  return `WITH k AS MATERIALIZED (
  SELECT e.name, f.tick_at AS from_at,
         (SELECT a.tick_at FROM ${s}.schedule_ticks a
          WHERE a.schedule_name = e.name AND a.kind = 'scheduled' AND a.tick_at > coalesce(f.tick_at, '-infinity'::timestamptz)
          ORDER BY a.tick_at OFFSET $4 - 1 LIMIT 1) AS through_at
  FROM ${s}.schedules e
  LEFT JOIN LATERAL (
    SELECT j.tick_at FROM ${s}.jobs j WHERE j.schedule_name = e.name AND j.state = 'completed' ORDER BY j.id DESC LIMIT 1
  ) f ON true
),
o AS MATERIALIZED (
  SELECT c.schedule_name, c.tick_at, c.kind FROM ${s}.schedule_ticks c LEFT JOIN k ON k.name = c.schedule_name
  WHERE c.recorded_at <= ${nowAt(3)} - ${msAt(1)}
    AND EXISTS (SELECT 1 FROM ${s}.schedule_ticks n WHERE n.schedule_name = c.schedule_name
                AND (n.recorded_at, n.tick_at, n.kind) > (c.recorded_at, c.tick_at, c.kind))
    AND NOT (k.name IS NOT NULL AND c.tick_at >= coalesce(k.from_at, '-infinity'::timestamptz)
             AND (k.through_at IS NULL OR c.tick_at <= k.through_at))
  LIMIT $2
)
DELETE FROM ${s}.schedule_ticks t USING o
WHERE t.schedule_name = o.schedule_name AND t.tick_at = o.tick_at AND t.kind = o.kind`;
}

const cache = new Map<string, PostgresRetentionStatements>();

/** The statements for a schema already checked by `validateSchemaName`, built once per schema. */
export function retentionStatements(schema: string): PostgresRetentionStatements {
  let statements = cache.get(schema);
  if (!statements) {
    const s = quoteIdentifier(schema);
    statements = { jobPrune: jobPruneSql(s), jobKeyPrune: jobKeyPruneSql(s), scheduleTickPrune: scheduleTickPruneSql(s) };
    cache.set(schema, statements);
  }
  return statements;
}
