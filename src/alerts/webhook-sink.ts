/**
 * The webhook sink: a JSON `POST` of the notice, signed so the receiver can tell it came from Warden and was not
 * replayed. `X-Warden-Timestamp` carries the send time in Unix seconds; `X-Warden-Signature` is
 * `sha256=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>`. Signing the timestamp with the body is what makes
 * an old captured request useless: the receiver rejects timestamps outside its tolerance.
 * @module
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { type Clock, systemClock } from '../clock/clock.js';
import { AlertDeliveryError } from '../errors.js';
import type { ResolvedWebhookSink } from './alert-options.js';
import type { AlertNotice } from './alert-notice.js';

/** Header with the send time, Unix seconds. */
export const WEBHOOK_TIMESTAMP_HEADER = 'x-warden-timestamp';
/** Header with `sha256=<hex>`, see the module comment. */
export const WEBHOOK_SIGNATURE_HEADER = 'x-warden-signature';
/** Header with the notice id (also in the body), for receivers that deduplicate before parsing. */
export const WEBHOOK_NOTICE_HEADER = 'x-warden-notice';

/** The `X-Warden-Signature` value for a body sent at `timestamp` (Unix seconds). */
export function signWebhook(secret: string, timestamp: number, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

/** What a receiver checks; see {@link verifyWebhookSignature}. */
export interface WebhookVerification {
  secret: string;
  /** The raw request body, exactly as received (not re-serialized JSON). */
  body: string | Buffer;
  /**
   * The `X-Warden-Timestamp` header, as Node's `req.headers` gives it: a header sent twice (an array) is refused, as
   * a missing one is.
   */
  timestamp: string | readonly string[] | undefined;
  /** The `X-Warden-Signature` header; an array (the header sent twice) is refused. */
  signature: string | readonly string[] | undefined;
  /** Oldest (and furthest in the future) timestamp accepted, against `now`. @default 300000 (5 minutes) */
  toleranceMs?: number;
  /** The receiver's time, ms since the epoch. @default the system clock's now */
  now?: number;
}

/**
 * Whether a webhook request is authentic and fresh: the signature matches (compared in constant time) and the
 * timestamp is within the tolerance. For receivers written in JavaScript; others recompute the HMAC as documented.
 * @example
 * const ok = verifyWebhookSignature({ secret, body: rawBody, timestamp: req.headers["x-warden-timestamp"],
 *   signature: req.headers["x-warden-signature"] });
 */
export function verifyWebhookSignature(check: WebhookVerification): boolean {
  const { secret, timestamp, signature } = check;
  if (typeof timestamp !== 'string' || !/^\d{1,12}$/.test(timestamp) || typeof signature !== 'string') return false;
  const toleranceMs = check.toleranceMs ?? 300_000;
  if (Math.abs((check.now ?? systemClock.now()) - Number(timestamp) * 1000) > toleranceMs) return false;
  const expected = Buffer.from(signWebhook(secret, Number(timestamp), typeof check.body === 'string' ? check.body : check.body.toString('utf8')));
  const given = Buffer.from(signature);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/**
 * Sends one notice to a webhook sink. Resolves when the receiver answered 2xx.
 * @throws AlertDeliveryError for any other status, a network error or the sink's timeout (the delivery job then
 *   retries with backoff).
 */
export async function deliverWebhook(sink: ResolvedWebhookSink, notice: AlertNotice, deps: { clock: Clock; signal?: AbortSignal }): Promise<void> {
  const body = JSON.stringify(notice);
  const timestamp = Math.floor(deps.clock.now() / 1000);
  const controller = new AbortController();
  const onAbort = () => controller.abort(deps.signal?.reason);
  if (deps.signal?.aborted) onAbort();
  deps.signal?.addEventListener('abort', onAbort, { once: true });
  // The clock's timer, not the platform's: tests drive it, and it never keeps the process alive.
  const cancel = deps.clock.setTimer(sink.timeoutMs, () => controller.abort(new AlertDeliveryError(sink.name, `no response within ${sink.timeoutMs}ms`)));
  try {
    const response = await fetch(sink.url, {
      method: 'POST',
      headers: {
        ...sink.headers,
        'content-type': 'application/json',
        'user-agent': 'warden-alerts',
        [WEBHOOK_TIMESTAMP_HEADER]: String(timestamp),
        [WEBHOOK_SIGNATURE_HEADER]: signWebhook(sink.secret, timestamp, body),
        [WEBHOOK_NOTICE_HEADER]: notice.id,
      },
      body,
      signal: controller.signal,
      // A redirect would re-send the signed body somewhere the operator did not configure.
      redirect: 'manual',
    });
    await response.body?.cancel().catch(() => undefined);
    if (response.status < 200 || response.status > 299) throw new AlertDeliveryError(sink.name, `HTTP ${response.status} from ${urlHost(sink.url)}`);
  } catch (error) {
    if (error instanceof AlertDeliveryError) throw error;
    const reason = controller.signal.aborted ? controller.signal.reason : error;
    if (reason instanceof AlertDeliveryError) throw reason;
    // fetch's own messages can quote the whole URL (with any credentials, path token or query), and this error is
    // stored as the delivery job's last_error and logged: only a scrubbed description goes in, and the original
    // is not kept as `cause` (pino's error serializer prints causes' messages and stacks too). Its messages can quote a
    // header value too (one it cannot send), and those carry the receiver's credentials.
    throw new AlertDeliveryError(sink.name, `a failed request to ${urlHost(sink.url)}: ${describeRequestError(error, sink.url, Object.values(sink.headers))}`);
  } finally {
    cancel();
    deps.signal?.removeEventListener('abort', onAbort);
  }
}

/** What may be said about a URL in errors and logs: its host (and port). Never its user-info, path or query. */
export function urlHost(url: string): string {
  try {
    return new URL(url).host || '(no host)';
  } catch {
    return '(invalid URL)';
  }
}

/** A URL anywhere in a text: what fetch's messages quote. */
const URL_IN_TEXT = /\b[a-z][a-z0-9+.-]*:\/\/[^\s"'<>`]+/gi;

/**
 * What fetch's `Headers` says of a header it cannot send: the name or value, quoted as it is (line breaks and quotes
 * included, hence from the first quote on).
 */
const HEADER_IN_TEXT = /".*?"(?= is an invalid header (?:name|value))/gs;

/**
 * Shorter hidden values are not cut out wherever they appear: a value such as `"1"` or `"on"` is no credential, and
 * cutting it would take every such character out of the message (an address, an error code). Quoted header values
 * are hidden whatever their length ({@link HEADER_IN_TEXT}).
 */
const MIN_HIDDEN_LENGTH = 4;

/**
 * A request error (fetch's `TypeError`, its `cause` chain, an abort) as one line safe to store and log: each
 * error's name, code and message, with every URL in the messages reduced to its scheme and host, `url`'s own
 * credentials and query string and the `hidden` values cut out wherever they appear, and any header name or value
 * fetch quotes as invalid replaced by `"(hidden)"`. Never throws.
 * @param url the URL that was requested.
 * @param hidden other values that must not be shown, such as the request's header values. @default []
 */
export function describeRequestError(error: unknown, url: string, hidden: readonly string[] = []): string {
  const secrets = [...urlSecrets(url), ...hidden.map((v) => v.trim()).filter((v) => v.length >= MIN_HIDDEN_LENGTH)].sort((a, b) => b.length - a.length);
  const scrub = (text: string): string => {
    let out = text.replace(HEADER_IN_TEXT, '"(hidden)"').replace(URL_IN_TEXT, (found) => {
      try {
        const parsed = new URL(found);
        return `${parsed.protocol}//${parsed.host}/…`;
      } catch {
        return '[url]';
      }
    });
    // Longest first (sorted above), so a secret containing another is removed whole.
    for (const secret of secrets) out = out.split(secret).join('[redacted]');
    return out;
  };
  const parts: string[] = [];
  let current: unknown = error;
  // fetch wraps the network error (ECONNREFUSED, ENOTFOUND, a TLS failure) as `cause`; a few levels say it all.
  for (let depth = 0; depth < 4 && current !== undefined && current !== null; depth++) {
    parts.push(describeOne(current, scrub));
    current = typeof current === 'object' ? (current as { cause?: unknown }).cause : undefined;
  }
  return parts.join(' <- ');
}

function describeOne(error: unknown, scrub: (text: string) => string): string {
  try {
    if (typeof error !== 'object') return scrub(String(error));
    const e = error as { name?: unknown; code?: unknown; message?: unknown; errors?: unknown };
    // An AggregateError (every address of a host refused) has an empty message; its first error says why.
    const inner = Array.isArray(e.errors) ? (e.errors[0] as { message?: unknown } | undefined)?.message : undefined;
    const message = typeof e.message === 'string' && e.message !== '' ? e.message : typeof inner === 'string' ? inner : '';
    const label = [typeof e.name === 'string' ? e.name : 'Error', typeof e.code === 'string' || typeof e.code === 'number' ? String(e.code) : ''].filter((x) => x !== '').join(' ');
    return scrub(message === '' ? label : `${label}: ${message}`);
  } catch {
    return '(unreadable error)';
  }
}

/** The parts of `url` that must never be shown: user name, password, query and fragment, as written and decoded. */
function urlSecrets(url: string): string[] {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return [];
  }
  const found = new Set<string>();
  for (const part of [parsed.password, parsed.username, parsed.search.slice(1), parsed.hash.slice(1)]) {
    if (part === '') continue;
    found.add(part);
    try {
      found.add(decodeURIComponent(part));
    } catch {
      // Malformed escapes: the raw form is cut out all the same.
    }
  }
  return [...found];
}
