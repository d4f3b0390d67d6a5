/**
 * `warden worker`: runs a worker for the jobs of a module, and the scheduler for its schedules, until
 * SIGTERM/SIGINT.
 * @module
 */
import type { Command } from 'commander';
import type { WardenEventMap } from '../../events/event-map.js';
import { type HealthServer, startHealthServer } from '../../observe/health-server.js';
import { handleShutdownSignals } from '../../runtime/shutdown-signals.js';
import type { WorkerOptions } from '../../runtime/worker-options.js';
import { CliError, EXIT_USAGE } from '../cli-error.js';
import { type CliIo, writeJson, writeLines } from '../cli-io.js';
import { loadJobsModule } from '../load-jobs.js';
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
   * Run the scheduler when the module defines schedules; `--no-scheduler` sets it to false.
   * @default true
   */
  scheduler?: boolean;
  /** Only fire the module's schedules; claim and run no jobs (`--scheduler-only`). */
  schedulerOnly?: boolean;
  /** Serve `/metrics`, `/livez` and `/readyz` on this port (0: a free one, printed on stderr). @default not served */
  metricsPort?: string;
  /** The interface the metrics port listens on. @default all interfaces */
  metricsHost?: string;
  /** Record job state changes to the audit trail, at each job type's `audit` level (`--audit`). @default false */
  audit?: boolean;
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
 * Loads the jobs module, optionally migrates, starts a worker and (when the module defines schedules) the
 * scheduler, and prints one line when started (`--json`: `{ workerId, queues, concurrency, schedules }`, with
 * `workerId: null` for `--scheduler-only`). Resolves when they have stopped. With signal handling on (the
 * default), the first SIGTERM/SIGINT stops them gracefully and exits the process with 0 once closed; a second
 * exits at once with 130.
 * @returns 0 once stopped.
 * @throws CliError when no module is given, it is missing or defines neither jobs nor schedules, for
 *   `--scheduler-only` without schedules, or for both `--scheduler-only` and `--no-scheduler` (exit 2); Warden
 *   errors for bad options.
 */
export async function workerCommand(options: WorkerCommandOptions, io: CliIo): Promise<number> {
  const spec = options.jobs ?? (process.env.WARDEN_JOBS || undefined);
  if (!spec) throw new CliError('Expected --jobs <module> (or WARDEN_JOBS) naming the jobs this worker runs, got none');
  if (options.schedulerOnly && options.scheduler === false) {
    throw new CliError('Expected at most one of --scheduler-only and --no-scheduler, got both', { exitCode: EXIT_USAGE });
  }
  const workerOptions = workerOptionsFrom(options);
  const metricsPort = parseIntegerOption('--metrics-port', options.metricsPort);
  if (options.metricsHost !== undefined && metricsPort === undefined) throw new CliError('Expected --metrics-port with --metrics-host, got no port', { exitCode: EXIT_USAGE });
  const { jobs, schedules, path, alerts } = await loadJobsModule(spec, { flag: options.jobs ? '--jobs' : 'WARDEN_JOBS' });
  if (options.schedulerOnly && schedules.length === 0) {
    throw new CliError(`Expected the jobs module ${path} to define schedules for --scheduler-only, got none`);
  }
  const runWorker = !options.schedulerOnly;
  const runScheduler = schedules.length > 0 && options.scheduler !== false;
  const scheduleNames = runScheduler ? schedules.map((s) => s.name) : [];
  return withWarden(options, { jobs, schedules, requireMigrated: !options.migrate, createSqliteFile: options.migrate === true, alerts, audit: options.audit === true, metrics: metricsPort !== undefined }, async (warden) => {
    if (options.migrate) {
      const result = await warden.migrate();
      for (const name of result.applied) io.err(`applied migration ${name}\n`);
    }
    let started: WardenEventMap['worker:started'] | undefined;
    const offStarted = warden.on('worker:started', (e) => {
      started = e;
    });
    let markStopped!: () => void;
    const stopped = new Promise<void>((resolve) => (markStopped = resolve));
    const offStopped = warden.on('worker:stopped', (e) => {
      offStopped();
      // Written synchronously here: after a graceful signal stop the process exits as soon as Warden closes.
      if (!options.json) writeLines(io, [`worker ${e.workerId} stopped${e.aborted > 0 ? `: ${e.aborted} job(s) aborted and returned for retry` : ''}`]);
      markStopped();
    });
    let schedulerStopped = false;
    // Set by the first stop (a signal or the abort), so a stop that comes before `start()` means it is not called.
    let stopRequested = false;
    let startCalled = false;
    // Stops the scheduler and the worker. Without a worker there is no `worker:stopped` event, so the stop is
    // announced here (when there was something to stop).
    const stop = async () => {
      stopRequested = true;
      await warden.stop();
      if (!runWorker && !schedulerStopped) {
        schedulerStopped = true;
        if (!options.json && startCalled) writeLines(io, ['scheduler stopped']);
        markStopped();
      }
    };
    const who = () => (runWorker ? `worker ${started?.workerId ?? ''}` : 'scheduler');
    const removeSignalHandlers = options.handleSignals === false
      ? () => {}
      : handleShutdownSignals({ stop, close: () => warden.close() }, {
          onSignal: (signal) => io.err(`${who()} received ${signal}: stopping${runWorker ? ' after in-flight jobs finish' : ''} (send ${signal} again to exit at once)\n`),
        });
    const onAbort = () => void stop();
    options.signal?.addEventListener('abort', onAbort, { once: true });
    let health: HealthServer | null = null;
    try {
      if (stopRequested || options.signal?.aborted) return 0;
      if (metricsPort !== undefined) {
        // Listening first, so a taken port fails the command before any job is claimed.
        health = await startHealthServer({
          port: metricsPort,
          host: options.metricsHost,
          registry: warden.metrics?.registry,
          ready: warden.readiness.check,
          onError: (error) => warden.events.emit('error', { error, context: 'metrics server' }),
        });
        io.err(`serving /metrics, /livez and /readyz on port ${health.port}${options.metricsHost ? ` of ${options.metricsHost}` : ''}\n`);
        // Stopped (a signal, the abort) while the server was opening: nothing was started, and nothing is.
        if (stopRequested || options.signal?.aborted) return 0;
      }
      startCalled = true;
      await warden.start({ ...workerOptions, worker: runWorker, scheduler: runScheduler });
      offStarted();
      if (options.signal?.aborted) await stop();
      const scheduleList = scheduleNames.length > 0 ? `, schedules: ${scheduleNames.join(', ')}` : '';
      if (started) {
        if (options.json) writeJson(io, { ...started, schedules: scheduleNames });
        else writeLines(io, [`worker ${started.workerId} started: queues ${started.queues.join(', ')}, concurrency ${started.concurrency}${scheduleList}`]);
      } else if (!runWorker) {
        if (options.json) writeJson(io, { workerId: null, queues: [], concurrency: 0, schedules: scheduleNames });
        else writeLines(io, [`scheduler started (no worker)${scheduleList}`]);
      }
      await stopped;
      return 0;
    } finally {
      await health?.stop();
      offStarted();
      offStopped();
      options.signal?.removeEventListener('abort', onAbort);
      // After a signal this runs before the close and exit that signal started have finished; the handlers stay
      // until then (handleShutdownSignals defers their removal), so a second signal still exits with 130.
      removeSignalHandlers();
    }
  });
}

/** Adds `worker` to the program. */
export function registerWorkerCommand(program: Command, run: CommandRunner): void {
  program
    .command('worker')
    .description('run a worker for the jobs of a module, and the scheduler for its schedules, until SIGTERM/SIGINT')
    .option('--jobs <module>', 'module exporting the job definitions and schedules (env WARDEN_JOBS)')
    .option('--queues <list>', 'comma-separated queues to work (default: the queues of the jobs)')
    .option('--concurrency <n>', 'jobs run at once (default 10)')
    .option('--lease <duration>', 'lease length (default 30s)')
    .option('--heartbeat <duration>', 'lease renewal interval, shorter than the lease (default 10s)')
    .option('--grace <duration>', 'on shutdown, time in-flight jobs get to finish (default 25s)')
    .option('--poll-interval <duration>', 'how often to look for due jobs without a wake-up (default 1s)')
    .option('--migrate', 'apply pending migrations before starting')
    .option('--no-scheduler', 'do not fire the module\'s schedules (by default the worker also runs the scheduler when the module defines schedules)')
    .option('--scheduler-only', 'fire the module\'s schedules without claiming or running jobs')
    .option('--audit', 'record job state changes to the audit trail, at each job\'s audit level (docs/audit.md)')
    .option('--metrics-port <n>', 'serve /metrics, /livez and /readyz on this port (0: a free one, printed on stderr)')
    .option('--metrics-host <host>', 'the interface the metrics port listens on (default: all)')
    .action((_options: object, command: Command) => run(workerCommand, command.optsWithGlobals<WorkerCommandOptions>()));
}
