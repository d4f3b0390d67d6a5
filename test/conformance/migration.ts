/**
 * Conformance: `migrate` / `migrationStatus` — fresh databases, idempotence, concurrent migrators, schema
 * isolation, and (PostgreSQL) schema-name validation.
 * @module
 */
import { afterEach, describe, expect, it } from 'vitest';
import { canonicalJson, GENESIS_HASH, sealBatch } from '../../src/audit/audit-hash.js';
import { verifyAuditChain } from '../../src/audit/audit-verify.js';
import type { AuditEntry, AuditEntryInput } from '../../src/driver/audit-params.js';
import { createDriver } from '../../src/driver/create-driver.js';
import { POSTGRES_MIGRATIONS } from '../../src/driver/postgres/postgres-migrations.js';
import { SQLITE_MIGRATIONS } from '../../src/driver/sqlite/sqlite-migrations.js';
import { MIGRATION_RECORD, MIGRATIONS_TABLE_CREATE } from '../../src/driver/sqlite/sqlite-sql.js';
import { InvalidNameError } from '../../src/errors.js';
import { createTestDatabase, makeInsert, PG_URL, type DriverKind, type TestDatabase } from '../support/test-databases.js';
import { at, openPgClient, openRawSqlite } from './helpers.js';

/** Declares the migration conformance tests for one driver kind. */
export function exerciseMigration(kind: DriverKind): void {
  const names = (kind === 'sqlite' ? SQLITE_MIGRATIONS : POSTGRES_MIGRATIONS).map((m) => m.name);

  describe('migrations', () => {
    const opened: TestDatabase[] = [];
    async function fresh(migrate: boolean): Promise<TestDatabase> {
      const tdb = await createTestDatabase(kind, { migrate });
      opened.push(tdb);
      return tdb;
    }
    afterEach(async () => {
      await Promise.all(opened.splice(0).map((tdb) => tdb.cleanup()));
    });

    it('knows the migration 0001_initial', () => {
      expect(names[0]).toBe('0001_initial');
    });

    it('reports everything pending on a fresh database, applies it once, then nothing', async () => {
      const tdb = await fresh(false);
      expect(await tdb.driver.migrationStatus()).toEqual({ applied: [], pending: names });
      expect(await tdb.driver.migrate()).toEqual({ applied: names, current: names });
      expect(await tdb.driver.migrationStatus()).toEqual({ applied: names, pending: [] });
      expect(await tdb.driver.migrate()).toEqual({ applied: [], current: names });
      expect(await tdb.driver.migrationStatus()).toEqual({ applied: names, pending: [] });
      // Another connection sees the same.
      expect(await tdb.newDriver().migrationStatus()).toEqual({ applied: names, pending: [] });
      expect(await tdb.newDriver().migrate()).toEqual({ applied: [], current: names });
    });

    it('leaves a migrated database usable', async () => {
      const tdb = await fresh(false);
      await tdb.driver.migrate();
      const [result] = await tdb.driver.jobInsertMany({ jobs: [makeInsert()], now: at(0) });
      expect(result!.job.state).toBe('queued');
    });

    it('applies each migration exactly once when three instances migrate at once', async () => {
      const tdb = await fresh(false);
      const drivers = [tdb.newDriver(), tdb.newDriver(), tdb.newDriver()];
      const results = await Promise.allSettled(drivers.map((d) => d.migrate()));
      expect(results.map((r) => (r.status === 'rejected' ? String(r.reason) : 'ok'))).toEqual(['ok', 'ok', 'ok']);
      const values = results.map((r) => (r.status === 'fulfilled' ? r.value : { applied: [], current: [] }));
      expect(values.flatMap((v) => v.applied).sort()).toEqual([...names].sort());
      expect(values.map((v) => v.current)).toEqual([names, names, names]);
      expect(await tdb.driver.migrationStatus()).toEqual({ applied: names, pending: [] });
    });

    it('is reachable through createDriver with the test database url', async () => {
      const tdb = await fresh(true);
      const driver = createDriver({ url: tdb.url, schema: tdb.schema });
      try {
        expect(driver.kind).toBe(kind);
        expect(await driver.migrationStatus()).toEqual({ applied: names, pending: [] });
        await tdb.driver.jobInsertMany({ jobs: [makeInsert({ name: 'seen' })], now: at(0) });
        expect((await driver.jobList({})).map((j) => j.name)).toEqual(['seen']);
      } finally {
        await driver.close();
      }
    });

    it('keeps two test databases apart', async () => {
      const one = await fresh(true);
      const two = await fresh(true);
      expect(one.url === two.url && one.schema === two.schema).toBe(false);
      await one.driver.jobInsertMany({ jobs: [makeInsert({ key: 'shared-key' })], now: at(0) });
      await one.driver.queuePause({ queue: 'default' });
      expect(await two.driver.jobList({})).toEqual([]);
      expect(await two.driver.queueList()).toEqual([]);
      const [r] = await two.driver.jobInsertMany({ jobs: [makeInsert({ key: 'shared-key' })], now: at(0) });
      expect(r!.duplicate).toBe(false);
    });

    it('moves audit entries written before 0013 into blocks: they read back as stored, verify, and the chain goes on', async () => {
      const tdb = await fresh(false);
      const before = (kind === 'sqlite' ? SQLITE_MIGRATIONS : POSTGRES_MIGRATIONS).filter((m) => m.name < '0013');
      // Three batches of chain "default" (the last two at the same time) and one of "other", with every kind of value.
      const odd = 'quote " backslash \\ tab \t newline \n é 😀 \u0001';
      const inputs = (n: number, tag: string): AuditEntryInput[] => Array.from({ length: n }, (_, i) => ({
        actor: i === 0 ? odd : 'system:test', action: 'job.completed', subjectKind: 'job', subjectId: `${tag}${i}`,
        jobName: i % 2 === 0 ? null : 'send-email', queue: 'default', before: 'running', after: i === 1 ? null : 'completed',
        reason: i === 2 ? odd : null, data: i === 0 ? null : { attempt: i, nested: { list: [1, 'two', null, true], text: odd } },
      }));
      const batches: [string, number, AuditEntryInput[]][] = [['default', 5, inputs(3, 'a')], ['default', 1_000, inputs(4, 'b')], ['default', 1_000, inputs(2, 'c')], ['other', 7, inputs(2, 'd')]];
      const sealed: AuditEntry[] = [];
      const heads = new Map<string, AuditEntry>();
      for (const [chain, t, batch] of batches) {
        const head = heads.get(chain);
        const { entries } = sealBatch(chain, { seq: head?.seq ?? 0, hash: head?.hash ?? GENESIS_HASH }, at(t), batch);
        sealed.push(...entries);
        heads.set(chain, entries.at(-1)!);
      }
      const row = (e: AuditEntry) => [e.chain, e.seq, kind === 'sqlite' ? e.at.getTime() : e.at, e.actor, e.action, e.subjectKind, e.subjectId, e.jobName, e.queue, e.before, e.after, e.reason, e.data === null ? null : canonicalJson(e.data), e.prevHash, e.hash];
      const columns = 'chain, seq, at, actor, action, subject_kind, subject_id, job_name, queue, before_state, after_state, reason, data, prev_hash, hash';
      if (kind === 'sqlite') {
        const db = openRawSqlite(tdb);
        try {
          db.exec(MIGRATIONS_TABLE_CREATE);
          for (const m of before) {
            db.exec(m.sql);
            db.prepare(MIGRATION_RECORD).run({ name: m.name, now: null });
          }
          const insert = db.prepare(`INSERT INTO audit_entries (${columns}) VALUES (${columns.split(',').map(() => '?').join(', ')})`);
          for (const e of sealed) insert.run(...row(e));
          for (const [chain, e] of heads) db.prepare('INSERT INTO audit_heads (chain, seq, hash, at) VALUES (?, ?, ?, ?)').run(chain, e.seq, e.hash, e.at.getTime());
        } finally {
          db.close();
        }
      } else {
        const client = await openPgClient();
        try {
          const q = `"${tdb.schema}"`;
          await client.query(`CREATE SCHEMA IF NOT EXISTS ${q}; CREATE TABLE ${q}.migrations (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`);
          for (const m of before) {
            await client.query(m.sql.replaceAll('{{schema}}', q));
            await client.query(`INSERT INTO ${q}.migrations (name) VALUES ($1)`, [m.name]);
          }
          for (const e of sealed) await client.query(`INSERT INTO ${q}.audit_entries (${columns}) VALUES (${columns.split(',').map((_, i) => `$${i + 1}`).join(', ')})`, row(e));
          for (const [chain, e] of heads) await client.query(`INSERT INTO ${q}.audit_heads (chain, seq, hash, at) VALUES ($1, $2, $3, $4)`, [chain, e.seq, e.hash, e.at]);
        } finally {
          await client.end();
        }
      }
      expect(await tdb.driver.migrationStatus()).toEqual({ applied: names.filter((n) => n < '0013'), pending: names.filter((n) => n >= '0013') });
      await tdb.driver.migrate();

      for (const chain of ['default', 'other']) {
        expect(await tdb.driver.auditList({ chain, limit: 100 })).toEqual(sealed.filter((e) => e.chain === chain));
        expect(await verifyAuditChain(tdb.driver, { chain })).toMatchObject({ ok: true, checked: heads.get(chain)!.seq });
      }
      expect(await tdb.driver.auditList({ chain: 'default', since: at(1_000), limit: 100 })).toEqual(sealed.filter((e) => e.chain === 'default' && e.seq > 3));
      const [next] = await tdb.driver.auditAppend({ chain: 'default', entries: inputs(1, 'e'), now: at(2_000) });
      expect([next!.seq, next!.prevHash]).toEqual([10, heads.get('default')!.hash]);
      expect(await verifyAuditChain(tdb.driver, { chain: 'default' })).toMatchObject({ ok: true, checked: 10 });

      // The view shows every entry, migrated or appended since, one row each with the old table's columns.
      const viewSql = `SELECT ${columns} FROM ${kind === 'sqlite' ? '' : `"${tdb.schema}".`}audit_entries ORDER BY chain, seq`;
      let viewRows: Record<string, unknown>[];
      if (kind === 'sqlite') {
        const db = openRawSqlite(tdb);
        try {
          viewRows = db.prepare(viewSql).all() as Record<string, unknown>[];
        } finally {
          db.close();
        }
      } else {
        const client = await openPgClient();
        try {
          viewRows = (await client.query(viewSql)).rows;
        } finally {
          await client.end();
        }
      }
      const expected = [...sealed.filter((e) => e.chain === 'default'), next!, ...sealed.filter((e) => e.chain === 'other')];
      expect(viewRows.map((r) => ({ ...r, seq: Number(r.seq), at: kind === 'sqlite' ? Number(r.at) : (r.at as Date).getTime(), data: typeof r.data === 'string' ? JSON.parse(r.data) : r.data })))
        .toEqual(expected.map((e) => ({
          chain: e.chain, seq: e.seq, at: e.at.getTime(), actor: e.actor, action: e.action, subject_kind: e.subjectKind, subject_id: e.subjectId, job_name: e.jobName,
          queue: e.queue, before_state: e.before, after_state: e.after, reason: e.reason, data: e.data, prev_hash: e.prevHash, hash: e.hash,
        })));
    });

    if (kind === 'sqlite') {
      it('creates the tables in the database file', async () => {
        const tdb = await fresh(true);
        const db = openRawSqlite(tdb);
        try {
          const tables = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[]).map((t) => t.name);
          expect(tables).toEqual(expect.arrayContaining(['jobs', 'job_attempts', 'queues']));
        } finally {
          db.close();
        }
      });
    }

    if (kind === 'postgres') {
      it('creates the schema, its tables and the migrations ledger inside the given schema only', async () => {
        const tdb = await fresh(true);
        const client = await openPgClient();
        try {
          const res = await client.query<{ table_name: string }>(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = $1 AND table_type = 'BASE TABLE'",
            [tdb.schema],
          );
          expect(res.rows.map((r) => r.table_name).sort()).toEqual(['alerts', 'audit_blocks', 'audit_heads', 'handoff_waiters', 'job_attempts', 'job_keys', 'job_steps', 'jobs', 'locks', 'migrations', 'queues', 'schedule_ticks', 'schedules']);
          const pub = await client.query("SELECT 1 FROM information_schema.tables WHERE table_schema = 'public' AND table_name IN ('jobs', 'job_attempts', 'queues')");
          expect(pub.rowCount).toBe(0);
        } finally {
          await client.end();
        }
      });

      it('rejects invalid schema names in the PostgresDriver constructor with InvalidNameError', async () => {
        const { PostgresDriver } = await import('../../src/driver/postgres/postgres-driver.js');
        for (const schema of ['a;drop', 'x'.repeat(65), 'x'.repeat(64), 'Ünï', 'Warden', '1abc', '', 'a"b', 'a b', 'a-b']) {
          let caught: unknown;
          try {
            const driver = new PostgresDriver({ connectionString: PG_URL, schema });
            await driver.close();
          } catch (error) {
            caught = error;
          }
          expect(caught, `schema ${JSON.stringify(schema)}`).toBeInstanceOf(InvalidNameError);
          expect((caught as InvalidNameError).field).toBe('schema');
        }
      });

      it('accepts valid schema names up to 63 characters', async () => {
        const { PostgresDriver } = await import('../../src/driver/postgres/postgres-driver.js');
        for (const schema of ['x'.repeat(63), '_private', 'warden_2']) {
          const driver = new PostgresDriver({ connectionString: PG_URL, schema });
          await driver.close();
        }
      });
    }
  });
}
