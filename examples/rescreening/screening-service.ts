/**
 * A local stand-in for a third-party sanctions/PEP screening API: a real HTTP server on 127.0.0.1 (free port).
 *
 * `POST /screen` with an `Idempotency-Key` header and a JSON body `{ customerId, name, country }` answers
 * `200 { screeningId, customerId, verdict: "clear" | "hit" }`. Like a real provider it is flaky, at configurable
 * rates:
 * - **503**: it does nothing and says so; the client may try again.
 * - **hang**: it performs (and bills) the screening, then holds the answer past the client's timeout. The client
 *   cannot tell this from a 503; only the idempotency key saves it from paying twice when it retries.
 *
 * It remembers every key: a repeated key gets the stored answer (header `Idempotent-Replayed: true`) and is not
 * screened or billed again; a key reused for a different customer is refused with 422. It counts everything, so
 * the example can show that no customer was screened twice.
 * @module
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** How flaky the service is. */
export interface ScreeningServiceOptions {
  /** Share of requests answered 503 without doing anything. */
  failureRate: number;
  /** Share of requests (that got past the 503s) screened and then answered only after `hangMs`. */
  timeoutRate: number;
  /** How long a hanging answer takes: longer than the client's timeout. */
  hangMs: number;
  /** Share of customers that are a hit, chosen by a hash of the customer, so it is stable. @default 0.02 */
  hitRate?: number;
  /** Randomness for the failures. @default Math.random */
  random?: () => number;
}

/** What the service saw. */
export interface ScreeningServiceStats {
  /** HTTP requests received on `POST /screen`. */
  calls: number;
  /** Distinct idempotency keys received. */
  distinctKeys: number;
  /** Screenings performed and billed: one per key at most, by construction. */
  screenings: number;
  /** Requests answered from the key store: a retry of a request that had been screened already. */
  replays: number;
  /** Requests answered 503. */
  unavailable: number;
  /** Requests screened and then held past the client's timeout. */
  hung: number;
  /** Requests refused as malformed (400) or as a key reused for another customer (422). */
  rejected: number;
  /** Customers screened more than once (under different keys): the duplicates an idempotency key cannot catch. */
  customersScreenedTwice: number;
}

/** A running fake service. */
export interface ScreeningService {
  /** Base URL, e.g. `http://127.0.0.1:43117`. */
  readonly url: string;
  stats(): ScreeningServiceStats;
  close(): Promise<void>;
}

interface StoredAnswer {
  screeningId: string;
  customerId: number;
  verdict: 'clear' | 'hit';
}

/** Starts the service; resolves once it listens. */
export async function startScreeningService(options: ScreeningServiceOptions): Promise<ScreeningService> {
  const random = options.random ?? Math.random;
  const hitRate = options.hitRate ?? 0.02;
  const answers = new Map<string, StoredAnswer>();
  const seenKeys = new Set<string>();
  const screeningsByCustomer = new Map<number, number>();
  const counts = { calls: 0, screenings: 0, replays: 0, unavailable: 0, hung: 0, rejected: 0 };
  const timers = new Set<NodeJS.Timeout>();

  const reply = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    if (!res.destroyed) res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
  };

  const handle = (req: IncomingMessage, res: ServerResponse, text: string): void => {
    if (req.method !== 'POST' || req.url !== '/screen') return reply(res, 404, { error: 'not found' });
    counts.calls++;
    const key = req.headers['idempotency-key'];
    let body: { customerId?: unknown; name?: unknown };
    try {
      body = JSON.parse(text) as typeof body;
    } catch {
      body = {};
    }
    if (typeof key !== 'string' || key.length === 0 || key.length > 255 || !Number.isSafeInteger(body.customerId) || typeof body.name !== 'string') {
      counts.rejected++;
      return reply(res, 400, { error: 'expected an Idempotency-Key header and a body { customerId, name, country }' });
    }
    const customerId = body.customerId as number;
    // Counted from a key's first request on, even a failed one: "distinct keys" is what arrived.
    seenKeys.add(key);
    const stored = answers.get(key);
    if (random() < options.failureRate) {
      counts.unavailable++;
      return reply(res, 503, { error: 'screening temporarily unavailable, try again' });
    }
    if (stored) {
      if (stored.customerId !== customerId) {
        counts.rejected++;
        return reply(res, 422, { error: `idempotency key ${key} was used for customer ${stored.customerId}` });
      }
      counts.replays++;
      return reply(res, 200, stored, { 'idempotent-replayed': 'true' });
    }
    // Perform (and bill) the screening, and remember the answer under the key before anything can go wrong.
    counts.screenings++;
    screeningsByCustomer.set(customerId, (screeningsByCustomer.get(customerId) ?? 0) + 1);
    const answer: StoredAnswer = { screeningId: `scr_${counts.screenings}`, customerId, verdict: stableShare(`${customerId}:${body.name}`) < hitRate ? 'hit' : 'clear' };
    answers.set(key, answer);
    if (random() < options.timeoutRate) {
      counts.hung++;
      const timer = setTimeout(() => {
        timers.delete(timer);
        reply(res, 200, answer);
      }, options.hangMs);
      timers.add(timer);
      // The client gave up and closed the connection: nothing left to answer.
      res.once('close', () => {
        clearTimeout(timer);
        timers.delete(timer);
      });
      return;
    }
    reply(res, 200, answer);
  };

  const server = createServer((req, res) => {
    let text = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => {
      text += chunk;
    });
    req.on('end', () => handle(req, res, text));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    stats: () => ({
      ...counts,
      distinctKeys: seenKeys.size,
      customersScreenedTwice: [...screeningsByCustomer.values()].filter((n) => n > 1).length,
    }),
    close: async () => {
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      const closed = new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())));
      server.closeAllConnections();
      await closed;
    },
  };
}

/** A number in [0, 1) fixed by `text` (FNV-1a), so a customer's verdict is the same on every run. */
function stableShare(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) / 4294967296;
}
