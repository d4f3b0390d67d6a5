/**
 * {@link AppDb} on SQLite: the application's tables in Warden's own database file. Times are stored as ISO 8601
 * text in UTC (`toISOString()`), which sorts and compares like the times themselves.
 * @module
 */
import Database from 'better-sqlite3';
import type { TransactionHandle } from '../../src/index.js';
import { type AppDb, type Customer, nextScreeningAt, type RunReport, type RunRow, type ScreeningOutcome, type SeedCustomer } from './app-db.js';

const DDL = `
CREATE TABLE IF NOT EXISTS app_customers (
  id                INTEGER PRIMARY KEY,
  name              TEXT NOT NULL,
  country           TEXT NOT NULL,
  last_screened_at  TEXT,
  next_screening_at TEXT NOT NULL
);
-- The key of a result is (run, customer): a second row for the same customer in the same run is an error, not
-- a silent duplicate. The job's design never tries to write one; this makes sure a mistake would be loud.
CREATE TABLE IF NOT EXISTS app_screening_results (
  run_id        TEXT NOT NULL,
  customer_id   INTEGER NOT NULL REFERENCES app_customers (id),
  verdict       TEXT NOT NULL CHECK (verdict IN ('clear', 'hit')),
  screening_id  TEXT NOT NULL,
  requests      INTEGER NOT NULL,
  screened_at   TEXT NOT NULL,
  PRIMARY KEY (run_id, customer_id)
);
CREATE TABLE IF NOT EXISTS app_screening_runs (
  run_id            TEXT PRIMARY KEY,
  as_of             TEXT NOT NULL,
  screened          INTEGER NOT NULL,
  hits              INTEGER NOT NULL,
  requests          INTEGER NOT NULL,
  finished_attempt  INTEGER NOT NULL,
  finished_at       TEXT NOT NULL
);`;

/** See {@link AppDb}. */
export class SqliteAppDb implements AppDb {
  readonly kind = 'sqlite' as const;
  /** The application's own connection: seeding and reads. Transactional writes go through Warden's `tx`. */
  readonly #db: Database.Database;

  constructor(file: string) {
    this.#db = new Database(file);
    // WAL, as Warden uses: the keyset reads never wait for a batch's write transaction, and vice versa.
    this.#db.pragma('journal_mode = WAL');
    this.#db.pragma('busy_timeout = 5000');
  }

  async createTables(): Promise<void> {
    this.#db.exec(DDL);
  }

  async countCustomers(): Promise<number> {
    return (this.#db.prepare('SELECT count(*) AS n FROM app_customers').get() as { n: number }).n;
  }

  async insertCustomers(customers: SeedCustomer[]): Promise<void> {
    const insert = this.#db.prepare('INSERT INTO app_customers (id, name, country, last_screened_at, next_screening_at) VALUES (?, ?, ?, ?, ?)');
    this.#db.transaction(() => {
      for (const c of customers) insert.run(c.id, c.name, c.country, c.lastScreenedAt?.toISOString() ?? null, c.nextScreeningAt.toISOString());
    })();
  }

  async countDue(asOf: Date): Promise<number> {
    return (this.#db.prepare('SELECT count(*) AS n FROM app_customers WHERE next_screening_at <= ?').get(asOf.toISOString()) as { n: number }).n;
  }

  async dueAfter(asOf: Date, afterId: number, limit: number): Promise<Customer[]> {
    // Walks the primary key from `afterId` and filters: right when most customers are due. With few due among
    // many, an index on (next_screening_at, id) and a different cursor would serve better.
    return this.#db
      .prepare('SELECT id, name, country FROM app_customers WHERE next_screening_at <= ? AND id > ? ORDER BY id LIMIT ?')
      .all(asOf.toISOString(), afterId, limit) as Customer[];
  }

  async recordResults(tx: TransactionHandle, runId: string, asOf: Date, outcomes: ScreeningOutcome[]): Promise<void> {
    // Warden hands out a better-sqlite3 Database (its transaction connection) inside BEGIN IMMEDIATE.
    const db = tx as Database.Database;
    const insert = db.prepare('INSERT INTO app_screening_results (run_id, customer_id, verdict, screening_id, requests, screened_at) VALUES (?, ?, ?, ?, ?, ?)');
    const advance = db.prepare('UPDATE app_customers SET last_screened_at = ?, next_screening_at = ? WHERE id = ?');
    for (const o of outcomes) {
      insert.run(runId, o.customerId, o.verdict, o.screeningId, o.requests, o.screenedAt);
      advance.run(o.screenedAt, nextScreeningAt(asOf, o.verdict).toISOString(), o.customerId);
    }
  }

  async recordRun(tx: TransactionHandle, runId: string, asOf: Date, attempt: number): Promise<RunRow> {
    const db = tx as Database.Database;
    const totals = db
      .prepare("SELECT count(*) AS screened, coalesce(sum(verdict = 'hit'), 0) AS hits, coalesce(sum(requests), 0) AS requests FROM app_screening_results WHERE run_id = ?")
      .get(runId) as { screened: number; hits: number; requests: number };
    db.prepare('INSERT INTO app_screening_runs (run_id, as_of, screened, hits, requests, finished_attempt, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?)')
      .run(runId, asOf.toISOString(), totals.screened, totals.hits, totals.requests, attempt, new Date().toISOString());
    return { runId, asOf, ...totals, finishedAttempt: attempt };
  }

  async report(runId: string, asOf: Date): Promise<RunReport> {
    const totals = this.#db
      .prepare(
        `SELECT count(*) AS rows, count(DISTINCT customer_id) AS distinctCustomers, coalesce(sum(verdict = 'hit'), 0) AS hits,
                coalesce(sum(requests), 0) AS requests
           FROM app_screening_results WHERE run_id = ?`,
      )
      .get(runId) as { rows: number; distinctCustomers: number; hits: number; requests: number };
    const { duplicateCustomers } = this.#db
      .prepare('SELECT count(*) AS duplicateCustomers FROM (SELECT customer_id FROM app_screening_results WHERE run_id = ? GROUP BY customer_id HAVING count(*) > 1)')
      .get(runId) as { duplicateCustomers: number };
    const run = this.#db.prepare('SELECT * FROM app_screening_runs WHERE run_id = ?').get(runId) as Record<string, string | number> | undefined;
    return {
      ...totals,
      duplicateCustomers,
      stillDue: await this.countDue(asOf),
      run: run
        ? { runId, asOf: new Date(String(run.as_of)), screened: Number(run.screened), hits: Number(run.hits), requests: Number(run.requests), finishedAttempt: Number(run.finished_attempt) }
        : null,
    };
  }

  async close(): Promise<void> {
    this.#db.close();
  }
}
