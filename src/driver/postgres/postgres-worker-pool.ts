/**
 * The worker's own connections: the claim, endings and heartbeat statements run on a small second pool whose
 * sessions use generic plans (`plan_cache_mode = force_generic_plan`).
 *
 * Why: a prepared statement is still planned again on every execution while PostgreSQL's plan cache judges a
 * custom plan cheaper, and for the claim (a CTE, a per-queue `LATERAL` walk, two sub-queries) that judgement
 * held: planning took about as long as running a claim of a few rows. Measured on this project's machine
 * (`bench/driver-loop.ts`, a W3-style idle worker): a one-job claim 1.46 → 0.95 ms (p50) and an empty claim
 * 0.79 → 0.41 ms; enqueue-to-start latency p50 −0.3 to −0.8 ms; drains as fast or faster, including over a
 * million retained rows. These statements were written to be plan-stable (`= ANY (ARRAY (…))` bounded by the
 * limit, per-queue index walks), so the generic plan is the plan they want whatever the parameters.
 *
 * Why a separate pool: the setting is per session and also applies to unnamed statements, where a generic plan
 * can be a disaster (an optional filter such as `($1 IS NULL OR id = $1)` went from 0.7 ms to 96 ms over a
 * million rows). So only the connections that run nothing but these plan-stable statements get it.
 * @module
 */
import pg from 'pg';
import type { Run } from './postgres-insert.js';
import { transactionOn } from './postgres-transaction.js';

/** Most connections of the worker pool: a worker has at most three of its statements in flight (claim loop,
 * completer, heartbeater), each one at a time. */
export const WORKER_POOL_MAX = 3;

/** The statement each worker-pool connection runs once, before its first statement. */
export const GENERIC_PLANS_SQL = 'SET plan_cache_mode = force_generic_plan';

/** What {@link WorkerPool} needs. */
export interface WorkerPoolOptions {
  connectionString: string;
  /** The driver's `poolSize`; the worker pool takes at most {@link WORKER_POOL_MAX} of it. */
  poolSize: number;
  connectTimeoutMs: number;
  /** Receives errors of idle connections, and a refused setting. */
  report: (error: unknown) => void;
  /** The statement each new connection runs first. @default {@link GENERIC_PLANS_SQL} */
  setupSql?: string;
}

/** A pool whose every connection uses generic plans for prepared statements. */
export class WorkerPool {
  readonly #pool: pg.Pool;
  readonly #report: (error: unknown) => void;
  readonly #setupSql: string;
  /** Connections that ran the setup statement (or tried to). A destroyed connection is dropped with its entry. */
  readonly #ready = new WeakSet<pg.PoolClient>();

  constructor(options: WorkerPoolOptions) {
    this.#report = options.report;
    this.#setupSql = options.setupSql ?? GENERIC_PLANS_SQL;
    this.#pool = new pg.Pool({
      connectionString: options.connectionString,
      max: Math.min(options.poolSize, WORKER_POOL_MAX),
      connectionTimeoutMillis: options.connectTimeoutMs,
    });
    // Without a listener, an idle client's error (server restart, network drop) is an uncaught 'error' event.
    this.#pool.on('error', (error) => options.report(error));
  }

  /** Most connections this pool opens. */
  get max(): number {
    return this.#pool.options.max;
  }

  /**
   * Runs one statement, on a connection set to generic plans first (once per connection, awaited, so the
   * setting is in place before the statement). A server that refuses the setting is reported and the connection
   * used as it is (custom plans, as on the main pool): the setting is an optimization, never a reason to stop
   * claiming. As `pg.Pool.query`, a failed statement discards its connection.
   */
  query<R extends pg.QueryResultRow>(config: pg.QueryConfig): Promise<pg.QueryResult<R>> {
    return this.#use((client) => client.query<R>(config));
  }

  /**
   * Opens a connection and sets it up ahead of the first statement, then leaves it idle in the pool: a worker
   * starting does this while its LISTEN connection is set up, so the new server process each costs (~10 ms) is
   * paid once for both instead of once before the other. Never rejects: the first statement reports a failure.
   */
  async warm(): Promise<void> {
    await this.#use(() => Promise.resolve()).catch(() => {});
  }

  /**
   * Runs `fn` in a transaction opened by `begin` on one of these connections. A statement it refuses (a lock
   * timeout) rolls the transaction back and rethrows, the connection kept: only a connection that fails is dropped.
   */
  async transaction<T>(begin: string, fn: (run: Run) => Promise<T>): Promise<T> {
    let refused: { error: unknown } | null = null;
    const result = await this.#use(async (client) => {
      let broken = false;
      try {
        return await transactionOn(client, () => fn((text, values) => client.query(text, values)), begin, () => {
          broken = true;
        });
      } catch (error) {
        // Rethrown to #use, which drops the client, only when it could not even roll back.
        if (broken) throw error;
        refused = { error };
        return undefined;
      }
    });
    if (refused !== null) throw (refused as { error: unknown }).error;
    return result as T;
  }

  /** Checks out a connection, sets it up, runs `fn` on it and returns it to the pool (discarded when `fn` failed). */
  async #use<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.#pool.connect();
    // A checked-out client has no pool listener: its connection dying (server restart, terminated backend)
    // would be an uncaught 'error' event. The statement in flight rejects with it anyway.
    let lost: unknown = null;
    const onError = (error: unknown) => {
      lost = error;
    };
    client.on('error', onError);
    try {
      await this.#setUp(client);
      const result = await fn(client);
      client.removeListener('error', onError);
      client.release(lost instanceof Error ? lost : undefined);
      return result;
    } catch (error) {
      client.removeListener('error', onError);
      client.release(error instanceof Error ? error : true);
      throw error;
    }
  }

  /** Sets a connection to generic plans, once (see {@link WorkerPool.query}). */
  async #setUp(client: pg.PoolClient): Promise<void> {
    if (this.#ready.has(client)) return;
    this.#ready.add(client);
    await client.query(this.#setupSql).catch((error: unknown) => this.#report(error));
  }

  /** Closes every connection. */
  end(): Promise<void> {
    return this.#pool.end();
  }
}
