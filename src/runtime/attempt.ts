import type { Logger } from 'pino';
import type { Clock } from '../clock/clock.js';
import type { Driver } from '../driver/driver.js';
import { JobTimeoutError, NonRetryableError, PayloadValidationError, UnknownJobError } from '../errors.js';
import type { TypedEmitter } from '../events/typed-emitter.js';
import type { JobDefinition } from '../job/define-job.js';
import type { AttemptOutcome, ErrorInfo, JobRow } from '../job/job-record.js';
import { validateWithSchema } from '../job/payload.js';
import { DEFAULT_RETRY, retryDelayMs } from '../job/retry-policy.js';
import type { Completer } from './completer.js';
import { toErrorInfo } from './error-info.js';

/** What every attempt needs from its worker. */
export interface AttemptDeps {
  driver: Driver;
  clock: Clock;
  events: TypedEmitter;
  logger: Logger;
  registry: ReadonlyMap<string, JobDefinition<any, any>>;
  completer: Completer;
  random: () => number;
  workerId: string;
  /** Counts writes rejected because the lease was no longer held. */
  onStaleWrite: () => void;
}

/**
 * One attempt of one claimed job: validates the payload, runs the handler with a timeout and an abort
 * signal, and submits exactly one ending. The ending can come from the handler, the timeout, the loss of the
 * lease, or shutdown — whichever is first wins (`done`), and the rest are ignored.
 */
export class Attempt {
  readonly row: JobRow;
  readonly controller = new AbortController();
  /** True once an ending was submitted or the lease is known lost: nothing more is written for this attempt. */
  done = false;
  readonly #deps: AttemptDeps;
  readonly #startedAt: number;

  constructor(row: JobRow, deps: AttemptDeps) {
    this.row = row;
    this.#deps = deps;
    this.#startedAt = deps.clock.now();
  }

  /** Runs the attempt to its end. Never rejects. */
  async run(): Promise<void> {
    const { registry, events, workerId } = this.#deps;
    const row = this.row;
    events.emit('job:started', { job: ref(row), attempt: row.attempt, leaseToken: row.leaseToken, workerId });
    const def = registry.get(row.name);
    if (!def) {
      // Another version of the application may know this job; retry rather than dead-letter.
      await this.fail('failed', new UnknownJobError(row.name, [...registry.keys()]), false);
      return;
    }
    let payload: unknown = row.payload;
    if (def.schema) {
      const outcome = await validateWithSchema(def.schema, row.payload);
      if (!outcome.ok) {
        // A stored payload that no longer validates will never validate: dead-letter it with the issues.
        await this.end('invalid', 'dead', 0, toErrorInfo(new PayloadValidationError(row.name, outcome.issues)));
        return;
      }
      payload = outcome.value;
    }
    const cancelTimeout = def.timeoutMs === null ? () => {} : this.#deps.clock.setTimer(def.timeoutMs, () => {
      const error = new JobTimeoutError(row.name, def.timeoutMs!);
      this.controller.abort(error);
      void this.fail('timeout', error, false);
    });
    const log = this.#deps.logger.child({ jobId: row.id, job: row.name, queue: row.queue, attempt: row.attempt });
    try {
      await def.handler(payload, { signal: this.controller.signal, attempt: row.attempt, maxAttempts: row.maxAttempts, job: row, log, fence: row.leaseToken });
      cancelTimeout();
      await this.end('completed', 'completed', 0, null);
    } catch (error) {
      cancelTimeout();
      await this.fail('failed', error, error instanceof NonRetryableError);
    }
  }

  /** Ends the attempt as failed: retried by the job's policy, or dead when out of attempts or not retryable. */
  async fail(outcome: AttemptOutcome, error: unknown, nonRetryable: boolean): Promise<void> {
    const row = this.row;
    const policy = this.#deps.registry.get(row.name)?.retry ?? DEFAULT_RETRY;
    if (nonRetryable || row.attempt >= row.maxAttempts) {
      await this.end(outcome, 'dead', 0, toErrorInfo(error));
    } else {
      await this.end(outcome, 'retrying', retryDelayMs(policy, row.attempt, this.#deps.random), toErrorInfo(error));
    }
  }

  /** Submits this attempt's one ending. Later calls are ignored. */
  async end(outcome: AttemptOutcome, state: 'completed' | 'dead' | 'retrying' | 'queued', retryDelayMs: number, error: ErrorInfo | null): Promise<void> {
    if (this.done) return;
    this.done = true;
    const { completer, events } = this.#deps;
    const row = this.row;
    let result: 'applied' | 'stale';
    try {
      result = await completer.finish({ id: row.id, leaseToken: row.leaseToken, outcome, state, retryDelayMs, error });
    } catch (writeError) {
      // The database stayed unreachable until shutdown: the lease will expire and the job be rescued.
      events.emit('error', { error: writeError, context: `finishing job ${row.id}` });
      return;
    }
    if (result === 'stale') {
      this.#deps.onStaleWrite();
      events.emit('job:stale-write-rejected', { jobId: row.id, leaseToken: row.leaseToken, write: 'finish' });
      return;
    }
    const durationMs = this.#deps.clock.now() - this.#startedAt;
    const job = ref(row);
    if (outcome === 'completed') {
      events.emit('job:completed', { job, attempt: row.attempt, durationMs });
      return;
    }
    events.emit('job:failed', { job, attempt: row.attempt, outcome, error: error!, nextState: state, durationMs });
    if (state === 'dead') events.emit('job:dead', { job, attempt: row.attempt, reason: outcome, error });
    else events.emit('job:retry-scheduled', { job, attempt: row.attempt, delayMs: retryDelayMs });
  }
}

/** The identity of a job in events. */
export function ref(row: { id: string; name: string; queue: string }): { id: string; name: string; queue: string } {
  return { id: row.id, name: row.name, queue: row.queue };
}
