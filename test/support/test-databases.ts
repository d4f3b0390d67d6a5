/**
 * Real, isolated databases for tests. Every call to {@link createTestDatabase} gets its own SQLite file (in a
 * fresh temporary directory) or its own PostgreSQL schema (a fresh random name), so test files can run in
 * parallel without seeing each other's jobs. Never mocks: the drivers under test talk to real databases.
 *
 * @example
 * let tdb: TestDatabase;
 * beforeEach(async () => { tdb = await createTestDatabase('sqlite'); });
 * afterEach(async () => { await tdb.cleanup(); });
 * it('inserts', async () => {
 *   const [result] = await tdb.driver.jobInsertMany({ jobs: [makeInsert()], now: null });
 * });
 * @module
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import type { Driver, JobInsert } from '../../src/driver/driver.js';

/** The database kinds Warden has a driver for. */
export type DriverKind = 'sqlite' | 'postgres';

const ALL_KINDS: readonly DriverKind[] = ['sqlite', 'postgres'];

/**
 * The driver kinds test suites run against: both by default. Set `WARDEN_TEST_DRIVERS` to a comma-separated
 * subset (e.g. `WARDEN_TEST_DRIVERS=sqlite`) to run against fewer, e.g. on a machine without PostgreSQL.
 */
export const DRIVER_KINDS: DriverKind[] = parseKinds(process.env.WARDEN_TEST_DRIVERS);

/** The PostgreSQL database tests use (each test in its own schema). Override with `WARDEN_TEST_PG_URL`. */
export const PG_URL: string = process.env.WARDEN_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** One isolated database, with a driver already connected to it. */
export interface TestDatabase {
  readonly kind: DriverKind;
  /**
   * A database URL `createDriver({ url, schema })` accepts: `sqlite:/tmp/warden-test-…/warden.db`, or
   * {@link PG_URL} for PostgreSQL (then pass {@link TestDatabase.schema} too).
   */
  readonly url: string;
  /** The PostgreSQL schema holding this database's tables (`t_` + random hex); undefined for SQLite. */
  readonly schema?: string;
  /** A driver on this database; migrated unless `{ migrate: false }` was asked for. */
  readonly driver: Driver;
  /**
   * Opens another, independent driver instance (its own connections) on the same file or schema, like a
   * second process would. It is not migrated by this call. {@link TestDatabase.cleanup} closes it.
   */
  newDriver(): Driver;
  /** Closes every driver this database created, then deletes the file's directory or drops the schema. */
  cleanup(): Promise<void>;
}

/** Options of {@link createTestDatabase}. */
export interface CreateTestDatabaseOptions {
  /** Run `driver.migrate()` before returning. Pass `false` to test migrations themselves. @default true */
  migrate?: boolean;
}

/**
 * Creates a fresh, isolated database of the given kind and a driver on it.
 * - SQLite: a new temporary directory under `os.tmpdir()` holding `warden.db`; removed on cleanup.
 * - PostgreSQL: a new schema `t_<random hex>` in {@link PG_URL}; dropped with `CASCADE` on cleanup.
 *
 * Always call {@link TestDatabase.cleanup} (e.g. in `afterEach`), even when the test failed.
 */
export async function createTestDatabase(kind: DriverKind, options: CreateTestDatabaseOptions = {}): Promise<TestDatabase> {
  const drivers: Driver[] = [];
  let open: () => Driver;
  let url: string;
  let schema: string | undefined;
  let destroy: () => Promise<void>;

  if (kind === 'sqlite') {
    const { SqliteDriver } = await import('../../src/driver/sqlite/sqlite-driver.js');
    const dir = await mkdtemp(join(tmpdir(), 'warden-test-'));
    const filename = join(dir, 'warden.db');
    url = `sqlite:${filename}`;
    open = () => new SqliteDriver({ filename });
    destroy = () => rm(dir, { recursive: true, force: true });
  } else if (kind === 'postgres') {
    const { PostgresDriver } = await import('../../src/driver/postgres/postgres-driver.js');
    const name = `t_${randomBytes(8).toString('hex')}`;
    url = PG_URL;
    schema = name;
    open = () => new PostgresDriver({ connectionString: PG_URL, schema: name });
    destroy = () => dropSchema(name);
  } else {
    throw new Error(`Expected a driver kind (${ALL_KINDS.join(', ')}), got ${String(kind)}`);
  }

  const newDriver = (): Driver => {
    const driver = open();
    drivers.push(driver);
    return driver;
  };

  let cleaned = false;
  const cleanup = async (): Promise<void> => {
    if (cleaned) return;
    cleaned = true;
    const closed = await Promise.allSettled(drivers.map((d) => d.close()));
    await destroy();
    const errors = closed.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
    if (errors.length > 0) throw new AggregateError(errors, `Expected every ${kind} driver to close cleanly, got ${errors.length} error(s)`);
  };

  const driver = newDriver();
  if (options.migrate ?? true) {
    try {
      await driver.migrate();
    } catch (error) {
      await cleanup().catch(() => undefined);
      throw error;
    }
  }
  return { kind, url, schema, driver, newDriver, cleanup };
}

/**
 * A valid {@link JobInsert} with test defaults, overridden field by field: name `test-job`, queue `default`,
 * payload `{}`, priority 0, due now (delay 0, no `runAt`), 3 attempts, no key.
 */
export function makeInsert(overrides: Partial<JobInsert> = {}): JobInsert {
  return {
    name: 'test-job',
    queue: 'default',
    payloadJson: '{}',
    priority: 0,
    delayMs: 0,
    runAt: null,
    maxAttempts: 3,
    key: null,
    ...overrides,
  };
}

async function dropSchema(schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  try {
    // `schema` is generated above from hex digits only, so quoting it is enough.
    await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } finally {
    await client.end();
  }
}

function parseKinds(value: string | undefined): DriverKind[] {
  if (value === undefined || value.trim() === '') return [...ALL_KINDS];
  const kinds = value.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  for (const k of kinds) {
    if (!(ALL_KINDS as readonly string[]).includes(k)) {
      throw new Error(`Expected WARDEN_TEST_DRIVERS to list ${ALL_KINDS.join(', ')}, got ${JSON.stringify(k)}`);
    }
  }
  return kinds as DriverKind[];
}
