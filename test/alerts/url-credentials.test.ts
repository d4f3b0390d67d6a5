/**
 * Secrets in webhook and heartbeat URLs never reach errors or logs:
 * - validation refuses user-info (`https://user:token@host/…`: fetch would refuse it with a TypeError quoting the
 *   whole URL), and its errors show the URL's shape, never its user-info, path or query;
 * - the webhook sink's delivery error and the heartbeat pinger's warning name the host and the error's name and
 *   code, with any URL in fetch's messages reduced to its host, even for a URL that skipped validation;
 * - end to end on each driver, a failed delivery to a URL with a token in its query, and a failed ping, are
 *   stored and logged without it.
 * @module
 */
import { inspect } from 'node:util';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { beforeEach, describe, expect, it } from 'vitest';
import { ALERT_WEBHOOK_JOB } from '../../src/alerts/alert-delivery.js';
import { resolveAlertOptions, type ResolvedWebhookSink } from '../../src/alerts/alert-options.js';
import type { AlertNotice } from '../../src/alerts/alert-notice.js';
import { HeartbeatPinger } from '../../src/alerts/heartbeat-pinger.js';
import { deliverWebhook, describeRequestError } from '../../src/alerts/webhook-sink.js';
import { systemClock } from '../../src/clock/clock.js';
import { FakeClock } from '../../src/clock/fake-clock.js';
import { createWarden } from '../../src/client/warden.js';
import { AlertDeliveryError, InvalidOptionError } from '../../src/errors.js';
import { TypedEmitter } from '../../src/events/typed-emitter.js';
import { defineJob } from '../../src/job/define-job.js';
import { defineSchedule } from '../../src/schedule/define-schedule.js';
import { MINUTE, T0 } from '../schedule/helpers.js';
import { alertTestBed } from '../support/alert-rules.js';
import { DRIVER_KINDS } from '../support/test-databases.js';
import { startWebhookReceiver, type WebhookReceiver } from './receivers.js';

const TOKEN = 'hookT0ken-very-secret';
const SECRET = 'a-secret-of-16-chars';
const webhook = (url: string) => ({ sinks: [{ type: 'webhook' as const, url, secret: SECRET }] });
const tick = defineJob({ name: 'tick', handler: () => undefined });

/** Everything an error shows: its message, its `value`, and how a logger or the console would print it. */
function shown(error: unknown): string {
  return `${(error as Error).message}\n${JSON.stringify(error)}\n${inspect(error, { depth: 5 })}`;
}

/** The error `fn` throws (failing when it does not throw). */
function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('Expected a throw, got none');
}

/** A pino logger into a string. */
function capture(): { logger: pino.Logger; text: () => string } {
  let out = '';
  const stream = new Writable({ write(chunk, _encoding, done) { out += String(chunk); done(); } });
  return { logger: pino({ level: 'warn' }, stream), text: () => out };
}

describe('URL options with credentials', () => {
  it.each([
    ['a webhook URL with user and password', () => resolveAlertOptions(webhook(`https://ops:${TOKEN}@hooks.example.com/warden`)), 'alerts.sinks[0].url', /without user-info .*`headers`.*Authorization/],
    ['a webhook URL with a user name only', () => resolveAlertOptions(webhook(`https://${TOKEN}@hooks.example.com/warden`)), 'alerts.sinks[0].url', /without user-info/],
    ['an alerts.heartbeats URL', () => resolveAlertOptions({ heartbeats: { nightly: `https://hc:${TOKEN}@hc-ping.com/abc` } }), 'alerts.heartbeats["nightly"]', /without user-info .*key in the path/],
    ['a schedule heartbeat URL', () => defineSchedule({ name: 'nightly', every: '1h', job: tick, heartbeat: { url: `https://hc:${TOKEN}@hc-ping.com/abc` } }), 'heartbeat.url of schedule "nightly"', /without user-info/],
  ])('refuses %s without showing the credential', (_what, fn, field, expected) => {
    const error = thrown(fn);
    expect(error).toBeInstanceOf(InvalidOptionError);
    expect(error).toMatchObject({ field });
    expect((error as Error).message).toMatch(expected);
    // The shape says what is wrong: there is user-info before the host.
    expect((error as Error).message).toContain('[user-info]@');
    expect(shown(error)).not.toContain(TOKEN);
  });

  it.each([
    ['a heartbeat URL with a query', () => resolveAlertOptions({ heartbeats: { nightly: `https://hc-ping.com/abc?key=${TOKEN}` } }), /without a query or fragment .*, got "https:\/\/hc-ping\.com\/\[path\]\?\[query\]"/],
    ['a URL of another scheme', () => resolveAlertOptions(webhook(`ftp://ops:${TOKEN}@files.example.com/in`)), /an absolute http: or https: URL, got "ftp:\/\/\[user-info\]@files\.example\.com\/\[path\]"/],
    ['a URL that does not parse', () => resolveAlertOptions(webhook(`https://ops:${TOKEN}@hooks example.com/x?k=${TOKEN}`)), /an absolute http: or https: URL, got "https:\/\/\[user-info\]@hooks example\.com\/…"/],
  ])('does not echo the secret parts of %s it refuses for another reason', (_what, fn, expected) => {
    const error = thrown(fn);
    expect(error).toBeInstanceOf(InvalidOptionError);
    expect((error as Error).message).toMatch(expected);
    expect(shown(error)).not.toContain(TOKEN);
  });

  it('still accepts a webhook URL with a token in its query, and a heartbeat key in the path', () => {
    const resolved = resolveAlertOptions({ ...webhook(`https://hooks.example.com/warden?token=${TOKEN}`), heartbeats: { nightly: `https://hc-ping.com/${TOKEN}/` } });
    expect(resolved.sinks[0]).toMatchObject({ url: `https://hooks.example.com/warden?token=${TOKEN}` });
    expect(resolved.heartbeats.get('nightly')).toBe(`https://hc-ping.com/${TOKEN}`);
  });
});

describe('request errors of the webhook sink and the heartbeat pinger', () => {
  const notice: AlertNotice = {
    id: 'dead-letter:1:1#1:opened', event: 'opened', key: 'dead-letter:1:1', rule: 'dead-letter', severity: 'critical', summary: 'job x 1 is dead',
    details: {}, episode: 1, openedAt: new Date(T0).toISOString(), resolvedAt: null, instance: 'test',
  };
  /** A sink as validation would never let through: fetch refuses it with a TypeError quoting the URL. */
  const unchecked: ResolvedWebhookSink = { type: 'webhook', name: 'webhook', url: `https://ops:${TOKEN}@127.0.0.1:1/hook?sig=${TOKEN}x`, secret: SECRET, headers: {}, timeoutMs: 5_000 };

  it('the delivery error names the host and the error, not the URL, and keeps no cause quoting it', async () => {
    const error = await deliverWebhook(unchecked, notice, { clock: new FakeClock(T0) }).then(() => null, (e: unknown) => e);
    expect(error).toBeInstanceOf(AlertDeliveryError);
    expect((error as Error).message).toMatch(/^Expected alert sink "webhook" to accept the notice, got a failed request to 127\.0\.0\.1:1: TypeError: /);
    expect(shown(error)).not.toContain(TOKEN);
    expect((error as Error).cause).toBeUndefined();
  });

  it('reduces every URL in a request error\'s messages and causes to its host, and cuts out the URL\'s secrets', () => {
    const url = `https://hooks.example.com/warden/${TOKEN}?token=${TOKEN}2`;
    const cause = Object.assign(new Error(`connect to ${url} failed; token=${TOKEN}2`), { code: 'ECONNRESET' });
    const text = describeRequestError(new TypeError(`Failed to fetch ${url}`, { cause }), url);
    expect(text).toBe('TypeError: Failed to fetch https://hooks.example.com/… <- Error ECONNRESET: connect to https://hooks.example.com/… failed; [redacted]');
  });

  it('the heartbeat warning names the host and the error code, never the URL', async () => {
    const { logger, text } = capture();
    const events = new TypedEmitter();
    const pinger = new HeartbeatPinger({ events, clock: systemClock, logger, timeoutMs: 5_000, urls: new Map([['nightly', `https://hc:${TOKEN}@127.0.0.1:1/ping/${TOKEN}`]]) });
    const detach = pinger.attach();
    events.emit('job:started', { job: { id: '1', name: 'tick', queue: 'default', scheduleName: 'nightly' }, attempt: 1, leaseToken: 1, workerId: 'w' });
    await pinger.settled();
    detach();
    const [line] = text().split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(line).toMatchObject({ msg: 'heartbeat ping failed', schedule: 'nightly', signal: 'start', host: '127.0.0.1:1', error: expect.stringMatching(/^TypeError: /) });
    expect(text()).not.toContain(TOKEN);
  });
});

describe.each(DRIVER_KINDS)('failed deliveries and pings, stored and logged (%s)', (kind) => {
  const bed = alertTestBed(kind);
  let receiver: WebhookReceiver;
  beforeEach(async () => {
    receiver = bed.closeAfter(await startWebhookReceiver(SECRET), (r) => r.close());
    // Stopped: every request is refused (ECONNREFUSED), as by a receiver that is down.
    await receiver.stop();
  });

  it('never store or log the query token of the webhook URL nor the heartbeat key', async () => {
    const { logger, text } = capture();
    const { clock, tdb } = bed;
    const doomed = defineJob({ name: 'doomed', retry: { maxAttempts: 1 }, handler: () => { throw new Error('boom'); } });
    const host = new URL(receiver.url).host;
    const schedule = defineSchedule({ name: 'nightly', every: '1m', job: tick, heartbeat: { url: `http://${host}/ping/${TOKEN}` } });
    const warden = bed.closeAfter(createWarden({
      database: tdb.url, schema: tdb.schema, clock, logger, retention: false,
      jobs: [doomed], schedules: [schedule],
      alerts: { sinks: [{ type: 'webhook', url: `${receiver.url}?token=${TOKEN}`, secret: SECRET }] },
    }), (w) => w.close());
    await warden.enqueue(doomed, {});
    await warden.drain({ queues: ['default'] });
    await warden.alerts.settled();
    await warden.drain({ queues: ['warden'] });
    await warden.runSchedulerOnce();
    await clock.advance(MINUTE);
    await warden.runSchedulerOnce();
    await warden.drain({ queues: ['default'] });
    await warden.alerts.settled();

    const [delivery] = await warden.jobs.list({ name: ALERT_WEBHOOK_JOB });
    expect(delivery?.state).toBe('retrying');
    expect(delivery!.lastError!.message).toMatch(new RegExp(`got a failed request to ${host.replace(/\./g, '\\.')}: TypeError: fetch failed <- .*ECONNREFUSED`));
    expect(JSON.stringify([delivery, await warden.jobs.attempts(delivery!.id)])).not.toContain(TOKEN);
    const pings = text().split('\n').filter((l) => l.includes('heartbeat ping failed')).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(pings.map((p) => p.signal)).toEqual(['start', 'success']);
    expect(pings[0]).toMatchObject({ host, code: 'ECONNREFUSED' });
    expect(text()).toContain('job attempt failed');
    expect(text()).not.toContain(TOKEN);
  });
});
