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
  /** The `X-Warden-Timestamp` header. */
  timestamp: string | undefined;
  /** The `X-Warden-Signature` header. */
  signature: string | undefined;
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
    if (response.status < 200 || response.status > 299) throw new AlertDeliveryError(sink.name, `HTTP ${response.status} from ${new URL(sink.url).host}`);
  } catch (error) {
    if (error instanceof AlertDeliveryError) throw error;
    const reason = controller.signal.aborted ? controller.signal.reason : error;
    if (reason instanceof AlertDeliveryError) throw reason;
    const cause = (error as { cause?: { code?: string; message?: string } } | null)?.cause;
    throw new AlertDeliveryError(sink.name, `${(error as Error)?.message ?? String(error)}${cause?.code ? ` (${cause.code})` : ''}`, { cause: error });
  } finally {
    cancel();
    deps.signal?.removeEventListener('abort', onAbort);
  }
}
