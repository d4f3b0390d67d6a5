/**
 * Imports the application's jobs module (`--jobs ./dist/jobs.js`) and takes its job definitions.
 * @module
 */
import { stat } from 'node:fs/promises';
import { extname, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { JobDefinition } from '../job/define-job.js';
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
 * Imports the module at `spec` (resolved relative to `cwd`) and returns its job definitions.
 * @param flag how the module was named, for messages, e.g. `"--jobs"`.
 * @throws CliError when the file does not exist, fails to load, or exports no job definitions.
 */
export async function loadJobs(spec: string, options: { cwd?: string; flag?: string } = {}): Promise<JobDefinition<any, any>[]> {
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
  if (jobs.length === 0) {
    throw new CliError(
      `Expected the jobs module ${path} to export job definitions (export default [...], export const jobs = [...], or named defineJob() exports), got none`,
    );
  }
  return jobs;
}
