import type { Logger } from 'pino';
import { InvalidOptionError } from '../errors.js';
import type { JobContext } from '../job/define-job.js';
import { redactingLogger } from '../observe/redacting-logger.js';
import type { Attempt } from './attempt.js';
import { runIteration } from './iteration.js';
import { StepRunner } from './step-runner.js';

/**
 * Builds the `ctx` a handler gets for one attempt: identity, signal, logger, fence, and the idempotency tools
 * (`step`, `transaction`, `iterate`), all bound to the attempt's lease.
 */
export function createJobContext(attempt: Attempt): JobContext {
  const row = attempt.row;
  let log: Logger | null = null;
  let steps: StepRunner | null = null;
  let iterating = false;
  return {
    signal: attempt.controller.signal,
    attempt: row.attempt,
    maxAttempts: row.maxAttempts,
    job: row,
    // Made on first use: a pino child per attempt is measurable at thousands of jobs a second. A job with
    // sensitive fields gets it wrapped, so whatever the handler logs is redacted.
    get log() {
      if (log) return log;
      const child = attempt.deps.logger.child({ jobId: row.id, job: row.name, queue: row.queue, attempt: row.attempt });
      const redactor = attempt.redactor;
      log = redactor ? redactingLogger(child, redactor) : child;
      return log;
    },
    fence: row.leaseToken,
    step: (name, fn, options) => {
      steps ??= new StepRunner(attempt);
      return steps.run(name, fn, options);
    },
    transaction: (fn) => {
      if (typeof fn !== 'function') return Promise.reject(new InvalidOptionError('ctx.transaction(fn)', fn, 'a function (tx) => …'));
      return attempt.completeInTransaction(fn);
    },
    iterate: (options) => {
      // One iteration per job: its checkpoint is the job's, so a second one would resume from the first's cursor.
      if (iterating) return Promise.reject(new InvalidOptionError('ctx.iterate', 'a second call in one attempt', 'called once per attempt (one iteration per job)'));
      iterating = true;
      return runIteration(attempt, options);
    },
  };
}
