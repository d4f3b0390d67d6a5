/**
 * The application's own tables, in the same database as Warden's: `app_customers` (who is due for
 * re-screening, and when they were last screened), `app_screening_results` (one row per customer per run) and
 * `app_screening_runs` (one summary row per run). SQLite: the same file as Warden's tables. PostgreSQL: the same
 * schema as Warden's, with an `app_` prefix, so one `DROP SCHEMA` resets both.
 *
 * Writes that must commit together with Warden's bookkeeping take Warden's transaction handle (`tx`): a
 * better-sqlite3 `Database` inside `BEGIN IMMEDIATE` on SQLite, a `pg` client inside `BEGIN` on PostgreSQL.
 * Everything else (seeding, the keyset reads, the checks) uses the application's own connection.
 * @module
 */
import type { TransactionHandle } from '../../src/index.js';

/** A customer as the screening job reads it. */
export interface Customer {
  id: number;
  name: string;
  country: string;
}

/** What screening one customer produced: the step's recorded result, and what a batch writes. */
export interface ScreeningOutcome {
  customerId: number;
  verdict: 'clear' | 'hit';
  /** The screening service's id for the screening (the same one when an answer was replayed by key). */
  screeningId: string;
  /** HTTP requests the successful step run made for this customer (1 = no retry). */
  requests: number;
  /** When the answer arrived (ISO 8601). */
  screenedAt: string;
}

/** The summary row one run writes as it completes. */
export interface RunRow {
  runId: string;
  asOf: Date;
  screened: number;
  hits: number;
  /** HTTP requests recorded with the results (so `requests - screened` retries). */
  requests: number;
  finishedAttempt: number;
}

/** What the checks read back after a run. */
export interface RunReport {
  /** Rows in app_screening_results for the run. */
  rows: number;
  distinctCustomers: number;
  /** Customers with more than one row for the run (the unique key makes this 0 or an error; counted anyway). */
  duplicateCustomers: number;
  hits: number;
  requests: number;
  /** Customers still due as of the run's `asOf` (0 once the run completed). */
  stillDue: number;
  run: RunRow | null;
}

/** A generated customer with its schedule, for seeding. */
export interface SeedCustomer extends Customer {
  lastScreenedAt: Date | null;
  nextScreeningAt: Date;
}

/** The application's data access, implemented for SQLite and PostgreSQL. */
export interface AppDb {
  readonly kind: 'sqlite' | 'postgres';
  /** Creates the tables when they do not exist. */
  createTables(): Promise<void>;
  countCustomers(): Promise<number>;
  /** Inserts customers (one transaction). */
  insertCustomers(customers: SeedCustomer[]): Promise<void>;
  /** Customers with `next_screening_at <= asOf`. */
  countDue(asOf: Date): Promise<number>;
  /**
   * Keyset pagination: the first `limit` customers due as of `asOf` with `id > afterId`, by id. The same
   * `afterId` gives the same page whatever was processed before it, and no customer is skipped or repeated
   * across pages, however many rows earlier pages changed.
   */
  dueAfter(asOf: Date, afterId: number, limit: number): Promise<Customer[]>;
  /**
   * Inside Warden's transaction: one result row per outcome, and each customer's `last_screened_at` and
   * `next_screening_at` advanced (7 days after `asOf` for a hit, 30 for a clear).
   */
  recordResults(tx: TransactionHandle, runId: string, asOf: Date, outcomes: ScreeningOutcome[]): Promise<void>;
  /** Inside Warden's transaction: totals the run's results and writes its summary row. */
  recordRun(tx: TransactionHandle, runId: string, asOf: Date, attempt: number): Promise<RunRow>;
  /** Reads what a run left behind, for the checks. */
  report(runId: string, asOf: Date): Promise<RunReport>;
  close(): Promise<void>;
}

/** Days until the next screening, by verdict: a hit is looked at again sooner. */
export const RESCREEN_AFTER_DAYS = { clear: 30, hit: 7 } as const;

const DAY_MS = 86_400_000;

/** `asOf` plus the verdict's interval. */
export function nextScreeningAt(asOf: Date, verdict: ScreeningOutcome['verdict']): Date {
  return new Date(asOf.getTime() + RESCREEN_AFTER_DAYS[verdict] * DAY_MS);
}

/**
 * Opens the application's tables next to Warden's: `sqlite:<file>` or `postgres://…` (tables in `schema`).
 * @throws Error for a URL of another kind, or a schema that is not a plain identifier.
 */
export async function openAppDb(url: string, schema: string): Promise<AppDb> {
  const file = sqliteFile(url);
  if (file !== null) {
    const { SqliteAppDb } = await import('./app-db-sqlite.js');
    return new SqliteAppDb(file);
  }
  if (url.startsWith('postgres://') || url.startsWith('postgresql://')) {
    const { PostgresAppDb } = await import('./app-db-postgres.js');
    return new PostgresAppDb(url, checkSchema(schema));
  }
  throw new Error(`Expected the database URL to start with sqlite:, postgres:// or postgresql://, got ${JSON.stringify(url)}`);
}

/** The file of a `sqlite:` URL (`sqlite:./a.db`, `sqlite:///abs/a.db`), or null for another kind of URL. */
export function sqliteFile(url: string): string | null {
  if (!url.startsWith('sqlite:')) return null;
  let file = url.slice('sqlite:'.length);
  if (file.startsWith('//')) file = file.slice(2);
  if (file === ':memory:' || file === '') {
    // Warden's transactions run on a second connection, which cannot see an in-memory database.
    throw new Error(`Expected a SQLite file for the example, got ${JSON.stringify(url)}`);
  }
  return file;
}

/** Identifiers cannot be bound parameters, so the schema goes into SQL text: only plain identifiers pass. */
export function checkSchema(schema: string): string {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) throw new Error(`Expected the schema to be a plain lowercase identifier, got ${JSON.stringify(schema)}`);
  return schema;
}

const FIRST = ['Ada', 'Bo', 'Chen', 'Dara', 'Eli', 'Femi', 'Gita', 'Hugo', 'Ines', 'Jon', 'Kai', 'Lena', 'Mo', 'Nia', 'Oskar', 'Pia', 'Quinn', 'Rui', 'Sana', 'Tom'];
const LAST = ['Okafor', 'Lind', 'Novak', 'Silva', 'Tanaka', 'Müller', 'Haddad', 'Kowalski', 'Dubois', 'Rossi', 'Ivanova', 'Ng', 'Moreau', 'Costa', 'Berg', 'Walsh'];
const COUNTRIES = ['GB', 'DE', 'FR', 'NL', 'SE', 'PL', 'ES', 'IT', 'IE', 'PT'];

/**
 * Generates `count` customers with ids 1..count. A `dueShare` of them are due (their next screening was between
 * 1 hour and 30 days before `now`), the rest are not (1 to 30 days after `now`), so "due as of now" and "due as
 * of a tick a few minutes later" are the same set.
 */
export function generateCustomers(count: number, dueShare: number, random: () => number, now: Date): SeedCustomer[] {
  const customers: SeedCustomer[] = [];
  for (let id = 1; id <= count; id++) {
    const due = random() < dueShare;
    const offset = due ? -(3_600_000 + random() * 29 * DAY_MS) : DAY_MS + random() * 29 * DAY_MS;
    const next = new Date(Math.floor(now.getTime() + offset));
    customers.push({
      id,
      name: `${FIRST[Math.floor(random() * FIRST.length)]} ${LAST[Math.floor(random() * LAST.length)]}`,
      country: COUNTRIES[Math.floor(random() * COUNTRIES.length)]!,
      // One in ten has never been screened (a new customer, due since sign-up).
      lastScreenedAt: random() < 0.1 ? null : new Date(next.getTime() - RESCREEN_AFTER_DAYS.clear * DAY_MS),
      nextScreeningAt: next,
    });
  }
  return customers;
}

/** A small seeded PRNG (mulberry32), so the data and the service's failures are reproducible. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
