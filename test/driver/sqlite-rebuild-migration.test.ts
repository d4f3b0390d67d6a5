/**
 * SQLite migration 0010 rebuilds `jobs` and `job_attempts` (CHECK constraints and partial-index conditions as OR
 * chains instead of IN lists). A rebuild drops the old table, so it runs with foreign keys off: these tests build a
 * database at 0009 with data in every referencing table, migrate it, and check that nothing was lost or cascaded
 * away, that ids keep counting from the old high-water mark, that the constraints still refuse what they refused,
 * that foreign keys are enforced again afterwards, and that the rewritten indexes still serve their queries.
 * @module
 */
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { MigrationIntegrityError } from '../../src/errors.js';
import { SQLITE_MIGRATIONS } from '../../src/driver/sqlite/sqlite-migrations.js';
import * as ScheduleSQL from '../../src/driver/sqlite/sqlite-schedule-sql.js';
import * as AdminSQL from '../../src/driver/sqlite/sqlite-job-admin-sql.js';
import * as SQL from '../../src/driver/sqlite/sqlite-sql.js';
import { openRawSqlite } from '../conformance/helpers.js';
import { createTestDatabase, makeInsert, type TestDatabase } from '../support/test-databases.js';

const REBUILD = '0010_constraints_without_in_lists';
const NAMES = SQLITE_MIGRATIONS.map((m) => m.name);
/** 0010 and every migration after it: what a database at 0009 has pending. */
const FROM_REBUILD = NAMES.slice(NAMES.indexOf(REBUILD));
const opened: TestDatabase[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((tdb) => tdb.cleanup()));
});

/** A database migrated up to (not including) 0010, by the same SQL the driver runs, with foreign keys on. */
async function databaseBeforeRebuild(): Promise<{ tdb: TestDatabase; db: Database.Database }> {
  const tdb = await createTestDatabase('sqlite', { migrate: false });
  opened.push(tdb);
  const db = openRawSqlite(tdb);
  db.pragma('foreign_keys = ON');
  db.exec(SQL.MIGRATIONS_TABLE_CREATE);
  for (const migration of SQLITE_MIGRATIONS) {
    if (migration.name === REBUILD) break;
    db.exec(migration.sql);
    db.prepare(SQL.MIGRATION_RECORD).run({ name: migration.name, now: 1 });
  }
  return { tdb, db };
}

/** Jobs in every state, each with attempts, some with steps and keys; ids up to 40 used, 31..40 deleted since. */
function fill(db: Database.Database): void {
  const states = ['queued', 'retrying', 'running', 'completed', 'dead', 'cancelled'];
  const insertJob = db.prepare(`INSERT INTO jobs (id, name, queue, payload, state, priority, run_at, attempt, max_attempts, lease_token,
    lease_worker, key, created_at, updated_at, finished_at, schedule_name, tick_at, checkpoint, progress_done, trace_context)
    VALUES (@id, @name, 'q', @payload, @state, @id % 3, @id * 10, 1, 5, 1, 'w', @key, 1, 2, @finished, @schedule, @tick, @checkpoint, @done, @trace)`);
  const insertAttempt = db.prepare(`INSERT INTO job_attempts (job_id, attempt, lease_token, worker_id, started_at, finished_at, outcome, error)
    VALUES (?, 1, 1, 'w', 5, 6, 'failed', '{"message":"boom"}')`);
  const insertStep = db.prepare(`INSERT INTO job_steps (job_id, name, result, attempt, lease_token, created_at) VALUES (?, 'charge', '{"ok":true}', 1, 1, 7)`);
  for (let id = 1; id <= 40; id++) {
    const state = states[id % states.length]!;
    insertJob.run({
      id, name: `job-${id}`, payload: JSON.stringify({ id }), state, key: id % 4 === 0 ? `key-${id}` : null,
      finished: ['completed', 'dead', 'cancelled'].includes(state) ? 100 + id : null,
      schedule: id % 5 === 0 ? 'nightly' : null, tick: id % 5 === 0 ? 1000 * id : null,
      checkpoint: id % 7 === 0 ? '{"cursor":3}' : null, done: id % 7 === 0 ? 3 : null, trace: id % 9 === 0 ? '{"traceparent":"00-x"}' : null,
    });
    insertAttempt.run(id);
    if (id % 2 === 0) insertStep.run(id);
  }
  db.prepare('DELETE FROM jobs WHERE id > 30').run();
}

const dump = (db: Database.Database, table: string): unknown[] => db.prepare(`SELECT * FROM ${table} ORDER BY 1, 2`).all();

describe('SQLite migration 0010 (rebuilds jobs and job_attempts)', () => {
  it('keeps every job, attempt, step and key, continues ids from the old high-water mark, and enforces foreign keys again', async () => {
    const { tdb, db } = await databaseBeforeRebuild();
    fill(db);
    const before = { jobs: dump(db, 'jobs'), attempts: dump(db, 'job_attempts'), steps: dump(db, 'job_steps') };
    expect(before.jobs).toHaveLength(30);
    expect(before.attempts).toHaveLength(30);
    expect(db.prepare("SELECT seq FROM sqlite_sequence WHERE name = 'jobs'").get()).toEqual({ seq: 40 });

    expect(await tdb.driver.migrate()).toEqual({ applied: FROM_REBUILD, current: NAMES });

    // Later migrations may add columns (0011: completed_by, NULL for jobs completed before it); the rest is as it was.
    const jobsAfter = dump(db, 'jobs') as Record<string, unknown>[];
    expect(jobsAfter.map((row) => row.completed_by)).toEqual(before.jobs.map(() => null));
    expect(jobsAfter.map(({ completed_by: _, ...row }) => row)).toEqual(before.jobs);
    expect(dump(db, 'job_attempts')).toEqual(before.attempts);
    expect(dump(db, 'job_steps')).toEqual(before.steps);
    expect(db.prepare("SELECT name, seq FROM sqlite_sequence WHERE name LIKE 'jobs%'").all()).toEqual([{ name: 'jobs', seq: 40 }]);
    const indexes = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'jobs' AND sql IS NOT NULL ORDER BY name").all() as { name: string }[]).map((r) => r.name);
    // 0018 replaced jobs_finished_idx with jobs_finished_name_idx.
    expect(indexes).toEqual(['jobs_claim_idx', 'jobs_finished_name_idx', 'jobs_key_idx', 'jobs_lease_idx', 'jobs_rare_state_idx', 'jobs_schedule_active_idx', 'jobs_schedule_state_idx']);
    expect(db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE name LIKE '%_0010'").get()).toEqual({ n: 0 });

    // A new job continues after 40, not after the largest id left (30).
    const [inserted] = await tdb.driver.jobInsertMany({ jobs: [makeInsert({ name: 'after' })], now: new Date(1_000) });
    expect(inserted!.job.id).toBe('41');

    // The driver's connection has its foreign keys back: deleting a finished job takes its attempts and steps.
    expect((await tdb.driver.jobDiscard({ id: '4' })).state).toBe('dead');
    expect(db.prepare('SELECT count(*) AS n FROM job_attempts WHERE job_id = 4').get()).toEqual({ n: 0 });
    expect(db.prepare('SELECT count(*) AS n FROM job_steps WHERE job_id = 4').get()).toEqual({ n: 0 });
    // And the rebuilt attempts table still references jobs.
    expect(() => db.prepare("INSERT INTO job_attempts (job_id, attempt, lease_token, finished_at, outcome) VALUES (999, 1, 1, 1, 'failed')").run())
      .toThrow(/FOREIGN KEY constraint failed/);
    db.close();
  });

  it('still refuses a state or an outcome outside the lists, and takes each one inside them', async () => {
    const { tdb, db } = await databaseBeforeRebuild();
    await tdb.driver.migrate();
    const job = db.prepare("INSERT INTO jobs (name, queue, payload, state, run_at, max_attempts, created_at, updated_at) VALUES ('n', 'q', '{}', ?, 0, 1, 0, 0)");
    for (const state of ['queued', 'retrying', 'running', 'completed', 'dead', 'cancelled']) expect(() => job.run(state)).not.toThrow();
    for (const state of ['bogus', 'Queued', '', 'queued ']) expect(() => job.run(state), state).toThrow(/CHECK constraint failed/);
    expect(() => job.run(null)).toThrow(/NOT NULL constraint failed/);
    expect(() => db.prepare("INSERT INTO jobs (name, queue, payload, run_at, max_attempts, created_at, updated_at) VALUES ('n', 'q', '{}', 0, 0, 0, 0)").run())
      .toThrow(/CHECK constraint failed/);
    const attempt = db.prepare('INSERT INTO job_attempts (job_id, attempt, lease_token, finished_at, outcome) VALUES (1, 1, ?, 1, ?)');
    const outcomes = ['completed', 'failed', 'timeout', 'lost', 'aborted', 'invalid', 'cancelled', 'yielded'];
    outcomes.forEach((outcome, k) => expect(() => attempt.run(k + 1, outcome)).not.toThrow());
    for (const outcome of ['bogus', 'Failed', '']) expect(() => attempt.run(100, outcome), outcome).toThrow(/CHECK constraint failed/);
    db.close();
  });

  it('serves the schedule overlap queries and the rare-state listing from the rewritten partial indexes', async () => {
    const { tdb, db } = await databaseBeforeRebuild();
    await tdb.driver.migrate();
    const plan = (sql: string, params: Record<string, unknown>): string =>
      (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(params) as { detail: string }[]).map((r) => r.detail).join('\n');
    expect(plan(ScheduleSQL.JOB_SCHEDULE_ACTIVE_IDS, { name: 'nightly' })).toContain('jobs_schedule_active_idx');
    // The planner may take the other index on (schedule_name, state): either way a search, never a scan of jobs.
    expect(plan(ScheduleSQL.JOB_SCHEDULE_BLOCKING, { name: 'nightly', states: '["running"]' })).toMatch(/^SEARCH jobs USING (COVERING )?INDEX jobs_schedule_(active|state)_idx \(schedule_name=\? AND state=\?\)/);
    expect(plan(AdminSQL.jobListSql({ state: 'rare', queue: false, name: false }), { state: 'dead', beforeId: 10, limit: 5 })).toContain('jobs_rare_state_idx');
    db.close();
  });

  it('refuses to commit a rebuild that leaves a reference broken: nothing applied, tables as they were', async () => {
    const { tdb, db } = await databaseBeforeRebuild();
    fill(db);
    // An attempt whose job is gone, written past the foreign keys (as a tool editing the file by hand could).
    db.pragma('foreign_keys = OFF');
    db.prepare("INSERT INTO job_attempts (job_id, attempt, lease_token, finished_at, outcome) VALUES (777, 1, 1, 1, 'lost')").run();
    const before = { jobs: dump(db, 'jobs'), attempts: dump(db, 'job_attempts'), schema: db.prepare("SELECT sql FROM sqlite_master WHERE name = 'jobs'").get() };

    const failure = await tdb.driver.migrate().then(() => null, (error: unknown) => error);
    expect(failure).toBeInstanceOf(MigrationIntegrityError);
    expect(failure).toMatchObject({ migration: REBUILD, violations: [{ table: 'job_attempts', parent: 'jobs' }] });
    expect((failure as Error).message).toMatch(/^Expected every reference to find its row after migration 0010_constraints_without_in_lists, got 1 broken/);

    expect(await tdb.driver.migrationStatus()).toEqual({ applied: NAMES.filter((n) => !FROM_REBUILD.includes(n)), pending: FROM_REBUILD });
    expect(dump(db, 'jobs')).toEqual(before.jobs);
    expect(dump(db, 'job_attempts')).toEqual(before.attempts);
    expect(db.prepare("SELECT sql FROM sqlite_master WHERE name = 'jobs'").get()).toEqual(before.schema);
    // The driver keeps working on the unchanged schema.
    const [inserted] = await tdb.driver.jobInsertMany({ jobs: [makeInsert()], now: new Date(1_000) });
    expect(inserted!.job.id).toBe('41');
    db.close();
  });
});
