/**
 * The SQL of the SQLite driver's memoized steps and checkpoints (`sqlite-steps.ts`), and nothing else. Same
 * conventions as `sqlite-sql.ts`. Both writes carry the lease guard of every post-claim write
 * (`id AND lease_token AND state = 'running'`) and run inside a write transaction (the driver's `BEGIN IMMEDIATE`
 * or the caller's), so nothing can rescue or cancel the job between the guard and the write.
 * @module
 */
import { NOW } from './sqlite-sql.js';

/**
 * Records a step's result while the lease holds: one row, or none (`changes` = 0) when the lease is stale. A
 * second row for one `(job_id, name)` fails on the primary key. Params: `@id, @leaseToken, @name, @result`
 * (JSON or NULL), `@attempt, @now`.
 */
export const STEP_RECORD = `
INSERT INTO job_steps (job_id, name, result, attempt, lease_token, created_at)
SELECT id, @name, @result, @attempt, lease_token, ${NOW}
FROM jobs WHERE id = @id AND lease_token = @leaseToken AND state = 'running'`;

/** A job's steps, oldest first (name breaks ties within one millisecond). Params: `@id`. */
export const STEP_LIST = `SELECT * FROM job_steps WHERE job_id = @id ORDER BY created_at, name`;

/**
 * Saves a checkpoint and its progress while the lease holds (`changes` = 0 when stale). Params: `@id,
 * @leaseToken, @checkpoint` (JSON), `@progressDone, @progressTotal` (or NULL), `@now`.
 */
export const JOB_CHECKPOINT = `
UPDATE jobs
SET checkpoint = @checkpoint,
    progress_done = @progressDone,
    progress_total = @progressTotal,
    checkpoint_at = ${NOW},
    updated_at = ${NOW}
WHERE id = @id AND lease_token = @leaseToken AND state = 'running'`;
