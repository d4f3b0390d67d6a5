/**
 * The live half of `warden doctor`: what the database says now (migrations, clock skew, dead letters, missed
 * ticks, open alerts, long runs without checkpoints). Every read is bounded, so it is cheap on a busy database.
 * @module
 */
import type { Warden } from '../client/warden.js';
import type { Finding } from './doctor-finding.js';

/** Rows read per list (running jobs, recently completed jobs, ticks per schedule): keeps the doctor cheap. */
export const LIVE_READ_LIMIT = 200;

/** Thresholds of the live checks, in ms. */
export interface LiveCheckLimits {
  longRunMs: number;
  missedWithinMs: number;
  clockSkewMs: number;
  auditSource: 'instance' | 'trail';
}

/** The units of {@link formatDuration}, largest first. */
const DURATION_UNITS = [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1_000], ['ms', 1]] as const;

/**
 * A duration in ms as people write one, exactly: `20s`, `10m`, `24h`, `1h30m`, `1s500ms`. The messages name the
 * thresholds the checks applied; rounded to whole minutes or hours, `longRun: "20s"` read "longer than 0 min".
 */
export function formatDuration(ms: number): string {
  let rest = Math.max(0, Math.round(ms));
  let text = '';
  for (const [unit, size] of DURATION_UNITS) {
    if (rest < size) continue;
    text += `${Math.floor(rest / size)}${unit}`;
    rest %= size;
  }
  return text || '0ms';
}

/** How long a run took, to the second (to the ms under one second). */
function formatRunTime(ms: number): string {
  return formatDuration(ms >= 1_000 ? Math.round(ms / 1_000) * 1_000 : ms);
}

/** Findings about the live state; when migrations are pending, only that (the other reads need the schema). */
export async function checkLiveState(warden: Warden, limits: LiveCheckLimits): Promise<{ findings: Finding[]; auditEmpty: boolean | null }> {
  const findings: Finding[] = [];
  const status = await warden.migrationStatus();
  if (status.pending.length > 0) {
    findings.push({
      id: 'migrations.pending', severity: 'error', subject: 'migrations',
      message: `Expected no pending migrations, got ${status.pending.length}: ${status.pending.join(', ')}`,
      hint: 'Run `warden migrate` (or warden.migrate()) once per deploy; workers refuse to start until then. The live checks were skipped.',
    });
    return { findings, auditEmpty: null };
  }
  const dbNow = (await warden.driver.dbNow()).getTime();
  const processNow = warden.clock.now();
  const skewMs = processNow - dbNow;
  if (Math.abs(skewMs) > limits.clockSkewMs) {
    findings.push({
      id: 'clock.skew', severity: 'error', subject: 'clock',
      message: `Expected this process's clock within ${limits.clockSkewMs} ms of the database's, got ${skewMs > 0 ? 'ahead' : 'behind'} by ${Math.abs(skewMs)} ms`,
      hint: 'Synchronize clocks with NTP on the application and database hosts; schedules and leases use database time, but logs, timeouts and heartbeats use the process clock.',
    });
  }
  // Times this instance writes: its clock's SQL time when it drives time itself (tests), else the database's.
  const now = warden.clock.sqlNow()?.getTime() ?? dbNow;

  const stats = await warden.stats();
  for (const queue of stats.queues) {
    if (queue.counts.dead > 0) {
      findings.push({
        id: 'queue.dead-letters', severity: 'warning', subject: queue.queue,
        message: `Expected no dead letters in queue "${queue.queue}", got ${queue.counts.dead}`,
        hint: `Inspect them with \`warden jobs list --state dead --queue ${queue.queue}\`, fix the cause, then \`warden jobs retry <id>\` or discard them.`,
      });
    }
  }

  for (const schedule of await warden.schedules.list()) {
    const ticks = await warden.schedules.ticks(schedule.name, { limit: LIVE_READ_LIMIT });
    const missed = ticks.filter((t) => t.outcome === 'missed' && now - t.recordedAt.getTime() <= limits.missedWithinMs);
    if (missed.length > 0) {
      findings.push({
        id: 'schedule.missed', severity: 'error', subject: schedule.name,
        message: `Expected schedule "${schedule.name}" to miss no tick in the last ${formatDuration(limits.missedWithinMs)}, got ${missed.length} missed (newest ${missed[0]!.tickAt.toISOString()})`,
        hint: 'Keep at least one scheduler running (warden worker runs one when schedules are registered), and check the misfire policy; `warden schedules ticks <name>` lists them.',
      });
    }
  }

  for (const alert of await warden.alerts.list({ state: 'open', limit: LIVE_READ_LIMIT })) {
    findings.push({
      id: 'alert.open', severity: alert.severity === 'critical' ? 'error' : 'warning', subject: alert.key,
      message: `Expected no open alert, got ${alert.rule} "${alert.key}" open since ${alert.openedAt.toISOString()}: ${alert.summary}`,
      hint: 'Fix the condition (the alert resolves itself when it clears), or `warden alerts resolve <key> --reason …` when it is stale.',
    });
  }

  // Runs long enough that a crash would redo a lot of work, and that never saved a checkpoint.
  const long = new Map<string, string[]>();
  const note = (name: string, what: string) => long.set(name, [...(long.get(name) ?? []), what]);
  for (const job of await warden.jobs.list({ state: 'running', limit: LIVE_READ_LIMIT })) {
    if (job.startedAt && job.checkpointAt === null && now - job.startedAt.getTime() > limits.longRunMs) note(job.name, `job ${job.id} running for ${formatRunTime(now - job.startedAt.getTime())}`);
  }
  for (const job of await warden.jobs.list({ state: 'completed', limit: LIVE_READ_LIMIT })) {
    if (job.startedAt && job.finishedAt && job.checkpointAt === null && job.finishedAt.getTime() - job.startedAt.getTime() > limits.longRunMs) {
      note(job.name, `job ${job.id} ran ${formatRunTime(job.finishedAt.getTime() - job.startedAt.getTime())}`);
    }
  }
  for (const [name, runs] of long) {
    findings.push({
      id: 'job.long-run-without-checkpoint', severity: 'warning', subject: name,
      message: `Expected runs of job "${name}" longer than ${formatDuration(limits.longRunMs)} to save checkpoints, got ${runs.slice(0, 3).join('; ')}${runs.length > 3 ? ` and ${runs.length - 3} more` : ''} without one`,
      hint: 'Process large sources with ctx.iterate({ … }) so a crash or timeout resumes from the last checkpoint instead of starting over.',
    });
  }
  const auditEmpty = limits.auditSource === 'trail' ? (await warden.audit.head()) === null : null;
  return { findings, auditEmpty };
}
