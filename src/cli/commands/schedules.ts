/**
 * `warden schedules list|ticks|pause|resume|trigger`: read schedules and their tick history, and operate on them.
 * Operator actions are attributed to `cli:<user>`.
 * @module
 */
import type { Command } from 'commander';
import { TICK_LIST_MAX_LIMIT, type ScheduleRow, type ScheduleTickRow } from '../../driver/schedule-params.js';
import { InvalidOptionError, ScheduleNotFoundError } from '../../errors.js';
import { validateName } from '../../validation/names.js';
import { CliError } from '../cli-error.js';
import { type CliIo, formatDate, formatMs, formatTable, writeJson, writeLines } from '../cli-io.js';
import { loadJobsModule } from '../load-jobs.js';
import { cliActor, type GlobalOptions, withWarden } from '../open-warden.js';
import { parseIntegerOption } from '../parse-options.js';
import type { CommandRunner } from './command-runner.js';

/** Most ticks `schedules ticks` shows at once: the most `warden.schedules.ticks` lists. */
export const MAX_TICKS_LIMIT = TICK_LIST_MAX_LIMIT;

/** Options of the commands that take one schedule name. */
export interface ScheduleCommandOptions extends GlobalOptions {
  name: string;
}

/** Options of {@link schedulesTicksCommand}. */
export interface SchedulesTicksCommandOptions extends ScheduleCommandOptions {
  /** @default 20 */
  limit?: string;
}

/** Options of {@link schedulesTriggerCommand}. */
export interface SchedulesTriggerCommandOptions extends ScheduleCommandOptions {
  /** The module defining the schedule (its job and payload are code). @default process.env.WARDEN_JOBS */
  jobs?: string;
}

/** An interval for people, in its largest whole unit: `1h`, `90m`, `15s`, `1500ms`. */
export function formatInterval(ms: number): string {
  for (const [unit, size] of [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1000]] as const) {
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

/** When a schedule fires, from its stored spec: `every 1h`, or `cron 0 * * * * (Europe/London)`. */
export function describeSpec(spec: unknown): string {
  const s = (typeof spec === 'object' && spec !== null ? spec : {}) as { cron?: unknown; everyMs?: unknown; timezone?: unknown };
  if (typeof s.cron === 'string') return `cron ${s.cron} (${typeof s.timezone === 'string' ? s.timezone : 'UTC'})`;
  if (typeof s.everyMs === 'number') return `every ${formatInterval(s.everyMs)}`;
  return '?';
}

/** A time with its distance from `now`: `2024-05-01 13:00:00Z (in 42m10s)` or `… (3.0s ago)`. */
function relativeDate(date: Date | null, now: Date): string {
  if (!date) return '-';
  const delta = date.getTime() - now.getTime();
  return `${formatDate(date)} (${delta >= 0 ? `in ${formatMs(delta)}` : `${formatMs(-delta)} ago`})`;
}

/** A tick's outcome for the list: `fired (triggered) job 3 queued`, `skipped`, `missed (late)`. */
function describeTick(tick: ScheduleTickRow): string {
  const kind = tick.kind === 'triggered' ? ' (triggered)' : tick.late ? ' (late)' : '';
  const job = tick.jobId === null ? '' : ` job ${tick.jobId} ${tick.jobState ?? '(deleted)'}`;
  return `${formatDate(tick.tickAt)} ${tick.outcome}${kind}${job}`;
}

/** The table row of one schedule: name, schedule, next run, last tick, paused. */
function scheduleRow(row: ScheduleRow, now: Date): string[] {
  return [row.name, describeSpec(row.spec), row.paused ? '-' : relativeDate(row.nextRunAt, now), row.lastTick ? describeTick(row.lastTick) : '-', row.paused ? 'yes' : 'no'];
}

/**
 * Lists the schedules in the database (written there when a worker or scheduler with them starts, or by
 * `schedules trigger`): when each fires, its next run (database time), its last tick with that run's job and
 * state, and whether it is paused. `--json` prints the array of schedule rows.
 * @returns 0
 */
export async function schedulesListCommand(options: GlobalOptions, io: CliIo): Promise<number> {
  return withWarden(options, {}, async (warden) => {
    const rows = await warden.schedules.list();
    if (options.json) writeJson(io, rows);
    else if (rows.length === 0) writeLines(io, ['no schedules']);
    else {
      const now = await warden.driver.dbNow();
      writeLines(io, formatTable(['NAME', 'SCHEDULE', 'NEXT RUN', 'LAST TICK', 'PAUSED'], rows.map((r) => scheduleRow(r, now))));
    }
    return 0;
  });
}

function tickRow(t: ScheduleTickRow): string[] {
  return [formatDate(t.tickAt), t.kind, t.outcome, t.late ? 'yes' : 'no', t.jobId ?? '-', t.jobId === null ? '-' : (t.jobState ?? '(deleted)'), t.actor ?? '-', formatDate(t.recordedAt)];
}

/**
 * Lists a schedule's ticks, newest first: fired, skipped (overlap or duplicate key), missed, and triggered by an operator.
 * `--json` prints the array of tick rows.
 * @returns 0
 * @throws InvalidNameError; ScheduleNotFoundError when the schedule has no ticks and is not in the database.
 */
export async function schedulesTicksCommand(options: SchedulesTicksCommandOptions, io: CliIo): Promise<number> {
  validateName('schedule name', options.name);
  const limit = parseIntegerOption('--limit', options.limit) ?? 20;
  if (limit < 1 || limit > MAX_TICKS_LIMIT) throw new InvalidOptionError('--limit', options.limit, `a whole number from 1 to ${MAX_TICKS_LIMIT}`);
  return withWarden(options, {}, async (warden) => {
    const ticks = await warden.schedules.ticks(options.name, { limit });
    // A removed schedule keeps its history; only a name never seen at all is an error.
    if (ticks.length === 0 && !(await warden.schedules.get(options.name))) throw new ScheduleNotFoundError(options.name);
    if (options.json) writeJson(io, ticks);
    else if (ticks.length === 0) writeLines(io, [`no ticks for schedule ${options.name} yet`]);
    else writeLines(io, formatTable(['TICK AT', 'KIND', 'OUTCOME', 'LATE', 'JOB', 'JOB STATE', 'ACTOR', 'RECORDED'], ticks.map(tickRow)));
    return 0;
  });
}

function scheduleAction(action: 'pause' | 'resume') {
  return async (options: ScheduleCommandOptions, io: CliIo): Promise<number> =>
    withWarden(options, {}, async (warden) => {
      const row = await warden.schedules[action](options.name, { actor: cliActor(), reason: options.reason });
      if (options.json) writeJson(io, row);
      else if (action === 'pause') writeLines(io, [`paused schedule ${row.name}`]);
      else writeLines(io, [`resumed schedule ${row.name} (next run ${formatDate(row.nextRunAt)})`]);
      return 0;
    });
}

/**
 * Pauses a schedule in the database: no instance fires it until resumed. `--json` prints the schedule row.
 * @throws InvalidNameError, ScheduleNotFoundError
 */
export const schedulesPauseCommand: (options: ScheduleCommandOptions, io: CliIo) => Promise<number> = scheduleAction('pause');
/**
 * Resumes a paused schedule from its next future tick (ticks during the pause are not misfires). `--json`
 * prints the schedule row.
 * @throws InvalidNameError, ScheduleNotFoundError
 */
export const schedulesResumeCommand: (options: ScheduleCommandOptions, io: CliIo) => Promise<number> = scheduleAction('resume');

/**
 * Enqueues one run of a schedule now, recorded as a `triggered` tick attributed to `cli:<user>`. The schedule's
 * job and payload are code, so the module defining it is loaded (`--jobs` or `WARDEN_JOBS`). When the schedule
 * is not in the database yet (no scheduler with it has started), this schedule — only it — is written there
 * with the triggered tick, as a starting scheduler would write it; nothing else is changed and no other tick fires. A
 * trigger refused (a payload its job's schema rejects) writes nothing, the schedule included. Prints
 * `triggered schedule <name>: job <id>`; when the job's unique key matched an active job, `schedule <name> not
 * triggered: …` (no run, the tick recorded skipped), or, when that key replaced a waiting job's payload and due time,
 * `triggered schedule <name>: waiting job <id> …` (that job runs for it, the tick recorded fired); `--json` prints
 * `{ schedule, jobId, tickAt, duplicate, replaced }`.
 * @returns 0
 * @throws InvalidNameError; CliError without a module, or when the module does not define the schedule;
 *   ScheduleNotFoundError when neither the module nor the database has it.
 */
export async function schedulesTriggerCommand(options: SchedulesTriggerCommandOptions, io: CliIo): Promise<number> {
  const name = validateName('schedule name', options.name);
  const spec = options.jobs ?? (process.env.WARDEN_JOBS || undefined);
  if (!spec) throw new CliError(`Expected --jobs <module> (or WARDEN_JOBS) defining schedule ${name}, got none`);
  const { jobs, schedules, path } = await loadJobsModule(spec, { flag: options.jobs ? '--jobs' : 'WARDEN_JOBS' });
  return withWarden(options, { jobs, schedules }, async (warden) => {
    const def = schedules.find((s) => s.name === name);
    const stored = await warden.schedules.get(name);
    if (!def) {
      if (!stored) throw new ScheduleNotFoundError(name);
      const known = schedules.length === 0 ? 'none' : schedules.map((s) => s.name).join(', ');
      throw new CliError(`Expected the jobs module ${path} to define schedule ${name} (its job and payload are code), got schedules: ${known}`);
    }
    // A schedule not stored yet is not synced here: the trigger stores it itself, in the same write as the tick and
    // only after the payload passed the job's schema, so a refused trigger leaves nothing behind.
    if (stored && stored.definitionHash !== def.definitionHash) {
      io.err(`note: schedule ${name} in the database has another definition (another deploy?); triggering with the job and payload of ${path}\n`);
    }
    const result = await warden.schedules.trigger(name, { actor: cliActor(), reason: options.reason });
    if (options.json) writeJson(io, { schedule: name, ...result });
    else if (result.replaced) writeLines(io, [`triggered schedule ${name}: waiting job ${result.jobId} has its job's unique key and now runs with this trigger's payload and due time (no new job; tick recorded fired)`]);
    else if (result.duplicate) writeLines(io, [`schedule ${name} not triggered: its job's unique key matches active job ${result.jobId} (tick recorded skipped)`]);
    else writeLines(io, [`triggered schedule ${name}: job ${result.jobId}`]);
    return 0;
  });
}

/** Adds `schedules` and its subcommands to the program. */
export function registerSchedulesCommands(program: Command, run: CommandRunner): void {
  const schedules = program.command('schedules').description('list schedules and their ticks; pause, resume and trigger them');
  schedules
    .command('list')
    .description('list schedules: when they fire, next run, last tick (outcome, job, job state), paused')
    .addHelpText('after', '\nSchedules appear once a worker or scheduler with them has started (or one was triggered).')
    .action((_options: object, command: Command) => run(schedulesListCommand, command.optsWithGlobals<GlobalOptions>()));
  schedules
    .command('ticks')
    .description('a schedule\'s tick history, newest first: fired, skipped (overlap or duplicate key), missed, triggered')
    .argument('<name>', 'schedule name')
    .option('--limit <n>', `at most this many (1-${MAX_TICKS_LIMIT}, default 20)`)
    .action((name: string, _options: object, cmd: Command) =>
      run(schedulesTicksCommand, { ...cmd.optsWithGlobals<Omit<SchedulesTicksCommandOptions, 'name'>>(), name }));
  for (const [action, description, command] of [
    ['pause', 'stop every instance from firing a schedule (persisted)', schedulesPauseCommand],
    ['resume', 'fire a paused schedule again, from its next future tick', schedulesResumeCommand],
  ] as const) {
    schedules
      .command(action)
      .description(description)
      .argument('<name>', 'schedule name')
      .action((name: string, _options: object, cmd: Command) => run(command, { ...cmd.optsWithGlobals<GlobalOptions>(), name }));
  }
  schedules
    .command('trigger')
    .description('enqueue one run of a schedule now, recorded as a triggered tick with who asked')
    .argument('<name>', 'schedule name')
    .option('--jobs <module>', 'module exporting the schedule (env WARDEN_JOBS): its job and payload are code')
    .addHelpText(
      'after',
      '\nIf the schedule is not in the database yet (no worker or scheduler with it has started), it is written there first,\n'
        + 'exactly as a starting scheduler would write it; no other schedule is changed and no other tick fires.',
    )
    .action((name: string, _options: object, cmd: Command) =>
      run(schedulesTriggerCommand, { ...cmd.optsWithGlobals<Omit<SchedulesTriggerCommandOptions, 'name'>>(), name }));
}
