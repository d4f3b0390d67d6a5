/**
 * A webhook sink's `headers` are checked as fetch will send them (`new Headers`), at `createWarden`: a header fetch
 * cannot send would otherwise fail every delivery with a TypeError quoting its value, a credential, stored as each
 * delivery job's `last_error` and logged. The errors never show a value, nor a key that is not a header name (it may
 * be a whole header line). A delivery error built from fetch's messages hides header values too.
 * @module
 */
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { resolveAlertOptions, type ResolvedWebhookSink } from '../../src/alerts/alert-options.js';
import type { AlertNotice } from '../../src/alerts/alert-notice.js';
import { deliverWebhook, describeRequestError } from '../../src/alerts/webhook-sink.js';
import { FakeClock } from '../../src/clock/fake-clock.js';
import { AlertDeliveryError, InvalidOptionError } from '../../src/errors.js';

const CREDENTIAL = 's3cret-token-value';
const sink = (headers: Record<string, unknown>) => ({ sinks: [{ type: 'webhook' as const, url: 'http://127.0.0.1:9/hook', secret: 'at-least-sixteen-chars', headers: headers as Record<string, string> }] });

/** Everything an error shows: its message, its `value`, and how a logger or the console would print it. */
function shown(error: unknown): string {
  return `${(error as Error).message}\n${JSON.stringify(error)}\n${inspect(error, { depth: 5 })}`;
}

function refusal(headers: Record<string, unknown>): InvalidOptionError {
  try {
    resolveAlertOptions(sink(headers));
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidOptionError);
    return error as InvalidOptionError;
  }
  throw new Error(`Expected headers ${Object.keys(headers).join(', ')} to be refused`);
}

describe('webhook headers', () => {
  it.each([
    ['a line break', `Bearer ${CREDENTIAL}\nx`],
    ['a carriage return', `Bearer\r${CREDENTIAL}`],
    ['a NUL', `Bearer ${CREDENTIAL}\u0000`],
    ['a character above Latin-1', `Bearer ${CREDENTIAL}\u0100`],
  ])('refuses a value with %s at createWarden, naming the header but never the value', (_title, value) => {
    const error = refusal({ Authorization: value });
    expect(error.field).toBe('alerts.sinks[0].headers["Authorization"]');
    expect(error.message).toMatch(/^Expected alerts\.sinks\[0\]\.headers\["Authorization"\] to be a header value fetch can send/);
    expect(shown(error)).not.toContain(CREDENTIAL);
    expect(error.cause).toBeUndefined();
  });

  it.each([
    ['a whole header line', `Authorization: Bearer ${CREDENTIAL}`],
    ['a space', 'X Api Key'],
    ['an empty name', ''],
  ])('refuses a key that is not a header name (%s), without showing it', (_title, name) => {
    const error = refusal({ 'X-Ok': 'fine', [name]: CREDENTIAL });
    expect(error.field).toBe('alerts.sinks[0].headers');
    expect(shown(error)).not.toContain(CREDENTIAL);
    expect(error.value).toEqual({ 'X-Ok': '(hidden)', '(not a header name, #1)': '(hidden)' });
  });

  it('still refuses a value that is not a string, showing its type only', () => {
    expect(refusal({ 'X-Ok': CREDENTIAL, 'X-Count': 3 }).value).toEqual({ 'X-Ok': '(hidden)', 'X-Count': '(number)' });
  });

  it('accepts what fetch sends: tokens, Latin-1 text, padding, an empty value', () => {
    const resolved = resolveAlertOptions(sink({ Authorization: `Bearer ${CREDENTIAL}`, 'X-Name': 'café', 'X-Pad': ' padded ', 'X-Empty': '' }));
    expect((resolved.sinks[0] as ResolvedWebhookSink).headers).toEqual({ Authorization: `Bearer ${CREDENTIAL}`, 'X-Name': 'café', 'X-Pad': ' padded ', 'X-Empty': '' });
  });
});

describe('delivery errors hide header values', () => {
  const notice = { id: 'n1' } as AlertNotice;

  it('a header fetch refuses (one that skipped validation) is not quoted in the delivery error', async () => {
    const unchecked: ResolvedWebhookSink = { type: 'webhook', name: 'webhook', url: 'http://127.0.0.1:9/hook', secret: 'at-least-sixteen-chars', headers: { authorization: `Bearer ${CREDENTIAL}\nx` }, timeoutMs: 5_000 };
    const error = await deliverWebhook(unchecked, notice, { clock: new FakeClock(0) }).then(() => null, (e: unknown) => e);
    expect(error).toBeInstanceOf(AlertDeliveryError);
    expect((error as Error).message).toMatch(/^Expected alert sink "webhook" to accept the notice, got a failed request to 127\.0\.0\.1:9: TypeError: /);
    expect(shown(error)).not.toContain(CREDENTIAL);
  });

  it('describeRequestError cuts out the values it is given, and hides any quoted invalid header', () => {
    const url = 'https://hooks.example.com/warden';
    expect(describeRequestError(new Error(`upstream echoed Bearer ${CREDENTIAL} back`), url, [`Bearer ${CREDENTIAL}`])).toBe('Error: upstream echoed [redacted] back');
    expect(describeRequestError(new TypeError('Headers.append: "Bearer "x"\nyz" is an invalid header value.'), url)).toBe('TypeError: Headers.append: "(hidden)" is an invalid header value.');
    // Values too short to be credentials are left alone: cutting "1" would take every 1 out of the address.
    expect(describeRequestError(new Error('connect ECONNREFUSED 127.0.0.1:9'), url, ['1'])).toBe('Error: connect ECONNREFUSED 127.0.0.1:9');
  });
});
