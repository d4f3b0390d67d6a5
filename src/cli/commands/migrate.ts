/**
 * `warden migrate`: applies pending migrations, or with `--status` lists applied and pending ones.
 * @module
 */
import type { Command } from 'commander';
import { type CliIo, writeJson, writeLines } from '../cli-io.js';
import { type GlobalOptions, withWarden } from '../open-warden.js';
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
 * `{ applied, current }`. With `status`, prints `{ applied, pending }` instead and changes nothing.
 * @returns the exit code: 0, or 1 for `--check` with pending migrations.
 */
export async function migrateCommand(options: MigrateCommandOptions, io: CliIo): Promise<number> {
  return withWarden(options, { requireMigrated: false }, async (warden) => {
    if (options.status || options.check) {
      const status = await warden.migrationStatus();
      if (options.json) writeJson(io, status);
      else {
        writeLines(io, [...status.applied.map((m) => `applied  ${m}`), ...status.pending.map((m) => `pending  ${m}`)]);
        if (status.applied.length === 0 && status.pending.length === 0) writeLines(io, ['no migrations']);
      }
      return options.check && status.pending.length > 0 ? 1 : 0;
    }
    const result = await warden.migrate();
    if (options.json) writeJson(io, result);
    else if (result.applied.length === 0) writeLines(io, [`already up to date (${result.current.length} migration(s) applied)`]);
    else writeLines(io, result.applied.map((m) => `applied ${m}`));
    return 0;
  });
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
