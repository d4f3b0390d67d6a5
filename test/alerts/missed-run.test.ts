/**
 * The dead man's switch end to end, on both drivers, with a fake clock for schedule time and real receivers:
 * - runs on time raise nothing;
 * - all schedulers stopped for 3 ticks: one missed-run alert per schedule, opened when its first missed tick's
 *   `expect.within` runs out (the grace period) and not a moment before, delivered through the `warden` queue to a
 *   real HTTP webhook receiver (HMAC checked) and a real SMTP receiver; still one per schedule while it stays open;
 * - after recovery (the schedulers run again and the runs complete): one resolve notice per schedule;
 * - two instances evaluating at once: one notification per schedule (the database decides);
 * - `warden.start()` runs the monitor and the delivery queue by itself;
 * - a run whose job is gone is no success: discarded (dead or never run) or a dead letter pruned by retention, the
 *   alert still opens or stays open; a completed run pruned by retention (the schedule's newest is kept) raises
 *   nothing.
 * @module
 */
import { beforeEach, describe, expect, it } from 'vitest';
import type { Warden } from '../../src/client/warden.js';
import type { AlertsOptions } from '../../src/alerts/alert-options.js';
import { defineJob } from '../../src/job/define-job.js';
import { defineSchedule, type ScheduleDefinition } from '../../src/schedule/define-schedule.js';
import { record, TestClock } from '../runtime/helpers.js';
import { HOUR, MINUTE, noopJob, T0 } from '../schedule/helpers.js';
import { alertTestBed } from '../support/alert-rules.js';
import { DRIVER_KINDS } from '../support/test-databases.js';
import { type SmtpReceiver, startSmtpReceiver, startWebhookReceiver, type WebhookReceiver } from './receivers.js';

const SECRET = 'test-secret-0123456789abcdef';
const SECOND = 1_000;

/** Two minutely schedules expecting a successful run within 2 minutes of each tick. */
function schedules(): ScheduleDefinition[] {
  return ['rescreen-eu', 'rescreen-us'].map((name) =>
    defineSchedule({ name, every: '1m', job: noopJob, overlap: 'allow', misfire: { grace: '5s' }, expect: { within: '2m' } }));
}

describe.each(DRIVER_KINDS)('missed-run alerts (%s)', (kind) => {
  const bed = alertTestBed(kind);
  let webhook: WebhookReceiver;
  let smtp: SmtpReceiver;

  beforeEach(async () => {
    webhook = bed.closeAfter(await startWebhookReceiver(SECRET), (r) => r.close());
    smtp = bed.closeAfter(await startSmtpReceiver(), (r) => r.close());
  });

  function alerts(): AlertsOptions {
    return {
      sinks: [
        { type: 'webhook', url: webhook.url, secret: SECRET },
        { type: 'email', smtp: { host: '127.0.0.1', port: smtp.port, ignoreTLS: true }, from: 'Warden <warden@example.com>', to: ['oncall@example.com', 'aml-team@example.com'] },
      ],
      rules: { queueLag: false },
    };
  }

  /** Fires the due ticks and runs every due job (the schedules' runs and the alert deliveries). */
  async function runOnTime(warden: Warden): Promise<void> {
    await warden.runSchedulerOnce();
    await warden.drain();
  }

  it('raises nothing on time; one alert per schedule after 3 missed ticks, at the grace period, to the webhook and SMTP; one resolve notice after recovery', async () => {
    const { clock } = bed;
    const warden = bed.warden({ schedules: schedules(), alerts: alerts() });
    const opened = record(warden, 'alert:opened');
    const resolved = record(warden, 'alert:resolved');
    await warden.runSchedulerOnce();
    for (let tick = 1; tick <= 3; tick++) {
      await clock.set(T0 + tick * MINUTE);
      await runOnTime(warden);
      await clock.set(T0 + tick * MINUTE + 30 * SECOND);
      await warden.alerts.check();
    }
    expect(opened).toEqual([]);
    expect(await warden.alerts.list()).toEqual([]);

    // Every scheduler stops after the +3m tick: +4m, +5m and +6m are never fired. The +4m tick's run was due by +6m.
    await clock.set(T0 + 6 * MINUTE - SECOND);
    await warden.alerts.check();
    expect(opened).toEqual([]);
    await clock.set(T0 + 6 * MINUTE);
    await warden.alerts.check();
    expect(opened.map((e) => e.alert.key).sort()).toEqual(['missed-run:rescreen-eu', 'missed-run:rescreen-us']);
    expect(opened.map((e) => e.alert.openedAt)).toEqual([new Date(T0 + 6 * MINUTE), new Date(T0 + 6 * MINUTE)]);
    expect(opened[0]!.alert).toMatchObject({ rule: 'missed-run', severity: 'critical', state: 'open', episode: 1 });
    expect(opened[0]!.alert.details).toMatchObject({ firstMissedTickAt: new Date(T0 + 4 * MINUTE).toISOString(), dueBy: new Date(T0 + 6 * MINUTE).toISOString(), lastSuccessTickAt: new Date(T0 + 3 * MINUTE).toISOString(), missedTicks: 1 });

    // Still down through the +6m tick's deadline: the open alerts are not notified again.
    for (const at of [7, 8]) {
      await clock.set(T0 + at * MINUTE + 30 * SECOND);
      await warden.alerts.check();
    }
    expect(opened).toHaveLength(2);
    await warden.drain({ queues: ['warden'] });
    const hooks = await webhook.inbox.waitFor(2, 'webhook notices');
    expect(hooks.map((h) => h.signatureValid)).toEqual([true, true]);
    expect(hooks.map((h) => h.headers['content-type'])).toEqual(['application/json', 'application/json']);
    expect(hooks.map((h) => h.notice.id).sort()).toEqual(['missed-run:rescreen-eu#1:opened', 'missed-run:rescreen-us#1:opened']);
    expect(hooks.map((h) => h.notice.event)).toEqual(['opened', 'opened']);
    const emails = await smtp.inbox.waitFor(2, 'emails');
    expect(emails.map((m) => m.to)).toEqual([['oncall@example.com', 'aml-team@example.com'], ['oncall@example.com', 'aml-team@example.com']]);
    expect(emails.map((m) => m.subject).sort()).toEqual([
      expect.stringMatching(/^\[warden\] CRITICAL: schedule rescreen-eu has no successful run of its \S+ tick within 2m$/),
      expect.stringMatching(/^\[warden\] CRITICAL: schedule rescreen-us has no successful run/),
    ]);
    expect(emails[0]!.text).toContain('rule:     missed-run');

    // Recovery at +9m: the scheduler records +4m…+8m as missed and fires +9m; its run completes.
    await clock.set(T0 + 9 * MINUTE);
    await runOnTime(warden);
    expect((await warden.alerts.list({ state: 'open' })).map((a) => [a.notices, a.details.missedTicks])).toEqual([[1, 1], [1, 1]]);
    await warden.alerts.check();
    expect(resolved.map((e) => e.alert.key).sort()).toEqual(['missed-run:rescreen-eu', 'missed-run:rescreen-us']);
    await warden.drain({ queues: ['warden'] });
    const notices = await webhook.inbox.waitFor(2, 'resolve notices', (h) => h.notice.event === 'resolved');
    expect(notices.map((h) => [h.signatureValid, h.notice.resolvedAt])).toEqual([[true, new Date(T0 + 9 * MINUTE).toISOString()], [true, new Date(T0 + 9 * MINUTE).toISOString()]]);
    expect(notices[0]!.notice.details).toMatchObject({ resolution: 'a run succeeded', lastSuccessTickAt: new Date(T0 + 9 * MINUTE).toISOString() });
    const resolveMails = await smtp.inbox.waitFor(2, 'resolve emails', (m) => m.subject.includes('RESOLVED'));
    expect(resolveMails).toHaveLength(2);

    // On time again: nothing more.
    await clock.advance(MINUTE);
    await runOnTime(warden);
    await clock.advance(2 * MINUTE);
    await runOnTime(warden);
    await warden.alerts.check();
    expect([opened.length, resolved.length]).toEqual([2, 2]);
    expect(webhook.inbox.items).toHaveLength(4);
    expect(smtp.inbox.items).toHaveLength(4);
    expect((await warden.alerts.list()).map((a) => [a.state, a.notices])).toEqual([['resolved', 2], ['resolved', 2]]);
  });

  it('notifies once when two instances evaluate the same missed runs at once, and resolves once', async () => {
    const { clock } = bed;
    const scheduler = bed.warden({ schedules: schedules(), alerts: alerts() });
    // A second instance without the schedules' code: the rule reads their stored definitions.
    const other = bed.warden({ alerts: alerts() });
    const opened = record(scheduler, 'alert:opened');
    const openedOther = record(other, 'alert:opened');
    const resolved = record(scheduler, 'alert:resolved');
    const resolvedOther = record(other, 'alert:resolved');
    await scheduler.runSchedulerOnce();
    await clock.advance(MINUTE);
    await runOnTime(scheduler);
    await clock.set(T0 + 5 * MINUTE);
    await Promise.all([scheduler.alerts.check(), other.alerts.check(), scheduler.alerts.check(), other.alerts.check()]);
    expect([...opened, ...openedOther].map((e) => e.alert.key).sort()).toEqual(['missed-run:rescreen-eu', 'missed-run:rescreen-us']);
    await Promise.all([scheduler.drain({ queues: ['warden'] }), other.drain({ queues: ['warden'] })]);
    await webhook.inbox.waitFor(2, 'webhook notices');
    await smtp.inbox.waitFor(2, 'emails');

    await clock.set(T0 + 6 * MINUTE);
    await runOnTime(scheduler);
    await Promise.all([scheduler.alerts.check(), other.alerts.check(), scheduler.alerts.check(), other.alerts.check()]);
    expect([...resolved, ...resolvedOther].map((e) => e.alert.key).sort()).toEqual(['missed-run:rescreen-eu', 'missed-run:rescreen-us']);
    await Promise.all([scheduler.drain({ queues: ['warden'] }), other.drain({ queues: ['warden'] })]);
    await webhook.inbox.waitFor(4, 'webhook notices');
    await smtp.inbox.waitFor(4, 'emails');
    expect(webhook.inbox.items.map((h) => h.notice.id).sort()).toEqual([
      'missed-run:rescreen-eu#1:opened', 'missed-run:rescreen-eu#1:resolved', 'missed-run:rescreen-us#1:opened', 'missed-run:rescreen-us#1:resolved',
    ]);
    expect(smtp.inbox.items).toHaveLength(4);
  });

  it('start() runs the monitor on its interval and delivers through the warden queue by itself', async () => {
    const clock = new TestClock(T0);
    // The webhook's timeout runs on the fake clock, and a step (10 s, its default) may come while a delivery's
    // request is in flight on a loaded machine: that delivery would time out and wait for a retry no step reaches.
    const base = alerts();
    const sinks = base.sinks!.map((sink) => ({ ...sink, timeout: '1h' as const }));
    const warden = bed.warden({ schedules: schedules(), clock, alerts: { ...base, sinks, checkInterval: '10s' } });
    await warden.runSchedulerOnce();
    await warden.start({ scheduler: false, retention: false, pollInterval: '1h', rescueInterval: '1h', heartbeat: '10s', lease: '1h' });
    // Nothing ever fires: the first tick (+1m) had its run due by +3m.
    const deliveries = webhook.inbox.waitFor(2, 'webhook notices');
    await clock.step(3 * MINUTE + 10 * SECOND, 10 * SECOND, 4);
    const hooks = await deliveries;
    expect(hooks.map((h) => h.notice.key).sort()).toEqual(['missed-run:rescreen-eu', 'missed-run:rescreen-us']);
    expect(hooks.every((h) => h.signatureValid)).toBe(true);
    expect(new Date(hooks[0]!.notice.openedAt).getTime()).toBeLessThanOrEqual(T0 + 3 * MINUTE + 10 * SECOND);
    await smtp.inbox.waitFor(2, 'emails');
  });
});

/** Fails every attempt and has no retries: each run of it dies. Dead letters of it are kept 10 minutes. */
const dying = defineJob({ name: 'rescreen', retry: { maxAttempts: 1 }, retention: { dead: '10m' }, handler: () => { throw new Error('boom'); } });
/** Completes; completed jobs of it are kept 10 minutes (the schedule's newest always). */
const shortLived = defineJob({ name: 'rescreen-ok', retention: { completed: '10m' }, handler: () => undefined });

describe.each(DRIVER_KINDS)('missed-run alerts when a run\'s job is gone (%s)', (kind) => {
  const bed = alertTestBed(kind);

  /** An hourly schedule of `job` expecting a completed run within 15 minutes of each tick; the first tick is +1h. */
  async function open(job = dying): Promise<Warden> {
    const schedule = defineSchedule({ name: 'hourly-rescreen', every: '1h', job, expect: { within: '15m' } });
    const warden = bed.warden({ schedules: [schedule], jobs: [job], retention: {}, alerts: { rules: { queueLag: false, deadLetter: false } } });
    await warden.runSchedulerOnce();
    return warden;
  }

  it('a dead run discarded by an operator does not resolve the open alert: nothing completed', async () => {
    const { clock } = bed;
    const w = await open();
    const opened = record(w, 'alert:opened');
    const resolved = record(w, 'alert:resolved');
    await clock.set(T0 + HOUR);
    await w.runSchedulerOnce();
    await w.drain();
    const [dead] = await w.jobs.list({ state: 'dead' });
    expect(dead?.scheduleName).toBe('hourly-rescreen');
    await clock.set(T0 + HOUR + 15 * MINUTE);
    await w.alerts.check();
    expect(opened.map((e) => e.alert.key)).toEqual(['missed-run:hourly-rescreen']);

    await w.jobs.discard(dead!.id);
    await clock.set(T0 + HOUR + 16 * MINUTE);
    await w.alerts.check();
    expect(resolved).toEqual([]);
    expect((await w.alerts.list({ state: 'open' })).map((a) => a.key)).toEqual(['missed-run:hourly-rescreen']);
  });

  it('a run discarded before its deadline, never run, still opens the alert at the deadline', async () => {
    const { clock } = bed;
    const w = await open();
    const opened = record(w, 'alert:opened');
    await clock.set(T0 + HOUR);
    await w.runSchedulerOnce();
    const [queued] = await w.jobs.list({ state: 'queued' });
    expect(queued?.scheduleName).toBe('hourly-rescreen');
    await w.jobs.discard(queued!.id);
    await clock.set(T0 + HOUR + 15 * MINUTE);
    await w.alerts.check();
    expect(opened.map((e) => [e.alert.key, e.alert.details.firstMissedTickAt, e.alert.details.lastSuccessTickAt]))
      .toEqual([['missed-run:hourly-rescreen', new Date(T0 + HOUR).toISOString(), null]]);
  });

  it('a dead run pruned by retention before its deadline still opens the alert', async () => {
    const { clock } = bed;
    const w = await open();
    const opened = record(w, 'alert:opened');
    await clock.set(T0 + HOUR);
    await w.runSchedulerOnce();
    await w.drain();
    await clock.set(T0 + HOUR + 11 * MINUTE);
    expect((await w.runRetentionOnce())?.jobs.dead).toBe(1);
    await clock.set(T0 + HOUR + 15 * MINUTE);
    await w.alerts.check();
    expect(opened.map((e) => e.alert.key)).toEqual(['missed-run:hourly-rescreen']);
  });

  it('completed runs pruned by retention raise nothing: the schedule\'s newest completed run is kept and covers them', async () => {
    const { clock } = bed;
    const w = await open(shortLived);
    const opened = record(w, 'alert:opened');
    for (let hour = 1; hour <= 3; hour++) {
      await clock.set(T0 + hour * HOUR);
      await w.runSchedulerOnce();
      await w.drain();
    }
    await clock.set(T0 + 3 * HOUR + 11 * MINUTE);
    expect((await w.runRetentionOnce())?.jobs.completed).toBe(2);
    const ticks = await w.driver.scheduleTickList({ name: 'hourly-rescreen' });
    expect(ticks.map((t) => t.jobState)).toEqual(['completed', null, null]);
    await clock.set(T0 + 3 * HOUR + 30 * MINUTE);
    await w.alerts.check();
    expect(opened).toEqual([]);
  });
});
