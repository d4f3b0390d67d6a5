/**
 * The PostgreSQL driver's connections: the main `pg.Pool`, the worker pool its claim, endings and heartbeats run
 * on (`postgres-worker-pool.ts`), the LISTEN connections (`postgres-listen.ts`), which statements are prepared
 * under which names, and where errors of idle connections go. The driver class (`postgres-driver.ts`) holds one and hands its `run` functions to its operations.
 * @module
 */
import pg from 'pg';
import type { Run } from './postgres-insert.js';
import { postgresListen } from './postgres-listen.js';
import type * as SQL from './postgres-sql.js';
import { FAST_TYPES } from './postgres-timestamps.js';
import { WorkerPool } from './postgres-worker-pool.js';

/**
 * The statements run once or more per job, prepared once per connection: parsing them costs as much as running
 * them for a small batch. Each returns a fixed column list (see `JOB_COLUMNS`), so a migration adding a column
 * while this process runs cannot invalidate them. Prepared is not planned: PostgreSQL still re-plans a prepared
 * statement while it judges custom plans cheaper, so the worker's three run on the generic-plan worker pool.
 */
const HOT_STATEMENTS = ['jobClaim', 'jobFinishMany', 'jobHeartbeat', 'jobInsertNotify', 'jobInsertOneNotify', 'jobCompleteMany'] as const satisfies readonly (keyof SQL.PostgresStatements)[];

/** How {@link PostgresConnection} connects (validated by the driver). */
export interface PostgresConnectionOptions {
  connectionString: string;
  /** Most connections of each pool. */
  poolSize: number;
  /** How long to wait for a new connection before failing. */
  connectTimeoutMs: number;
  /** Whether the hot statements are prepared (and the worker's run on the worker pool). */
  preparedStatements: boolean;
  /** The driver's statements, whose hot ones get prepared-statement names. */
  sql: SQL.PostgresStatements;
  /** Receives errors of idle pooled connections; whatever it throws is ignored. */
  onError: (error: unknown) => void;
}

/** One driver instance's pools and listeners. {@link PostgresConnection.end} closes them all; safe to call twice. */
export class PostgresConnection {
  /** The main pool: every statement but the worker's. */
  readonly pool: pg.Pool;
  /**
   * Where the worker's claim, endings and heartbeats run: with prepared statements, a second small pool whose
   * sessions plan them generically (`postgres-worker-pool.ts`); without, the main pool.
   */
  readonly #workerPool: WorkerPool | null;
  readonly #connectionString: string;
  readonly #unsubscribes = new Set<() => Promise<void>>();
  readonly #onError: (error: unknown) => void;
  /** Statement text → prepared statement name, for the statements {@link HOT_STATEMENTS} names. */
  readonly #names = new Map<string, string>();
  #ending: Promise<void> | null = null;

  constructor(options: PostgresConnectionOptions) {
    const { connectionString, poolSize, connectTimeoutMs, preparedStatements, sql } = options;
    this.#onError = options.onError;
    this.#connectionString = connectionString;
    // Names are per connection, and every connection of this pool belongs to this driver: short ones suffice
    // (PostgreSQL truncates names past 63 bytes, so names built from the schema could collide).
    if (preparedStatements) HOT_STATEMENTS.forEach((key, i) => this.#names.set(sql[key], `warden_${i}`));
    this.pool = new pg.Pool({ connectionString, max: poolSize, connectionTimeoutMillis: connectTimeoutMs });
    // Without a listener, an idle client's error (server restart, network drop) is an uncaught 'error' event.
    this.pool.on('error', (error) => this.report(error));
    // Behind a pooler that cannot keep prepared statements (the reason to turn them off), a session setting
    // cannot be kept either, so there is no worker pool then.
    this.#workerPool = preparedStatements ? new WorkerPool({ connectionString, poolSize, connectTimeoutMs, report: (error) => this.report(error) }) : null;
  }

  /** Runs one statement on any connection of the main pool. */
  readonly run: Run = (text, values) => this.pool.query(this.#config(text, values));

  /** Runs one of the worker's statements (claim, endings, heartbeat) on the worker pool. */
  readonly runWorker: Run = (text, values) => {
    const config = this.#config(text, values);
    return this.#workerPool ? this.#workerPool.query(config) : this.pool.query(config);
  };

  /**
   * Subscribes to wake-ups on `channel` through a dedicated connection that reconnects by itself.
   * @returns An unsubscribe function (also called by {@link PostgresConnection.end}).
   */
  async listen(channel: string, params: { onWake: (queue: string) => void; onReconnect: () => void; onError: (error: unknown) => void }): Promise<() => Promise<void>> {
    const stop = await postgresListen({ connectionString: this.#connectionString, channel, ...params });
    const unsubscribe = async (): Promise<void> => {
      this.#unsubscribes.delete(unsubscribe);
      await stop();
    };
    // Closed while connecting: don't leave a connection behind that end() can no longer see.
    if (this.#ending) {
      await stop();
      return unsubscribe;
    }
    this.#unsubscribes.add(unsubscribe);
    return unsubscribe;
  }

  /** Stops every listener, then closes both pools, once; later calls wait for the same close. */
  end(): Promise<void> {
    this.#ending ??= (async () => {
      await Promise.all([...this.#unsubscribes].map((unsubscribe) => unsubscribe()));
      await Promise.all([this.pool.end(), this.#workerPool?.end()]);
    })();
    return this.#ending;
  }

  /** Hands an error to `onError`, which must not be able to throw into a pg event handler. */
  report(error: unknown): void {
    try {
      this.#onError(error);
    } catch {
      // Ignored: an idle connection error must never crash the process.
    }
  }

  /** A statement's query config: prepared under its short name when it is a hot statement. */
  #config(text: string, values: unknown[] | undefined): pg.QueryConfig {
    const name = this.#names.get(text);
    return name === undefined ? { text, values, types: FAST_TYPES } : { name, text, values, types: FAST_TYPES };
  }
}
