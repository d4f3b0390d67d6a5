import type { Logger } from 'pino';
import type { TypedEmitter } from '../events/typed-emitter.js';

/**
 * Derives log lines from the event stream, so logging is never a separate code path. Failures and rescues
 * are warnings, dead letters and internal errors are errors, routine progress is debug.
 */
export function subscribeLogger(events: TypedEmitter, logger: Logger): void {
  events.on('job:completed', (e) => logger.debug({ jobId: e.job.id, job: e.job.name, queue: e.job.queue, attempt: e.attempt, durationMs: e.durationMs }, 'job completed'));
  events.on('job:failed', (e) => logger.warn({ jobId: e.job.id, job: e.job.name, queue: e.job.queue, attempt: e.attempt, outcome: e.outcome, nextState: e.nextState, error: e.error }, 'job attempt failed'));
  events.on('job:dead', (e) => logger.error({ jobId: e.job.id, job: e.job.name, queue: e.job.queue, attempt: e.attempt, reason: e.reason }, 'job dead-lettered'));
  events.on('job:rescued', (e) => logger.warn({ jobId: e.job.id, job: e.job.name, queue: e.job.queue, attempt: e.attempt, nextState: e.nextState }, 'job rescued after its lease expired'));
  events.on('job:stale-write-rejected', (e) => logger.warn({ jobId: e.jobId, leaseToken: e.leaseToken, write: e.write }, 'stale write rejected: this attempt no longer holds the lease'));
  events.on('job:operator-action', (e) => logger.info({ jobId: e.jobId, action: e.action, actor: e.actor }, 'operator action'));
  events.on('worker:started', (e) => logger.info(e, 'worker started'));
  events.on('worker:stopped', (e) => logger.info(e, 'worker stopped'));
  events.on('error', (e) => logger.error({ err: e.error, context: e.context }, 'warden internal error'));
}
