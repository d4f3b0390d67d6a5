/**
 * The SQL of a running attempt's lease-guarded writes besides heartbeat and finish: memoized steps and checkpoints
 * (migration `0004_idempotency`) and handing back never-started claims. Same conventions as `postgres-sql.ts`. Each
 * write is guarded by (id, lease token, running) like every write after a claim: a write by an attempt that lost
 * its lease matches no row and is reported stale.
 * @module
 */
import { nowAt, quoteIdentifier } from './postgres-sql.js';

/**
 * Records a step's result while the lease is held. The guard reads the job row `FOR SHARE`, so a concurrent
 * rescue, cancel or finish (which lock it `FOR UPDATE`) either committed before the check (no row: stale) or waits
 * until this transaction ends: the step can never be recorded for an attempt that already lost its lease.
 * A second row for one `(job_id, name)` fails on the primary key. Params: `$1` id, `$2` lease token, `$3` name,
 * `$4` result (JSON text, NULL when the step returned nothing), `$5` attempt, `$6` now. Returns `job_id` when applied.
 */
export function jobStepRecordSql(s: string): string {
  return `INSERT INTO ${s}.job_steps (job_id, name, result, attempt, lease_token, created_at)
SELECT j.id, $3, $4::jsonb, $5, $2, ${nowAt(6)}
FROM (SELECT id FROM ${s}.jobs WHERE id = $1 AND lease_token = $2 AND state = 'running' FOR SHARE) AS j
RETURNING job_id`;
}

/**
 * A job's steps, oldest first (ties by name, bytewise as on SQLite). `result_missing` tells a step that returned
 * nothing (SQL NULL) from one that returned `null` (JSON null): `pg` parses both to null. `$1` id.
 */
export function jobStepListSql(s: string): string {
  return `SELECT job_id, name, result, result IS NULL AS result_missing, attempt, lease_token, created_at
FROM ${s}.job_steps WHERE job_id = $1
ORDER BY created_at, name COLLATE "C"`;
}

/**
 * Saves a checkpoint and progress while the lease is held. Params: `$1` id, `$2` lease token, `$3` checkpoint (JSON
 * text), `$4` progress done, `$5` progress total (or NULL), `$6` now. Returns `id` when applied.
 */
export function jobCheckpointSql(s: string): string {
  return `UPDATE ${s}.jobs
SET checkpoint = $3::jsonb, progress_done = $4, progress_total = $5, checkpoint_at = ${nowAt(6)}, updated_at = ${nowAt(6)}
WHERE id = $1 AND lease_token = $2 AND state = 'running'
RETURNING id`;
}

/**
 * Hands back claimed jobs that never started: `queued` again with the claim's attempt taken back (and its start time
 * when it was the first), lease cleared, `lease_token` and `run_at` kept, no attempt row. Rows are locked in id order
 * first, as the heartbeat and finish do, so overlapping writes from two connections cannot deadlock. Their queues
 * are woken (at commit). Ids must be distinct. Params: `$1` ids, `$2` tokens, `$3` now, `$4` channel. Returns the
 * released `(id, lease_token)`.
 */
export function jobReleaseSql(s: string): string {
  return `WITH l AS (
  SELECT j.id FROM ${s}.jobs j
  JOIN unnest($1::bigint[], $2::bigint[]) AS l(id, token) ON j.id = l.id AND j.lease_token = l.token
  WHERE j.state = 'running'
  ORDER BY j.id
  FOR UPDATE OF j
),
u AS (
  UPDATE ${s}.jobs j
  SET state = 'queued', attempt = j.attempt - 1, lease_worker = NULL, lease_expires_at = NULL,
      started_at = CASE WHEN j.attempt = 1 THEN NULL ELSE j.started_at END, updated_at = ${nowAt(3)}
  FROM l
  WHERE j.id = l.id
  RETURNING j.id, j.lease_token, j.queue
)
SELECT u.id, u.lease_token, (SELECT count(*) FROM (SELECT pg_notify($4, q) FROM (SELECT DISTINCT queue FROM u) AS d(q)) AS n) AS notified
FROM u`;
}

/** The running jobs leased to a worker, through the partial index of running jobs. `$1` worker id, `$2` limit. */
export function jobLeasedToSql(s: string): string {
  return `SELECT id, lease_token FROM ${s}.jobs WHERE state = 'running' AND lease_worker = $1 ORDER BY id LIMIT $2`;
}

/** Every step, checkpoint and release statement, built once per driver. */
export interface PostgresStepStatements {
  jobStepRecord: string;
  jobStepList: string;
  jobCheckpoint: string;
  jobRelease: string;
  jobLeasedTo: string;
}

/** Builds the step, checkpoint and release statements for a schema already checked by `validateSchemaName`. */
export function buildPostgresStepStatements(schema: string): PostgresStepStatements {
  const s = quoteIdentifier(schema);
  return {
    jobStepRecord: jobStepRecordSql(s),
    jobStepList: jobStepListSql(s),
    jobCheckpoint: jobCheckpointSql(s),
    jobRelease: jobReleaseSql(s),
    jobLeasedTo: jobLeasedToSql(s),
  };
}
