/**
 * `warden stats`: job totals by state, overall and per queue.
 * @module
 */
import type { Command } from 'commander';
import { JOB_STATES } from '../../job/job-record.js';
import { type CliIo, formatTable, writeJson, writeLines } from '../cli-io.js';
import { type GlobalOptions, withWarden } from '../open-warden.js';
import type { CommandRunner } from './command-runner.js';
import { queueTable } from './queues.js';

/**
 * Prints totals by state and the per-queue table. `--json` prints `{ totals, queues }`.
 * @returns 0
 */
export async function statsCommand(options: GlobalOptions, io: CliIo): Promise<number> {
  return withWarden(options, {}, async (warden) => {
    const stats = await warden.stats();
    if (options.json) {
      writeJson(io, { totals: stats.totals, queues: stats.queues });
      return 0;
    }
    const total = JOB_STATES.reduce((sum, s) => sum + stats.totals[s], 0);
    const lines = formatTable([...JOB_STATES.map((s) => s.toUpperCase()), 'TOTAL'], [[...JOB_STATES.map((s) => String(stats.totals[s])), String(total)]]);
    lines.push('', ...(stats.queues.length === 0 ? ['no queues'] : queueTable(stats.queues)));
    writeLines(io, lines);
    return 0;
  });
}

/** Adds `stats` to the program. */
export function registerStatsCommand(program: Command, run: CommandRunner): void {
  program
    .command('stats')
    .description('job totals by state, overall and per queue')
    .action((_options: object, command: Command) => run(statsCommand, command.optsWithGlobals<GlobalOptions>()));
}
