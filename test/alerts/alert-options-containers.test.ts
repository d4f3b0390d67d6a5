/**
 * Refused alert options keep no credentials in `InvalidOptionError` (its `value` is an own property, which error
 * serializers such as pino's log): a container refused whole (the options given as an array of sinks, `sinks` given
 * as one sink object) is kept as its kind only, as refused smtp objects and headers keep only their shape
 * (alert-options.test.ts).
 * @module
 */
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { resolveAlertOptions } from '../../src/alerts/alert-options.js';
import { InvalidOptionError } from '../../src/errors.js';

const SECRET = 'webhook-secret-9f8e7d6c';
const PASS = 'smtp-pass-9f8e7d6c';
const webhook = { type: 'webhook' as const, url: 'https://hooks.example.com/warden', secret: SECRET, headers: { Authorization: `Bearer ${PASS}` } };
const email = { type: 'email' as const, smtp: { host: 'relay', auth: { user: 'u', pass: PASS } }, from: 'w@example.com', to: 'ops@example.com' };

function refusal(options: unknown): InvalidOptionError {
  try {
    resolveAlertOptions(options as never);
  } catch (e) {
    return e as InvalidOptionError;
  }
  throw new Error('not refused');
}

describe('alert options refused without credentials in the error', () => {
  it.each([
    ['sinks given as one webhook object instead of an array', { sinks: webhook }],
    ['sinks given as one email object instead of an array', { sinks: email }],
    ['alerts given as an array of sinks', [webhook, email]],
  ])('%s', (_, options) => {
    const error = refusal(options);
    expect(error).toBeInstanceOf(InvalidOptionError);
    const serialized = JSON.stringify(pino.stdSerializers.err(error));
    expect(serialized).not.toContain(SECRET);
    expect(serialized).not.toContain(PASS);
  });
});
