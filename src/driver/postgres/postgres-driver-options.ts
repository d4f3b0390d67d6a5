/**
 * The options of the PostgreSQL driver, and their validation.
 * @module
 */
import { MAX_TIMER_MS } from '../../clock/clock.js';
import { InvalidOptionError } from '../../errors.js';
import { validateSchemaName } from '../../validation/names.js';

/** Options of `PostgresDriver`. */
export interface PostgresDriverOptions {
  /** e.g. `postgres://user:pass@host:5432/db`. */
  connectionString: string;
  /** Schema holding Warden's tables; must match `SCHEMA_PATTERN`. @default "warden" */
  schema?: string;
  /** Maximum pooled connections. @default 10 */
  poolSize?: number;
  /**
   * How long to wait for a new connection before failing, so an unreachable host errors instead of hanging. At most
   * 2147483647 (2^31 − 1, about 24.8 days): pg waits with one `setTimeout`, which fires after 1 ms for anything longer.
   * @default 10000
   */
  connectTimeoutMs?: number;
  /**
   * Prepare the hot statements once per connection (named statements) rather than parse and plan them on each
   * call. Off for poolers that cannot keep prepared statements per client. @default true
   */
  preparedStatements?: boolean;
  /**
   * Hand a due job enqueued alone straight to an idle worker (docs/guarantees.md, "Hand-off to an idle worker").
   * Off behind a transaction-pooling proxy, where neither LISTEN nor the session lock that says a worker listens
   * holds. @default true
   */
  handoff?: boolean;
  /** Receives errors of idle pooled connections, which must never crash the process. */
  onError?: (error: unknown) => void;
}

/**
 * `options` checked, with every default filled in; before any SQL.
 * @throws InvalidNameError for a bad schema name, InvalidOptionError for a bad pool size, flag or timeout.
 */
export function resolvePostgresDriverOptions(options: PostgresDriverOptions): Required<PostgresDriverOptions> {
  const schema = validateSchemaName(options.schema ?? 'warden');
  const poolSize = options.poolSize ?? 10;
  if (!Number.isInteger(poolSize) || poolSize < 1) {
    throw new InvalidOptionError('poolSize', poolSize, 'a positive integer');
  }
  const preparedStatements = options.preparedStatements ?? true;
  if (typeof preparedStatements !== 'boolean') throw new InvalidOptionError('preparedStatements', preparedStatements, 'true or false');
  const handoff = options.handoff ?? true;
  if (typeof handoff !== 'boolean') throw new InvalidOptionError('handoff', handoff, 'true or false');
  const connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
  // Bounded by what one timer holds: past it every connection would time out after 1 ms.
  if (!Number.isInteger(connectTimeoutMs) || connectTimeoutMs < 1 || connectTimeoutMs > MAX_TIMER_MS) {
    throw new InvalidOptionError('connectTimeoutMs', connectTimeoutMs, `an integer number of milliseconds from 1 to ${MAX_TIMER_MS}`);
  }
  return { connectionString: options.connectionString, schema, poolSize, connectTimeoutMs, preparedStatements, handoff, onError: options.onError ?? (() => {}) };
}
