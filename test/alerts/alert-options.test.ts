/**
 * Unit tests without a database: the `alerts` option's defaults and typed validation errors, the dead man's switch
 * as a pure function of stored ticks, and webhook signing.
 * @module
 */
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { DEFAULT_DELIVERY_RETRY, resolveAlertOptions } from '../../src/alerts/alert-options.js';
import { findMissedRun } from '../../src/alerts/missed-run.js';
import { signWebhook, verifyWebhookSignature } from '../../src/alerts/webhook-sink.js';
import { createWarden } from '../../src/client/warden.js';
import type { ScheduleTickRow } from '../../src/driver/schedule-params.js';
import { InvalidDurationError, InvalidNameError, InvalidOptionError } from '../../src/errors.js';
import { defineJob } from '../../src/job/define-job.js';
import { defineSchedule } from '../../src/schedule/define-schedule.js';
import type { ScheduleSpec } from '../../src/schedule/schedule-spec.js';

const MINUTE = 60_000;
const T0 = Date.UTC(2040, 0, 1);
const webhook = { type: 'webhook' as const, url: 'https://hooks.example.com/warden', secret: 'a-secret-of-16-chars' };

describe('alerts options', () => {
  it('applies the documented defaults', () => {
    expect(resolveAlertOptions({})).toEqual({
      sinks: [],
      rules: {
        deadLetter: true,
        consecutiveFailures: { count: 5 },
        failureRate: { threshold: 0.5, windowMs: 15 * MINUTE, minAttempts: 20 },
        missedRun: true,
        runTooLong: { thresholdMs: null },
        queueLag: { thresholdMs: 5 * MINUTE },
        leaseExpiry: { count: 3, windowMs: 15 * MINUTE },
      },
      checkIntervalMs: 15_000,
      heartbeats: new Map(),
      heartbeatTimeoutMs: 5_000,
      delivery: { queue: 'warden', retry: DEFAULT_DELIVERY_RETRY },
    });
    const resolved = resolveAlertOptions({ sinks: [webhook, { type: 'email', smtp: 'smtp://relay:25', from: 'w@example.com', to: 'ops@example.com' }], rules: { failureRate: false, queueLag: { threshold: '90s' } } });
    expect(resolved.sinks).toEqual([
      { ...webhook, name: 'webhook', headers: {}, timeoutMs: 10_000 },
      { type: 'email', name: 'email', smtp: 'smtp://relay:25', from: 'w@example.com', to: ['ops@example.com'], subjectPrefix: '[warden]', timeoutMs: 30_000 },
    ]);
    expect([resolved.rules.failureRate, resolved.rules.queueLag]).toEqual([null, { thresholdMs: 90_000 }]);
  });

  it.each([
    [{ sinks: {} }, InvalidOptionError, 'alerts.sinks'],
    [{ sinks: [{ type: 'sms' }] }, InvalidOptionError, 'alerts.sinks[0].type'],
    [{ sinks: [{ ...webhook, url: 'ftp://x' }] }, InvalidOptionError, 'alerts.sinks[0].url'],
    [{ sinks: [{ ...webhook, secret: 'short' }] }, InvalidOptionError, 'alerts.sinks[0].secret'],
    [{ sinks: [webhook, webhook] }, InvalidOptionError, 'alerts.sinks[1].name'],
    [{ sinks: [{ ...webhook, name: 'Bad Name' }] }, InvalidNameError, 'alerts.sinks[0].name'],
    [{ sinks: [{ type: 'email', smtp: { host: '' }, from: 'w@example.com', to: 'x@example.com' }] }, InvalidOptionError, 'alerts.sinks[0].smtp'],
    [{ sinks: [{ type: 'email', smtp: 'smtp://relay', from: 'nobody', to: 'x@example.com' }] }, InvalidOptionError, 'alerts.sinks[0].from'],
    [{ sinks: [{ type: 'email', smtp: 'smtp://relay', from: 'w@example.com', to: [] }] }, InvalidOptionError, 'alerts.sinks[0].to'],
    [{ rules: { failureRate: { threshold: 1.5 } } }, InvalidOptionError, 'alerts.rules.failureRate.threshold'],
    [{ rules: { consecutiveFailures: { count: 0 } } }, InvalidOptionError, 'alerts.rules.consecutiveFailures.count'],
    [{ rules: { queueLag: { threshold: 'soon' } } }, InvalidDurationError, 'alerts.rules.queueLag.threshold'],
    [{ rules: { deadLetter: 'yes' } }, InvalidOptionError, 'alerts.rules.deadLetter'],
    [{ checkInterval: 0 }, InvalidDurationError, 'alerts.checkInterval'],
    [{ heartbeats: { nightly: 'https://hc.example.com/ping/x?y=1' } }, InvalidOptionError, 'alerts.heartbeats["nightly"]'],
    [{ delivery: { retry: { maxAttempts: 0 } } }, InvalidOptionError, 'alerts.delivery.retry.maxAttempts'],
  ])('rejects %j with %o naming the field', (options, type, field) => {
    const error = (() => {
      try {
        resolveAlertOptions(options as never);
      } catch (e) {
        return e as { field?: string };
      }
      return null;
    })();
    expect(error).toBeInstanceOf(type);
    expect(error!.field).toBe(field);
  });

  it('fails createWarden at once, and never puts a secret in the message', () => {
    expect(() => createWarden({ database: 'sqlite::memory:', alerts: { sinks: [{ ...webhook, secret: 'tooshort-secret' }] } })).toThrow(/alerts\.sinks\[0\]\.secret.*"\(hidden\)"/);
  });

  /**
   * `InvalidOptionError.value` is an own enumerable property, which error serializers (pino's among them) log with
   * the message: a refused `smtp` object or `headers` object must not carry the credentials it was given.
   */
  it.each([
    ['an smtp object with no host', { type: 'email', smtp: { host: '', port: 587, auth: { user: 'warden', pass: 'smtp-pass-9f8e7d6c' } }, from: 'w@example.com', to: 'ops@example.com' }, { host: '', port: 587, auth: '(hidden)' }],
    ['an smtp object with unknown fields', { type: 'email', smtp: { auth: { user: 'warden', pass: 'smtp-pass-9f8e7d6c' }, password: 'smtp-pass-9f8e7d6c' }, from: 'w@example.com', to: 'ops@example.com' }, { auth: '(hidden)' }],
    ['webhook headers with a value of the wrong type', { ...webhook, headers: { Authorization: 'Bearer smtp-pass-9f8e7d6c', 'X-Retry': 3 } }, { Authorization: '(hidden)', 'X-Retry': '(number)' }],
    ['webhook headers given as a string', { ...webhook, headers: 'Authorization: Bearer smtp-pass-9f8e7d6c' }, '(hidden)'],
  ])('refuses %s without keeping its credentials in the error', (_, sink, shown) => {
    let error: unknown = null;
    try {
      resolveAlertOptions({ sinks: [sink as never] });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(InvalidOptionError);
    const { value, message } = error as InvalidOptionError;
    expect(value).toEqual(shown);
    const own = JSON.stringify({ ...(error as object), message });
    expect(own).not.toContain('smtp-pass-9f8e7d6c');
    expect(JSON.stringify(pino.stdSerializers.err(error as Error))).not.toContain('smtp-pass-9f8e7d6c');
  });

  it('validates a schedule\'s heartbeat URL in defineSchedule', () => {
    const job = defineJob({ name: 'j', handler: () => undefined });
    expect(defineSchedule({ name: 's', every: '1m', job, heartbeat: { url: 'https://hc-ping.com/abc/' } }).heartbeat).toEqual({ url: 'https://hc-ping.com/abc' });
    expect(() => defineSchedule({ name: 's', every: '1m', job, heartbeat: { url: 'not a url' } })).toThrow(InvalidOptionError);
  });
});

describe('findMissedRun', () => {
  const spec = { cron: null, everyMs: MINUTE, timezone: 'UTC', expect: { withinMs: 2 * MINUTE, maxRuntimeMs: null } } as unknown as ScheduleSpec;
  const at = (m: number) => new Date(T0 + m * MINUTE);
  function tick(m: number, jobState: ScheduleTickRow['jobState'], outcome: ScheduleTickRow['outcome'] = 'fired', kind: ScheduleTickRow['kind'] = 'scheduled'): ScheduleTickRow {
    return { scheduleName: 's', tickAt: at(m), kind, outcome, late: false, jobId: outcome === 'fired' ? '1' : null, jobState, actor: null, recordedAt: at(m) };
  }

  it('finds nothing while every tick past its deadline has a completed run of it or a later tick', () => {
    expect(findMissedRun({ spec, nextRunAt: at(4), ticks: [tick(1, 'completed'), tick(2, 'dead'), tick(3, 'completed')], now: at(5) })).toBeNull();
    // +3m's run is still running, but its deadline (+5m) has not passed.
    expect(findMissedRun({ spec, nextRunAt: at(4), ticks: [tick(2, 'completed'), tick(3, 'running')], now: new Date(T0 + 5 * MINUTE - 1) })).toBeNull();
    expect(findMissedRun({ spec, nextRunAt: at(4), ticks: [tick(2, 'completed'), tick(3, 'running')], now: at(5) })).toMatchObject({ firstMissedTickAt: at(3), missedTicks: 1 });
    // A fired tick whose job is gone (state null) before the newest completed run is covered by that run.
    expect(findMissedRun({ spec, nextRunAt: at(4), ticks: [tick(1, null), tick(2, null), tick(3, 'completed')], now: at(5) })).toBeNull();
  });

  it('never counts a fired tick whose job is gone as a success: it may have been discarded or pruned dead', () => {
    expect(findMissedRun({ spec, nextRunAt: at(4), ticks: [tick(1, 'completed'), tick(2, null)], now: at(5) }))
      .toMatchObject({ firstMissedTickAt: at(2), missedTicks: 1, lastSuccessTickAt: at(1) });
    expect(findMissedRun({ spec, nextRunAt: at(4), ticks: [tick(2, null), tick(3, null)], now: at(5) }))
      .toMatchObject({ firstMissedTickAt: at(2), missedTicks: 2, lastSuccessTickAt: null });
  });

  it('finds ticks no scheduler handled, from next_run_at on, once the first one\'s deadline passed', () => {
    const ticks = [tick(1, 'completed')];
    expect(findMissedRun({ spec, nextRunAt: at(2), ticks, now: new Date(T0 + 4 * MINUTE - 1) })).toBeNull();
    expect(findMissedRun({ spec, nextRunAt: at(2), ticks, now: at(6) })).toEqual({
      firstMissedTickAt: at(2), dueBy: at(4), missedTicks: 3, unhandledTicks: 3, lastSuccessTickAt: at(1), withinMs: 2 * MINUTE,
    });
  });

  it('finds recorded missed, skipped and failed ticks, and a manual trigger that completed counts as a success', () => {
    const ticks = [tick(1, 'completed'), tick(2, null, 'missed'), tick(3, null, 'skipped'), tick(4, 'dead')];
    expect(findMissedRun({ spec, nextRunAt: at(5), ticks, now: at(6) })).toMatchObject({ firstMissedTickAt: at(2), missedTicks: 3, unhandledTicks: 0 });
    const triggered = { ...tick(4.5, 'completed', 'fired', 'triggered') };
    expect(findMissedRun({ spec, nextRunAt: at(5), ticks: [...ticks, triggered], now: at(6) })).toBeNull();
  });

  it('ignores a schedule without expect.within', () => {
    expect(findMissedRun({ spec: { ...spec, expect: null }, nextRunAt: at(0), ticks: [], now: at(100) })).toBeNull();
  });
});

describe('webhook signatures', () => {
  const body = JSON.stringify({ id: 'x#1:opened' });
  const now = T0;
  const ts = String(Math.floor(now / 1000));
  it('verifies a fresh, untampered request and nothing else', () => {
    const signature = signWebhook('s3cret-s3cret-s3cret', Number(ts), body);
    expect(signature).toMatch(/^sha256=[0-9a-f]{64}$/);
    const check = { secret: 's3cret-s3cret-s3cret', body, timestamp: ts, signature, now };
    expect(verifyWebhookSignature(check)).toBe(true);
    expect(verifyWebhookSignature({ ...check, body: body.replace('opened', 'resolved') })).toBe(false);
    expect(verifyWebhookSignature({ ...check, secret: 'another-secret-value' })).toBe(false);
    expect(verifyWebhookSignature({ ...check, timestamp: String(Number(ts) + 1) })).toBe(false);
    expect(verifyWebhookSignature({ ...check, now: now + 6 * MINUTE })).toBe(false);
    expect(verifyWebhookSignature({ ...check, signature: undefined })).toBe(false);
    // A header sent twice reaches Node's req.headers as an array: refused, whichever copy is right.
    expect(verifyWebhookSignature({ ...check, signature: [check.signature as string, check.signature as string] })).toBe(false);
    expect(verifyWebhookSignature({ ...check, timestamp: [ts, ts] })).toBe(false);
  });
});
