/**
 * Applying the SQLite migrations (`sqlite-migrations.ts`) and reporting which are applied, for the SQLite driver.
 * @module
 */
import type Database from 'better-sqlite3';
import { MigrationIntegrityError, type ForeignKeyViolation } from '../../errors.js';
import type { MigrateResult, MigrationStatus } from '../driver.js';
import type { SqliteContext } from './sqlite-exec.js';
import { SQLITE_MIGRATIONS } from './sqlite-migrations.js';
import * as SQL from './sqlite-sql.js';

/** What migrating runs on: the driver's statements and transactions, and its connection for `exec`. */
export interface SqliteMigrateContext extends Pick<SqliteContext, 'stmt' | 'read'> {
  /** The open connection. @throws the driver's closed error once it is closed. */
  connected: () => Database.Database;
  /** `write` with foreign keys off for the transaction (a table rebuild) when `when()` says so, asked just before. */
  writeWithoutForeignKeys: <T>(fn: () => T, when?: () => boolean) => Promise<T>;
}

/**
 * Applies the pending migrations in order, in one write transaction, each recorded in the ledger.
 * @throws MigrationIntegrityError when a table rebuild left a reference broken (nothing is applied then).
 */
export async function migrate(ctx: SqliteMigrateContext): Promise<MigrateResult> {
  // A table rebuild needs foreign keys off, which SQLite ignores inside a transaction: whether one is pending is
  // read in the same synchronous step, just before the transaction (one call, so a close() after it waits for it).
  // The write re-reads what is applied under its lock; another process can only have applied more meanwhile, so
  // foreign keys are at worst off for nothing.
  const rebuildPending = (): boolean => {
    const { pending } = statusNow(ctx);
    return SQLITE_MIGRATIONS.some((m) => m.rebuildsTables === true && pending.includes(m.name));
  };
  const apply = (): MigrateResult => {
    const db = ctx.connected();
    db.exec(SQL.MIGRATIONS_TABLE_CREATE);
    const done = new Set(appliedMigrations(ctx));
    const applied: string[] = [];
    for (const migration of SQLITE_MIGRATIONS) {
      if (done.has(migration.name)) continue;
      db.exec(migration.sql);
      if (migration.rebuildsTables === true) {
        const violations = db.prepare(SQL.FOREIGN_KEY_CHECK).all() as ForeignKeyViolation[];
        if (violations.length > 0) throw new MigrationIntegrityError(migration.name, violations);
      }
      ctx.stmt(SQL.MIGRATION_RECORD).run({ name: migration.name, now: null });
      applied.push(migration.name);
    }
    return { applied, current: appliedMigrations(ctx) };
  };
  return ctx.writeWithoutForeignKeys(apply, rebuildPending);
}

/** Applied and pending migrations. Creates nothing, so it is safe against a database never migrated. */
export async function migrationStatus(ctx: Pick<SqliteContext, 'stmt' | 'read'>): Promise<MigrationStatus> {
  return ctx.read(() => statusNow(ctx));
}

/** {@link migrationStatus} read now, synchronously, on the connection `ctx.stmt` prepares for. */
function statusNow(ctx: Pick<SqliteContext, 'stmt'>): MigrationStatus {
  const applied = ctx.stmt(SQL.MIGRATIONS_TABLE_EXISTS).get() === undefined ? [] : appliedMigrations(ctx);
  const done = new Set(applied);
  return { applied, pending: SQLITE_MIGRATIONS.map((m) => m.name).filter((name) => !done.has(name)) };
}

function appliedMigrations(ctx: Pick<SqliteContext, 'stmt'>): string[] {
  return (ctx.stmt(SQL.MIGRATIONS_APPLIED).all() as { name: string }[]).map((r) => r.name);
}
