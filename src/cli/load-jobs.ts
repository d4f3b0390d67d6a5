/**
 * Imports the application's jobs module (`--jobs ./dist/jobs.js`) and takes its job definitions and schedules.
 * @module
 */
import { stat } from 'node:fs/promises';
import { extname, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { AlertsOptions } from '../alerts/alert-options.js';
import type { JobDefinition } from '../job/define-job.js';
import type { ScheduleDefinition } from '../schedule/define-schedule.js';
import { CliError } from './cli-error.js';

/**
 * True for a value shaped like a {@link JobDefinition} made with `defineJob()`: a string `name`, a function
 * `handler` and a `retry` object. Duck-typed, so definitions made by another copy of Warden count too.
 */
export function looksLikeJobDefinition(value: unknown): value is JobDefinition<any, any> {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as { name?: unknown; handler?: unknown; retry?: unknown };
  return typeof v.name === 'string' && typeof v.handler === 'function' && typeof v.retry === 'object' && v.retry !== null;
}

/**
 * Takes the job definitions out of a module namespace, in this order of preference:
 * `export default [...]`, `export const jobs = [...]`, else every export that looks like a job definition.
 * Arrays are returned as they are (Warden checks each item); the same definition exported twice counts once.
 */
export function jobsFromModule(namespace: Record<string, unknown>): JobDefinition<any, any>[] {
  if (Array.isArray(namespace.default)) return namespace.default as JobDefinition<any, any>[];
  if (Array.isArray(namespace.jobs)) return namespace.jobs as JobDefinition<any, any>[];
  const found = new Set<JobDefinition<any, any>>();
  for (const value of Object.values(namespace)) if (looksLikeJobDefinition(value)) found.add(value);
  return [...found];
}

/**
 * True for a value shaped like a {@link ScheduleDefinition} made with `defineSchedule()`: a string `name`, a
 * function `nextTick` and a string `definitionHash`. Duck-typed like {@link looksLikeJobDefinition}.
 */
export function looksLikeScheduleDefinition(value: unknown): value is ScheduleDefinition {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as { name?: unknown; nextTick?: unknown; definitionHash?: unknown };
  return typeof v.name === 'string' && typeof v.nextTick === 'function' && typeof v.definitionHash === 'string';
}

/**
 * Takes the schedules out of a module namespace: `export const schedules = [...]` (returned as it is; Warden
 * checks each item), else every export that looks like a schedule definition (the same one exported twice counts
 * once).
 */
export function schedulesFromModule(namespace: Record<string, unknown>): ScheduleDefinition[] {
  if (Array.isArray(namespace.schedules)) return namespace.schedules as ScheduleDefinition[];
  const found = new Set<ScheduleDefinition>();
  for (const value of Object.values(namespace)) if (looksLikeScheduleDefinition(value)) found.add(value);
  return [...found];
}

/** What a jobs module defines. */
export interface JobsModule {
  /** The module's absolute path. */
  path: string;
  /** Its job definitions (see {@link jobsFromModule}); may be empty when it defines schedules. */
  jobs: JobDefinition<any, any>[];
  /**
   * Its schedules (see {@link schedulesFromModule}). Pass them to `createWarden({ schedules })`, which also
   * registers each schedule's job.
   */
  schedules: ScheduleDefinition[];
  /** Its `export const alerts` (the `alerts` option of `createWarden`, checked by Warden), if any. */
  alerts?: AlertsOptions;
}

/**
 * Imports the module at `spec` (resolved relative to `cwd`) and returns its job definitions and schedules.
 * @param flag how the module was named, for messages, e.g. `"--jobs"`.
 * @throws CliError when the file does not exist, fails to load, or exports neither jobs nor schedules.
 */
export async function loadJobsModule(spec: string, options: { cwd?: string; flag?: string } = {}): Promise<JobsModule> {
  const flag = options.flag ?? '--jobs';
  const path = resolve(options.cwd ?? process.cwd(), spec);
  const info = await stat(path).catch(() => null);
  if (!info?.isFile()) {
    throw new CliError(`Expected ${flag} to name a jobs module file, got ${JSON.stringify(spec)} (${info ? 'not a file' : 'no such file'}: ${path})`);
  }
  let namespace: Record<string, unknown>;
  try {
    namespace = (await import(pathToFileURL(path).href)) as Record<string, unknown>;
  } catch (error) {
    const code = (error as { code?: unknown } | null)?.code;
    const hint = code === 'ERR_UNKNOWN_FILE_EXTENSION' && /^\.[cm]?ts$/.test(extname(path))
      ? ' (compile it to JavaScript, or run the CLI with `node --import tsx`)'
      : '';
    const reason = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    throw new CliError(`Expected the jobs module ${path} to load, got ${reason}${hint}`, { cause: error });
  }
  const jobs = jobsFromModule(namespace);
  const schedules = schedulesFromModule(namespace);
  if (jobs.length === 0 && schedules.length === 0) {
    throw new CliError(
      `Expected the jobs module ${path} to export job definitions (export default [...], export const jobs = [...], or named defineJob() exports) or schedules (export const schedules = [...], or named defineSchedule() exports), got none`,
    );
  }
  const alerts = namespace.alerts;
  if (alerts !== undefined && (typeof alerts !== 'object' || alerts === null || Array.isArray(alerts))) {
    throw new CliError(`Expected the jobs module's \`alerts\` export to be the alerts options object (docs/alerts.md), got ${Array.isArray(alerts) ? 'an array' : typeof alerts}`);
  }
  return { path, jobs, schedules, ...(alerts === undefined ? {} : { alerts: alerts as AlertsOptions }) };
}

/**
 * Imports the module at `spec` and returns its job definitions (see {@link loadJobsModule}, which also returns
 * its schedules).
 * @throws CliError when the file does not exist, fails to load, or exports neither jobs nor schedules.
 */
export async function loadJobs(spec: string, options: { cwd?: string; flag?: string } = {}): Promise<JobDefinition<any, any>[]> {
  return (await loadJobsModule(spec, options)).jobs;
}
