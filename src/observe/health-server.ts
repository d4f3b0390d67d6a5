import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { InvalidOptionError } from '../errors.js';
import { createHttpEndpoints, type HttpEndpointsOptions } from './http-endpoints.js';

/** Options of {@link HealthServer} and {@link startHealthServer}: where to listen, and what to serve. */
export interface HealthServerOptions extends HttpEndpointsOptions {
  /** The TCP port; 0 picks a free one (see {@link HealthServer.port}). */
  port: number;
  /** The interface to listen on, e.g. `"127.0.0.1"` to keep it local. @default all interfaces */
  host?: string;
  /** How long `stop()` lets open requests finish before closing their connections. @default 1000 */
  closeGraceMs?: number;
  /** Called with server errors after it started listening (they must never crash the process). @default ignored */
  onError?: (error: unknown) => void;
}

/**
 * A standalone HTTP server for `/metrics`, `/livez` and `/readyz` (see {@link createHttpEndpoints}), for
 * processes without a server of their own (`warden worker --metrics-port`). It follows the lifecycle of
 * Warden's services: stopping twice, or before starting, does nothing, and it may be started again after a stop.
 */
export class HealthServer {
  readonly #options: HealthServerOptions;
  readonly #handler: ReturnType<typeof createHttpEndpoints>;
  #server: Server | null = null;
  #starting: Promise<void> | null = null;
  #stopping: Promise<void> | null = null;

  /** @throws InvalidOptionError for a bad port, host or handler option. Nothing listens until `start()`. */
  constructor(options: HealthServerOptions) {
    const { port, host, closeGraceMs = 1000 } = options ?? ({} as HealthServerOptions);
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new InvalidOptionError('port', port, 'an integer from 0 to 65535 (0 picks a free port)');
    if (host !== undefined && (typeof host !== 'string' || host.length === 0)) throw new InvalidOptionError('host', host, 'a host name or IP address');
    if (!Number.isInteger(closeGraceMs) || closeGraceMs < 0) throw new InvalidOptionError('closeGraceMs', closeGraceMs, 'a whole number of milliseconds >= 0');
    this.#options = { ...options, closeGraceMs };
    this.#handler = createHttpEndpoints(options);
  }

  /** The port actually bound (useful with port 0), or null when not listening. */
  get port(): number | null {
    const address = this.#server?.address();
    return address && typeof address === 'object' ? (address as AddressInfo).port : null;
  }

  /** Whether the server is listening. */
  get running(): boolean {
    return this.port !== null;
  }

  /**
   * Starts listening; resolves once bound. Calling it while started or starting returns the same start.
   * @throws the listen error (e.g. `EADDRINUSE`); the server is then not running and may be started again.
   */
  start(): Promise<void> {
    this.#starting ??= this.#listen().catch((error: unknown) => {
      this.#starting = null;
      throw error;
    });
    return this.#starting;
  }

  /** Stops listening and closes connections (open requests get `closeGraceMs`). Safe to call twice or before `start`. */
  async stop(): Promise<void> {
    // A stop during start waits for the start, so the server it bound is closed too.
    await this.#starting?.catch(() => undefined);
    this.#stopping ??= this.#close().finally(() => {
      this.#stopping = null;
    });
    return this.#stopping;
  }

  async #listen(): Promise<void> {
    const server = createServer(this.#handler);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ port: this.#options.port, host: this.#options.host }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (error) => this.#options.onError?.(error));
    this.#server = server;
  }

  async #close(): Promise<void> {
    const server = this.#server;
    if (!server) return;
    this.#server = null;
    this.#starting = null;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    // Keep-alive connections would hold close() open; idle ones go now, busy ones after the grace.
    server.closeIdleConnections();
    const force = setTimeout(() => server.closeAllConnections(), this.#options.closeGraceMs);
    force.unref();
    await closed;
    clearTimeout(force);
  }
}

/**
 * Creates a {@link HealthServer} and starts it.
 * @example
 * const health = await startHealthServer({ port: 9464, registry: metrics.registry, ready: readiness.check });
 * // … on shutdown:
 * await health.stop();
 * @throws InvalidOptionError for bad options; the listen error (e.g. `EADDRINUSE`).
 */
export async function startHealthServer(options: HealthServerOptions): Promise<HealthServer> {
  const server = new HealthServer(options);
  await server.start();
  return server;
}
