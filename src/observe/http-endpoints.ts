import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Registry } from 'prom-client';
import { InvalidOptionError } from '../errors.js';
import type { ReadinessResult } from './readiness-check.js';

/** What a readiness callback may answer: a full result, or just whether the process is ready. */
export type ReadyAnswer = ReadinessResult | boolean;

/** Options of {@link createHttpEndpoints}. */
export interface HttpEndpointsOptions {
  /** The registry `/metrics` serves, e.g. `attachMetrics(…).registry`. @default none: `/metrics` is not served */
  registry?: Registry;
  /**
   * Decides `/readyz`: usually `createReadinessCheck(…).check`. A rejection counts as not ready.
   * @default always ready (then `/readyz` says no more than `/livez`)
   */
  ready?: () => ReadyAnswer | Promise<ReadyAnswer>;
  /** The paths served, relative to where the handler is mounted. @default { metrics: "/metrics", livez: "/livez", readyz: "/readyz" } */
  paths?: Partial<Record<'metrics' | 'livez' | 'readyz', string>>;
}

/**
 * A request handler for node's `http` server or an express-style app: `(req, res, next?)`. Requests for other
 * paths go to `next` when given (middleware), else get a 404.
 */
export type HttpEndpointsHandler = (req: IncomingMessage, res: ServerResponse, next?: (error?: unknown) => void) => void;

/**
 * Serves `/metrics` (the registry in Prometheus text format), `/livez` (200 while the process can answer at all)
 * and `/readyz` (200 when `ready()` says so, else 503 with a JSON reason). GET and HEAD only; responses are
 * never cached, since a cached probe answer would hide the current state.
 * @throws InvalidOptionError for a bad option.
 * @example
 * const metrics = attachMetrics({ events: warden.events, driver: warden.driver });
 * const readiness = createReadinessCheck({ driver: warden.driver, events: warden.events });
 * app.use(createHttpEndpoints({ registry: metrics.registry, ready: readiness.check })); // express
 * http.createServer(createHttpEndpoints({ registry: metrics.registry })).listen(9464); // node
 */
export function createHttpEndpoints(options: HttpEndpointsOptions = {}): HttpEndpointsHandler {
  const { registry, ready } = options;
  if (registry !== undefined && typeof registry?.metrics !== 'function') throw new InvalidOptionError('registry', registry, 'a prom-client Registry');
  if (ready !== undefined && typeof ready !== 'function') throw new InvalidOptionError('ready', ready, 'a function answering whether the process is ready');
  const paths = { metrics: '/metrics', livez: '/livez', readyz: '/readyz', ...options.paths };
  for (const [name, path] of Object.entries(paths)) {
    if (typeof path !== 'string' || !path.startsWith('/')) throw new InvalidOptionError(`paths.${name}`, path, 'a path starting with "/"');
  }

  return (req, res, next) => {
    const path = pathOf(req);
    const route = path === paths.livez ? 'livez' : path === paths.readyz ? 'readyz' : path === paths.metrics && registry ? 'metrics' : null;
    if (route === null) {
      if (next) return next();
      return send(req, res, 404, 'text/plain; charset=utf-8', 'not found\n');
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      return send(req, res, 405, 'text/plain; charset=utf-8', 'method not allowed\n');
    }
    if (route === 'livez') return send(req, res, 200, 'text/plain; charset=utf-8', 'ok\n');
    if (route === 'readyz') return void serveReady(req, res, ready);
    void serveMetrics(req, res, registry!);
  };
}

async function serveReady(req: IncomingMessage, res: ServerResponse, ready: HttpEndpointsOptions['ready']): Promise<void> {
  let body: { ready: boolean; reason: string | null } & Partial<ReadinessResult>;
  try {
    const answer = ready ? await ready() : true;
    body = typeof answer === 'boolean' ? { ready: answer, reason: answer ? null : 'not ready' } : answer;
  } catch (error) {
    body = { ready: false, reason: `readiness check failed: ${error instanceof Error ? error.message : String(error)}` };
  }
  send(req, res, body.ready ? 200 : 503, 'application/json; charset=utf-8', `${JSON.stringify(body)}\n`);
}

async function serveMetrics(req: IncomingMessage, res: ServerResponse, registry: Registry): Promise<void> {
  try {
    // Collection reads the database (with its own timeout and fallback), so this only fails on a bug.
    const text = await registry.metrics();
    send(req, res, 200, registry.contentType, text);
  } catch (error) {
    send(req, res, 500, 'text/plain; charset=utf-8', `collecting metrics failed: ${error instanceof Error ? error.message : String(error)}\n`);
  }
}

function send(req: IncomingMessage, res: ServerResponse, status: number, contentType: string, body: string): void {
  // The client may have gone away while metrics or readiness were being computed.
  if (res.writableEnded || res.destroyed) return;
  res.statusCode = status;
  res.setHeader('Content-Type', contentType);
  res.setHeader('Cache-Control', 'no-store');
  res.setHeader('Content-Length', Buffer.byteLength(body));
  res.end(req.method === 'HEAD' ? undefined : body);
}

function pathOf(req: IncomingMessage): string {
  try {
    return new URL(req.url ?? '/', 'http://localhost').pathname;
  } catch {
    return '';
  }
}
