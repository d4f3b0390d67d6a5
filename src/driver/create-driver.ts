import { DatabaseConfigError, InvalidOptionError } from '../errors.js';
import { checkKnownKeys } from '../validation/known-keys.js';
import { isOptionsObject } from '../validation/options-object.js';
import type { Driver } from './driver.js';
import { PostgresDriver } from './postgres/postgres-driver.js';
import { redactUrl } from './redact-url.js';
import { SqliteDriver } from './sqlite/sqlite-driver.js';
import { checkSqliteWakeupMs } from './sqlite/sqlite-driver-options.js';

/** How to reach the database. */
export interface DatabaseOptions {
  /**
   * `sqlite:./warden.db` / `sqlite:/abs/path.db` (embedded, one machine) or
   * `postgres://user@host:5432/db` / `postgresql://…` (many instances).
   * @default "sqlite:./warden.db"
   */
  url?: string;
  /** PostgreSQL schema holding Warden's tables. @default "warden" */
  schema?: string;
  /** PostgreSQL pool size. @default 10 */
  poolSize?: number;
  /** PostgreSQL: how long to wait for a new connection before failing; at most 2147483647 (2^31 − 1). @default 10000 */
  connectTimeoutMs?: number;
  /**
   * PostgreSQL: prepare the hot statements (claim, endings, heartbeat, unkeyed enqueue) once per connection
   * instead of parsing and planning them on every call. Turn off behind a pooler that does not keep prepared
   * statements per client (PgBouncer before 1.21 in transaction mode). @default true
   */
  preparedStatements?: boolean;
  /**
   * PostgreSQL: an enqueue of one due job (outside a transaction) hands it straight to an idle worker, leased to it,
   * saving the worker's claim (docs/guarantees.md, "Hand-off to an idle worker"). Turn off behind a
   * transaction-pooling proxy, which breaks LISTEN and session locks. @default true
   */
  handoff?: boolean;
  /**
   * SQLite: how long one attempt waits for a lock inside SQLite before the driver retries asynchronously.
   * Kept short because better-sqlite3 waits synchronously, blocking the event loop. @default 20
   */
  busyTimeoutMs?: number;
  /** SQLite `PRAGMA synchronous`: `normal` survives process crashes, `full` also power loss. @default "normal" */
  synchronous?: 'normal' | 'full';
  /** SQLite: how often a worker looks for other processes' commits (`PRAGMA data_version`), in ms. @default 5 */
  sqliteWakeupMs?: number;
  /** Called with errors of idle connections, which must never crash the process. */
  onError?: (error: unknown) => void;
}

/** Every key of {@link DatabaseOptions}, checked against the interface so an option added there is known here. */
const DATABASE_OPTION_KEYS = Object.keys({
  url: true, schema: true, poolSize: true, connectTimeoutMs: true, preparedStatements: true, handoff: true, busyTimeoutMs: true, synchronous: true, sqliteWakeupMs: true, onError: true,
} satisfies Record<keyof DatabaseOptions, true>);

/** The default database when none is given: an SQLite file in the working directory. */
export const DEFAULT_DATABASE_URL = 'sqlite:./warden.db';

/**
 * Opens a driver for a database URL.
 * @throws DatabaseConfigError for a URL of no supported kind, or a PostgreSQL URL pg cannot parse (a port that is
 *   not a number): refused here, named with its passwords hidden, rather than failing at the first connection.
 * @throws InvalidOptionError for options that are not an object or hold an unknown key (a misspelt option would be
 *   ignored), and for a bad value of an option.
 */
export function createDriver(options: DatabaseOptions = {}): Driver {
  // A URL passed alone by mistake carries its password: it is not shown.
  if (!isOptionsObject(options)) throw new InvalidOptionError('createDriver(options)', typeof options === 'string' ? '(a string)' : options, 'an object { url, … }');
  checkKnownKeys('createDriver options', options, DATABASE_OPTION_KEYS);
  const url = options.url ?? DEFAULT_DATABASE_URL;
  if (typeof url !== 'string' || url.length === 0) {
    throw new DatabaseConfigError(`Expected a database URL such as "sqlite:./warden.db" or "postgres://host/db", got ${JSON.stringify(url)}`);
  }
  if (url.startsWith('sqlite:')) {
    let filename = url.slice('sqlite:'.length);
    if (filename.startsWith('//')) filename = filename.slice(2);
    if (!filename) throw new DatabaseConfigError(`Expected a file name after "sqlite:", got ${JSON.stringify(url)}`);
    // Checked here so that an error names the option as the caller gave it, not the driver's own `wakeupMs`.
    if (options.sqliteWakeupMs !== undefined) checkSqliteWakeupMs('sqliteWakeupMs', options.sqliteWakeupMs);
    return new SqliteDriver({ filename, busyTimeoutMs: options.busyTimeoutMs, synchronous: options.synchronous, wakeupMs: options.sqliteWakeupMs });
  }
  if (url.startsWith('postgres://') || url.startsWith('postgresql://')) {
    if (!pgCanParse(url)) {
      throw new DatabaseConfigError(`Expected a PostgreSQL URL such as "postgres://user@host:5432/db", got ${JSON.stringify(redactUrl(url))} (not a valid URL)`);
    }
    return new PostgresDriver({
      connectionString: url,
      schema: options.schema,
      poolSize: options.poolSize,
      connectTimeoutMs: options.connectTimeoutMs,
      preparedStatements: options.preparedStatements,
      handoff: options.handoff,
      onError: options.onError,
    });
  }
  throw new DatabaseConfigError(`Expected a database URL starting with "sqlite:", "postgres://" or "postgresql://", got ${JSON.stringify(redactUrl(url))}`);
}

/**
 * Whether pg's connection-string parser (pg-connection-string 2.x) accepts `url`, checked the way it parses, so no
 * URL pg would take is refused: spaces and stray `%` encoded first, and an empty host (`user@/db`, a Unix socket
 * from the environment) allowed. pg itself fails with a bare `TypeError: Invalid URL` only when it connects.
 */
function pgCanParse(url: string): boolean {
  const encoded = / |%[^a-f0-9]|%[a-f0-9][^a-f0-9]/i.test(url) ? encodeURI(url).replace(/%25(\d\d)/g, '%$1') : url;
  return URL.canParse(encoded, 'postgres://base') || URL.canParse(encoded.replace('@/', '@___DUMMY___/'), 'postgres://base');
}
