/**
 * `warden alerts list` and `warden alerts resolve <key>`: the alerts in the database (open and resolved), and
 * resolving one by hand (e.g. a process-local alert whose instances are gone).
 * @module
 */
import type { Command } from 'commander';
import { ALERT_RULES, type AlertRule, type AlertState } from '../../driver/alert-params.js';
import { CliError, EXIT_USAGE } from '../cli-error.js';
import { type CliIo, formatDate, formatTable, truncate, writeJson, writeLines } from '../cli-io.js';
import { cliActor, type GlobalOptions, withWarden } from '../open-warden.js';
import { parseIntegerOption } from '../parse-options.js';
import type { CommandRunner } from './command-runner.js';

/** Options of {@link alertsListCommand}. */
export interface AlertsListOptions extends GlobalOptions {
  /** `open` or `resolved`. @default both */
  state?: string;
  /** One rule, e.g. `missed-run`. @default every rule */
  rule?: string;
  /** @default "100" */
  limit?: string;
}

/**
 * Lists alerts, most recently changed first. `--json` prints the array of alert rows.
 * @returns 0
 * @throws CliError (exit 2) for an unknown state or rule.
 */
export async function alertsListCommand(options: AlertsListOptions, io: CliIo): Promise<number> {
  if (options.state !== undefined && options.state !== 'open' && options.state !== 'resolved') {
    throw new CliError(`Expected --state to be open or resolved, got ${JSON.stringify(options.state)}`, { exitCode: EXIT_USAGE });
  }
  if (options.rule !== undefined && !ALERT_RULES.includes(options.rule as AlertRule)) {
    throw new CliError(`Expected --rule to be one of ${ALERT_RULES.join(', ')}, got ${JSON.stringify(options.rule)}`, { exitCode: EXIT_USAGE });
  }
  const limit = parseIntegerOption('--limit', options.limit) ?? 100;
  return withWarden(options, {}, async (warden) => {
    const alerts = await warden.alerts.list({ state: options.state as AlertState | undefined, rule: options.rule as AlertRule | undefined, limit });
    if (options.json) writeJson(io, alerts);
    else if (alerts.length === 0) writeLines(io, ['no alerts']);
    else {
      writeLines(io, formatTable(
        ['STATE', 'SEVERITY', 'KEY', 'OPENED', 'RESOLVED', 'SUMMARY'],
        alerts.map((a) => [a.state, a.severity, a.key, formatDate(a.openedAt), a.resolvedAt ? formatDate(a.resolvedAt) : '-', truncate(a.summary, 100)]),
      ));
    }
    return 0;
  });
}

/** Options of {@link alertsResolveCommand}. */
export interface AlertsResolveOptions extends GlobalOptions {
  /** The alert's key, e.g. `missed-run:nightly`. */
  key: string;
  reason?: string;
}

/**
 * Resolves an open alert by hand, attributed to `cli:<user>`. No notices are sent from the CLI (it has no sinks);
 * the resolve is logged and recorded in the alert's details.
 * @returns 0 when resolved, 1 when no open alert has that key.
 */
export async function alertsResolveCommand(options: AlertsResolveOptions, io: CliIo): Promise<number> {
  const { key } = options;
  return withWarden(options, {}, async (warden) => {
    const row = await warden.alerts.resolve(key, { actor: cliActor(), reason: options.reason });
    if (!row) throw new CliError(`Expected the key of an open alert, got ${JSON.stringify(key)} (see \`warden alerts list --state open\`)`);
    if (options.json) writeJson(io, row);
    else writeLines(io, [`resolved ${row.key}`]);
    return 0;
  });
}

/** Adds `alerts` and its subcommands to the program. */
export function registerAlertsCommands(program: Command, run: CommandRunner): void {
  const alerts = program.command('alerts').description('list and resolve alerts');
  alerts
    .command('list')
    .description('list alerts, most recently changed first: state, severity, key, opened, resolved, summary')
    .option('--state <state>', 'open or resolved')
    .option('--rule <rule>', `one of ${ALERT_RULES.join(', ')}`)
    .option('--limit <n>', 'at most this many (default 100)')
    .action((_options: object, command: Command) => run(alertsListCommand, command.optsWithGlobals<AlertsListOptions>()));
  alerts
    .command('resolve <key>')
    .description('resolve an open alert by hand (recorded with your user name and --reason)')
    .option('--reason <text>', 'why, recorded with the alert')
    .action((key: string, _options: object, command: Command) => run(alertsResolveCommand, { ...command.optsWithGlobals<Omit<AlertsResolveOptions, 'key'>>(), key }));
}
