/**
 * The static half of `warden doctor`: checks of the registered job and schedule definitions and of the
 * instance's options, without touching the database.
 * @module
 */
import type { JobDefinition } from '../job/define-job.js';
import type { ScheduleDefinition } from '../schedule/define-schedule.js';
import type { Finding } from './doctor-finding.js';

/** What the definition checks read. */
export interface DefinitionCheckInput {
  jobs: JobDefinition<any, any>[];
  schedules: ScheduleDefinition[];
  /** Whether any webhook or email sink is configured (the log sink alone tells nobody). */
  hasSink: boolean;
  /** Whether the audit trail is recording; null when unknown here (checked against the trail instead). */
  auditRecording: boolean | null;
  maxAttempts: number;
}

/**
 * Whether a handler's source shows memoized steps or a transactional completion. Steps cannot be seen without
 * running the job, so this reads `handler.toString()`: a documented heuristic (docs/doctor.md), fooled by a
 * handler that delegates to a function defined elsewhere; declare a `unique` policy or key then.
 */
export function handlerUsesSteps(handler: (...args: any[]) => unknown): boolean {
  const source = Function.prototype.toString.call(handler);
  return /\.step\s*\(|\.transaction\s*\(/.test(source);
}

/** Findings about definitions and configuration. */
export function checkDefinitions(input: DefinitionCheckInput): Finding[] {
  const findings: Finding[] = [];
  for (const job of input.jobs) {
    if (!(job.retry.maxAttempts <= input.maxAttempts)) {
      findings.push({
        id: 'job.retry-unbounded', severity: 'warning', subject: job.name,
        message: `Expected retry.maxAttempts of job "${job.name}" to be at most ${input.maxAttempts}, got ${job.retry.maxAttempts}`,
        hint: 'Bound the retries (retry: { maxAttempts: 10 }) so a job that cannot succeed reaches the dead letters and alerts someone.',
      });
    }
    if (job.timeoutMs === null) {
      findings.push({
        id: 'job.no-timeout', severity: 'warning', subject: job.name,
        message: `Expected job "${job.name}" to have a timeout, got none`,
        hint: 'Set timeout (e.g. timeout: "5m") and pass ctx.signal to cancellable calls, so a hung call fails and is retried instead of holding its slot forever.',
      });
    }
    if (job.sideEffects && job.unique.key === null && job.unique.policy === null && !handlerUsesSteps(job.handler)) {
      findings.push({
        id: 'job.side-effects-unguarded', severity: 'error', subject: job.name,
        message: `Expected job "${job.name}" (sideEffects: true) to have a dedup key, memoized steps or a transaction, got none`,
        hint: 'Wrap each external effect in ctx.step(name, fn) (passing info.idempotencyKey on), complete with ctx.transaction(fn), or declare unique: { key: (p) => … } so a retry cannot repeat the effect.',
      });
    }
    if (job.audit === 'all' && input.auditRecording === false) {
      findings.push({
        id: 'audit.off', severity: 'info', subject: job.name,
        message: `Expected the audit trail to record job "${job.name}" (audit: "all"), got the audit trail off`,
        hint: 'Enable it with createWarden({ audit: true }) in the instances that run the job, or declare audit: "failures" / "none" if the job is not regulated.',
      });
    }
  }
  for (const schedule of input.schedules) {
    // A definition made by another copy of Warden may not say; only a known implicit default is reported.
    if (schedule.overlapExplicit === false) {
      findings.push({
        id: 'schedule.overlap-implicit', severity: 'warning', subject: schedule.name,
        message: `Expected schedule "${schedule.name}" to choose an overlap policy, got the default "${schedule.overlap}"`,
        hint: 'Set overlap: "skip", "queue-one", "allow" or "replace" to say what happens when a run is still going at the next tick.',
      });
    }
    if (schedule.expect === null) {
      findings.push({
        id: 'schedule.no-expect', severity: 'error', subject: schedule.name,
        message: `Expected schedule "${schedule.name}" to have a missed-run expectation (expect.within), got none`,
        hint: 'Set expect: { within: "15m" } (and maxRuntime) so a run that does not happen raises a missed-run alert; add heartbeat: { url } for a dead application.',
      });
    }
  }
  if (!input.hasSink) {
    const critical = input.schedules.length > 0 || input.jobs.some((j) => j.sideEffects);
    findings.push({
      id: 'alerts.no-sink', severity: critical ? 'error' : 'warning', subject: 'alerts',
      message: `Expected at least one alert sink (webhook or email), got ${critical ? 'none, with schedules or side-effecting jobs registered' : 'none'}`,
      hint: 'Configure createWarden({ alerts: { sinks: [{ type: "webhook", url, secret }] } }) (or export `alerts` from the jobs module), so dead letters and missed runs reach a person, not only the log.',
    });
  }
  return findings;
}
