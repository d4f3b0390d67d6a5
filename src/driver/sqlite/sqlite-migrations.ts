/**
 * SQLite migrations: numbered, append-only, the same numbers and names as PostgreSQL's. Never edit a released
 * migration; add a new one. Times are integer milliseconds since the epoch (UTC).
 * @module
 */
import type { Migration } from '../postgres/postgres-migrations.js';

/** An SQLite migration; see {@link SqliteMigration.rebuildsTables}. */
export interface SqliteMigration extends Migration {
  /**
   * The migration rebuilds a table that others reference (SQLite's "create new, copy, drop old, rename"
   * procedure): it runs with foreign keys off, since with them on dropping the old table would cascade-delete
   * the rows referencing it, and `PRAGMA foreign_key_check` must find nothing before it commits.
   * @default false
   */
  rebuildsTables?: boolean;
}

/** Every SQLite migration, in order. */
export const SQLITE_MIGRATIONS: readonly SqliteMigration[] = [
  {
    name: '0001_initial',
    sql: `
CREATE TABLE jobs (
  id               INTEGER PRIMARY KEY AUTOINCREMENT,
  name             TEXT NOT NULL,
  queue            TEXT NOT NULL,
  payload          TEXT NOT NULL,
  state            TEXT NOT NULL DEFAULT 'queued'
                   CHECK (state IN ('queued','retrying','running','completed','dead','cancelled')),
  priority         INTEGER NOT NULL DEFAULT 0,
  run_at           INTEGER NOT NULL,
  attempt          INTEGER NOT NULL DEFAULT 0,
  max_attempts     INTEGER NOT NULL CHECK (max_attempts >= 1),
  lost_count       INTEGER NOT NULL DEFAULT 0,
  lease_token      INTEGER NOT NULL DEFAULT 0,
  lease_worker     TEXT,
  lease_expires_at INTEGER,
  started_at       INTEGER,
  key              TEXT,
  last_error       TEXT,
  created_at       INTEGER NOT NULL,
  updated_at       INTEGER NOT NULL,
  finished_at      INTEGER
);
CREATE INDEX jobs_claim_idx ON jobs (queue, priority, run_at, id) WHERE state IN ('queued','retrying');
CREATE INDEX jobs_lease_idx ON jobs (lease_expires_at) WHERE state = 'running';
CREATE UNIQUE INDEX jobs_key_active_idx ON jobs (key) WHERE key IS NOT NULL AND state IN ('queued','retrying','running');
CREATE INDEX jobs_state_id_idx ON jobs (state, id);

CREATE TABLE job_attempts (
  job_id       INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
  attempt      INTEGER NOT NULL,
  lease_token  INTEGER NOT NULL,
  worker_id    TEXT,
  started_at   INTEGER,
  finished_at  INTEGER NOT NULL,
  outcome      TEXT NOT NULL CHECK (outcome IN ('completed','failed','timeout','lost','aborted','invalid','cancelled')),
  error        TEXT,
  PRIMARY KEY (job_id, lease_token)
);

CREATE TABLE queues (
  name        TEXT PRIMARY KEY,
  paused      INTEGER NOT NULL DEFAULT 0,
  updated_at  INTEGER NOT NULL
);
`,
  },
  {
    name: '0002_schedules_and_locks',
    sql: `
ALTER TABLE jobs ADD COLUMN schedule_name TEXT;
ALTER TABLE jobs ADD COLUMN tick_at INTEGER;
CREATE INDEX jobs_schedule_active_idx ON jobs (schedule_name, state)
  WHERE schedule_name IS NOT NULL AND state IN ('queued','retrying','running');

CREATE TABLE schedules (
  name             TEXT PRIMARY KEY,
  definition_hash  TEXT NOT NULL,
  spec             TEXT NOT NULL,
  paused           INTEGER NOT NULL DEFAULT 0,
  next_run_at      INTEGER,
  last_tick_at     INTEGER,
  removed_at       INTEGER,
  created_at       INTEGER NOT NULL,
  updated_at       INTEGER NOT NULL
);
CREATE INDEX schedules_due_idx ON schedules (next_run_at) WHERE paused = 0 AND removed_at IS NULL;

CREATE TABLE schedule_ticks (
  schedule_name  TEXT NOT NULL,
  tick_at        INTEGER NOT NULL,
  kind           TEXT NOT NULL CHECK (kind IN ('scheduled','triggered')),
  outcome        TEXT NOT NULL CHECK (outcome IN ('fired','skipped','missed')),
  late           INTEGER NOT NULL DEFAULT 0,
  job_id         INTEGER,
  actor          TEXT,
  recorded_at    INTEGER NOT NULL,
  PRIMARY KEY (schedule_name, tick_at, kind)
);

CREATE TABLE locks (
  name         TEXT PRIMARY KEY,
  token        INTEGER NOT NULL,
  holder       TEXT,
  acquired_at  INTEGER,
  expires_at   INTEGER
);
`,
  },
  {
    name: '0003_schedule_ticks_recent_idx',
    sql: `
-- Every scan and list reads each schedule's newest tick; without this index that read walks the schedule's whole
-- tick history, which grows by one row per tick forever.
CREATE INDEX schedule_ticks_recent_idx ON schedule_ticks (schedule_name, recorded_at DESC, tick_at DESC, kind DESC);
`,
  },
  {
    name: '0004_idempotency',
    sql: `
-- One row per dedup key ever used, pointing at the key's current holder. Keyed inserts read and move it inside
-- their BEGIN IMMEDIATE, which serializes them; no foreign key, because a discarded holder just means "free".
CREATE TABLE job_keys (
  key     TEXT PRIMARY KEY,
  job_id  INTEGER NOT NULL
);
-- The holder of each existing key: its active job if it has one (at most one, by the index dropped below; an
-- operator retry can make an older job active again after a newer one finished), else its newest job.
INSERT INTO job_keys (key, job_id)
SELECT key, coalesce(max(CASE WHEN state IN ('queued','retrying','running') THEN id END), max(id))
FROM jobs WHERE key IS NOT NULL GROUP BY key;
-- Dedup is decided through job_keys now (windows and states vary per insert); the key index stays for lookups.
DROP INDEX jobs_key_active_idx;
CREATE INDEX jobs_key_idx ON jobs (key) WHERE key IS NOT NULL;

CREATE TABLE job_steps (
  job_id       INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
  name         TEXT NOT NULL,
  result       TEXT,
  attempt      INTEGER NOT NULL,
  lease_token  INTEGER NOT NULL,
  created_at   INTEGER NOT NULL,
  PRIMARY KEY (job_id, name)
);

ALTER TABLE jobs ADD COLUMN checkpoint TEXT;
ALTER TABLE jobs ADD COLUMN progress_done INTEGER;
ALTER TABLE jobs ADD COLUMN progress_total INTEGER;
ALTER TABLE jobs ADD COLUMN checkpoint_at INTEGER;

-- SQLite cannot alter a CHECK constraint: rebuild job_attempts so its outcome may be 'yielded'. Nothing references
-- job_attempts, and its only index is the primary key's, which the new table recreates.
CREATE TABLE job_attempts_0004 (
  job_id       INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
  attempt      INTEGER NOT NULL,
  lease_token  INTEGER NOT NULL,
  worker_id    TEXT,
  started_at   INTEGER,
  finished_at  INTEGER NOT NULL,
  outcome      TEXT NOT NULL CHECK (outcome IN ('completed','failed','timeout','lost','aborted','invalid','cancelled','yielded')),
  error        TEXT,
  PRIMARY KEY (job_id, lease_token)
);
INSERT INTO job_attempts_0004 (job_id, attempt, lease_token, worker_id, started_at, finished_at, outcome, error)
SELECT job_id, attempt, lease_token, worker_id, started_at, finished_at, outcome, error FROM job_attempts;
DROP TABLE job_attempts;
ALTER TABLE job_attempts_0004 RENAME TO job_attempts;
`,
  },
  {
    name: '0005_audit',
    sql: `
-- The audit trail: append-only, hash-chained entries per chain (see docs/audit.md). Deliberately no foreign key to
-- jobs: entries outlive job pruning and discards. Nothing in Warden updates or deletes a row here except an explicit
-- prune, which removes a prefix of a chain and records where it stopped in audit_heads.
CREATE TABLE audit_entries (
  chain         TEXT NOT NULL,
  seq           INTEGER NOT NULL,
  at            INTEGER NOT NULL,
  actor         TEXT NOT NULL,
  action        TEXT NOT NULL,
  subject_kind  TEXT NOT NULL,
  subject_id    TEXT NOT NULL,
  job_name      TEXT,
  queue         TEXT,
  before_state  TEXT,
  after_state   TEXT,
  reason        TEXT,
  data          TEXT,
  prev_hash     TEXT NOT NULL,
  hash          TEXT NOT NULL,
  PRIMARY KEY (chain, seq)
);
-- Export by time (at never decreases along a chain).
CREATE INDEX audit_entries_at_idx ON audit_entries (chain, at);

-- One row per chain: its last seq and hash. Appends read and move it inside BEGIN IMMEDIATE; verify compares the
-- chain's end with it.
CREATE TABLE audit_heads (
  chain        TEXT PRIMARY KEY,
  seq          INTEGER NOT NULL,
  hash         TEXT NOT NULL,
  at           INTEGER,
  pruned_seq   INTEGER NOT NULL DEFAULT 0,
  pruned_hash  TEXT NOT NULL DEFAULT '0000000000000000000000000000000000000000000000000000000000000000'
);
`,
  },
  {
    name: '0006_alerts',
    sql: `
-- One row per alert key (missed-run:<schedule>, queue-lag:<queue>, dead-letter:<job>:<attempt>, …). Every instance
-- evaluates the rules; the INSERT … ON CONFLICT that opens an alert and the guarded UPDATE that resolves it change a
-- row for exactly one of them, and only that one notifies. A resolved key opens again as a new episode.
CREATE TABLE alerts (
  key          TEXT PRIMARY KEY,
  rule         TEXT NOT NULL,
  state        TEXT NOT NULL CHECK (state IN ('open','resolved')),
  severity     TEXT NOT NULL CHECK (severity IN ('critical','warning')),
  summary      TEXT NOT NULL,
  details      TEXT NOT NULL,
  episode      INTEGER NOT NULL DEFAULT 1,
  opened_at    INTEGER NOT NULL,
  resolved_at  INTEGER,
  updated_at   INTEGER NOT NULL,
  opened_by    TEXT NOT NULL,
  resolved_by  TEXT,
  notices      INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX alerts_open_idx ON alerts (rule, key) WHERE state = 'open';
CREATE INDEX alerts_updated_idx ON alerts (updated_at DESC, key);
`,
  },
  {
    name: '0007_tracing_retention',
    sql: `
-- The producer's trace context (W3C traceparent/tracestate as JSON), so each attempt's span links to it.
ALTER TABLE jobs ADD COLUMN trace_context TEXT;
-- Retention deletes finished jobs by state and age; finished_at is set exactly when a job reaches a final state.
CREATE INDEX jobs_finished_idx ON jobs (state, finished_at) WHERE finished_at IS NOT NULL;
-- Retention keeps each schedule's newest completed run (its last success): found per schedule through this index.
CREATE INDEX jobs_schedule_state_idx ON jobs (schedule_name, state, id) WHERE schedule_name IS NOT NULL;
-- Tick retention deletes by age across schedules.
CREATE INDEX schedule_ticks_recorded_idx ON schedule_ticks (recorded_at);
`,
  },
  {
    name: '0008_attempts_unconstrained',
    sql: `
-- Numbering kept in step with PostgreSQL, whose 0008 drops the attempts' foreign key (a costly per-row trigger
-- there). SQLite keeps it: its check is one rowid lookup, cheap, and dropping it would mean rebuilding the table.
SELECT 1;
`,
  },
  {
    name: '0009_rare_state_index',
    sql: `
-- jobs_state_id_idx (state, id) held every job, so every state change of every job (claim, completion) rewrote
-- its entry: a fifth of a claim's time. It served listing jobs of one state newest first. The common states are
-- listed without it (completed and queued rows are most of the table, found by walking the rowid; running ones
-- through jobs_lease_idx); the rare states, which a million others could hide, keep an index of their own,
-- which claims and completions never touch. jobListSql repeats its WHERE verbatim so SQLite can use it.
CREATE INDEX jobs_rare_state_idx ON jobs (state, id) WHERE state IN ('retrying','dead','cancelled');
DROP INDEX jobs_state_id_idx;
`,
  },
  {
    name: '0010_constraints_without_in_lists',
    rebuildsTables: true,
    sql: `
-- SQLite evaluates a CHECK constraint or a partial index's WHERE on every write of a row, and an IN list of more
-- than two constants there builds a temporary lookup table each time (outside a constraint it is built once per
-- statement). On jobs and job_attempts that was about a quarter of a claim and its ending (13.9 -> 10.5 us a job
-- for claim + ending of 500-job batches). The same conditions are written as chains of OR: the same rows pass.
-- SQLite cannot alter a CHECK constraint, so jobs and job_attempts are rebuilt (with foreign keys off: dropping
-- jobs would otherwise cascade-delete every attempt and step). The column lists are the tables' current ones.
CREATE TABLE jobs_0010 (
  id               INTEGER PRIMARY KEY AUTOINCREMENT,
  name             TEXT NOT NULL,
  queue            TEXT NOT NULL,
  payload          TEXT NOT NULL,
  state            TEXT NOT NULL DEFAULT 'queued'
                   CHECK (state = 'queued' OR state = 'retrying' OR state = 'running' OR state = 'completed'
                          OR state = 'dead' OR state = 'cancelled'),
  priority         INTEGER NOT NULL DEFAULT 0,
  run_at           INTEGER NOT NULL,
  attempt          INTEGER NOT NULL DEFAULT 0,
  max_attempts     INTEGER NOT NULL CHECK (max_attempts >= 1),
  lost_count       INTEGER NOT NULL DEFAULT 0,
  lease_token      INTEGER NOT NULL DEFAULT 0,
  lease_worker     TEXT,
  lease_expires_at INTEGER,
  started_at       INTEGER,
  key              TEXT,
  last_error       TEXT,
  created_at       INTEGER NOT NULL,
  updated_at       INTEGER NOT NULL,
  finished_at      INTEGER,
  schedule_name    TEXT,
  tick_at          INTEGER,
  checkpoint       TEXT,
  progress_done    INTEGER,
  progress_total   INTEGER,
  checkpoint_at    INTEGER,
  trace_context    TEXT
);
INSERT INTO jobs_0010 (id, name, queue, payload, state, priority, run_at, attempt, max_attempts, lost_count,
  lease_token, lease_worker, lease_expires_at, started_at, key, last_error, created_at, updated_at, finished_at,
  schedule_name, tick_at, checkpoint, progress_done, progress_total, checkpoint_at, trace_context)
SELECT id, name, queue, payload, state, priority, run_at, attempt, max_attempts, lost_count,
  lease_token, lease_worker, lease_expires_at, started_at, key, last_error, created_at, updated_at, finished_at,
  schedule_name, tick_at, checkpoint, progress_done, progress_total, checkpoint_at, trace_context
FROM jobs;
-- AUTOINCREMENT never reuses an id: the new table continues from the old one's high-water mark, which may be
-- above the largest id left (jobs deleted by retention or discard).
DELETE FROM sqlite_sequence WHERE name = 'jobs_0010';
INSERT INTO sqlite_sequence (name, seq) SELECT 'jobs_0010', seq FROM sqlite_sequence WHERE name = 'jobs';
DROP TABLE jobs;
ALTER TABLE jobs_0010 RENAME TO jobs;
CREATE INDEX jobs_claim_idx ON jobs (queue, priority, run_at, id) WHERE state IN ('queued','retrying');
CREATE INDEX jobs_lease_idx ON jobs (lease_expires_at) WHERE state = 'running';
CREATE INDEX jobs_schedule_active_idx ON jobs (schedule_name, state)
  WHERE schedule_name IS NOT NULL AND (state = 'queued' OR state = 'retrying' OR state = 'running');
CREATE INDEX jobs_key_idx ON jobs (key) WHERE key IS NOT NULL;
CREATE INDEX jobs_finished_idx ON jobs (state, finished_at) WHERE finished_at IS NOT NULL;
CREATE INDEX jobs_schedule_state_idx ON jobs (schedule_name, state, id) WHERE schedule_name IS NOT NULL;
CREATE INDEX jobs_rare_state_idx ON jobs (state, id) WHERE state = 'retrying' OR state = 'dead' OR state = 'cancelled';

CREATE TABLE job_attempts_0010 (
  job_id       INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
  attempt      INTEGER NOT NULL,
  lease_token  INTEGER NOT NULL,
  worker_id    TEXT,
  started_at   INTEGER,
  finished_at  INTEGER NOT NULL,
  outcome      TEXT NOT NULL CHECK (outcome = 'completed' OR outcome = 'failed' OR outcome = 'timeout'
                                    OR outcome = 'lost' OR outcome = 'aborted' OR outcome = 'invalid'
                                    OR outcome = 'cancelled' OR outcome = 'yielded'),
  error        TEXT,
  PRIMARY KEY (job_id, lease_token)
);
INSERT INTO job_attempts_0010 (job_id, attempt, lease_token, worker_id, started_at, finished_at, outcome, error)
SELECT job_id, attempt, lease_token, worker_id, started_at, finished_at, outcome, error FROM job_attempts;
DROP TABLE job_attempts;
ALTER TABLE job_attempts_0010 RENAME TO job_attempts;
`,
  },
  {
    name: '0011_completed_attempt_on_job',
    sql: `
-- The attempt that completes a job is recorded on the job row instead of as a job_attempts row: the ending already
-- leaves that attempt's number, lease token, start and finish there, and completed_by keeps its worker (lease_worker
-- is cleared). One row and one index entry less to write per completed job, the common ending. Every other outcome
-- (failed, timeout, lost, cancelled, ...) is still a row of job_attempts, and the attempt list reads both. Completed
-- is final: nothing moves a job out of it, so the row keeps that attempt until the job is deleted. Jobs completed
-- before this migration keep their stored attempt row and completed_by NULL.
ALTER TABLE jobs ADD COLUMN completed_by TEXT;
`,
  },
  {
    name: '0012_sparse_audit_time_index',
    sql: `
-- Export and prune by time without indexing every entry's time: an entry's at never decreases along its chain (each
-- append is stamped no earlier than the chain's head), so every 64th entry (seq % 64 = 0) is enough to bound a time
-- range in seq, and the primary key reads the rest, at most 63 rows past each bound. Appends then write one index
-- entry in 64 instead of one each (about 0.4 µs an entry less in batches of 500). The stride is AUDIT_TIME_STRIDE in
-- src/driver/audit-params.ts.
DROP INDEX audit_entries_at_idx;
CREATE INDEX audit_entries_time_idx ON audit_entries (chain, at, seq) WHERE seq % 64 = 0;
`,
  },
  {
    name: '0013_audit_blocks',
    sql: `
-- The audit trail stored one row per append batch instead of one per entry (docs/audit.md, "Storage"). A block holds
-- a contiguous run of a chain's entries, all at the block's time, as one JSON array of rows [seq, actor, action,
-- subjectKind, subjectId, jobName, queue, before, after, reason, data, prevHash, hash] (AUDIT_ROW_FIELDS in
-- src/audit/audit-hash.ts). An append writes one row and two index entries whatever its size. The hash chain is
-- unchanged.
CREATE TABLE audit_blocks (
  chain      TEXT NOT NULL,
  first_seq  INTEGER NOT NULL,
  last_seq   INTEGER NOT NULL,
  at         INTEGER NOT NULL,
  entries    TEXT NOT NULL,
  PRIMARY KEY (chain, first_seq)
);
-- Export and prune by time: a block's at is its entries' time, and at never decreases along a chain.
CREATE INDEX audit_blocks_time_idx ON audit_blocks (chain, at, first_seq);
-- Existing entries move into blocks of one chain and one time (a run of seqs, since at never decreases along a
-- chain), with the same fields; their hashes still verify. data that is not JSON (edited so) is kept as a string.
INSERT INTO audit_blocks (chain, first_seq, last_seq, at, entries)
SELECT chain, min(seq), max(seq), at, json_group_array(json_array(seq, actor, action, subject_kind, subject_id, job_name, queue,
    before_state, after_state, reason, CASE WHEN data IS NULL THEN NULL WHEN json_valid(data) THEN json(data) ELSE data END,
    prev_hash, hash) ORDER BY seq)
FROM audit_entries
GROUP BY chain, at;
DROP TABLE audit_entries;
-- The entries one row each, for reading with SQL (read-only; Warden itself reads the blocks).
CREATE VIEW audit_entries AS
SELECT b.chain, e.value ->> 0 AS seq, b.at, e.value ->> 1 AS actor, e.value ->> 2 AS action, e.value ->> 3 AS subject_kind,
       e.value ->> 4 AS subject_id, e.value ->> 5 AS job_name, e.value ->> 6 AS queue, e.value ->> 7 AS before_state,
       e.value ->> 8 AS after_state, e.value ->> 9 AS reason, CASE WHEN e.value ->> 10 IS NULL THEN NULL ELSE e.value -> 10 END AS data,
       e.value ->> 11 AS prev_hash, e.value ->> 12 AS hash
FROM audit_blocks b, json_each(b.entries) AS e;
`,
  },
  {
    name: '0014_schedule_tick_writer',
    sql: `
-- Which scheduler instance wrote a scheduled tick: one whose advance failed after sending its commit finds its own
-- ticks by it and emits their events then (docs/guarantees.md). NULL for older ticks and for triggered ones.
ALTER TABLE schedule_ticks ADD COLUMN fired_by TEXT;
`,
  },
  {
    // 0015 is PostgreSQL's hand-off table, which SQLite has no use for: the numbers stay the same on both (0017,
    // that table's channel, likewise).
    name: '0016_lock_grant_id',
    sql: `
-- The grant a lock is held under: a random id per acquire call, so an acquire retried after an error takes its
-- own grant up again (docs/locks.md). NULL for older grants and for acquires that name none.
ALTER TABLE locks ADD COLUMN grant_id TEXT;
`,
  },
  {
    name: '0018_jobs_finished_name_idx',
    sql: `
-- Retention prunes the finished jobs of each job type apart: along (state, finished_at) every delete read past every
-- kept job of the other types, holding the write lock. Led by name, each type's old jobs are one range. It replaces
-- jobs_finished_idx, which nothing else reads.
DROP INDEX IF EXISTS jobs_finished_idx;
CREATE INDEX jobs_finished_name_idx ON jobs (state, name, finished_at) WHERE finished_at IS NOT NULL;
`,
  },
  // `0019_schedule_timing_hash` (a nullable `schedules.timing_hash`) was withdrawn before any release: a database that
  // applied it keeps the column, unused, and its ledger row, which the migrator ignores. Use neither name again, and
  // let a rebuild of `schedules` name the columns it copies.
];
