/**
 * PostgreSQL migrations: numbered, append-only. Never edit a released migration; add a new one.
 * `{{schema}}` is replaced by the validated schema name, double-quoted.
 * @module
 */

/** One migration step. */
export interface Migration {
  /** e.g. `"0001_initial"`; sorts in apply order. */
  name: string;
  sql: string;
}

/** Every PostgreSQL migration, in order. */
export const POSTGRES_MIGRATIONS: readonly Migration[] = [
  {
    name: '0001_initial',
    sql: `
CREATE TABLE {{schema}}.jobs (
  id               bigserial PRIMARY KEY,
  name             text NOT NULL,
  queue            text NOT NULL,
  payload          jsonb NOT NULL,
  state            text NOT NULL DEFAULT 'queued'
                   CHECK (state IN ('queued','retrying','running','completed','dead','cancelled')),
  priority         integer NOT NULL DEFAULT 0,
  run_at           timestamptz NOT NULL,
  attempt          integer NOT NULL DEFAULT 0,
  max_attempts     integer NOT NULL CHECK (max_attempts >= 1),
  lost_count       integer NOT NULL DEFAULT 0,
  lease_token      bigint NOT NULL DEFAULT 0,
  lease_worker     text,
  lease_expires_at timestamptz,
  started_at       timestamptz,
  key              text,
  last_error       jsonb,
  created_at       timestamptz NOT NULL,
  updated_at       timestamptz NOT NULL,
  finished_at      timestamptz
);
-- The claim query walks this index in order: due jobs of a queue, lowest priority number first.
CREATE INDEX jobs_claim_idx ON {{schema}}.jobs (queue, priority, run_at, id) WHERE state IN ('queued','retrying');
-- Rescue scans only running jobs by lease expiry.
CREATE INDEX jobs_lease_idx ON {{schema}}.jobs (lease_expires_at) WHERE state = 'running';
-- Dedup: at most one active job per key. Enforced here, never by read-then-write.
CREATE UNIQUE INDEX jobs_key_active_idx ON {{schema}}.jobs (key) WHERE key IS NOT NULL AND state IN ('queued','retrying','running');
CREATE INDEX jobs_state_id_idx ON {{schema}}.jobs (state, id);

CREATE TABLE {{schema}}.job_attempts (
  job_id       bigint NOT NULL REFERENCES {{schema}}.jobs (id) ON DELETE CASCADE,
  attempt      integer NOT NULL,
  lease_token  bigint NOT NULL,
  worker_id    text,
  started_at   timestamptz,
  finished_at  timestamptz NOT NULL,
  outcome      text NOT NULL CHECK (outcome IN ('completed','failed','timeout','lost','aborted','invalid','cancelled')),
  error        jsonb,
  PRIMARY KEY (job_id, lease_token)
);

CREATE TABLE {{schema}}.queues (
  name        text PRIMARY KEY,
  paused      boolean NOT NULL DEFAULT false,
  updated_at  timestamptz NOT NULL
);
`,
  },
  {
    name: '0002_schedules_and_locks',
    sql: `
-- Jobs enqueued by a schedule carry it, so overlap policies can find the previous run of a schedule.
ALTER TABLE {{schema}}.jobs ADD COLUMN schedule_name text, ADD COLUMN tick_at timestamptz;
CREATE INDEX jobs_schedule_active_idx ON {{schema}}.jobs (schedule_name, state)
  WHERE schedule_name IS NOT NULL AND state IN ('queued','retrying','running');

CREATE TABLE {{schema}}.schedules (
  name             text PRIMARY KEY,
  definition_hash  text NOT NULL,
  spec             jsonb NOT NULL,
  paused           boolean NOT NULL DEFAULT false,
  -- The next tick to handle; the compare-and-swap on this column is what lets exactly one instance handle it.
  next_run_at      timestamptz,
  last_tick_at     timestamptz,
  removed_at       timestamptz,
  created_at       timestamptz NOT NULL,
  updated_at       timestamptz NOT NULL
);
CREATE INDEX schedules_due_idx ON {{schema}}.schedules (next_run_at) WHERE NOT paused AND removed_at IS NULL;

-- One row per handled tick. The primary key makes a second insert for the same tick impossible.
CREATE TABLE {{schema}}.schedule_ticks (
  schedule_name  text NOT NULL,
  tick_at        timestamptz NOT NULL,
  kind           text NOT NULL CHECK (kind IN ('scheduled','triggered')),
  outcome        text NOT NULL CHECK (outcome IN ('fired','skipped','missed')),
  late           boolean NOT NULL DEFAULT false,
  job_id         bigint,
  actor          text,
  recorded_at    timestamptz NOT NULL,
  PRIMARY KEY (schedule_name, tick_at, kind)
);

-- Lease locks. A row outlives its holders so the fencing token only ever increases.
CREATE TABLE {{schema}}.locks (
  name         text PRIMARY KEY,
  token        bigint NOT NULL,
  holder       text,
  acquired_at  timestamptz,
  expires_at   timestamptz
);
`,
  },
  {
    name: '0003_schedule_ticks_recent_idx',
    sql: `
-- Every scan and list reads each schedule's newest tick; without this index that read walks the schedule's whole
-- tick history, which grows by one row per tick forever.
CREATE INDEX schedule_ticks_recent_idx ON {{schema}}.schedule_ticks (schedule_name, recorded_at DESC, tick_at DESC, kind DESC);
`,
  },
  {
    name: '0004_idempotency',
    sql: `
-- One row per dedup key ever used, pointing at the key's current holder job. Keyed inserts lock this row, so
-- producers of one key are serialized whatever the holder's state; windows and custom states are decided against
-- the holder under that lock. No foreign key: a holder discarded or pruned later just means the key is free.
CREATE TABLE {{schema}}.job_keys (
  key     text PRIMARY KEY,
  job_id  bigint NOT NULL
);
-- The holder of each existing key: its active job if it has one (at most one, by the index dropped below; an
-- operator retry can make an older job active again after a newer one finished), else its newest job.
INSERT INTO {{schema}}.job_keys (key, job_id)
SELECT DISTINCT ON (key) key, id FROM {{schema}}.jobs
WHERE key IS NOT NULL
ORDER BY key, (state IN ('queued','retrying','running')) DESC, id DESC;
-- Dedup is enforced through job_keys now; a custom-states key may have several active jobs.
DROP INDEX {{schema}}.jobs_key_active_idx;
-- Lookups of a key's jobs (CLI, API).
CREATE INDEX jobs_key_idx ON {{schema}}.jobs (key) WHERE key IS NOT NULL;

-- Memoized step results of a job, written by the attempt holding the lease; they go with the job.
CREATE TABLE {{schema}}.job_steps (
  job_id       bigint NOT NULL REFERENCES {{schema}}.jobs (id) ON DELETE CASCADE,
  name         text NOT NULL,
  result       jsonb,
  attempt      integer NOT NULL,
  lease_token  bigint NOT NULL,
  created_at   timestamptz NOT NULL,
  PRIMARY KEY (job_id, name)
);

-- The last checkpoint of a long job and its progress; kept across retries, rescue and operator retry.
ALTER TABLE {{schema}}.jobs
  ADD COLUMN checkpoint jsonb,
  ADD COLUMN progress_done bigint,
  ADD COLUMN progress_total bigint,
  ADD COLUMN checkpoint_at timestamptz;

-- An attempt may end by yielding to a fresh attempt. The check was declared inline, hence its generated name.
ALTER TABLE {{schema}}.job_attempts
  DROP CONSTRAINT job_attempts_outcome_check,
  ADD CONSTRAINT job_attempts_outcome_check
    CHECK (outcome IN ('completed','failed','timeout','lost','aborted','invalid','cancelled','yielded'));
`,
  },
];
