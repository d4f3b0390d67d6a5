import Database from 'better-sqlite3';
import { existsSync } from 'node:fs';
import pg from 'pg';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { createWarden, defineJob, defineSchedule } from '../../src/index.js';
import { type CliDatabase, cli, cliJson, expectOneLineError, migratedDatabase, PG_URL, postgresDatabase, sqliteDatabase } from './cli-helpers.js';

const cleanups: CliDatabase[] = [];
afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((db) => db.cleanup()));
});

/**
 * Both databases' migrations up to 0014, then PostgreSQL's 0015 (hand-off registrations: no SQLite twin), then
 * both, then PostgreSQL's 0017 (the registrations' channel), then both (0018, retention's index by job name).
 */
const COMMON = ['0001_initial', '0002_schedules_and_locks', '0003_schedule_ticks_recent_idx', '0004_idempotency', '0005_audit', '0006_alerts', '0007_tracing_retention', '0008_attempts_unconstrained', '0009_rare_state_index', '0010_constraints_without_in_lists', '0011_completed_attempt_on_job', '0012_sparse_audit_time_index', '0013_audit_blocks', '0014_schedule_tick_writer'];

describe.each(['sqlite', 'postgres'] as const)('warden migrate (%s)', (kind) => {
  const names = kind === 'sqlite'
    ? [...COMMON, '0016_lock_grant_id', '0018_jobs_finished_name_idx']
    : [...COMMON, '0015_handoff_waiters', '0016_lock_grant_id', '0017_handoff_channel', '0018_jobs_finished_name_idx'];
  it('applies migrations, then reports already up to date', async () => {
    const db = kind === 'sqlite' ? await sqliteDatabase() : await postgresDatabase();
    cleanups.push(db);

    const pending = await cli(['migrate', '--status', '--check', ...db.args]);
    expect(pending.code).toBe(1);
    expect(pending.out).toMatch(/^pending {2}0001_initial$/m);
    expect(pending.out).toMatch(/^pending {2}0002_schedules_and_locks$/m);
    expect(pending.out).toMatch(/^pending {2}0003_schedule_ticks_recent_idx$/m);
    expect(pending.out).toMatch(/^pending {2}0004_idempotency$/m);
    expect(pending.out).toMatch(/^pending {2}0005_audit$/m);
    expect(pending.out).toMatch(/^pending {2}0006_alerts$/m);
    expect(pending.out).toMatch(/^pending {2}0007_tracing_retention$/m);

    const first = await cli(['migrate', ...db.args]);
    expect(first).toEqual({ code: 0, out: names.map((n) => `applied ${n}\n`).join(''), err: '' });

    const second = await cli(['migrate', ...db.args]);
    expect(second.code).toBe(0);
    expect(second.out).toMatch(/^already up to date/);

    const json = await cliJson(['migrate', ...db.args]);
    expect(json).toEqual({ applied: [], current: names });

    const status = await cliJson(['migrate', '--status', '--check', ...db.args]);
    expect(status).toEqual({ applied: names, pending: [] });
  });

  it('a database that applied the withdrawn 0019_schedule_timing_hash is up to date: nothing pending, doctor content, schedules synced', async () => {
    const db = await migratedDatabase(kind);
    cleanups.push(db);
    await applyWithdrawnTimingHash(db);

    expect(await cliJson(['migrate', '--status', '--check', ...db.args])).toEqual({ applied: [...names, WITHDRAWN], pending: [] });
    expect((await cli(['migrate', ...db.args])).out).toMatch(/^already up to date/);
    const doctor = await cli(['doctor', ...db.args]);
    expect([doctor.code, doctor.err, doctor.out.trimEnd().split('\n').at(-1)]).toEqual([0, '', 'ok: 0 error(s), 0 warning(s), 0 info']);
    // The column stays, unused: a sync inserts and changes rows beside it.
    const job = defineJob({ name: 'noop', handler: () => undefined });
    for (const priority of [0, 5]) {
      const schema = db.kind === 'postgres' ? db.args[db.args.indexOf('--schema') + 1] : undefined;
      const app = createWarden({ database: db.url, schema, logger: pino({ level: 'silent' }), jobs: [job], schedules: [defineSchedule({ name: 'hourly', cron: '0 * * * *', job, priority })] });
      try {
        await app.runSchedulerOnce();
        expect((await app.schedules.list()).map((r) => [r.name, (r.spec as { priority: number }).priority])).toEqual([['hourly', priority]]);
      } finally {
        await app.close();
      }
    }
  });
});

/** A migration of this session's development, withdrawn before release; some databases applied it. */
const WITHDRAWN = '0019_schedule_timing_hash';

/** Applies {@link WITHDRAWN} to a migrated database as its code did: a nullable column, and the ledger row. */
async function applyWithdrawnTimingHash(db: CliDatabase): Promise<void> {
  if (db.kind === 'sqlite') {
    const raw = new Database(db.url.slice('sqlite:'.length));
    try {
      raw.exec('ALTER TABLE schedules ADD COLUMN timing_hash TEXT');
      raw.prepare('INSERT INTO migrations (name, applied_at) VALUES (?, ?)').run(WITHDRAWN, Date.now());
    } finally {
      raw.close();
    }
    return;
  }
  const schema = `"${db.args[db.args.indexOf('--schema') + 1]!}"`;
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  try {
    await client.query(`ALTER TABLE ${schema}.schedules ADD COLUMN timing_hash text`);
    await client.query(`INSERT INTO ${schema}.migrations (name) VALUES ($1)`, [WITHDRAWN]);
  } finally {
    await client.end();
  }
}

describe('database errors', () => {
  it('rejects an unsupported database URL in one line', async () => {
    expectOneLineError(await cli(['migrate', '--database', 'mysql://root:secret@localhost/db']), 1, /Expected a database URL starting with "sqlite:".*got "mysql:\/\/root:\*\*\*@localhost\/db"/);
  });

  it('reports an unreachable PostgreSQL in one line, password redacted', async () => {
    const result = await cli(['stats', '--database', 'postgres://postgres:hunter2@127.0.0.1:1/test']);
    expectOneLineError(result, 1, /Expected a reachable database at postgres:\/\/postgres:\*\*\*@127\.0\.0\.1:1\/test, got ECONNREFUSED/);
    expect(result.err).not.toContain('hunter2');
  });

  it('rejects an invalid schema name before connecting', async () => {
    expectOneLineError(await cli(['migrate', '--database', 'postgres://postgres@127.0.0.1:1/test', '--schema', 'a;drop']), 1, /Expected schema to match/);
  });

  it('refuses to create an SQLite file for a command other than migrate', async () => {
    const db = await sqliteDatabase();
    cleanups.push(db);
    expectOneLineError(await cli(['jobs', 'list', ...db.args]), 1, /Expected an SQLite database file at .*warden\.db, got no such file/);
    expect(existsSync(db.file)).toBe(false);
  });

  it('asks for `warden migrate` when the schema is not migrated', async () => {
    const db = await postgresDatabase();
    cleanups.push(db);
    expectOneLineError(await cli(['queues', 'list', ...db.args]), 1, /Expected the database schema to be migrated.*Run `warden migrate`/);
  });

  it('reports an SQLite file in a missing directory in one line', async () => {
    expectOneLineError(await cli(['migrate', '--database', 'sqlite:/nonexistent-dir-warden/x.db']), 1, /Expected an SQLite database file that can be opened/);
  });
});

describe('usage', () => {
  it('reports an unknown option in one line with exit code 2', async () => {
    expectOneLineError(await cli(['migrate', '--bogus']), 2, /unknown option '--bogus'/);
  });

  it('reports an unknown command with a suggestion in one line', async () => {
    expectOneLineError(await cli(['jbos']), 2, /unknown command 'jbos'.*jobs/);
  });

  it('reports a missing argument in one line', async () => {
    expectOneLineError(await cli(['enqueue', 'send-email']), 2, /missing required argument 'json'/);
  });

  it('prints help on stdout with exit code 0', async () => {
    const result = await cli(['--help']);
    expect(result.code).toBe(0);
    expect(result.out).toContain('Usage: warden');
    expect(result.out).toContain('enqueue');
  });

  it('rejects an unknown WARDEN_LOG_LEVEL in one line', async () => {
    const previous = process.env.WARDEN_LOG_LEVEL;
    process.env.WARDEN_LOG_LEVEL = 'loud';
    try {
      expectOneLineError(await cli(['migrate', '--database', 'sqlite::memory:']), 1, /Expected WARDEN_LOG_LEVEL to be one of/);
    } finally {
      if (previous === undefined) delete process.env.WARDEN_LOG_LEVEL;
      else process.env.WARDEN_LOG_LEVEL = previous;
    }
  });
});
