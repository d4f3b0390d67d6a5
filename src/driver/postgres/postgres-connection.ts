/**
 * The PostgreSQL driver's connections: the main `pg.Pool`, the worker pool its claim, endings and heartbeats run
 * on (`postgres-worker-pool.ts`), the LISTEN connections (`postgres-listen.ts`), which statements are prepared
 * under which names, and where errors of idle connections go. The driver class (`postgres-driver.ts`) holds one and hands its `run` functions to its operations.
 * @module
 */
import { createHash } from 'node:crypto';
import pg from 'pg';
import type { Run } from './postgres-insert.js';
import type { PostgresAuditStatements } from './postgres-audit-sql.js';
import type { PostgresKeyStatements } from './postgres-keys-sql.js';
import { postgresListen, type PostgresListenOptions } from './postgres-listen.js';
import type { PostgresStatements } from './postgres-statements.js';
import { FAST_TYPES } from './postgres-timestamps.js';
import { withClientTransaction } from './postgres-transaction.js';
import { WorkerPool } from './postgres-worker-pool.js';

/**
 * The statements run once or more per job, prepared once per connection: parsing them costs as much as running
 * them for a small batch. Each returns a fixed column list (see `JOB_COLUMNS`), so a migration adding a column
 * while this process runs cannot invalidate them. Prepared is not planned: PostgreSQL still re-plans a prepared
 * statement while it judges custom plans cheaper, so the worker's three run on the generic-plan worker pool.
 */
const HOT_STATEMENTS = ['jobClaim', 'jobFinishMany', 'jobHeartbeat', 'jobInsertNotify', 'jobInsertOneNotify', 'jobCompleteMany', 'jobClaimHandoff'] as const satisfies readonly (keyof PostgresStatements)[];

/**
 * The keyed insert's statements, prepared too and run in {@link PostgresConnection.genericTransaction}: the insert
 * round is a large statement whose planning took 1.0 of its 1.4 ms for one job, every time (a keyed `enqueue` was
 * about 2.7 ms against 0.4 for an unkeyed one). Their plans are index lookups by key and id whatever the batch.
 */
const HOT_KEY_STATEMENTS = ['keyDuplicates', 'keyLock', 'jobInsertRound'] as const satisfies readonly (keyof PostgresKeyStatements)[];

/**
 * The audit append's two statements (an optimistic append: read the head, write the block if the head held),
 * prepared too: with the full trail on there is an append every few hundred entries, and each parsed and planned
 * both every time (0.1 ms parse and up to 0.2 ms bind each, measured in a W6 drain).
 */
const HOT_AUDIT_STATEMENTS = ['headRead', 'appendIfHead'] as const satisfies readonly (keyof PostgresAuditStatements)[];

/**
 * Makes a transaction's prepared statements use generic plans: planned once per connection, not per execution.
 * `SET LOCAL` ends with the transaction, so the pooled connection goes back unchanged. Sent with `BEGIN`: one round
 * trip.
 */
export const GENERIC_PLANS_LOCAL_SQL = 'SET LOCAL plan_cache_mode = force_generic_plan';

/**
 * In a caller's transaction: makes its prepared statements use generic plans for the rest of it (`set_config(…,
 * true)` is `SET LOCAL`) and returns the value before, to be put back after Warden's statements. Read with
 * `missing_ok`, so on a server without the setting (before PostgreSQL 12) nothing is set and nothing fails: a failed
 * statement would abort the caller's transaction.
 */
const GENERIC_PLANS_IN_CALLER_SQL = `SELECT s.previous, CASE WHEN s.previous IS NOT NULL
  THEN set_config('plan_cache_mode', 'force_generic_plan', true) END AS generic
FROM (SELECT current_setting('plan_cache_mode', true) AS previous) AS s`;

/** Puts a caller's transaction's `plan_cache_mode` back. `$1` the value before. */
const PLANS_RESTORE_SQL = `SELECT set_config('plan_cache_mode', $1, true)`;

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
  sql: PostgresStatements;
  /** The key statements, whose keyed-insert ones get prepared-statement names. */
  keySql: PostgresKeyStatements;
  /** The audit statements, whose append ones get prepared-statement names. */
  auditSql: PostgresAuditStatements;
  /** Receives errors of idle pooled connections; whatever it throws is ignored. */
  onError: (error: unknown) => void;
  /** The setting {@link PostgresConnection.genericTransaction} begins with (tests). @default {@link GENERIC_PLANS_LOCAL_SQL} */
  genericPlansSql?: string;
}

/** What {@link PostgresConnection.listen} passes on to `postgresListen`, beside the connection's own settings. */
type ListenParams = Omit<PostgresListenOptions, 'connectionString' | 'connectTimeoutMs' | 'channel'>;

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
  /** Also bounds the set-up of each LISTEN connection (`postgres-listen.ts`). */
  readonly #connectTimeoutMs: number;
  readonly #unsubscribes = new Set<() => Promise<void>>();
  /** The {@link PostgresConnection.listen} calls still connecting, each settled once it resolves or fails. */
  readonly #subscribing = new Set<Promise<void>>();
  readonly #onError: (error: unknown) => void;
  /**
   * Statement text → prepared statement name, for the statements {@link HOT_STATEMENTS} and
   * {@link HOT_KEY_STATEMENTS} name.
   */
  readonly #names = new Map<string, string>();
  /**
   * Statement text → the name it is prepared under on a client that is not this driver's (an application's `tx`):
   * the short name and a hash of the text, so no other driver's statement (another schema: another text) can hold it.
   */
  readonly #foreignNames = new Map<string, string>();
  /** The main pool's clients: the short names are this driver's alone on them. */
  readonly #ownClients = new WeakSet<pg.ClientBase>();
  readonly #preparedStatements: boolean;
  /** `BEGIN` and the generic-plans setting; null once the server refused the setting (reported once). */
  #beginGeneric: string | null;
  #ending: Promise<void> | null = null;

  constructor(options: PostgresConnectionOptions) {
    const { connectionString, poolSize, connectTimeoutMs, preparedStatements, sql, keySql, auditSql } = options;
    this.#onError = options.onError;
    this.#connectionString = connectionString;
    this.#connectTimeoutMs = connectTimeoutMs;
    // Names are per connection, and every connection of this pool belongs to this driver: short ones suffice
    // (PostgreSQL truncates names past 63 bytes, so names built from the schema could collide).
    if (preparedStatements) {
      HOT_STATEMENTS.forEach((key, i) => this.#names.set(sql[key], `warden_${i}`));
      HOT_KEY_STATEMENTS.forEach((key, i) => this.#names.set(keySql[key], `warden_k${i}`));
      HOT_AUDIT_STATEMENTS.forEach((key, i) => this.#names.set(auditSql[key], `warden_a${i}`));
      // An application's client may carry statements of several drivers (two Wardens on two schemas sharing it):
      // there each name says which text it is. 16 hex digits of SHA-256 keep the name far below 63 bytes.
      for (const [text, name] of this.#names) this.#foreignNames.set(text, `${name}_${createHash('sha256').update(text).digest('hex').slice(0, 16)}`);
    }
    this.#preparedStatements = preparedStatements;
    this.#beginGeneric = `BEGIN; ${options.genericPlansSql ?? GENERIC_PLANS_LOCAL_SQL}`;
    this.pool = new pg.Pool({ connectionString, max: poolSize, connectionTimeoutMillis: connectTimeoutMs });
    this.pool.on('connect', (client) => this.#ownClients.add(client));
    // Without a listener, an idle client's error (server restart, network drop) is an uncaught 'error' event.
    this.pool.on('error', (error) => this.report(error));
    // Behind a pooler that cannot keep prepared statements (the reason to turn them off), a session setting
    // cannot be kept either, so there is no worker pool then.
    this.#workerPool = preparedStatements ? new WorkerPool({ connectionString, poolSize, connectTimeoutMs, report: (error) => this.report(error) }) : null;
  }

  /** Runs one statement on any connection of the main pool. */
  readonly run: Run = (text, values) => this.pool.query(this.#config(text, values));

  /** Opens a worker-pool connection ahead of the worker's first statement (see `WorkerPool.warm`). */
  warmWorker(): Promise<void> {
    return this.#workerPool ? this.#workerPool.warm() : Promise.resolve();
  }

  /** Runs one of the worker's statements (claim, endings, heartbeat) on the worker pool. */
  readonly runWorker: Run = (text, values) => {
    const config = this.#config(text, values);
    return this.#workerPool ? this.#workerPool.query(config) : this.pool.query(config);
  };

  /**
   * Runs `fn` in a transaction opened by `begin` for the worker (the heartbeat's second try), on the worker pool:
   * not on the main pool, whose connections the application's transactions (`ctx.transaction`) may all hold, the
   * very transactions whose row locks that try waits for. Without prepared statements there is no worker pool.
   */
  workerTransaction<T>(begin: string, fn: (run: Run) => Promise<T>): Promise<T> {
    if (this.#workerPool) return this.#workerPool.transaction(begin, fn);
    return withClientTransaction(this.pool, (client) => fn((text, values) => client.query(text, values)), begin);
  }

  /**
   * Runs `fn` in a transaction on a main-pool connection, its hot statements prepared and planned generically
   * ({@link GENERIC_PLANS_LOCAL_SQL}); without prepared statements, a plain transaction of unnamed statements. A
   * server that refuses the setting (before PostgreSQL 12, or a proxy) gets it reported once through `onError`;
   * the transaction, and every later one, then runs with plain `BEGIN` (custom plans).
   */
  async genericTransaction<T>(fn: (run: Run) => Promise<T>): Promise<T> {
    if (!this.#preparedStatements) return withClientTransaction(this.pool, (client) => fn((text, values) => client.query(text, values)));
    const run = (client: pg.PoolClient) => fn(this.#preparedOn(client));
    const begin = this.#beginGeneric;
    if (begin === null) return withClientTransaction(this.pool, run);
    let began = false;
    try {
      return await withClientTransaction(this.pool, (client) => {
        began = true;
        return run(client);
      }, begin);
    } catch (error) {
      // Only a refused BEGIN (fn never ran, nothing was written) falls back; any other error is the caller's.
      if (began || !isRefusedSetting(error)) throw error;
      this.#beginGeneric = null;
      this.report(error);
      return withClientTransaction(this.pool, run);
    }
  }

  /**
   * Runs `fn` inside a caller's transaction on `client`, its hot statements prepared and planned generically for
   * that long ({@link GENERIC_PLANS_IN_CALLER_SQL}), then the caller's setting put back, so their own statements
   * plan as before. After a failed statement the transaction is aborted, so the put-back fails too and is ignored:
   * the transaction's rollback puts the setting back. Without prepared statements, or on a server without the
   * setting, `fn` runs unnamed statements as they are. On a client not of this driver's pool the statements are
   * prepared under names that include a hash of their text (see {@link PostgresConnection.#foreignNames}).
   */
  async callerTransaction<T>(client: pg.ClientBase, fn: (run: Run) => Promise<T>): Promise<T> {
    const plain: Run = (text, values) => client.query(text, values);
    if (!this.#preparedStatements) return fn(plain);
    const previous = (await client.query<{ previous: string | null }>(GENERIC_PLANS_IN_CALLER_SQL)).rows[0]?.previous ?? null;
    if (previous === null) return fn(plain);
    let result: T;
    try {
      result = await fn(this.#preparedOn(client));
    } catch (error) {
      // A JavaScript error leaves the transaction usable; a database error aborted it (the put-back then fails).
      await client.query(PLANS_RESTORE_SQL, [previous]).catch(() => {});
      throw error;
    }
    await client.query(PLANS_RESTORE_SQL, [previous]);
    return result;
  }

  /**
   * Subscribes to wake-ups on `channel` through a dedicated connection that reconnects by itself.
   * @returns An unsubscribe function (also called by {@link PostgresConnection.end}).
   */
  listen(channel: string, params: ListenParams): Promise<() => Promise<void>> {
    const subscribing = this.#subscribe(channel, params);
    // end() waits for it: a subscription still connecting has no unsubscribe to call yet.
    const settled = subscribing.then(() => {}, () => {});
    this.#subscribing.add(settled);
    void settled.then(() => this.#subscribing.delete(settled));
    return subscribing;
  }

  async #subscribe(channel: string, params: ListenParams): Promise<() => Promise<void>> {
    const stop = await postgresListen({ connectionString: this.#connectionString, connectTimeoutMs: this.#connectTimeoutMs, channel, ...params });
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

  /**
   * Stops every listener (a reconnect in flight cut, a first connect in flight awaited), then closes both pools, once;
   * later calls wait for the same close. It resolves with no connection of this driver left open.
   */
  end(): Promise<void> {
    this.#ending ??= (async () => {
      // A listen() that was connecting stops its connection itself once it sees #ending, and settles after.
      await Promise.all([...this.#subscribing]);
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

  /** Runs statements on `client`, the hot ones prepared under their names (see {@link PostgresConnection.#config}). */
  #preparedOn(client: pg.ClientBase): Run {
    const names = this.#ownClients.has(client) ? this.#names : this.#foreignNames;
    return (text, values) => client.query(this.#config(text, values, names));
  }

  /** A statement's query config: prepared under its name in `names` (default: the short ones) when it is hot. */
  #config(text: string, values: unknown[] | undefined, names: ReadonlyMap<string, string> = this.#names): pg.QueryConfig {
    const name = names.get(text);
    return name === undefined ? { text, values, types: FAST_TYPES } : { name, text, values, types: FAST_TYPES };
  }
}

/** Whether `error` is PostgreSQL refusing a setting: unknown parameter (42704) or value (22023). */
function isRefusedSetting(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === '42704' || code === '22023';
}
