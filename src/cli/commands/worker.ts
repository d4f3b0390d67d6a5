/**
 * `warden worker`: runs a worker for the jobs of a module until SIGTERM/SIGINT.
 * @module
 */
import type { Command } from 'commander';
import type { WardenEventMap } from '../../events/event-map.js';
import { handleShutdownSignals } from '../../runtime/shutdown-signals.js';
import type { WorkerOptions } from '../../runtime/worker-options.js';
import { CliError } from '../cli-error.js';
import { type CliIo, writeJson, writeLines } from '../cli-io.js';
import { loadJobs } from '../load-jobs.js';
import { type GlobalOptions, withWarden } from '../open-warden.js';
import { parseDurationOption, parseIntegerOption, parseListOption } from '../parse-options.js';
import type { CommandRunner } from './command-runner.js';

/** Options of {@link workerCommand}, as given on the command line. */
export interface WorkerCommandOptions extends GlobalOptions {
  /** The jobs module (path relative to the working directory). @default process.env.WARDEN_JOBS */
  jobs?: string;
  /** Comma-separated queues. @default every queue of the module's jobs */
  queues?: string;
  concurrency?: string;
  lease?: string;
  heartbeat?: string;
  grace?: string;
  pollInterval?: string;
  /** Apply pending migrations before starting. */
  migrate?: boolean;
  /**
   * Stops the worker gracefully when aborted, like a first SIGTERM but without exiting the process. For
   * running the command in-process (tests, embedding).
   */
  signal?: AbortSignal;
  /**
   * Install SIGTERM/SIGINT handlers: first graceful stop then exit 0, second exit 130 at once.
   * @default true
   */
  handleSignals?: boolean;
}

/** Worker options from the command line; only those given, so Warden's defaults apply to the rest. */
export function workerOptionsFrom(options: WorkerCommandOptions): WorkerOptions {
  const all: WorkerOptions = {
    queues: parseListOption(options.queues),
    concurrency: parseIntegerOption('--concurrency', options.concurrency),
    lease: parseDurationOption(options.lease),
    heartbeat: parseDurationOption(options.heartbeat),
    grace: parseDurationOption(options.grace),
    pollInterval: parseDurationOption(options.pollInterval),
  };
  return Object.fromEntries(Object.entries(all).filter(([, v]) => v !== undefined)) as WorkerOptions;
}

/**
 * Loads the jobs module, optionally migrates, starts a worker and prints one line when it has started
 * (`--json`: `{ workerId, queues, concurrency }`). Resolves when the worker has stopped. With signal handling
 * on (the default), the first SIGTERM/SIGINT stops it gracefully and exits the process with 0 once closed;
 * a second exits at once with 130.
 * @returns 0 once the worker stopped.
 * @throws CliError when no module is given, it is missing or has no jobs; Warden errors for bad options.
 */
export async function workerCommand(options: WorkerCommandOptions, io: CliIo): Promise<number> {
  const spec = options.jobs ?? (process.env.WARDEN_JOBS || undefined);
  if (!spec) throw new CliError('Expected --jobs <module> (or WARDEN_JOBS) naming the jobs this worker runs, got none');
  const workerOptions = workerOptionsFrom(options);
  const jobs = await loadJobs(spec, { flag: options.jobs ? '--jobs' : 'WARDEN_JOBS' });
  return withWarden(options, { jobs, requireMigrated: !options.migrate }, async (warden) => {
    if (options.migrate) {
      const result = await warden.migrate();
      for (const name of result.applied) io.err(`applied migration ${name}\n`);
    }
    let started: WardenEventMap['worker:started'] | undefined;
    const offStarted = warden.on('worker:started', (e) => {
      started = e;
    });
    const stopped = new Promise<WardenEventMap['worker:stopped']>((resolve) => {
      const off = warden.on('worker:stopped', (e) => {
        off();
        // Written synchronously here: after a graceful signal stop the process exits as soon as Warden closes.
        if (!options.json) writeLines(io, [`worker ${e.workerId} stopped${e.aborted > 0 ? `: ${e.aborted} job(s) aborted and returned for retry` : ''}`]);
        resolve(e);
      });
    });
    const removeSignalHandlers = options.handleSignals === false
      ? () => {}
      : handleShutdownSignals(warden, {
          onSignal: (signal) => io.err(`worker ${started?.workerId ?? ''} received ${signal}: stopping after in-flight jobs finish (send ${signal} again to exit at once)\n`),
        });
    const onAbort = () => void warden.stop();
    options.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      if (options.signal?.aborted) return 0;
      await warden.start(workerOptions);
      offStarted();
      if (options.signal?.aborted) await warden.stop();
      if (started) {
        if (options.json) writeJson(io, started);
        else writeLines(io, [`worker ${started.workerId} started: queues ${started.queues.join(', ')}, concurrency ${started.concurrency}`]);
      }
      await stopped;
      return 0;
    } finally {
      options.signal?.removeEventListener('abort', onAbort);
      removeSignalHandlers();
    }
  });
}

/** Adds `worker` to the program. */
export function registerWorkerCommand(program: Command, run: CommandRunner): void {
  program
    .command('worker')
    .description('run a worker for the jobs of a module until SIGTERM/SIGINT')
    .option('--jobs <module>', 'module exporting the job definitions (env WARDEN_JOBS)')
    .option('--queues <list>', 'comma-separated queues to work (default: the queues of the jobs)')
    .option('--concurrency <n>', 'jobs run at once (default 10)')
    .option('--lease <duration>', 'lease length (default 30s)')
    .option('--heartbeat <duration>', 'lease renewal interval, shorter than the lease (default 10s)')
    .option('--grace <duration>', 'on shutdown, time in-flight jobs get to finish (default 25s)')
    .option('--poll-interval <duration>', 'how often to look for due jobs without a wake-up (default 1s)')
    .option('--migrate', 'apply pending migrations before starting')
    .action((_options: object, command: Command) => run(workerCommand, command.optsWithGlobals<WorkerCommandOptions>()));
}
