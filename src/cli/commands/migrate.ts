/**
 * `warden migrate`: applies pending migrations, or with `--status` lists applied and pending ones.
 * @module
 */
import type { Command } from 'commander';
import type { MigrationStatus } from '../../driver/driver.js';
import { SQLITE_MIGRATIONS } from '../../driver/sqlite/sqlite-migrations.js';
import { type CliIo, writeJson, writeLines } from '../cli-io.js';
import { cliLogger, type GlobalOptions, missingSqliteFile, withWarden } from '../open-warden.js';
import type { CommandRunner } from './command-runner.js';

/** Options of {@link migrateCommand}. */
export interface MigrateCommandOptions extends GlobalOptions {
  /** Only list applied and pending migrations. */
  status?: boolean;
  /** With `status` (implies it): exit 1 when any migration is pending. */
  check?: boolean;
}

/**
 * Applies pending migrations and prints their names (or "already up to date"); `--json` prints
 * `{ applied, current }`. With `status`, prints `{ applied, pending }` instead and changes nothing: an SQLite file
 * that does not exist is not created (every migration is pending in it, and a note says so on stderr).
 * @returns the exit code: 0, or 1 for `--check` with pending migrations.
 */
export async function migrateCommand(options: MigrateCommandOptions, io: CliIo): Promise<number> {
  if (options.status || options.check) {
    // Opening the file would create it: an empty database at a mistyped path, which a later command would then
    // find and use. It has nothing applied, so the answer is known without opening it.
    const missing = missingSqliteFile(options);
    if (missing !== null) {
      cliLogger(); // WARDEN_LOG_LEVEL is checked by every command, whether or not it opens the database.
      io.err(`no SQLite database file at ${missing} yet: every migration is pending (\`warden migrate\` creates it)\n`);
      return printStatus({ applied: [], pending: SQLITE_MIGRATIONS.map((m) => m.name) }, options, io);
    }
    return withWarden(options, { requireMigrated: false }, async (warden) => printStatus(await warden.migrationStatus(), options, io));
  }
  return withWarden(options, { requireMigrated: false, createSqliteFile: true }, async (warden) => {
    const result = await warden.migrate();
    if (options.json) writeJson(io, result);
    else if (result.applied.length === 0) writeLines(io, [`already up to date (${result.current.length} migration(s) applied)`]);
    else writeLines(io, result.applied.map((m) => `applied ${m}`));
    return 0;
  });
}

/** Prints a migration status; returns 1 for `--check` with pending migrations, else 0. */
function printStatus(status: MigrationStatus, options: MigrateCommandOptions, io: CliIo): number {
  if (options.json) writeJson(io, status);
  else {
    writeLines(io, [...status.applied.map((m) => `applied  ${m}`), ...status.pending.map((m) => `pending  ${m}`)]);
    if (status.applied.length === 0 && status.pending.length === 0) writeLines(io, ['no migrations']);
  }
  return options.check && status.pending.length > 0 ? 1 : 0;
}

/** Adds `migrate` to the program. */
export function registerMigrateCommand(program: Command, run: CommandRunner): void {
  program
    .command('migrate')
    .description('apply pending database migrations')
    .option('--status', 'list applied and pending migrations without applying any')
    .option('--check', 'with --status: exit 1 when migrations are pending (implies --status)')
    .action((_options: object, command: Command) => run(migrateCommand, command.optsWithGlobals<MigrateCommandOptions>()));
}
