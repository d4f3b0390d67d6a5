/**
 * `warden jobs list|show|retry|cancel|discard`: read jobs and operate on them. Operator actions are attributed
 * to `cli:<user>`. Payloads, checkpoints, step results and errors are printed redacted: the `sensitive` fields of
 * the job definitions in `--jobs` (or `WARDEN_JOBS`), plus `--redact` (or `WARDEN_SENSITIVE`) for every job.
 * @module
 */
import type { Command } from 'commander';
import { InvalidOptionError, JobNotFoundError } from '../../errors.js';
import type { JobStepRow } from '../../driver/driver.js';
import { isJobIdText, JOB_ID_EXPECTED, JOB_LIST_DEFAULT_LIMIT, JOB_LIST_MAX_LIMIT } from '../../driver/job-params.js';
import type { JobDefinition } from '../../job/define-job.js';
import type { AttemptRow, JobRow, JobState } from '../../job/job-record.js';
import type { ScheduleDefinition } from '../../schedule/define-schedule.js';
import { type CliIo, formatDate, formatFields, formatMs, formatTable, truncate, writeJson, writeLines } from '../cli-io.js';
import { type JobRedaction, loadJobRedaction, type RedactionCommandOptions } from '../cli-redaction.js';
import { cliActor, type GlobalOptions, withWarden } from '../open-warden.js';
import { parseIntegerOption, parseJobIdOption } from '../parse-options.js';
import type { CommandRunner } from './command-runner.js';

/** Most jobs `jobs list` shows at once: what `warden.jobs.list` accepts. */
export const MAX_LIST_LIMIT = JOB_LIST_MAX_LIMIT;

/** Options of {@link jobsListCommand}, as given on the command line. */
export interface JobsListCommandOptions extends GlobalOptions, RedactionCommandOptions {
  state?: string;
  queue?: string;
  name?: string;
  /** 1 to {@link MAX_LIST_LIMIT}. @default 50 */
  limit?: string;
  /** Only jobs with ids below this one (the next page). */
  before?: string;
}

/** Options of the commands that take one job id. */
export interface JobIdCommandOptions extends GlobalOptions, RedactionCommandOptions {
  id: string;
}

/** The table row of one job: id, name, queue, state, attempt/max, run at, progress, last error. */
function jobRow(job: JobRow): string[] {
  const error = job.lastError ? truncate(`${job.lastError.name}: ${job.lastError.message}`, 60) : '';
  return [job.id, job.name, job.queue, job.state, `${job.attempt}/${job.maxAttempts}`, formatDate(job.runAt), job.progress ? formatProgress(job.progress) : '', error];
}

/**
 * Lists jobs, newest first, filtered by state, queue and name; `--before <id>` pages on. `--json` prints the
 * array of jobs.
 * @returns 0
 */
export async function jobsListCommand(options: JobsListCommandOptions, io: CliIo): Promise<number> {
  const limit = parseIntegerOption('--limit', options.limit) ?? JOB_LIST_DEFAULT_LIMIT;
  if (limit < 1 || limit > MAX_LIST_LIMIT) {
    throw new InvalidOptionError('--limit', options.limit, `a whole number from 1 to ${MAX_LIST_LIMIT}`);
  }
  const beforeId = options.before === undefined ? undefined : parseJobIdOption('--before', options.before);
  // The range too (parseJobIdOption checks the digits only), so that the message names the flag rather than the
  // API's `beforeId`.
  if (beforeId !== undefined && !isJobIdText(beforeId)) throw new InvalidOptionError('--before', options.before, JOB_ID_EXPECTED);
  const redaction = await loadJobRedaction(options);
  return withWarden(options, modules(redaction), async (warden) => {
    const listed = await warden.jobs.list({ state: options.state as JobState | undefined, queue: options.queue, name: options.name, limit, beforeId });
    const jobs = listed.map((job) => redaction.job(job));
    if (options.json) writeJson(io, jobs);
    else if (jobs.length === 0) writeLines(io, ['no jobs']);
    else {
      writeLines(io, formatTable(['ID', 'NAME', 'QUEUE', 'STATE', 'ATTEMPT', 'RUN AT', 'PROGRESS', 'LAST ERROR'], jobs.map(jobRow)));
      if (jobs.length === limit) writeLines(io, [`(${limit} shown; next page: --before ${jobs[jobs.length - 1]!.id})`]);
    }
    return 0;
  });
}

function attemptRow(a: AttemptRow): string[] {
  const duration = a.startedAt ? formatMs(a.finishedAt.getTime() - a.startedAt.getTime()) : '-';
  const error = a.error ? truncate(`${a.error.name}: ${a.error.message}`, 60) : '';
  return [String(a.attempt), a.outcome, a.workerId ?? '-', formatDate(a.startedAt), duration, error];
}

function stepRow(s: JobStepRow): string[] {
  return [s.name, String(s.attempt), formatDate(s.createdAt), truncate(s.result === undefined ? '-' : JSON.stringify(s.result), 60)];
}

/** "1,234 of 10,000 (12.3%)", or "1,234" when the total is unknown. */
export function formatProgress(progress: JobRow['progress']): string {
  if (!progress) return '-';
  if (progress.total === null) return progress.done.toLocaleString('en-US');
  const percent = progress.total === 0 ? 100 : (100 * progress.done) / progress.total;
  return `${progress.done.toLocaleString('en-US')} of ${progress.total.toLocaleString('en-US')} (${percent.toFixed(1)}%)`;
}

/**
 * Shows one job's fields, payload, progress and checkpoint, last error, recorded steps and attempt history.
 * `--json` prints `{ job, attempts, steps }`.
 * @returns 0
 * @throws JobNotFoundError
 */
export async function jobsShowCommand(options: JobIdCommandOptions, io: CliIo): Promise<number> {
  const redaction = await loadJobRedaction(options);
  return withWarden(options, modules(redaction), async (warden) => {
    const stored = await warden.jobs.get(options.id);
    if (!stored) throw new JobNotFoundError(options.id);
    const [storedAttempts, storedSteps] = await Promise.all([warden.jobs.attempts(stored.id), warden.jobs.steps(stored.id)]);
    const [job, attempts, steps] = [redaction.job(stored), redaction.attempts(stored, storedAttempts), redaction.steps(stored, storedSteps)];
    if (options.json) {
      writeJson(io, { job, attempts, steps });
      return 0;
    }
    const lines = formatFields([
      ['id', job.id],
      ['name', job.name],
      ['queue', job.queue],
      ['state', job.state],
      ['priority', String(job.priority)],
      ['attempt', `${job.attempt}/${job.maxAttempts}${job.lostCount > 0 ? ` (lost ${job.lostCount} time(s))` : ''}`],
      ['key', job.key ?? '-'],
      ['run at', formatDate(job.runAt)],
      ['created', formatDate(job.createdAt)],
      ['updated', formatDate(job.updatedAt)],
      ['started', formatDate(job.startedAt)],
      ['finished', formatDate(job.finishedAt)],
      ...(job.state === 'running' ? ([['lease', `${job.leaseWorker ?? '-'} until ${formatDate(job.leaseExpiresAt)}`]] as [string, string][]) : []),
      ['payload', truncate(JSON.stringify(job.payload) ?? 'null', 200)],
      ['last error', job.lastError ? truncate(`${job.lastError.name}: ${job.lastError.message}`, 200) : '-'],
      ['progress', formatProgress(job.progress)],
      ['checkpoint', job.checkpointAt ? `${truncate(JSON.stringify(job.checkpoint) ?? 'null', 160)} at ${formatDate(job.checkpointAt)}` : '-'],
    ]);
    if (steps.length > 0) lines.push('', 'steps:', ...formatTable(['NAME', 'ATTEMPT', 'RECORDED', 'RESULT'], steps.map(stepRow)).map((l) => `  ${l}`));
    lines.push('', attempts.length === 0 ? 'no finished attempts' : 'attempts:');
    if (attempts.length > 0) lines.push(...formatTable(['#', 'OUTCOME', 'WORKER', 'STARTED', 'TOOK', 'ERROR'], attempts.map(attemptRow)).map((l) => `  ${l}`));
    writeLines(io, lines);
    return 0;
  });
}

type JobAction = 'retry' | 'cancel' | 'discard';
const PAST: Record<JobAction, string> = { retry: 'retried', cancel: 'cancelled', discard: 'discarded' };

function jobAction(action: JobAction) {
  return async (options: JobIdCommandOptions, io: CliIo): Promise<number> => {
    const redaction = await loadJobRedaction(options);
    return withWarden(options, modules(redaction), async (warden) => {
      const row = await warden.jobs[action](options.id, { actor: cliActor(), reason: options.reason });
      if (options.json) writeJson(io, redaction.job(row));
      else writeLines(io, [`${PAST[action]} job ${row.id}${action === 'discard' ? '' : ` (now ${row.state})`}`]);
      return 0;
    });
  };
}

/** The definitions of the loaded jobs module, for the Warden instance (`warden.definitions`). */
function modules(redaction: JobRedaction): { jobs: JobDefinition<any, any>[]; schedules: ScheduleDefinition[] } {
  return { jobs: redaction.module?.jobs ?? [], schedules: redaction.module?.schedules ?? [] };
}

/** Adds `--jobs` and `--redact`, which every jobs subcommand takes. */
function withRedactionOptions(command: Command): Command {
  return command
    .option('--jobs <module>', 'module exporting the job definitions, whose sensitive fields are redacted (env WARDEN_JOBS)')
    .option('--redact <fields>', 'comma-separated field names or dotted paths to redact in every job (env WARDEN_SENSITIVE)');
}

/**
 * Retries a `dead` or `retrying` job now. Prints `retried job <id> (now queued)`; `--json` the job.
 * @throws JobNotFoundError, JobStateError, KeyConflictError
 */
export const jobsRetryCommand: (options: JobIdCommandOptions, io: CliIo) => Promise<number> = jobAction('retry');
/**
 * Cancels a queued, retrying or running job. Prints `cancelled job <id> (now cancelled)`; `--json` the job.
 * @throws JobNotFoundError, JobStateError
 */
export const jobsCancelCommand: (options: JobIdCommandOptions, io: CliIo) => Promise<number> = jobAction('cancel');
/**
 * Deletes a job that is not running, with its attempts. Prints `discarded job <id>`; `--json` the deleted job.
 * @throws JobNotFoundError, JobStateError
 */
export const jobsDiscardCommand: (options: JobIdCommandOptions, io: CliIo) => Promise<number> = jobAction('discard');

/** Adds `jobs` and its subcommands to the program. */
export function registerJobsCommands(program: Command, run: CommandRunner): void {
  const jobs = program.command('jobs').description('list, show, retry, cancel and discard jobs');
  withRedactionOptions(jobs.command('list'))
    .description('list jobs, newest first')
    .option('--state <state>', 'queued, retrying, running, completed, dead or cancelled')
    .option('--queue <queue>', 'only this queue')
    .option('--name <name>', 'only this job name')
    .option('--limit <n>', `at most this many (1-${MAX_LIST_LIMIT}, default ${JOB_LIST_DEFAULT_LIMIT})`)
    .option('--before <id>', 'only jobs with ids below this one (next page)')
    .action((_options: object, command: Command) => run(jobsListCommand, command.optsWithGlobals<JobsListCommandOptions>()));
  const withId = (name: string, description: string, command: (options: JobIdCommandOptions, io: CliIo) => Promise<number>) =>
    withRedactionOptions(jobs.command(name))
      .description(description)
      .argument('<id>', 'job id')
      .action((id: string, _options: object, cmd: Command) => run(command, { ...cmd.optsWithGlobals<GlobalOptions>(), id }));
  withId('show', 'show a job and its attempts', jobsShowCommand);
  withId('retry', 'run a dead or retrying job again now', jobsRetryCommand);
  withId('cancel', 'cancel a queued, retrying or running job', jobsCancelCommand);
  withId('discard', 'delete a job that is not running, with its attempts', jobsDiscardCommand);
}
