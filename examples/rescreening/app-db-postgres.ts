/**
 * {@link AppDb} on PostgreSQL: the application's tables (`app_*`) in the schema Warden uses, read through the
 * application's own pool and written, where it matters, through Warden's transaction client.
 * @module
 */
import pg from 'pg';
import type { TransactionHandle } from '../../src/index.js';
import { type AppDb, type Customer, RESCREEN_AFTER_DAYS, type RunReport, type RunRow, type ScreeningOutcome, type SeedCustomer } from './app-db.js';

/** See {@link AppDb}. */
export class PostgresAppDb implements AppDb {
  readonly kind = 'postgres' as const;
  readonly #pool: pg.Pool;
  /** `"schema".` — checked to be a plain identifier by `openAppDb`. */
  readonly #s: string;

  constructor(url: string, schema: string) {
    this.#pool = new pg.Pool({ connectionString: url, max: 4 });
    // An idle client that loses its connection emits 'error'; without a listener that would crash the process.
    this.#pool.on('error', () => undefined);
    this.#s = `"${schema}".`;
  }

  async createTables(): Promise<void> {
    const s = this.#s;
    await this.#pool.query(`
      CREATE SCHEMA IF NOT EXISTS ${s.slice(0, -1)};
      CREATE TABLE IF NOT EXISTS ${s}app_customers (
        id                bigint PRIMARY KEY,
        name              text NOT NULL,
        country           text NOT NULL,
        last_screened_at  timestamptz,
        next_screening_at timestamptz NOT NULL
      );
      -- (run, customer) is the key: a second row for a customer in one run is an error, never a silent duplicate.
      CREATE TABLE IF NOT EXISTS ${s}app_screening_results (
        run_id        text NOT NULL,
        customer_id   bigint NOT NULL REFERENCES ${s}app_customers (id),
        verdict       text NOT NULL CHECK (verdict IN ('clear', 'hit')),
        screening_id  text NOT NULL,
        requests      integer NOT NULL,
        screened_at   timestamptz NOT NULL,
        PRIMARY KEY (run_id, customer_id)
      );
      CREATE TABLE IF NOT EXISTS ${s}app_screening_runs (
        run_id            text PRIMARY KEY,
        as_of             timestamptz NOT NULL,
        screened          integer NOT NULL,
        hits              integer NOT NULL,
        requests          integer NOT NULL,
        finished_attempt  integer NOT NULL,
        finished_at       timestamptz NOT NULL
      );`);
  }

  async countCustomers(): Promise<number> {
    const { rows } = await this.#pool.query<{ n: string }>(`SELECT count(*) AS n FROM ${this.#s}app_customers`);
    return Number(rows[0]!.n);
  }

  async insertCustomers(customers: SeedCustomer[]): Promise<void> {
    // One statement per 10,000 customers, arrays unnested server-side: one round trip instead of thousands.
    for (let i = 0; i < customers.length; i += 10_000) {
      const part = customers.slice(i, i + 10_000);
      await this.#pool.query(
        `INSERT INTO ${this.#s}app_customers (id, name, country, last_screened_at, next_screening_at)
         SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[])`,
        [part.map((c) => c.id), part.map((c) => c.name), part.map((c) => c.country), part.map((c) => c.lastScreenedAt), part.map((c) => c.nextScreeningAt)],
      );
    }
  }

  async countDue(asOf: Date): Promise<number> {
    const { rows } = await this.#pool.query<{ n: string }>(`SELECT count(*) AS n FROM ${this.#s}app_customers WHERE next_screening_at <= $1`, [asOf]);
    return Number(rows[0]!.n);
  }

  async dueAfter(asOf: Date, afterId: number, limit: number): Promise<Customer[]> {
    const { rows } = await this.#pool.query<{ id: string; name: string; country: string }>(
      `SELECT id, name, country FROM ${this.#s}app_customers WHERE next_screening_at <= $1 AND id > $2 ORDER BY id LIMIT $3`,
      [asOf, afterId, limit],
    );
    // bigint arrives as a string; customer ids here are far below 2^53.
    return rows.map((r) => ({ id: Number(r.id), name: r.name, country: r.country }));
  }

  async recordResults(tx: TransactionHandle, runId: string, asOf: Date, outcomes: ScreeningOutcome[]): Promise<void> {
    // Warden hands out a `pg` client inside BEGIN: these two statements commit with the batch's checkpoint.
    const client = tx as pg.ClientBase;
    const ids = outcomes.map((o) => o.customerId);
    const verdicts = outcomes.map((o) => o.verdict);
    const screenedAt = outcomes.map((o) => o.screenedAt);
    await client.query(
      `INSERT INTO ${this.#s}app_screening_results (run_id, customer_id, verdict, screening_id, requests, screened_at)
       SELECT $1, * FROM unnest($2::bigint[], $3::text[], $4::text[], $5::int[], $6::timestamptz[])`,
      [runId, ids, verdicts, outcomes.map((o) => o.screeningId), outcomes.map((o) => o.requests), screenedAt],
    );
    await client.query(
      `UPDATE ${this.#s}app_customers AS c
          SET last_screened_at = v.screened_at,
              next_screening_at = $1::timestamptz + make_interval(days => CASE v.verdict WHEN 'hit' THEN $5::int ELSE $6::int END)
         FROM unnest($2::bigint[], $3::text[], $4::timestamptz[]) AS v (id, verdict, screened_at)
        WHERE c.id = v.id`,
      [asOf, ids, verdicts, screenedAt, RESCREEN_AFTER_DAYS.hit, RESCREEN_AFTER_DAYS.clear],
    );
  }

  async recordRun(tx: TransactionHandle, runId: string, asOf: Date, attempt: number): Promise<RunRow> {
    const client = tx as pg.ClientBase;
    const { rows } = await client.query<{ screened: number; hits: number; requests: number }>(
      `INSERT INTO ${this.#s}app_screening_runs (run_id, as_of, screened, hits, requests, finished_attempt, finished_at)
       SELECT $1, $2, count(*), count(*) FILTER (WHERE verdict = 'hit'), coalesce(sum(requests), 0), $3, now()
         FROM ${this.#s}app_screening_results WHERE run_id = $1
       RETURNING screened, hits, requests`,
      [runId, asOf, attempt],
    );
    const r = rows[0]!;
    return { runId, asOf, screened: r.screened, hits: r.hits, requests: r.requests, finishedAttempt: attempt };
  }

  async report(runId: string, asOf: Date): Promise<RunReport> {
    const s = this.#s;
    const { rows } = await this.#pool.query<Record<string, string | null>>(
      `SELECT count(*) AS rows, count(DISTINCT customer_id) AS distinct_customers, count(*) FILTER (WHERE verdict = 'hit') AS hits,
              coalesce(sum(requests), 0) AS requests,
              (SELECT count(*) FROM (SELECT 1 FROM ${s}app_screening_results WHERE run_id = $1 GROUP BY customer_id HAVING count(*) > 1) d) AS duplicates
         FROM ${s}app_screening_results WHERE run_id = $1`,
      [runId],
    );
    const t = rows[0]!;
    const run = (await this.#pool.query(`SELECT * FROM ${s}app_screening_runs WHERE run_id = $1`, [runId])).rows[0] as Record<string, unknown> | undefined;
    return {
      rows: Number(t.rows),
      distinctCustomers: Number(t.distinct_customers),
      duplicateCustomers: Number(t.duplicates),
      hits: Number(t.hits),
      requests: Number(t.requests),
      stillDue: await this.countDue(asOf),
      run: run
        ? { runId, asOf: run.as_of as Date, screened: Number(run.screened), hits: Number(run.hits), requests: Number(run.requests), finishedAttempt: Number(run.finished_attempt) }
        : null,
    };
  }

  async close(): Promise<void> {
    await this.#pool.end();
  }
}
