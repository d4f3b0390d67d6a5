/**
 * `warden doctor`: the self-review checklist, made executable. See docs/doctor.md.
 * @module
 */
import type { Warden } from '../client/warden.js';
import { InvalidOptionError } from '../errors.js';
import { parseDuration } from '../validation/duration.js';
import { checkDefinitions } from './definition-checks.js';
import { DOCTOR_SEVERITIES, type DoctorOptions, type DoctorResult, type Finding } from './doctor-finding.js';
import { checkLiveState } from './live-checks.js';

/**
 * Checks every registered job and schedule (`warden.definitions`, `warden.scheduleDefinitions`; Warden's built-in
 * alert delivery jobs excluded), the instance's alert and audit configuration, and the live state of the database.
 * Reads only; writes nothing.
 * @example
 * const { ok, findings } = await warden.doctor();
 * for (const f of findings) console.log(f.severity, f.id, f.subject, f.message);
 * @throws InvalidOptionError, InvalidDurationError for bad options; database errors as they come.
 */
export function runDoctor(warden: Warden, options: DoctorOptions = {}): Promise<DoctorResult> {
  // Through the instance, which knows its own `scheduler.clockSkewWarning`: the documented default threshold.
  return warden.doctor(options);
}

/**
 * {@link runDoctor}'s checks, with the clock-skew threshold an option left out (or `undefined`) takes:
 * `warden.doctor()` passes its instance's `scheduler.clockSkewWarning`.
 * @throws InvalidOptionError, InvalidDurationError for bad options; database errors as they come.
 */
export async function runDoctorChecks(warden: Warden, options: DoctorOptions, defaultClockSkewMs: number): Promise<DoctorResult> {
  const maxAttempts = options.maxAttempts ?? 25;
  if (!Number.isInteger(maxAttempts) || maxAttempts < 1) throw new InvalidOptionError('doctor maxAttempts', maxAttempts, 'a positive integer');
  const auditSource = options.auditSource ?? 'instance';
  if (auditSource !== 'instance' && auditSource !== 'trail') throw new InvalidOptionError('doctor auditSource', auditSource, '"instance" or "trail"');
  const limits = {
    longRunMs: parseDuration('doctor longRun', options.longRun ?? '10m', { allowZero: false }),
    missedWithinMs: parseDuration('doctor missedWithin', options.missedWithin ?? '24h', { allowZero: false }),
    clockSkewMs: parseDuration('doctor clockSkew', options.clockSkew ?? defaultClockSkewMs, { allowZero: false }),
    auditSource,
  } as const;
  const builtIn = new Set(warden.alerts.deliveryJobs);
  const jobs = [...warden.definitions.values()].filter((d) => !builtIn.has(d));
  const live = await checkLiveState(warden, limits);
  const auditRecording = auditSource === 'instance' ? warden.audit.recording : live.auditEmpty === null ? null : !live.auditEmpty;
  const findings = [
    ...checkDefinitions({ jobs, schedules: [...warden.scheduleDefinitions.values()], hasSink: warden.alerts.sinks.length > 0, auditRecording, maxAttempts }),
    ...live.findings,
  ];
  findings.sort(compareFindings);
  return { findings, ok: !findings.some((f) => f.severity === 'error') };
}

function compareFindings(a: Finding, b: Finding): number {
  return DOCTOR_SEVERITIES.indexOf(a.severity) - DOCTOR_SEVERITIES.indexOf(b.severity) || a.id.localeCompare(b.id) || a.subject.localeCompare(b.subject);
}
