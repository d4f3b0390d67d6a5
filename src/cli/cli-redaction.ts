/**
 * Redaction of what the CLI prints about jobs. The `sensitive` fields of a job live in its definition, in code:
 * the CLI knows them when given the jobs module (`--jobs`, or `WARDEN_JOBS`), and takes extra field names from
 * `--redact a,b.c` and `WARDEN_SENSITIVE` for jobs whose module it does not have.
 * @module
 */
import type { JobStepRow } from '../driver/driver.js';
import type { JobDefinition } from '../job/define-job.js';
import type { AttemptRow, JobRow } from '../job/job-record.js';
import { createRedactor, type Redactor } from '../observe/redact.js';
import { loadJobsModule, type JobsModule } from './load-jobs.js';
import { parseListOption } from './parse-options.js';

/** The options of commands that print jobs. */
export interface RedactionCommandOptions {
  /** The jobs module whose definitions say which fields are sensitive. @default process.env.WARDEN_JOBS */
  jobs?: string;
  /** Comma-separated field names and dotted paths to redact in every job, on top of the definitions'. @default process.env.WARDEN_SENSITIVE */
  redact?: string;
}

/** Redacts job rows, attempts and steps for printing. */
export interface JobRedaction {
  /** The module loaded for `--jobs`, if any (its definitions are passed on to the Warden instance). */
  readonly module: JobsModule | null;
  /** The redactor for a job (its payload supplies the secret values), or null when nothing is sensitive for it. */
  forJob(job: JobRow): Redactor | null;
  /** The job with payload, checkpoint and last error redacted. */
  job(job: JobRow): JobRow;
  /** Attempts of `job` with their errors redacted. */
  attempts(job: JobRow, attempts: AttemptRow[]): AttemptRow[];
  /** Steps of `job` with their results redacted. */
  steps(job: JobRow, steps: JobStepRow[]): JobStepRow[];
}

/**
 * Loads the jobs module when one is named and builds the redaction for the given options.
 * @throws CliError when the named module is missing or fails to load.
 */
export async function loadJobRedaction(options: RedactionCommandOptions): Promise<JobRedaction> {
  const spec = options.jobs ?? (process.env.WARDEN_JOBS || undefined);
  const module = spec ? await loadJobsModule(spec, { flag: options.jobs ? '--jobs' : 'WARDEN_JOBS' }) : null;
  const definitions = new Map<string, JobDefinition<any, any>>();
  for (const def of [...(module?.jobs ?? []), ...(module?.schedules ?? []).map((s) => s.job)]) {
    if (def && typeof def.name === 'string') definitions.set(def.name, def);
  }
  return createJobRedaction(definitions, extraSensitive(options.redact), module);
}

/** The extra fields to redact in every job: `--redact`, else `WARDEN_SENSITIVE`. */
export function extraSensitive(flag?: string): string[] {
  return parseListOption(flag ?? (process.env.WARDEN_SENSITIVE || undefined)) ?? [];
}

/** A {@link JobRedaction} from definitions and extra fields applied to every job. */
export function createJobRedaction(definitions: ReadonlyMap<string, JobDefinition<any, any>>, extra: readonly string[], module: JobsModule | null = null): JobRedaction {
  const cache = new WeakMap<JobRow, Redactor | null>();
  const forJob = (job: JobRow): Redactor | null => {
    if (cache.has(job)) return cache.get(job)!;
    const fields = [...new Set([...(definitions.get(job.name)?.sensitive ?? []), ...extra])];
    const redactor = createRedactor(fields, job.payload);
    cache.set(job, redactor);
    return redactor;
  };
  return {
    module,
    forJob,
    job(job) {
      const r = forJob(job);
      if (!r) return job;
      // A dedup key is often made from the payload (`signup:${email}`): its secret values are cut out too.
      return { ...job, payload: r.value(job.payload), key: job.key === null ? null : r.text(job.key), checkpoint: r.value(job.checkpoint), lastError: job.lastError && r.errorInfo(job.lastError) };
    },
    attempts(job, attempts) {
      const r = forJob(job);
      return r ? attempts.map((a) => ({ ...a, error: a.error && r.errorInfo(a.error) })) : attempts;
    },
    steps(job, steps) {
      const r = forJob(job);
      return r ? steps.map((s) => ({ ...s, result: s.result === undefined ? undefined : r.value(s.result) })) : steps;
    },
  };
}
