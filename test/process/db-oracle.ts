/**
 * Raw SQL access to a test database, independent of the driver under test: the oracle the process tests
 * assert with. Write SQL with PostgreSQL-style `$1` placeholders and `{jobs}`-style table names; for SQLite the
 * placeholders become `?` and the names stay bare, for PostgreSQL the names are qualified with the schema.
 * @module
 */
import Database from 'better-sqlite3';
import pg from 'pg';
import { PG_URL, type TestDatabase } from '../support/test-databases.js';

/** A raw connection to the same SQLite file or PostgreSQL schema as a {@link TestDatabase}. */
export interface Oracle {
  readonly kind: 'sqlite' | 'postgres';
  /** Rows of a query. `{name}` is replaced by the (schema-qualified) table name. */
  all<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
  /** The first column of the first row, as a number (counts). */
  number(sql: string, params?: unknown[]): Promise<number>;
  /** Runs statements without results (DDL). */
  exec(sql: string): Promise<void>;
  close(): Promise<void>;
}

/**
 * Every finished attempt, as a sub-query for the oracle: the `job_attempts` rows and each completing attempt, which
 * is kept on its job row since migration 0011 (`completed_by` is its worker). Columns: `job_id, attempt,
 * lease_token, worker_id, outcome`.
 */
export const ALL_ATTEMPTS = `(SELECT job_id, attempt, lease_token, worker_id, outcome FROM {job_attempts}
  UNION ALL SELECT id, attempt, lease_token, completed_by, 'completed' FROM {jobs} WHERE completed_by IS NOT NULL)`;

/** The SQLite file path of a `sqlite:` URL. */
export function sqliteFilename(url: string): string {
  let filename = url.slice('sqlite:'.length);
  if (filename.startsWith('//')) filename = filename.slice(2);
  return filename;
}

/** Opens an {@link Oracle} on `tdb`. Close it before `tdb.cleanup()`. */
export async function openOracle(tdb: TestDatabase): Promise<Oracle> {
  if (tdb.kind === 'sqlite') {
    const db = new Database(sqliteFilename(tdb.url), { timeout: 15_000 });
    const rewrite = (sql: string, params: unknown[]): [string, unknown[]] => {
      const ordered: unknown[] = [];
      const text = sql.replace(/\{(\w+)\}/g, '$1').replace(/\$(\d+)/g, (_, n: string) => {
        ordered.push(params[Number(n) - 1]);
        return '?';
      });
      return [text, ordered];
    };
    return {
      kind: 'sqlite',
      all: async <T>(sql: string, params: unknown[] = []) => {
        const [text, values] = rewrite(sql, params);
        return db.prepare(text).all(...values) as T[];
      },
      number: async (sql, params = []) => {
        const [text, values] = rewrite(sql, params);
        const row = db.prepare(text).raw(true).get(...values) as unknown[] | undefined;
        return Number(row?.[0]);
      },
      exec: async (sql) => {
        db.exec(sql.replace(/\{(\w+)\}/g, '$1'));
      },
      close: async () => {
        db.close();
      },
    };
  }
  // A pool, not one client: the test database is shared, and a connection terminated from outside (another
  // suite's pg_terminate_backend) must neither crash this process nor fail the next query.
  const pool = new pg.Pool({ connectionString: PG_URL, max: 2 });
  pool.on('error', () => {
    // An idle connection died; the pool drops it and the next query opens another.
  });
  const qualify = (sql: string) => sql.replace(/\{(\w+)\}/g, (_, name: string) => `"${tdb.schema}".${name}`);
  const query = async (config: pg.QueryArrayConfig | pg.QueryConfig): Promise<pg.QueryResult> => {
    for (let tries = 1; ; tries++) {
      try {
        return await pool.query(config as pg.QueryConfig);
      } catch (error) {
        if (tries >= 3 || !isConnectionLoss(error)) throw error;
      }
    }
  };
  return {
    kind: 'postgres',
    all: async <T>(sql: string, params: unknown[] = []) => (await query({ text: qualify(sql), values: params })).rows as T[],
    number: async (sql, params = []) => {
      const result = await query({ text: qualify(sql), values: params, rowMode: 'array' });
      return Number((result.rows[0] as unknown[] | undefined)?.[0]);
    },
    exec: async (sql) => {
      await query({ text: qualify(sql) });
    },
    close: () => pool.end(),
  };
}

/**
 * A PostgreSQL connection terminated from outside (`57P01` admin shutdown, or the socket closing under a
 * query). Such errors come from other suites sharing the server, not from the code under test.
 */
export function isConnectionLoss(error: unknown): boolean {
  const e = error as { code?: unknown; message?: unknown } | null;
  return e?.code === '57P01' || /Connection terminated/i.test(String(e?.message ?? ''));
}
