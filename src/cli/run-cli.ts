/**
 * The `warden` program: global options, commands, and turning every outcome into an exit code without ever
 * calling `process.exit`, so the whole CLI runs in-process in tests.
 * @module
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import { EXIT_FAILURE, EXIT_USAGE, reportError } from './cli-error.js';
import { CliOutputError, type CliIo, processIo } from './cli-io.js';
import { registerAuditCommands } from './commands/audit.js';
import type { CommandRunner } from './commands/command-runner.js';
import { registerAlertsCommands } from './commands/alerts.js';
import { registerDoctorCommand } from './commands/doctor.js';
import { registerEnqueueCommand } from './commands/enqueue.js';
import { registerJobsCommands } from './commands/jobs.js';
import { registerLocksCommands } from './commands/locks.js';
import { registerMigrateCommand } from './commands/migrate.js';
import { registerQueuesCommands } from './commands/queues.js';
import { registerSchedulesCommands } from './commands/schedules.js';
import { registerStatsCommand } from './commands/stats.js';
import { registerWorkerCommand } from './commands/worker.js';
import { CLI_DEFAULT_DATABASE, CLI_DEFAULT_SCHEMA } from './open-warden.js';

/** The package version, read from package.json next to `src/` or `dist/`. */
function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : 'unknown';
  } catch {
    return 'unknown';
  }
}

/**
 * Builds the commander program. Output goes to `io`; commander's own error printing is silenced because
 * {@link runCli} reports usage errors itself, in one line.
 */
export function buildProgram(io: CliIo, run: CommandRunner): Command {
  const program = new Command('warden')
    .description('Durable background jobs on SQLite or PostgreSQL: migrate, run workers and schedulers, enqueue and operate on jobs, schedules and locks.')
    .version(packageVersion(), '-V, --version')
    .configureOutput({ writeOut: (s) => io.out(s), writeErr: (s) => io.err(s), outputError: () => {} })
    .exitOverride()
    .addOption(new Option('--database <url>', 'database URL: sqlite:./file.db or postgres://user@host/db').env('WARDEN_DATABASE_URL').default(CLI_DEFAULT_DATABASE))
    .addOption(new Option('--schema <name>', 'PostgreSQL schema holding Warden\'s tables').env('WARDEN_SCHEMA').default(CLI_DEFAULT_SCHEMA))
    .option('--json', 'print one JSON document on stdout instead of text')
    .option('--reason <text>', 'why, recorded with an operator action (retry, cancel, discard, pause, resume, trigger) in its event and the audit trail')
    .addHelpText('after', '\nEnvironment: WARDEN_DATABASE_URL, WARDEN_SCHEMA, WARDEN_JOBS, WARDEN_LOG_LEVEL (default warn, logs go to stderr), WARDEN_DEBUG=1 (stack traces).');
  registerMigrateCommand(program, run);
  registerWorkerCommand(program, run);
  registerEnqueueCommand(program, run);
  registerJobsCommands(program, run);
  registerQueuesCommands(program, run);
  registerStatsCommand(program, run);
  registerSchedulesCommands(program, run);
  registerLocksCommands(program, run);
  registerAlertsCommands(program, run);
  registerAuditCommands(program, run);
  registerDoctorCommand(program, run);
  return program;
}

/**
 * Runs the CLI with `argv` (the user's arguments, without `node` and the script) and resolves to the exit
 * code: 0 success, 1 failure (reported in one line `warden: …` on stderr), 2 usage error. Command output goes
 * to `io.out`, errors to `io.err`. A reader that closes the output early (`warden audit export | head`) stops the
 * command quietly with 0, as Unix tools do; any other failure to write the output is a failure.
 * @param io where to write. @default processIo(): the process's stdout and stderr
 * @example process.exitCode = await runCli(process.argv.slice(2));
 */
export async function runCli(argv: string[], io: CliIo = processIo()): Promise<number> {
  let exitCode = 0;
  const run: CommandRunner = async (command, options) => {
    exitCode = await command(options, io);
  };
  try {
    await buildProgram(io, run).parseAsync(argv, { from: 'user' });
    return exitCode;
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version') return 0;
      // Help printed because a command group was given without a subcommand.
      if (error.code === 'commander.help') return EXIT_USAGE;
      io.err(`warden: ${error.message.replace(/^error:\s*/, '').replace(/\s*\n\s*/g, ' ').trim()}\n`);
      return EXIT_USAGE;
    }
    if (error instanceof CliOutputError) {
      if (error.readerClosed) return 0;
      io.err(`warden: ${error.message}\n`);
      return EXIT_FAILURE;
    }
    return reportError(error, io);
  }
}
