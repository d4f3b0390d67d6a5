/**
 * `warden doctor`: runs the self-review checklist on the jobs module's definitions and the database's live state;
 * exit 1 when any finding is an error, so it can gate CI or a deploy.
 * @module
 */
import type { Command } from 'commander';
import { DOCTOR_SEVERITIES, type DoctorResult } from '../../doctor/doctor-finding.js';
import { type CliIo, writeJson, writeLines } from '../cli-io.js';
import { loadJobsModule } from '../load-jobs.js';
import { type GlobalOptions, missingSqliteFile, withWarden } from '../open-warden.js';
import type { CommandRunner } from './command-runner.js';

/** Options of {@link doctorCommand}. */
export interface DoctorCommandOptions extends GlobalOptions {
  /** The application's jobs module. @default process.env.WARDEN_JOBS; without one only the live state is checked */
  jobs?: string;
}

/**
 * Prints one line per finding grouped by severity, then a summary (`--json`: the {@link DoctorResult}).
 * The application's audit option is not visible to the CLI, so "audit trail off" means its chain has no entry.
 * @returns 1 when any finding is an error, else 0.
 * @throws CliError for a missing or bad jobs module.
 */
export async function doctorCommand(options: DoctorCommandOptions, io: CliIo): Promise<number> {
  const spec = options.jobs ?? (process.env.WARDEN_JOBS || undefined);
  const module = spec ? await loadJobsModule(spec, { flag: options.jobs ? '--jobs' : 'WARDEN_JOBS' }) : null;
  // Opening a missing SQLite file would create it (an empty database at a mistyped path, for the next command to
  // find). An empty in-memory database gives the same answer, every migration pending, and leaves nothing behind.
  const missing = missingSqliteFile(options);
  if (missing !== null) io.err(`no SQLite database file at ${missing} yet: checked as an empty database (\`warden migrate\` creates it)\n`);
  const globals = missing === null ? options : { ...options, database: 'sqlite::memory:' };
  // Doctor only reads: opened without recording, and without requiring migrations, which it reports itself.
  const result = await withWarden(globals, { jobs: module?.jobs, schedules: module?.schedules, alerts: module?.alerts, audit: false, requireMigrated: false }, async (warden) => {
    const found = await warden.doctor({ auditSource: 'trail' });
    // Without the jobs module the sinks are unknown, not missing.
    return module ? found : { ...found, findings: found.findings.filter((f) => f.id !== 'alerts.no-sink') };
  });
  const ok = !result.findings.some((f) => f.severity === 'error');
  if (options.json) writeJson(io, { findings: result.findings, ok } satisfies DoctorResult);
  else writeLines(io, formatDoctor({ findings: result.findings, ok }, module === null));
  return ok ? 0 : 1;
}

/** The human report: findings worst first, one line each with its hint below, then a summary line. */
export function formatDoctor(result: DoctorResult, liveOnly: boolean): string[] {
  const lines: string[] = [];
  if (liveOnly) lines.push('no jobs module (--jobs or WARDEN_JOBS): only the live state was checked', '');
  for (const severity of DOCTOR_SEVERITIES) {
    const group = result.findings.filter((f) => f.severity === severity);
    if (group.length === 0) continue;
    lines.push(`${severity.toUpperCase()} (${group.length})`);
    for (const f of group) lines.push(`  ${f.id}  ${f.subject}: ${f.message}`, `      fix: ${f.hint}`);
    lines.push('');
  }
  const count = (s: string) => result.findings.filter((f) => f.severity === s).length;
  lines.push(`${result.ok ? 'ok' : 'failed'}: ${count('error')} error(s), ${count('warning')} warning(s), ${count('info')} info`);
  return lines;
}

/** Adds `doctor` to the program. */
export function registerDoctorCommand(program: Command, run: CommandRunner): void {
  program
    .command('doctor')
    .description('check jobs, schedules, alerting and the live state against the reliability checklist; exit 1 on errors')
    .option('--jobs <module>', 'the jobs module whose definitions to check (default: WARDEN_JOBS)')
    .action((_options: object, command: Command) => run(doctorCommand, command.optsWithGlobals<DoctorCommandOptions>()));
}
