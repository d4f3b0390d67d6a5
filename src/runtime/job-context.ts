import type { Logger } from 'pino';
import { InvalidOptionError } from '../errors.js';
import type { JobContext } from '../job/define-job.js';
import type { JobRow } from '../job/job-record.js';
import { redactingLogger } from '../observe/redacting-logger.js';
import type { Attempt } from './attempt.js';
import { runIteration } from './iteration.js';
import { StepRunner } from './step-runner.js';

/**
 * Builds the `ctx` a handler gets for one attempt: identity, signal, logger, fence, and the idempotency tools
 * (`step`, `transaction`, `iterate`), all bound to the attempt's lease.
 */
export function createJobContext(attempt: Attempt): JobContext {
  return new AttemptContext(attempt);
}

/**
 * One attempt's `ctx`. A class, because an object literal with getters and five closures per job was a
 * measurable share of a no-op job's CPU. Everything lazy is made on first read: the signal (Node makes an
 * AbortController's signal on first read; an abort before that still reaches it, made aborted), the logger,
 * and the idempotency tools. Those are getters returning functions bound to this attempt, so
 * `const { step, signal } = ctx` keeps working as with plain properties.
 */
class AttemptContext implements JobContext {
  readonly attempt: number;
  readonly maxAttempts: number;
  readonly job: Readonly<JobRow>;
  readonly fence: number;
  readonly #owner: Attempt;
  #log: Logger | null = null;
  #steps: StepRunner | null = null;
  #iterating = false;
  #step: JobContext['step'] | null = null;
  #transaction: JobContext['transaction'] | null = null;
  #iterate: JobContext['iterate'] | null = null;

  constructor(attempt: Attempt) {
    const row = attempt.row;
    this.#owner = attempt;
    this.attempt = row.attempt;
    this.maxAttempts = row.maxAttempts;
    this.job = row;
    this.fence = row.leaseToken;
  }

  get signal(): AbortSignal {
    return this.#owner.controller.signal;
  }

  // Made on first use: a pino child per attempt is measurable at thousands of jobs a second. A job with
  // sensitive fields gets it wrapped, so whatever the handler logs is redacted.
  get log(): Logger {
    if (this.#log) return this.#log;
    const attempt = this.#owner;
    const row = attempt.row;
    const child = attempt.deps.logger.child({ jobId: row.id, job: row.name, queue: row.queue, attempt: row.attempt });
    const redactor = attempt.redactor;
    this.#log = redactor ? redactingLogger(child, redactor) : child;
    return this.#log;
  }

  get step(): JobContext['step'] {
    return (this.#step ??= (name, fn, options) => {
      this.#steps ??= new StepRunner(this.#owner);
      return this.#steps.run(name, fn, options);
    });
  }

  get transaction(): JobContext['transaction'] {
    return (this.#transaction ??= (fn) => {
      if (typeof fn !== 'function') return Promise.reject(new InvalidOptionError('ctx.transaction(fn)', fn, 'a function (tx) => …'));
      return this.#owner.completeInTransaction(fn);
    });
  }

  get iterate(): JobContext['iterate'] {
    return (this.#iterate ??= (options) => {
      // One iteration per job: its checkpoint is the job's, so a second one would resume from the first's cursor.
      if (this.#iterating) return Promise.reject(new InvalidOptionError('ctx.iterate', 'a second call in one attempt', 'called once per attempt (one iteration per job)'));
      this.#iterating = true;
      return runIteration(this.#owner, options);
    });
  }
}
