/**
 * What a sink receives: one notice per alert opening and per resolve, the same JSON for every sink (the webhook
 * body; the email is rendered from it).
 * @module
 */
import type { AlertRow, AlertRule, AlertSeverity } from '../driver/alert-params.js';

/** Whether a notice announces an alert opening or its resolve. */
export type AlertNoticeEvent = 'opened' | 'resolved';

/** One notice, as JSON (the webhook's request body). */
export interface AlertNotice {
  /**
   * Unique per notice and stable across delivery retries: `<key>#<episode>:<event>`. Receivers deduplicate on it
   * (a retry after a lost response delivers the same notice again).
   */
  id: string;
  event: AlertNoticeEvent;
  /** The alert's stable key, e.g. `missed-run:nightly-report`. */
  key: string;
  rule: AlertRule;
  severity: AlertSeverity;
  summary: string;
  /** The rule's findings (schedule, tick times, counts, thresholds, job ids); never a job payload. */
  details: Record<string, unknown>;
  /** Which opening of this key this is (1, then 2 after a resolve and a new opening, …). */
  episode: number;
  /** ISO time (database time). */
  openedAt: string;
  /** ISO time for `resolved` notices; null for `opened`. */
  resolvedAt: string | null;
  /** The Warden instance that decided it (`host/pid/random`). */
  instance: string;
}

/** The notice for an alert row that was just opened or resolved. */
export function toNotice(alert: AlertRow, event: AlertNoticeEvent): AlertNotice {
  return {
    id: `${alert.key}#${alert.episode}:${event}`,
    event,
    key: alert.key,
    rule: alert.rule,
    severity: alert.severity,
    summary: alert.summary,
    details: alert.details,
    episode: alert.episode,
    openedAt: alert.openedAt.toISOString(),
    resolvedAt: event === 'resolved' && alert.resolvedAt ? alert.resolvedAt.toISOString() : null,
    instance: (event === 'resolved' ? alert.resolvedBy : alert.openedBy) ?? alert.openedBy,
  };
}

/** An email rendering of a notice: a one-line subject and a plain-text body. */
export function formatAlertEmail(notice: AlertNotice, subjectPrefix: string): { subject: string; text: string } {
  const status = notice.event === 'opened' ? (notice.severity === 'critical' ? 'CRITICAL' : 'WARNING') : 'RESOLVED';
  const subject = `${subjectPrefix ? `${subjectPrefix} ` : ''}${status}: ${notice.summary}`.replace(/[\r\n]+/g, ' ').slice(0, 250);
  const lines = [
    `${status}: ${notice.summary}`,
    '',
    `alert:    ${notice.key}`,
    `rule:     ${notice.rule}`,
    `severity: ${notice.severity}`,
    `opened:   ${notice.openedAt}`,
    ...(notice.resolvedAt ? [`resolved: ${notice.resolvedAt}`] : []),
    `episode:  ${notice.episode}`,
    `notice:   ${notice.id}`,
    `from:     ${notice.instance}`,
    '',
    'details:',
    JSON.stringify(notice.details, null, 2),
  ];
  return { subject, text: `${lines.join('\n')}\n` };
}
