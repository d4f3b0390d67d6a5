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
  {
    name: '0005_audit',
    sql: `
-- The audit trail: append-only, hash-chained entries per chain (see docs/audit.md). Deliberately no foreign key to
-- jobs: entries outlive job pruning and discards. Nothing in Warden updates or deletes a row here except an explicit
-- prune, which removes a prefix of a chain and records where it stopped in audit_heads.
CREATE TABLE {{schema}}.audit_entries (
  chain         text NOT NULL,
  seq           bigint NOT NULL,
  at            timestamptz NOT NULL,
  actor         text NOT NULL,
  action        text NOT NULL,
  subject_kind  text NOT NULL,
  subject_id    text NOT NULL,
  job_name      text,
  queue         text,
  before_state  text,
  after_state   text,
  reason        text,
  data          jsonb,
  prev_hash     text NOT NULL,
  hash          text NOT NULL,
  PRIMARY KEY (chain, seq)
);
-- Export by time (at never decreases along a chain).
CREATE INDEX audit_entries_at_idx ON {{schema}}.audit_entries (chain, at);

-- One row per chain: its last seq and hash. Every append locks it first, which serializes the appends of a chain
-- across processes and hosts; verify compares the chain's end with it.
CREATE TABLE {{schema}}.audit_heads (
  chain        text PRIMARY KEY,
  seq          bigint NOT NULL,
  hash         text NOT NULL,
  at           timestamptz,
  pruned_seq   bigint NOT NULL DEFAULT 0,
  pruned_hash  text NOT NULL DEFAULT '0000000000000000000000000000000000000000000000000000000000000000'
);
`,
  },
  {
    name: '0006_alerts',
    sql: `
-- One row per alert key (missed-run:<schedule>, queue-lag:<queue>, dead-letter:<job>:<attempt>, …). Every instance
-- evaluates the rules; the INSERT … ON CONFLICT that opens an alert and the guarded UPDATE that resolves it change a
-- row for exactly one of them, and only that one notifies. A resolved key opens again as a new episode.
CREATE TABLE {{schema}}.alerts (
  key          text PRIMARY KEY,
  rule         text NOT NULL,
  state        text NOT NULL CHECK (state IN ('open','resolved')),
  severity     text NOT NULL CHECK (severity IN ('critical','warning')),
  summary      text NOT NULL,
  details      jsonb NOT NULL,
  episode      integer NOT NULL DEFAULT 1,
  opened_at    timestamptz NOT NULL,
  resolved_at  timestamptz,
  updated_at   timestamptz NOT NULL,
  opened_by    text NOT NULL,
  resolved_by  text,
  notices      integer NOT NULL DEFAULT 1
);
CREATE INDEX alerts_open_idx ON {{schema}}.alerts (rule, key) WHERE state = 'open';
CREATE INDEX alerts_updated_idx ON {{schema}}.alerts (updated_at DESC, key);
`,
  },
  {
    name: '0007_tracing_retention',
    sql: `
-- The producer's trace context (W3C traceparent/tracestate), so each attempt's span links to it.
ALTER TABLE {{schema}}.jobs ADD COLUMN trace_context jsonb;
-- Retention deletes finished jobs by state and age; finished_at is set exactly when a job reaches a final state.
CREATE INDEX jobs_finished_idx ON {{schema}}.jobs (state, finished_at) WHERE finished_at IS NOT NULL;
-- Retention keeps each schedule's newest completed run (its last success): found per schedule through this index.
CREATE INDEX jobs_schedule_state_idx ON {{schema}}.jobs (schedule_name, state, id) WHERE schedule_name IS NOT NULL;
-- Tick retention deletes by age across schedules.
CREATE INDEX schedule_ticks_recorded_idx ON {{schema}}.schedule_ticks (recorded_at);
`,
  },
  {
    name: '0008_attempts_unconstrained',
    sql: `
-- Every batch of endings inserts one attempt row per job, and the foreign key to jobs ran a per-row check
-- (a locking read of the job the same statement already holds): about 30 % of a batch's time. Attempts are only
-- ever written for a job locked in the same statement, and the two statements that delete jobs delete their
-- attempts with them, so the constraint guarded nothing the SQL does not already guarantee.
ALTER TABLE {{schema}}.job_attempts DROP CONSTRAINT IF EXISTS job_attempts_job_id_fkey;
`,
  },
  {
    name: '0009_rare_state_index',
    sql: `
-- jobs_state_id_idx (state, id) held every job, so every state change of every job (claim, completion) wrote an
-- entry to it: about a tenth of a drain's database time. It served listing jobs of one state newest first. The
-- common states are listed without it (completed and queued rows are most of the table, found by walking the
-- primary key; running ones through jobs_lease_idx); the rare states, which a million others could hide, keep
-- an index of their own, which claims and completions never touch.
CREATE INDEX jobs_rare_state_idx ON {{schema}}.jobs (state, id) WHERE state IN ('retrying','dead','cancelled');
DROP INDEX {{schema}}.jobs_state_id_idx;
`,
  },
  {
    name: '0010_constraints_without_in_lists',
    sql: `
-- Numbering kept in step with SQLite, whose 0010 rewrites IN lists in CHECK constraints and partial-index
-- conditions as chains of OR (a per-row cost there). PostgreSQL evaluates such a list as one array comparison.
SELECT 1;
`,
  },
  {
    name: '0011_completed_attempt_on_job',
    sql: `
-- completed_by: the worker of the attempt that completed the job, which is then kept on the job row instead of as
-- a job_attempts row (one row and index entry fewer per completed job; the row already holds the attempt's number,
-- lease token, start and finish, and completed is final). docs/state-machine.md, "Attempt outcomes", has the rule;
-- jobs completed before this keep their stored attempt row and completed_by NULL.
ALTER TABLE {{schema}}.jobs ADD COLUMN completed_by text;
`,
  },
  {
    name: '0012_sparse_audit_time_index',
    sql: `
-- A time index on every 64th audit entry instead of every entry, as on SQLite (docs/audit.md, "Storage"): at never
-- decreases along a chain, so those bound a time range in seq. AUDIT_TIME_STRIDE in src/driver/audit-params.ts.
DROP INDEX {{schema}}.audit_entries_at_idx;
CREATE INDEX audit_entries_time_idx ON {{schema}}.audit_entries (chain, at, seq) WHERE seq % 64 = 0;
`,
  },
  {
    name: '0013_audit_blocks',
    sql: `
-- The audit trail stored one row per append batch instead of one per entry (docs/audit.md, "Storage"). A block holds
-- a contiguous run of a chain's entries, all at the block's time, as one JSON array of rows [seq, actor, action,
-- subjectKind, subjectId, jobName, queue, before, after, reason, data, prevHash, hash] (AUDIT_ROW_FIELDS in
-- src/audit/audit-hash.ts). An append writes one row and two index entries whatever its size, and the text
-- compresses (lz4 where the server has it). The hash chain is unchanged.
CREATE TABLE {{schema}}.audit_blocks (
  chain      text NOT NULL,
  first_seq  bigint NOT NULL,
  last_seq   bigint NOT NULL,
  at         timestamptz NOT NULL,
  entries    text NOT NULL,
  PRIMARY KEY (chain, first_seq)
);
-- Export and prune by time: a block's at is its entries' time, and at never decreases along a chain.
CREATE INDEX audit_blocks_time_idx ON {{schema}}.audit_blocks (chain, at, first_seq);
DO $$
BEGIN
  ALTER TABLE {{schema}}.audit_blocks ALTER COLUMN entries SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
  NULL; -- a server built without lz4 keeps its default (pglz)
END
$$;
-- Existing entries move into blocks of one chain and one time (a run of seqs, since at never decreases along a
-- chain), with the same fields; their hashes still verify.
INSERT INTO {{schema}}.audit_blocks (chain, first_seq, last_seq, at, entries)
SELECT chain, min(seq), max(seq), at, json_agg(json_build_array(seq, actor, action, subject_kind, subject_id, job_name, queue,
    before_state, after_state, reason, data, prev_hash, hash) ORDER BY seq)::text
FROM {{schema}}.audit_entries
GROUP BY chain, at;
DROP TABLE {{schema}}.audit_entries;
-- The entries one row each, for reading with SQL (read-only; Warden itself reads the blocks).
CREATE VIEW {{schema}}.audit_entries AS
SELECT b.chain, (e ->> 0)::bigint AS seq, b.at, e ->> 1 AS actor, e ->> 2 AS action, e ->> 3 AS subject_kind,
       e ->> 4 AS subject_id, e ->> 5 AS job_name, e ->> 6 AS queue, e ->> 7 AS before_state, e ->> 8 AS after_state,
       e ->> 9 AS reason, nullif(e -> 10, 'null'::jsonb) AS data, e ->> 11 AS prev_hash, e ->> 12 AS hash
FROM {{schema}}.audit_blocks b CROSS JOIN LATERAL jsonb_array_elements(b.entries::jsonb) AS e;
`,
  },
  {
    name: '0014_schedule_tick_writer',
    sql: `
-- Which scheduler instance wrote a scheduled tick: one whose advance failed after sending its commit (the reply
-- lost) finds its own ticks by it and emits their events then (docs/guarantees.md, "Exactly-once schedule ticks").
-- NULL for ticks written before, and for triggered ones (their actor says who).
ALTER TABLE {{schema}}.schedule_ticks ADD COLUMN fired_by text;
`,
  },
  {
    name: '0015_handoff_waiters',
    sql: `
-- Idle workers waiting for jobs: an enqueue of a due job hands it straight to one of them (leased to it in the
-- inserting statement, its row in the notification) instead of leaving it for a claim round trip
-- (docs/guarantees.md, "Hand-off to an idle worker"). A worker registers when a claim finds its queues empty and
-- withdraws when it stops. UNLOGGED: registrations are moments of one worker's life, worth no WAL or fsync, and a
-- server crash that empties the table only means the next enqueues are claimed the usual way.
-- lock_key: the session advisory lock the worker's LISTEN connection holds; a registration whose lock is free
-- belongs to a worker that is gone or not listening, and gets nothing.
CREATE UNLOGGED TABLE {{schema}}.handoff_waiters (
  worker_id  text PRIMARY KEY,
  queues     text[] NOT NULL,
  slots      integer NOT NULL CHECK (slots >= 0),
  lease_ms   integer NOT NULL CHECK (lease_ms > 0),
  lock_key   bigint NOT NULL,
  expires_at timestamptz NOT NULL,
  -- Jobs handed to the worker under this row: a registration subtracts those it has not received yet.
  handed     bigint NOT NULL DEFAULT 0
);
`,
  },
  {
    name: '0016_lock_grant_id',
    sql: `
-- The grant a lock is held under: a random id per acquire call. An acquire whose reply was lost after its commit
-- is retried with the same id and takes the grant up again instead of leaving the lock held by nobody who knows
-- until it expires (docs/locks.md). NULL for grants made before, and for acquires that name none.
ALTER TABLE {{schema}}.locks ADD COLUMN grant_id text;
`,
  },
  {
    name: '0017_handoff_channel',
    sql: `
-- The private channel a waiting worker is sent its handed jobs on, each with its row (docs/guarantees.md,
-- "Hand-off to an idle worker"): a random name only the roles that can read this table learn. NULL for a
-- registration written by a version before, which is sent the job's id on the shared channel, as it expects.
ALTER TABLE {{schema}}.handoff_waiters ADD COLUMN channel text;
`,
  },
  {
    name: '0018_jobs_finished_name_idx',
    sql: `
-- Retention prunes the finished jobs of each job type apart (a type's own policy, the global one for the rest, some
-- types kept forever). Along (state, finished_at) the name was checked row by row, so every delete of 1,000 rows read
-- past every kept job of the other types, again in each batch. Led by name, each type's old jobs are one range, and the
-- types are found by skipping through it. It replaces jobs_finished_idx, which nothing else reads: one index entry per
-- finished job, as before.
DROP INDEX IF EXISTS {{schema}}.jobs_finished_idx;
CREATE INDEX jobs_finished_name_idx ON {{schema}}.jobs (state, name, finished_at) WHERE finished_at IS NOT NULL;
`,
  },
  // `0019_schedule_timing_hash` (a nullable `schedules.timing_hash`) was withdrawn before any release: a database that
  // applied it keeps the column, unused, and its ledger row, which the migrator ignores. Use neither name again, and
  // let a rebuild of `schedules` name the columns it copies.
];
