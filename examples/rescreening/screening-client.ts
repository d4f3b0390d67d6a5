/**
 * The application's client for the screening service: one customer per request, bounded by the attempt's
 * signal and by a per-request timeout, retried a few times in place with the same idempotency key.
 * @module
 */
import { setMaxListeners } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { NonRetryableError } from '../../src/index.js';
import type { Customer, ScreeningOutcome } from './app-db.js';

/** How to reach the service and how hard to try. */
export interface ScreeningClientOptions {
  baseUrl: string;
  /** Each HTTP request's own time limit. */
  requestTimeoutMs: number;
  /** Requests per customer before giving up (the step then fails, and Warden retries the attempt). */
  maxTries: number;
}

/** The service stayed unavailable (503s, timeouts, refused connections) for every try. Retryable by Warden. */
export class ScreeningUnavailableError extends Error {
  override name = 'ScreeningUnavailableError';
}

/**
 * Screens one customer. Every try sends the same `idempotencyKey`, so a try whose answer was lost (a timeout
 * after the service had screened) is answered from the service's key store on the next, not screened twice.
 * @throws the signal's reason when the attempt was aborted (timeout, lost lease, shutdown);
 *   NonRetryableError for a 4xx (the request itself is wrong: retrying cannot help);
 *   ScreeningUnavailableError after `maxTries` failed tries.
 */
export async function screenCustomer(client: ScreeningClientOptions, customer: Customer, idempotencyKey: string, signal: AbortSignal): Promise<ScreeningOutcome> {
  let last = '';
  for (let tries = 1; tries <= client.maxTries; tries++) {
    // The request's own timeout, on a timer this function holds and clears. Not `AbortSignal.any([signal,
    // AbortSignal.timeout(ms)])`: on Node 20 the timeout signal inside `any()` can be garbage-collected before it
    // fires, and the request then waits for the server however long it takes (nodejs/node#57736; seen here on
    // about 1 in 15 hung requests).
    const timeout = new AbortController();
    const timer = setTimeout(() => timeout.abort(new DOMException(`no answer within ${client.requestTimeoutMs} ms`, 'TimeoutError')), client.requestTimeoutMs);
    try {
      const response = await fetch(`${client.baseUrl}/screen`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': idempotencyKey },
        body: JSON.stringify({ customerId: customer.id, name: customer.name, country: customer.country }),
        signal: AbortSignal.any([signal, timeout.signal]),
      });
      const text = await response.text();
      if (response.ok) {
        const answer = JSON.parse(text) as { screeningId: string; verdict: 'clear' | 'hit' };
        return { customerId: customer.id, verdict: answer.verdict, screeningId: answer.screeningId, requests: tries, screenedAt: new Date().toISOString() };
      }
      if (response.status < 500) throw new NonRetryableError(`Expected the screening service to accept customer ${customer.id}, got ${response.status}: ${text}`);
      last = `HTTP ${response.status}`;
    } catch (error) {
      // The attempt itself must stop: say why in Warden's terms, not as a network error.
      if (signal.aborted) throw signal.reason;
      if (error instanceof NonRetryableError) throw error;
      last = timeout.signal.aborted ? `no answer within ${client.requestTimeoutMs} ms` : (error as Error).message;
    } finally {
      clearTimeout(timer);
    }
    if (tries < client.maxTries) {
      // Short, jittered backoff: these are in-place retries of one request, not Warden's attempt retries.
      await sleep(25 * 2 ** (tries - 1) * (0.5 + Math.random()), undefined, { signal }).catch(() => {
        throw signal.reason;
      });
    }
  }
  throw new ScreeningUnavailableError(`Expected the screening service to screen customer ${customer.id} within ${client.maxTries} tries, got ${last} on the last`);
}

/**
 * Screens `customers` with at most `concurrency` requests in flight; outcomes in input order. Customer `c` is
 * sent with the idempotency key `${keyPrefix}:${c.id}`. The first customer that cannot be screened stops new
 * requests and is thrown once those in flight have settled, so no request outlives the call.
 * @throws as {@link screenCustomer}.
 */
export async function screenCustomers(client: ScreeningClientOptions, customers: readonly Customer[], keyPrefix: string, signal: AbortSignal, concurrency: number): Promise<ScreeningOutcome[]> {
  // One listener on the caller's signal (Warden's attempt signal), fanned out through a signal of our own:
  // every request and backoff listens to that one, and it is allowed as many listeners as there are lanes.
  const lanes = new AbortController();
  setMaxListeners(concurrency * 2 + 10, lanes.signal);
  const forward = () => lanes.abort(signal.reason);
  if (signal.aborted) forward();
  else signal.addEventListener('abort', forward, { once: true });
  try {
    return await mapLimited(customers, concurrency, (customer) => screenCustomer(client, customer, `${keyPrefix}:${customer.id}`, lanes.signal));
  } finally {
    signal.removeEventListener('abort', forward);
  }
}

/**
 * Runs `fn` over `items` with at most `limit` in flight, results in input order. The first failure stops
 * new work and is thrown once everything in flight has settled.
 */
async function mapLimited<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  let failure: { error: unknown } | null = null;
  const lane = async () => {
    while (failure === null && next < items.length) {
      const index = next++;
      try {
        results[index] = await fn(items[index]!);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  if (failure !== null) throw (failure as { error: unknown }).error;
  return results;
}
