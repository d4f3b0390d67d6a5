/**
 * Delivery of notices to the webhook and email sinks through Warden's own queue: each notice becomes one job per
 * sink, enqueued in the same transaction that opens or resolves the alert, so a notice is queued if and only if its
 * alert changed, survives a crash, and is retried with backoff while a receiver is down. The jobs carry the sink's
 * name and the notice, never its secret or SMTP password: the worker that runs them looks the sink up in its own
 * `alerts` options.
 * @module
 */
import type { Clock } from '../clock/clock.js';
import { AlertDeliveryError } from '../errors.js';
import { defineJob, type JobDefinition } from '../job/define-job.js';
import type { ResolvedAlertOptions, ResolvedEmailSink, ResolvedWebhookSink } from './alert-options.js';
import type { AlertNotice } from './alert-notice.js';
import { EmailSender } from './email-sink.js';
import { deliverWebhook } from './webhook-sink.js';

/** The built-in job delivering a notice to a webhook sink. */
export const ALERT_WEBHOOK_JOB = 'warden.alert-webhook';
/** The built-in job delivering a notice to an email sink. */
export const ALERT_EMAIL_JOB = 'warden.alert-email';
/** Both delivery jobs' names: alert rules ignore these jobs, so a failing receiver cannot alert about itself. */
export const ALERT_DELIVERY_JOBS: readonly string[] = [ALERT_WEBHOOK_JOB, ALERT_EMAIL_JOB];

/** The payload of a delivery job. */
export interface AlertDeliveryPayload {
  /** The sink's name in the `alerts.sinks` option. */
  sink: string;
  notice: AlertNotice;
}

/** The delivery jobs for the configured sinks (one per sink type present), and what they need to close. */
export interface AlertDelivery {
  readonly jobs: readonly JobDefinition<AlertDeliveryPayload, AlertDeliveryPayload>[];
  /** The job name for a sink. */
  jobFor(sinkName: string): JobDefinition<AlertDeliveryPayload, AlertDeliveryPayload>;
  /** Closes the SMTP transports. */
  close(): void;
}

/** Builds the delivery jobs for `options.sinks` (none when there are no sinks). */
export function createAlertDelivery(options: ResolvedAlertOptions, clock: Clock): AlertDelivery {
  const webhooks = new Map<string, ResolvedWebhookSink>();
  const emails = new Map<string, ResolvedEmailSink>();
  for (const sink of options.sinks) (sink.type === 'webhook' ? webhooks : emails).set(sink.name, sink as never);
  const sender = new EmailSender();
  const common = { queue: options.delivery.queue, retry: options.delivery.retry };
  // A sink missing here was configured in the process that queued the notice but not in this one: retrying gives
  // a correctly configured worker the chance to take it.
  const missing = (sink: string, type: string) => new AlertDeliveryError(sink, `no ${type} sink of that name in this process's alerts options`);
  const webhookJob = defineJob<AlertDeliveryPayload>({
    ...common,
    name: ALERT_WEBHOOK_JOB,
    handler: async ({ sink, notice }, ctx) => {
      const config = webhooks.get(sink);
      if (!config) throw missing(sink, 'webhook');
      await deliverWebhook(config, notice, { clock, signal: ctx.signal });
    },
  });
  const emailJob = defineJob<AlertDeliveryPayload>({
    ...common,
    name: ALERT_EMAIL_JOB,
    handler: async ({ sink, notice }) => {
      const config = emails.get(sink);
      if (!config) throw missing(sink, 'email');
      await sender.send(config, notice);
    },
  });
  const jobs = [...(webhooks.size > 0 ? [webhookJob] : []), ...(emails.size > 0 ? [emailJob] : [])];
  return {
    jobs,
    jobFor: (sinkName) => (webhooks.has(sinkName) ? webhookJob : emailJob),
    close: () => sender.close(),
  };
}
