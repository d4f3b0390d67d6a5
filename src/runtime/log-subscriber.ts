import type { Logger } from 'pino';
import type { TypedEmitter } from '../events/typed-emitter.js';
import type { JobDefinition } from '../job/define-job.js';
import { redact } from '../observe/redact.js';

/**
 * Derives log lines from the event stream, so logging is never a separate code path. Failures and rescues
 * are warnings, dead letters and internal errors are errors, routine progress is debug.
 *
 * No line carries a payload. Job errors arrive already redacted (the attempt redacts an error before storing or
 * announcing it); internal errors, which belong to no one job, have every field any registered definition marks
 * `sensitive` redacted by key.
 */
export function subscribeLogger(events: TypedEmitter, logger: Logger, definitions: ReadonlyMap<string, JobDefinition<any, any>> = new Map()): void {
  let sensitive: { size: number; fields: readonly string[] } | null = null;
  const allSensitive = (): readonly string[] => {
    if (sensitive?.size !== definitions.size) sensitive = { size: definitions.size, fields: [...new Set([...definitions.values()].flatMap((d) => d.sensitive ?? []))] };
    return sensitive.fields;
  };
  // Every job completes: skip building the line when debug is off (the usual level).
  events.on('job:completed', (e) => {
    if (logger.isLevelEnabled('debug')) logger.debug({ jobId: e.job.id, job: e.job.name, queue: e.job.queue, attempt: e.attempt, durationMs: e.durationMs }, 'job completed');
  });
  events.on('job:failed', (e) => logger.warn({ jobId: e.job.id, job: e.job.name, queue: e.job.queue, attempt: e.attempt, outcome: e.outcome, nextState: e.nextState, error: e.error }, 'job attempt failed'));
  events.on('job:dead', (e) => logger.error({ jobId: e.job.id, job: e.job.name, queue: e.job.queue, attempt: e.attempt, reason: e.reason }, 'job dead-lettered'));
  events.on('job:rescued', (e) => logger.warn({ jobId: e.job.id, job: e.job.name, queue: e.job.queue, attempt: e.attempt, nextState: e.nextState }, 'job rescued after its lease expired'));
  events.on('job:stale-write-rejected', (e) => logger.warn({ jobId: e.jobId, leaseToken: e.leaseToken, write: e.write }, 'stale write rejected: this attempt no longer holds the lease'));
  events.on('job:operator-action', (e) => logger.info({ jobId: e.jobId, action: e.action, actor: e.actor }, 'operator action'));
  events.on('worker:started', (e) => logger.info(e, 'worker started'));
  events.on('worker:stopped', (e) => logger.info(e, 'worker stopped'));
  events.on('retention:pruned', (e) => {
    const total = e.jobs.completed + e.jobs.dead + e.jobs.cancelled + e.keys + e.ticks;
    if (total > 0 || !e.complete) logger.info(e, 'retention pass');
  });
  events.on('error', (e) => {
    const fields = allSensitive();
    logger.error({ err: fields.length > 0 ? redact(e.error, fields) : e.error, context: e.context }, 'warden internal error');
  });
}
