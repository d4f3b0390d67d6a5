/**
 * Conformance: `migrate` / `migrationStatus` — fresh databases, idempotence, concurrent migrators, schema
 * isolation, and (PostgreSQL) schema-name validation.
 * @module
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createDriver } from '../../src/driver/create-driver.js';
import { POSTGRES_MIGRATIONS } from '../../src/driver/postgres/postgres-migrations.js';
import { SQLITE_MIGRATIONS } from '../../src/driver/sqlite/sqlite-migrations.js';
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
            'SELECT table_name FROM information_schema.tables WHERE table_schema = $1',
            [tdb.schema],
          );
          expect(res.rows.map((r) => r.table_name).sort()).toEqual(['alerts', 'audit_entries', 'audit_heads', 'job_attempts', 'job_keys', 'job_steps', 'jobs', 'locks', 'migrations', 'queues', 'schedule_ticks', 'schedules']);
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
