/**
 * `warden queues list|pause|resume`: queue counts and the persisted pause switch.
 * @module
 */
import type { Command } from 'commander';
import { JOB_STATES, type QueueStats } from '../../job/job-record.js';
import { type CliIo, formatMs, formatTable, writeJson, writeLines } from '../cli-io.js';
import { cliActor, type GlobalOptions, withWarden } from '../open-warden.js';
import type { CommandRunner } from './command-runner.js';

/** Options of the commands that take one queue name. */
export interface QueueCommandOptions extends GlobalOptions {
  queue: string;
}

/** Table lines for queue stats: name, paused, a column per state, lag. */
export function queueTable(queues: readonly QueueStats[]): string[] {
  return formatTable(
    ['QUEUE', 'PAUSED', ...JOB_STATES.map((s) => s.toUpperCase()), 'LAG'],
    queues.map((q) => [q.queue, q.paused ? 'yes' : 'no', ...JOB_STATES.map((s) => String(q.counts[s])), q.lagMs > 0 ? formatMs(q.lagMs) : '-']),
  );
}

/**
 * Lists queues with pause state, counts per state and lag. `--json` prints the array of queue stats.
 * @returns 0
 */
export async function queuesListCommand(options: GlobalOptions, io: CliIo): Promise<number> {
  return withWarden(options, {}, async (warden) => {
    const queues = await warden.queues.list();
    if (options.json) writeJson(io, queues);
    else writeLines(io, queues.length === 0 ? ['no queues'] : queueTable(queues));
    return 0;
  });
}

function queueAction(action: 'pause' | 'resume') {
  return async (options: QueueCommandOptions, io: CliIo): Promise<number> =>
    withWarden(options, {}, async (warden) => {
      await warden.queues[action](options.queue, { actor: cliActor(), reason: options.reason });
      if (options.json) writeJson(io, { queue: options.queue, paused: action === 'pause' });
      else writeLines(io, [`${action === 'pause' ? 'paused' : 'resumed'} queue ${options.queue}`]);
      return 0;
    });
}

/**
 * Pauses a queue: no worker claims from it until resumed. `--json` prints `{ queue, paused: true }`.
 * @throws InvalidNameError
 */
export const queuesPauseCommand: (options: QueueCommandOptions, io: CliIo) => Promise<number> = queueAction('pause');
/**
 * Resumes a paused queue. `--json` prints `{ queue, paused: false }`.
 * @throws InvalidNameError
 */
export const queuesResumeCommand: (options: QueueCommandOptions, io: CliIo) => Promise<number> = queueAction('resume');

/** Adds `queues` and its subcommands to the program. */
export function registerQueuesCommands(program: Command, run: CommandRunner): void {
  const queues = program.command('queues').description('list, pause and resume queues');
  queues
    .command('list')
    .description('list queues with counts per state and lag')
    .action((_options: object, command: Command) => run(queuesListCommand, command.optsWithGlobals<GlobalOptions>()));
  for (const [name, description, command] of [
    ['pause', 'stop workers from claiming jobs of a queue', queuesPauseCommand],
    ['resume', 'let workers claim jobs of a paused queue again', queuesResumeCommand],
  ] as const) {
    queues
      .command(name)
      .description(description)
      .argument('<queue>', 'queue name')
      .action((queue: string, _options: object, cmd: Command) => run(command, { ...cmd.optsWithGlobals<GlobalOptions>(), queue }));
  }
}
