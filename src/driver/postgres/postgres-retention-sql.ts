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
 * Up to `$5` jobs in state `$1` finished at least `$2` ms before now (`$6`), oldest first; `$3` names to keep to
 * and `$4` names to leave out (NULL: no filter); never a schedule's newest completed job. Rows locked by another
 * transaction (an operator retry of a dead job) are skipped. Frees the keys they held. Returns the count.
 *
 * The candidates are a MATERIALIZED CTE, chosen once: as `id IN (SELECT … LIMIT … FOR UPDATE SKIP LOCKED)` the
 * planner may rescan the subquery for every outer row, each rescan skipping the rows already deleted and picking
 * new ones, so the limit would not hold.
 */
export function jobPruneSql(s: string): string {
  return `WITH c AS MATERIALIZED (
  SELECT j.id FROM ${s}.jobs j
  WHERE j.state = $1 AND j.finished_at <= ${nowAt(6)} - ${msAt(2)}
    AND ($3::text[] IS NULL OR j.name = ANY($3::text[]))
    AND ($4::text[] IS NULL OR NOT (j.name = ANY($4::text[])))
    AND NOT (j.state = 'completed' AND j.schedule_name IS NOT NULL AND j.id = (
      SELECT max(n.id) FROM ${s}.jobs n WHERE n.schedule_name = j.schedule_name AND n.state = 'completed'))
  ORDER BY j.finished_at
  LIMIT $5
  FOR UPDATE SKIP LOCKED
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
 * Up to `$2` ticks recorded at least `$1` ms before now (`$3`) that are not their schedule's newest (in the order
 * of `schedule_ticks_recent_idx`: `recorded_at, tick_at, kind`).
 */
export function scheduleTickPruneSql(s: string): string {
  return `WITH o AS MATERIALIZED (
  SELECT c.schedule_name, c.tick_at, c.kind FROM ${s}.schedule_ticks c
  WHERE c.recorded_at <= ${nowAt(3)} - ${msAt(1)}
    AND EXISTS (SELECT 1 FROM ${s}.schedule_ticks n WHERE n.schedule_name = c.schedule_name
                AND (n.recorded_at, n.tick_at, n.kind) > (c.recorded_at, c.tick_at, c.kind))
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
