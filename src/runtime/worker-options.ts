import { InvalidOptionError } from '../errors.js';
import { booleanOption } from '../validation/boolean-option.js';
import { type Duration, parseDuration } from '../validation/duration.js';
import { integerInRange } from '../validation/integer-in-range.js';
import { validateName } from '../validation/names.js';

/** Options for `warden.start()` and `warden worker`. */
export interface WorkerOptions {
  /** Queues to claim from. @default every queue of the registered jobs */
  queues?: string[];
  /** Jobs run at once by this process. @default 10 */
  concurrency?: number;
  /**
   * Jobs claimed ahead into a bounded in-process buffer, on top of `concurrency`, so a slot that frees starts
   * its next job at once and one claim statement serves many jobs. Buffered jobs are leased (heartbeats renew
   * them) and are handed back without using an attempt on graceful shutdown; after a crash they are rescued
   * like running ones. Raise it for many short jobs (throughput); keep it low for long jobs shared by many
   * workers (fairness). 0 claims only for free slots. @default 0
   */
  prefetch?: number;
  /** Most jobs claimed by one statement. @default concurrency + prefetch */
  batchSize?: number;
  /** How often to look for due jobs when no wake-up arrives (delayed jobs, retries whose backoff ended). @default "1s" */
  pollInterval?: Duration;
  /** How long a claim is valid without a heartbeat; a job whose worker died is rescued after this. @default "30s" */
  lease?: Duration;
  /** How often leases are renewed. Must be shorter than `lease`. @default "10s" */
  heartbeat?: Duration;
  /** On stop, how long in-flight jobs get to finish before they are aborted and returned for retry. @default "25s" */
  grace?: Duration;
  /** How often to look for expired leases to rescue. @default "5s" */
  rescueInterval?: Duration;
  /** A job lost (lease expired) this many times is dead-lettered as poison. @default 3 */
  maxLost?: number;
  /**
   * Runs a job alone when its next loss would dead-letter it: lost `maxLost - 1` times, or lost and on its last
   * attempt. This worker lets what it runs finish and their endings be written, runs that job with nothing else
   * leased to it, and claims again only once it ends. A crash cannot say which of its jobs caused it, so each is
   * charged a loss; a job that crashes its process every time is thus alone by its last crash, and the jobs lost
   * beside it before are not taken to the dead letters with it. A job lost with losses and attempts to spare runs
   * as usual, so a single crash costs no throughput. `false` runs every job as usual.
   * @default true
   */
  isolateLost?: boolean;
}

/**
 * Every key of {@link WorkerOptions}, checked against the interface so an option added there is known here: the
 * callers refuse any other key, since a misspelt one (`concurency`) would silently be its default.
 */
export const WORKER_OPTION_KEYS: readonly string[] = Object.keys({
  queues: true, concurrency: true, prefetch: true, batchSize: true, pollInterval: true, lease: true, heartbeat: true, grace: true, rescueInterval: true, maxLost: true, isolateLost: true,
} satisfies Record<keyof WorkerOptions, true>);

/** Worker options with defaults applied and validated. */
export interface ResolvedWorkerOptions {
  queues: string[];
  concurrency: number;
  prefetch: number;
  batchSize: number;
  pollMs: number;
  leaseMs: number;
  heartbeatMs: number;
  graceMs: number;
  rescueMs: number;
  maxLost: number;
  isolateLost: boolean;
}

/**
 * Applies defaults and validates, naming the field at fault.
 * @throws InvalidOptionError, InvalidDurationError, InvalidNameError
 */
export function resolveWorkerOptions(options: WorkerOptions, defaultQueues: string[]): ResolvedWorkerOptions {
  const queues = (options.queues ?? defaultQueues).map((q) => validateName('queues[]', q));
  if (queues.length === 0) throw new InvalidOptionError('queues', options.queues, 'at least one queue (or registered jobs to take them from)');
  const concurrency = integerInRange('concurrency', options.concurrency ?? 10, 10_000);
  const prefetch = integerInRange('prefetch', options.prefetch ?? 0, 10_000, 0);
  const batchSize = integerInRange('batchSize', options.batchSize ?? concurrency + prefetch, 10_000);
  const leaseMs = parseDuration('lease', options.lease ?? '30s', { allowZero: false });
  const heartbeatMs = parseDuration('heartbeat', options.heartbeat ?? '10s', { allowZero: false });
  if (heartbeatMs >= leaseMs) throw new InvalidOptionError('heartbeat', options.heartbeat ?? '10s', `a duration shorter than lease (${leaseMs}ms)`);
  return {
    queues: [...new Set(queues)],
    concurrency,
    prefetch,
    batchSize,
    pollMs: parseDuration('pollInterval', options.pollInterval ?? '1s', { allowZero: false }),
    leaseMs,
    heartbeatMs,
    graceMs: parseDuration('grace', options.grace ?? '25s'),
    rescueMs: parseDuration('rescueInterval', options.rescueInterval ?? '5s', { allowZero: false }),
    maxLost: integerInRange('maxLost', options.maxLost ?? 3, 1_000),
    isolateLost: booleanOption('isolateLost', options.isolateLost, true),
  };
}

