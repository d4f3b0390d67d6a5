/**
 * Which events become audit entries, and how. One entry per state change, so an auditor reads each transition
 * once: `job:failed` (with its `nextState`) and `job:rescued` already record a move to the dead letters, so the
 * `job:dead` that follows them adds nothing; `job:retry-scheduled` likewise. `job:stale-write-rejected` changes no
 * state (the write was refused) and is counted by metrics, not audited.
 *
 * Every entry has a category that the job type's level filters (see {@link isRecorded}): operator actions are
 * always recorded, failures unless the level is `none`, every other transition only at `all`.
 * @module
 */
import type { AuditEntryInput } from '../driver/audit-params.js';
import type { JobRef } from '../events/event-map.js';
import type { TypedEmitter } from '../events/typed-emitter.js';
import type { AuditLevel } from '../job/define-job.js';
import type { ErrorInfo } from '../job/job-record.js';

/** How an entry is filtered by a job type's audit level. */
export type AuditCategory = 'transition' | 'failure' | 'operator';

/** Whether an entry of `category` is recorded for a job type audited at `level`. */
export function isRecorded(category: AuditCategory, level: AuditLevel): boolean {
  if (category === 'operator') return true;
  if (category === 'failure') return level !== 'none';
  return level === 'all';
}

/** One entry to record: its input, the job it concerns (for redaction), and the error it carries, if any. */
export interface AuditEvent {
  input: AuditEntryInput;
  /** The job whose `sensitive` fields apply to `data` and `error`; null for queue and schedule entries. */
  job: { id: string; name: string } | null;
  /** An error to add to `data.error` after redaction. */
  error?: ErrorInfo | null;
}

/** What {@link subscribeAuditEvents} needs from the audit trail. */
export interface AuditEventSink {
  /** The audit level of a job type (the override, the definition's, or the level for unknown jobs). */
  levelOf(jobName: string | null): AuditLevel;
  /** The job name and queue a schedule enqueues, when this process defines the schedule. */
  scheduleJob(schedule: string): { name: string; queue: string } | null;
  /** The actor of this process's own changes. */
  systemActor: string;
  /** Queues an entry; called synchronously inside the event, so entries keep the order of events. */
  record(event: AuditEvent): void;
}

const OPERATOR_JOB_ACTIONS = { retry: 'job.retried', cancel: 'job.cancelled', discard: 'job.discarded' } as const;
const OPERATOR_SCHEDULE_ACTIONS = { pause: ['schedule.paused', 'paused'], resume: ['schedule.resumed', 'active'], trigger: ['schedule.triggered', null] } as const;

/** A job entry, built as one object literal (no spread of a second object): one is made per state change. */
function jobEntry(job: JobRef, actor: string, action: string, before: string | null, after: string | null, reason: string | null, data: Record<string, unknown> | null): AuditEntryInput {
  return { actor, action, subjectKind: 'job', subjectId: job.id, jobName: job.name, queue: job.queue, before, after, reason, data };
}

/**
 * Subscribes the audit trail to the event map; returns a function that unsubscribes every listener. Listeners
 * only build entries and queue them; writing is the trail's batcher's job.
 */
export function subscribeAuditEvents(events: TypedEmitter, sink: AuditEventSink): () => void {
  const offs: (() => void)[] = [];
  const system = sink.systemActor;
  /** Whether the job type's level wants entries of `category`: asked before an entry is built. */
  const wants = (category: AuditCategory, job: JobRef): boolean => isRecorded(category, sink.levelOf(job.name));
  /** Records a job entry (its level already checked by {@link wants}). */
  const onJob = (job: JobRef, input: AuditEntryInput, error: ErrorInfo | null = null): void => {
    sink.record({ input, job: { id: job.id, name: job.name }, error });
  };
  /** Records a schedule entry if its job type's level wants its category. */
  const onSchedule = (category: AuditCategory, schedule: string, fields: Pick<AuditEntryInput, 'actor' | 'action' | 'after'> & Partial<AuditEntryInput>): void => {
    const job = sink.scheduleJob(schedule);
    if (!isRecorded(category, sink.levelOf(job?.name ?? null))) return;
    const input: AuditEntryInput = { subjectKind: 'schedule', subjectId: schedule, jobName: job?.name ?? null, queue: job?.queue ?? null, before: null, reason: null, data: null, ...fields };
    sink.record({ input, job: null });
  };

  offs.push(
    events.on('job:enqueued', (e) => {
      if ((e.duplicate && !e.replaced) || !wants('transition', e.job)) return;
      const data: Record<string, unknown> = { runAt: e.runAt };
      if (e.inTransaction) data.inTransaction = true;
      if (e.job.scheduleName) data.schedule = e.job.scheduleName;
      if (e.handedTo) data.handedTo = e.handedTo;
      const action = e.replaced ? 'job.replaced' : 'job.created';
      // A replaced duplicate keeps its state (queued or retrying); only its payload and due time changed. A job
      // handed to an idle worker was inserted running (its attempt's `job.started` follows from that worker).
      onJob(e.job, jobEntry(e.job, system, action, null, e.replaced ? null : e.handedTo ? 'running' : 'queued', null, data));
    }),
    events.on('job:started', (e) => {
      if (wants('transition', e.job)) onJob(e.job, jobEntry(e.job, system, 'job.started', null, 'running', null, { attempt: e.attempt, leaseToken: e.leaseToken, workerId: e.workerId }));
    }),
    events.on('job:completed', (e) => {
      if (wants('transition', e.job)) onJob(e.job, jobEntry(e.job, system, 'job.completed', 'running', 'completed', null, { attempt: e.attempt, durationMs: Math.round(e.durationMs) }));
    }),
    events.on('job:failed', (e) => {
      if (!wants('failure', e.job)) return;
      const action = e.nextState === 'dead' ? 'job.dead' : 'job.failed';
      const data = { attempt: e.attempt, durationMs: Math.round(e.durationMs), outcome: e.outcome };
      onJob(e.job, jobEntry(e.job, system, action, 'running', e.nextState, null, data), e.error);
    }),
    events.on('job:rescued', (e) => {
      const reason = 'lease expired: the worker died, stalled or lost the database';
      if (wants('failure', e.job)) onJob(e.job, jobEntry(e.job, system, 'job.rescued', 'running', e.nextState, reason, { attempt: e.attempt }));
    }),
    events.on('job:yielded', (e) => {
      if (!wants('transition', e.job)) return;
      const data = { attempt: e.attempt, done: e.done, durationMs: Math.round(e.durationMs), reason: e.reason };
      onJob(e.job, jobEntry(e.job, system, 'job.yielded', 'running', 'queued', null, data));
    }),
    events.on('job:operator-action', (e) => {
      const job: JobRef = e.job ?? { id: e.jobId, name: '', queue: '' };
      const input = jobEntry(job, e.actor, OPERATOR_JOB_ACTIONS[e.action], e.before, e.after, e.reason, { operator: true });
      if (!e.job) Object.assign(input, { jobName: null, queue: null });
      sink.record({ input, job: e.job ? { id: e.job.id, name: e.job.name } : null });
    }),
    events.on('queue:paused', (e) => {
      sink.record({ input: { actor: e.actor, action: 'queue.paused', subjectKind: 'queue', subjectId: e.queue, jobName: null, queue: e.queue, before: null, after: 'paused', reason: e.reason, data: { operator: true } }, job: null });
    }),
    events.on('queue:resumed', (e) => {
      sink.record({ input: { actor: e.actor, action: 'queue.resumed', subjectKind: 'queue', subjectId: e.queue, jobName: null, queue: e.queue, before: null, after: 'active', reason: e.reason, data: { operator: true } }, job: null });
    }),
    events.on('schedule:operator-action', (e) => {
      const [action, after] = OPERATOR_SCHEDULE_ACTIONS[e.action];
      onSchedule('operator', e.schedule, { actor: e.actor, action, after, reason: e.reason, data: { operator: true } });
    }),
    events.on('schedule:fired', (e) => {
      // A manual trigger's run is part of the operator action; a scheduled tick is an ordinary transition.
      const category: AuditCategory = e.actor === null ? 'transition' : 'operator';
      const data: Record<string, unknown> = { tickAt: e.tickAt, jobId: e.jobId, late: e.late };
      // The tick's payload went to an existing job (its `job.replaced` entry precedes this one).
      if (e.replaced) data.replaced = true;
      onSchedule(category, e.schedule, { actor: e.actor ?? system, action: 'schedule.fired', after: null, data });
    }),
    events.on('schedule:skipped', (e) => {
      // A manual trigger that ran nothing is still the operator's action, recorded as such; a scheduled tick that ran
      // nothing is a failure to run, made by the scheduler.
      const category: AuditCategory = e.actor === null ? 'failure' : 'operator';
      onSchedule(category, e.schedule, { actor: e.actor ?? system, action: 'schedule.skipped', after: null, reason: e.reason, data: { tickAt: e.tickAt, activeJobId: e.activeJobId } });
    }),
    events.on('schedule:missed', (e) => {
      onSchedule('failure', e.schedule, { actor: system, action: 'schedule.missed', after: null, data: { tickAt: e.tickAt, count: e.count } });
    }),
    events.on('schedule:replaced', (e) => {
      // Overlap `replace` cancels the previous runs: state changes of those jobs, made by the scheduler.
      const job = sink.scheduleJob(e.schedule);
      for (const id of e.cancelledJobIds) {
        const ref: JobRef = { id, name: job?.name ?? '', queue: job?.queue ?? '' };
        const input = jobEntry(ref, system, 'job.cancelled', null, 'cancelled', `overlap policy "replace" of schedule ${e.schedule}`, { schedule: e.schedule, tickAt: e.tickAt });
        if (!job) Object.assign(input, { jobName: null, queue: null });
        if (isRecorded('transition', sink.levelOf(job?.name ?? null))) sink.record({ input, job: job ? { id, name: job.name } : null });
      }
    }),
  );
  return () => {
    for (const off of offs.splice(0)) off();
  };
}
