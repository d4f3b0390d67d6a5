/**
 * Dead letters and delivery, on both drivers, with a fake clock and a real webhook receiver:
 * - a dead-letter alert fires once per dead job, not once per failed attempt; its error message is scrubbed of the
 *   job's sensitive values; an operator retry resolves it;
 * - a webhook receiver that is down at first gets the notice later, through the delivery job's retry;
 * - heartbeat pings (`defineSchedule({ heartbeat })` and `alerts.heartbeats`): start, success, fail.
 * @module
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { ALERT_WEBHOOK_JOB } from '../../src/alerts/alert-delivery.js';
import { verifyWebhookSignature } from '../../src/alerts/webhook-sink.js';
import { defineJob } from '../../src/job/define-job.js';
import { defineSchedule } from '../../src/schedule/define-schedule.js';
import { record } from '../runtime/helpers.js';
import { MINUTE } from '../schedule/helpers.js';
import { alertTestBed } from '../support/alert-rules.js';
import { DRIVER_KINDS } from '../support/test-databases.js';
import { startWebhookReceiver, type WebhookReceiver } from './receivers.js';

const SECRET = 'delivery-secret-0123456789';
const SECOND = 1_000;

/** Fails every attempt with a message that quotes the (sensitive) card number. */
const chargeCard = defineJob<{ card: string; customer: string }>({
  name: 'charge-card',
  sensitive: ['card'],
  retry: { maxAttempts: 3, backoff: { type: 'fixed', base: '1s', jitter: 'none' } },
  handler: ({ card }) => {
    throw new Error(`card ${card} declined`);
  },
});

describe.each(DRIVER_KINDS)('alert delivery (%s)', (kind) => {
  const bed = alertTestBed(kind);
  let webhook: WebhookReceiver;

  beforeEach(async () => {
    webhook = bed.closeAfter(await startWebhookReceiver(SECRET), (r) => r.close());
  });

  it('fires a dead-letter alert once per dead job, not per failed attempt, scrubbed of sensitive values; a retry resolves it', async () => {
    const { clock } = bed;
    const warden = bed.warden({ jobs: [chargeCard], alerts: { sinks: [{ type: 'webhook', url: webhook.url, secret: SECRET }], rules: { consecutiveFailures: false, failureRate: false } } });
    const failed = record(warden, 'job:failed');
    const opened = record(warden, 'alert:opened');
    const resolved = record(warden, 'alert:resolved');
    const a = await warden.enqueue(chargeCard, { card: '4111111111111111', customer: 'c-1' });
    const b = await warden.enqueue(chargeCard, { card: '5500005555555559', customer: 'c-2' });
    for (let round = 0; round < 3; round++) {
      await warden.drain({ queues: ['default'] });
      await clock.advance(SECOND);
    }
    await warden.alerts.settled();
    expect(failed).toHaveLength(6);
    expect((await warden.jobs.list({ state: 'dead' })).map((j) => j.id).sort()).toEqual([a.id, b.id].sort());
    expect(opened.map((e) => e.alert.key).sort()).toEqual([`dead-letter:${a.id}:3`, `dead-letter:${b.id}:3`].sort());
    const alertA = opened.find((e) => e.alert.key === `dead-letter:${a.id}:3`)!.alert;
    expect(alertA).toMatchObject({ rule: 'dead-letter', severity: 'critical', details: { jobId: a.id, job: 'charge-card', queue: 'default', attempt: 3, reason: 'failed', error: { name: 'Error', message: 'card [redacted] declined' } } });

    await warden.drain({ queues: ['warden'] });
    const hooks = await webhook.inbox.waitFor(2, 'dead-letter notices');
    expect(hooks.every((h) => h.signatureValid)).toBe(true);
    expect(hooks.every((h) => verifyWebhookSignature({ secret: SECRET, body: h.body, timestamp: h.headers['x-warden-timestamp'] as string, signature: h.headers['x-warden-signature'] as string, now: clock.now() }))).toBe(true);
    expect(hooks.some((h) => h.body.includes('4111111111111111') || h.body.includes('5500005555555559'))).toBe(false);
    // Checks while they stay dead change nothing.
    await warden.alerts.check();
    expect([opened.length, resolved.length]).toEqual([2, 0]);

    await warden.jobs.retry(a.id);
    await warden.alerts.check();
    expect(resolved.map((e) => [e.alert.key, e.alert.details.resolution])).toEqual([[`dead-letter:${a.id}:3`, 'the job was retried (now queued)']]);
    // It dies again: a new dead letter, so a new alert.
    await warden.drain({ queues: ['default'] });
    await warden.alerts.settled();
    expect(opened.map((e) => e.alert.key)).toContain(`dead-letter:${a.id}:4`);
    expect(opened).toHaveLength(3);
  });

  it('delivers to a receiver that was down at first, through the delivery job\'s retry', async () => {
    const { clock } = bed;
    const once = defineJob({ name: 'once', retry: { maxAttempts: 1 }, handler: () => { throw new Error('nope'); } });
    const warden = bed.warden({ jobs: [once], alerts: { sinks: [{ type: 'webhook', url: webhook.url, secret: SECRET }] } });
    await webhook.stop();
    const job = await warden.enqueue(once, {});
    await warden.drain({ queues: ['default'] });
    await warden.alerts.settled();
    await warden.drain({ queues: ['warden'] });
    const [delivery] = await warden.jobs.list({ name: ALERT_WEBHOOK_JOB });
    expect(delivery).toMatchObject({ state: 'retrying', attempt: 1, payload: { sink: 'webhook', notice: { key: `dead-letter:${job.id}:1`, event: 'opened' } } });
    expect(delivery!.lastError).toMatchObject({ name: 'AlertDeliveryError', message: expect.stringContaining('Expected alert sink "webhook" to accept the notice') });
    expect(webhook.inbox.items).toEqual([]);

    await webhook.start();
    await clock.advance(MINUTE);
    await warden.drain({ queues: ['warden'] });
    const [hook] = await webhook.inbox.waitFor(1, 'the retried notice');
    expect(hook!.notice.id).toBe(`dead-letter:${job.id}:1#1:opened`);
    expect(hook!.signatureValid).toBe(true);
    expect(await warden.jobs.get(delivery!.id)).toMatchObject({ state: 'completed', attempt: 2 });
  });

  it('pings heartbeat URLs: <url>/start, then <url> on success or <url>/fail on failure, for both ways of configuring them', async () => {
    const { clock } = bed;
    let fail = false;
    const work = defineJob({ name: 'rescreen', retry: { maxAttempts: 1 }, handler: () => { if (fail) throw new Error('screening service down'); } });
    const base = webhook.url.replace(/\/hook$/, '');
    const eu = defineSchedule({ name: 'rescreen-eu', every: '1m', job: work, heartbeat: { url: `${base}/ping/eu/` } });
    const us = defineSchedule({ name: 'rescreen-us', every: '1m', job: work });
    const warden = bed.warden({ schedules: [eu, us], alerts: { heartbeats: { 'rescreen-us': `${base}/ping/us` }, rules: { deadLetter: false } } });
    await warden.runSchedulerOnce();
    await clock.advance(MINUTE);
    await warden.runSchedulerOnce();
    await warden.drain();
    await warden.alerts.settled();
    fail = true;
    await clock.advance(MINUTE);
    await warden.runSchedulerOnce();
    await warden.drain();
    await warden.alerts.settled();
    const paths = (prefix: string) => webhook.inbox.items.map((h) => h.path).filter((p) => p.startsWith(prefix));
    expect(paths('/ping/eu')).toEqual(['/ping/eu/start', '/ping/eu', '/ping/eu/start', '/ping/eu/fail']);
    expect(paths('/ping/us')).toEqual(['/ping/us/start', '/ping/us', '/ping/us/start', '/ping/us/fail']);
  });

  it('pings without the alerts option, and a ping service that is down never fails the job', async () => {
    const { clock } = bed;
    const work = defineJob({ name: 'rescreen', handler: () => undefined });
    await webhook.stop();
    const eu = defineSchedule({ name: 'rescreen-eu', every: '1m', job: work, heartbeat: { url: `${webhook.url}/eu` } });
    const warden = bed.warden({ schedules: [eu] });
    const completed = record(warden, 'job:completed');
    await warden.runSchedulerOnce();
    await clock.advance(MINUTE);
    await warden.runSchedulerOnce();
    await warden.drain();
    await warden.alerts.settled();
    expect(completed).toHaveLength(1);
    await webhook.start();
    await clock.advance(MINUTE);
    await warden.runSchedulerOnce();
    await warden.drain();
    await warden.alerts.settled();
    expect(webhook.inbox.items.map((h) => h.path)).toEqual(['/hook/eu/start', '/hook/eu']);
  });
});
