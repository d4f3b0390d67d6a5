/**
 * `warden enqueue <job> <json>`: validates a payload against the job's schema and enqueues it.
 * @module
 */
import type { Command } from 'commander';
import type { EnqueueOptions } from '../../client/warden-options.js';
import { CliError } from '../cli-error.js';
import { createJobRedaction, extraSensitive } from '../cli-redaction.js';
import { type CliIo, writeJson, writeLines } from '../cli-io.js';
import { loadJobsModule } from '../load-jobs.js';
import { type GlobalOptions, withWarden } from '../open-warden.js';
import { parseJsonArgument } from '../parse-json-argument.js';
import { parseDurationOption, parseIntegerOption } from '../parse-options.js';
import type { CommandRunner } from './command-runner.js';

/** Options of {@link enqueueCommand}, as given on the command line. */
export interface EnqueueCommandOptions extends GlobalOptions {
  /** The job name. */
  job: string;
  /** The payload as JSON text. */
  payload: string;
  /**
   * The jobs module, needed to validate the payload. Its schedules' jobs can be enqueued too.
   * @default process.env.WARDEN_JOBS
   */
  jobs?: string;
  delay?: string;
  priority?: string;
  key?: string;
  queue?: string;
}

/**
 * Parses the payload, loads the job definitions, and enqueues one job. Prints `enqueued job <id>` or
 * `duplicate of job <id>`; `--json` prints `{ id, duplicate, job }`. On any error nothing is written.
 * @returns 0
 * @throws CliError for bad JSON or a missing/invalid jobs module; Warden errors for an unknown job, an invalid
 *   payload, key, queue, priority or delay.
 */
export async function enqueueCommand(options: EnqueueCommandOptions, io: CliIo): Promise<number> {
  const payload = parseJsonArgument('the payload', options.payload);
  const spec = options.jobs ?? (process.env.WARDEN_JOBS || undefined);
  if (!spec) throw new CliError('Expected --jobs <module> (or WARDEN_JOBS) so the payload can be validated, got none');
  const enqueueOptions: EnqueueOptions = {};
  const delay = parseDurationOption(options.delay);
  if (delay !== undefined) enqueueOptions.delay = delay;
  const priority = parseIntegerOption('--priority', options.priority);
  if (priority !== undefined) enqueueOptions.priority = priority;
  if (options.key !== undefined) enqueueOptions.key = options.key;
  if (options.queue !== undefined) enqueueOptions.queue = options.queue;
  const { jobs, schedules } = await loadJobsModule(spec, { flag: options.jobs ? '--jobs' : 'WARDEN_JOBS' });
  return withWarden(options, { jobs, schedules }, async (warden) => {
    const result = await warden.enqueue(options.job, payload, enqueueOptions);
    // The job is printed with its definition's sensitive fields (and WARDEN_SENSITIVE's) redacted.
    if (options.json) writeJson(io, { ...result, job: createJobRedaction(warden.definitions, extraSensitive()).job(result.job) });
    else writeLines(io, [result.duplicate ? `duplicate of job ${result.id}` : `enqueued job ${result.id}`]);
    return 0;
  });
}

/** Adds `enqueue` to the program. */
export function registerEnqueueCommand(program: Command, run: CommandRunner): void {
  program
    .command('enqueue')
    .description('enqueue one job; the payload is validated against the job\'s schema')
    .argument('<job>', 'job name')
    .argument('<json>', 'payload as JSON, e.g. \'{"to":"a@example.com"}\'')
    .option('--jobs <module>', 'module exporting the job definitions (env WARDEN_JOBS)')
    .option('--delay <duration>', 'run no earlier than this long from now, e.g. 5m')
    .option('--priority <n>', 'lower runs first (default: the job\'s priority)')
    .option('--key <key>', 'deduplication key: no second active job with this key')
    .option('--queue <queue>', 'queue (default: the job\'s queue)')
    .action((job: string, payload: string, _options: object, command: Command) =>
      run(enqueueCommand, { ...command.optsWithGlobals<Omit<EnqueueCommandOptions, 'job' | 'payload'>>(), job, payload }));
}
