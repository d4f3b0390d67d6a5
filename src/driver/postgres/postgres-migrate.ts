/**
 * Applying the PostgreSQL migrations (`postgres-migrations.ts`) and reporting which are applied, for the PostgreSQL
 * driver (`Driver.migrate`, `migrationStatus`).
 * @module
 */
import type pg from 'pg';
import { DatabaseConfigError } from '../../errors.js';
import type { MigrateResult, MigrationStatus } from '../driver.js';
import type { Run } from './postgres-insert.js';
import { POSTGRES_MIGRATIONS } from './postgres-migrations.js';
import * as SQL from './postgres-sql.js';
import type { PostgresStatements } from './postgres-statements.js';
import { withTransaction } from './postgres-transaction.js';

/** What migrating runs on. */
export interface PostgresMigrateContext {
  pool: pg.Pool;
  /** Runs one statement on any pooled connection. */
  run: Run;
  /** The (validated, unquoted) schema holding Warden's tables. */
  schema: string;
  sql: Pick<PostgresStatements, 'quotedSchema' | 'schemaCreate' | 'migrationTableCreate' | 'migrationList' | 'migrationRecord'>;
}

/**
 * The oldest PostgreSQL the migrations run on, as `server_version_num`: migration 0013 sets a column's compression
 * (`SET COMPRESSION`, PostgreSQL 14), which an older server rejects as a syntax error before the migration's own
 * fallback can catch it. The tests run on PostgreSQL 15.
 */
export const MIN_SERVER_VERSION_NUM = 140000;

/**
 * Refuses a server older than {@link MIN_SERVER_VERSION_NUM}, naming its version, instead of the syntax error one of
 * the migrations would meet halfway (the transaction would roll back, but the message would not say why).
 * @throws DatabaseConfigError when `num` is below the minimum.
 */
export function checkServerVersion(num: number, version: string): void {
  if (num >= MIN_SERVER_VERSION_NUM) return;
  throw new DatabaseConfigError(`Expected PostgreSQL 14 or later, got ${version} (server_version_num ${num})`);
}

/** Applies pending migrations in one transaction under an advisory lock keyed by the schema name. */
export async function migrate(ctx: PostgresMigrateContext): Promise<MigrateResult> {
  return withTransaction(ctx.pool, async (run) => {
    const server = (await run<{ num: number; version: string }>(SQL.SERVER_VERSION_SQL)).rows[0]!;
    checkServerVersion(server.num, server.version);
    // Lock first: it serializes everything below, including creating the schema.
    await run(SQL.MIGRATE_LOCK_SQL, [ctx.schema]);
    // CREATE SCHEMA needs the CREATE privilege on the database even when the schema exists, so skip it
    // when it is there (safe: no one else can create it while we hold the lock).
    const exists = await run(SQL.SCHEMA_EXISTS_SQL, [ctx.schema]);
    if (exists.rowCount === 0) await run(ctx.sql.schemaCreate);
    await run(ctx.sql.migrationTableCreate);
    const done = new Set((await run<{ name: string }>(ctx.sql.migrationList)).rows.map((r) => r.name));
    const applied: string[] = [];
    for (const migration of POSTGRES_MIGRATIONS) {
      if (done.has(migration.name)) continue;
      await run(migration.sql.replaceAll('{{schema}}', ctx.sql.quotedSchema));
      await run(ctx.sql.migrationRecord, [migration.name]);
      done.add(migration.name);
      applied.push(migration.name);
    }
    return { applied, current: [...done].sort() };
  });
}

/** Applied and pending migrations. Creates nothing, so it is safe against a database never migrated. */
export async function migrationStatus(ctx: PostgresMigrateContext): Promise<MigrationStatus> {
  const all = POSTGRES_MIGRATIONS.map((m) => m.name);
  const { rows } = await ctx.run<{ exists: boolean }>(SQL.MIGRATION_TABLE_EXISTS_SQL, [`${ctx.sql.quotedSchema}.migrations`]);
  if (!rows[0]?.exists) return { applied: [], pending: all };
  const applied = (await ctx.run<{ name: string }>(ctx.sql.migrationList)).rows.map((r) => r.name);
  const done = new Set(applied);
  return { applied, pending: all.filter((name) => !done.has(name)) };
}
