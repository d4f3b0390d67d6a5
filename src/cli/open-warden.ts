/**
 * Builds a Warden instance from the CLI's global options, runs a command with it, and always closes it.
 * @module
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { pino, type Logger } from 'pino';
import { createWarden, type Warden } from '../client/warden.js';
import type { WardenOptions } from '../client/warden-options.js';
import type { MigrationStatus } from '../driver/driver.js';
import { redactUrl } from '../driver/redact-url.js';
import { InvalidOptionError, MigrationRequiredError } from '../errors.js';
import type { JobDefinition } from '../job/define-job.js';
import type { ScheduleDefinition } from '../schedule/define-schedule.js';
import { CliError, describeConnectionError } from './cli-error.js';

/** Options every command accepts. */
export interface GlobalOptions {
  /** Database URL; an empty one is refused. @default process.env.WARDEN_DATABASE_URL ?? "sqlite:./warden.db" */
  database: string;
  /** PostgreSQL schema. @default process.env.WARDEN_SCHEMA ?? "warden" */
  schema: string;
  /** Print one JSON document on stdout instead of text. */
  json?: boolean;
  /** Why: recorded with operator actions. @default none */
  reason?: string;
}

/** The database used when neither `--database` nor `WARDEN_DATABASE_URL` is given. */
export const CLI_DEFAULT_DATABASE = 'sqlite:./warden.db';
/** The PostgreSQL schema used when neither `--schema` nor `WARDEN_SCHEMA` is given. */
export const CLI_DEFAULT_SCHEMA = 'warden';

let stderrDestination: ReturnType<typeof pino.destination> | undefined;

/**
 * The CLI's logger: pino at `WARDEN_LOG_LEVEL` (default `warn`) writing synchronously to stderr, so stdout
 * carries only command output.
 * @throws InvalidOptionError for an unknown level.
 */
export function cliLogger(): Logger {
  const level = process.env.WARDEN_LOG_LEVEL ?? 'warn';
  const known = [...Object.keys(pino.levels.values), 'silent'];
  if (!known.includes(level)) throw new InvalidOptionError('WARDEN_LOG_LEVEL', level, `one of ${known.join(', ')}`);
  stderrDestination ??= pino.destination({ dest: 2, sync: true });
  return pino({ level }, stderrDestination);
}

/** Who operator actions are attributed to: `cli:<user>`. */
export function cliActor(): string {
  return `cli:${process.env.USER ?? process.env.USERNAME ?? 'unknown'}`;
}

/** Options of {@link withWarden}. */
export interface WithWardenOptions {
  /** Job definitions to register (needed to enqueue and to run a worker). @default [] */
  jobs?: JobDefinition<any, any>[];
  /** Schedules to register (needed to run a scheduler and to trigger); their jobs are registered too. @default [] */
  schedules?: ScheduleDefinition[];
  /** Fail with "run `warden migrate`" unless the schema is migrated. Off for `migrate` and `doctor`. @default true */
  requireMigrated?: boolean;
  /**
   * Open an SQLite file that does not exist yet, which creates it. Only applying migrations (`migrate`,
   * `worker --migrate`) may: any other command (`doctor`, `migrate --status` included) would leave an empty database
   * at a mistyped path, which a later command would then find and use; it refuses instead. @default false
   */
  createSqliteFile?: boolean;
  /**
   * The instance's `audit` option. Operator actions through the CLI are always recorded, attributed to
   * `cli:<user>`: the CLI cannot know whether the application records, and an entry costs one write.
   * @default { actor: cliActor() } (recording on; each job type's own level)
   */
  audit?: WardenOptions['audit'];
  /** The instance's `metrics` option (`warden worker --metrics-port`). @default false */
  metrics?: WardenOptions['metrics'];
  /** The instance's `alerts` option (a jobs module's `export const alerts`, for `warden worker`). @default alerting off */
  alerts?: WardenOptions['alerts'];
}

/** The file an `sqlite:` URL names (as `createDriver` reads it), or null for other URLs and `:memory:`. */
function sqliteFile(url: string): string | null {
  if (!url.startsWith('sqlite:')) return null;
  let filename = url.slice('sqlite:'.length);
  if (filename.startsWith('//')) filename = filename.slice(2);
  return filename === '' || filename === ':memory:' ? null : filename;
}

/**
 * The absolute path of the SQLite file the global options' database names when that file does not exist, else null
 * (it exists, or the database is not an SQLite file). Opening such a file would create it.
 */
export function missingSqliteFile(globals: GlobalOptions): string | null {
  const file = sqliteFile(globals.database);
  return file !== null && !existsSync(resolve(file)) ? resolve(file) : null;
}

/**
 * Opens a Warden on the global options' database, checks the database, runs `fn` with it, and closes it (always,
 * so the process can exit). A connection failure while opening and checking becomes a one-line error naming the
 * (password-redacted) URL; what `fn` throws is passed on as it is, since a command also fails for reasons that are
 * not the database's (a metrics port in use, a host that does not resolve).
 * @throws CliError, MigrationRequiredError, and whatever `fn` throws.
 */
export async function withWarden<T>(globals: GlobalOptions, options: WithWardenOptions, fn: (warden: Warden) => Promise<T>): Promise<T> {
  // No fallback here: commander applies CLI_DEFAULT_DATABASE only when neither --database nor WARDEN_DATABASE_URL is
  // given, and an empty one is passed on to be refused (DatabaseConfigError), not replaced by ./warden.db, which
  // `migrate` would then create (docs/configuration.md, "Environment variables").
  const url = globals.database;
  const requireMigrated = options.requireMigrated ?? true;
  const missing = missingSqliteFile(globals);
  if (!(options.createSqliteFile ?? false) && missing !== null) {
    throw new CliError(`Expected an SQLite database file at ${missing}, got no such file (create it with \`warden migrate\`)`);
  }
  const warden = createWarden({ database: url, schema: globals.schema, jobs: options.jobs ?? [], schedules: options.schedules ?? [], logger: cliLogger(), audit: options.audit ?? { actor: cliActor() }, metrics: options.metrics ?? false, alerts: options.alerts });
  try {
    const status = await checkDatabase(warden, url);
    if (requireMigrated && status.pending.length > 0) throw new MigrationRequiredError(status.pending);
    return await fn(warden);
  } finally {
    await warden.close().catch(() => undefined);
  }
}

/**
 * Reads the applied migrations, which needs a connection and writes nothing, so an unreachable database is reported
 * as such, with its URL, before the command does anything; for every command, `migrate` included.
 * @throws CliError for a connection failure; the driver's error otherwise.
 */
async function checkDatabase(warden: Warden, url: string): Promise<MigrationStatus> {
  try {
    return await warden.migrationStatus();
  } catch (error) {
    const connection = describeConnectionError(error);
    if (connection) throw new CliError(`Expected a reachable database at ${redactUrl(url)}, got ${connection}`, { cause: error });
    throw error;
  }
}
