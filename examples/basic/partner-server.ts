/**
 * A stand-in for a flaky third-party API, listening on 127.0.0.1 on a free port. For each `x-request-id` it
 * answers the first `failuresPerRequest` requests with 503; for ids listed in `slowOnce`, the next request is
 * answered only after `slowMs` (longer than the client's timeout); after that it answers 200. Deterministic,
 * so the example can check what happened.
 * @module
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface PartnerServerOptions {
  /** 503 answers per request id before anything else. */
  failuresPerRequest: number;
  /** Request ids that get one slow answer after their failures. */
  slowOnce: ReadonlySet<string>;
  /** How slow a slow answer is. */
  slowMs: number;
}

/** One request the server saw. */
export interface PartnerRequest {
  requestId: string;
  idempotencyKey: string | undefined;
  /** What the server did: an HTTP status, or "slow" when it delayed (the client usually gave up first). */
  answer: number | 'slow';
}

export interface PartnerServer {
  url: string;
  /** Every request seen, in arrival order. */
  requests: PartnerRequest[];
  /** Payouts applied, by idempotency key: a retried request with the same key is not applied twice. */
  payouts: ReadonlyMap<string, string>;
  close(): Promise<void>;
}

export async function startPartnerServer(options: PartnerServerOptions): Promise<PartnerServer> {
  const seen = new Map<string, number>();
  const slowDone = new Set<string>();
  /** Idempotency keys already applied: a repeated payout is acknowledged, not applied twice. */
  const applied = new Map<string, string>();
  const requests: PartnerRequest[] = [];
  const timers = new Set<NodeJS.Timeout>();

  const handle = (req: IncomingMessage, res: ServerResponse, body: string): void => {
    const requestId = String(req.headers['x-request-id'] ?? '');
    const idempotencyKey = req.headers['idempotency-key'] as string | undefined;
    if (req.method !== 'POST' || req.url !== '/v1/payouts' || !requestId) {
      requests.push({ requestId, idempotencyKey, answer: 400 });
      res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'bad request' }));
      return;
    }
    const count = (seen.get(requestId) ?? 0) + 1;
    seen.set(requestId, count);
    if (count <= options.failuresPerRequest) {
      requests.push({ requestId, idempotencyKey, answer: 503 });
      res.writeHead(503, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'service unavailable, try again' }));
      return;
    }
    const ok = (): void => {
      let payoutId = idempotencyKey ? applied.get(idempotencyKey) : undefined;
      if (!payoutId) {
        payoutId = `po_${requestId}_${applied.size + 1}`;
        if (idempotencyKey) applied.set(idempotencyKey, payoutId);
      }
      if (!res.destroyed) res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ payoutId, received: JSON.parse(body || 'null') }));
    };
    if (options.slowOnce.has(requestId) && !slowDone.has(requestId)) {
      slowDone.add(requestId);
      requests.push({ requestId, idempotencyKey, answer: 'slow' });
      const timer = setTimeout(() => {
        timers.delete(timer);
        ok();
      }, options.slowMs);
      timers.add(timer);
      return;
    }
    requests.push({ requestId, idempotencyKey, answer: 200 });
    ok();
  };

  const server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => {
      body += chunk;
    });
    req.on('end', () => handle(req, res, body));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    payouts: applied,
    close: async () => {
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      const closed = new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())));
      server.closeAllConnections();
      await closed;
    },
  };
}
