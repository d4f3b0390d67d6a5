import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { MAX_TIMER_MS } from '../clock/clock.js';
import { HealthServerListenError, InvalidOptionError } from '../errors.js';
import { StartStopFlights } from '../runtime/start-stop-flights.js';
import { createHttpEndpoints, type HttpEndpointsOptions } from './http-endpoints.js';

const noop = (): void => {};

/** Options of {@link HealthServer} and {@link startHealthServer}: where to listen, and what to serve. */
export interface HealthServerOptions extends HttpEndpointsOptions {
  /** The TCP port; 0 picks a free one (see {@link HealthServer.port}). */
  port: number;
  /** The interface to listen on, e.g. `"127.0.0.1"` to keep it local. @default all interfaces */
  host?: string;
  /** How long (ms, 0 to 2,147,483,647) `stop()` lets open requests finish before closing their connections. @default 1000 */
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
  /** Starts and stops in flight: a `start()` called before a stop starts nothing, or is closed by it. */
  readonly #flights = new StartStopFlights();

  /** @throws InvalidOptionError for a bad port, host or handler option. Nothing listens until `start()`. */
  constructor(options: HealthServerOptions) {
    const { port, host, closeGraceMs = 1000 } = options ?? ({} as HealthServerOptions);
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new InvalidOptionError('port', port, 'an integer from 0 to 65535 (0 picks a free port)');
    if (host !== undefined && (typeof host !== 'string' || host.length === 0)) throw new InvalidOptionError('host', host, 'a host name or IP address');
    // setTimeout clamps a longer delay to 1 ms: a grace meant as "wait long" would cut every connection at once.
    if (!Number.isInteger(closeGraceMs) || closeGraceMs < 0 || closeGraceMs > MAX_TIMER_MS) {
      throw new InvalidOptionError('closeGraceMs', closeGraceMs, `a whole number of milliseconds from 0 to ${MAX_TIMER_MS}`);
    }
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
   * Starts listening; resolves once bound. Calls made while one is in progress share it, unless `stop()` was called
   * in between. A call made while `stop()` is in progress waits for it, then listens afresh (unless another
   * `stop()` was called after it: then it resolves without listening). While listening, it does nothing.
   * @throws HealthServerListenError (its `code` is the system error's, e.g. `EADDRINUSE`); the server is then not
   *   running and may be started again.
   */
  start(): Promise<void> {
    // A start that a stop called since will close (or keep from listening) is not shared: this one runs after it.
    return this.#flights.start((stops) => this.#start(stops));
  }

  /**
   * Stops listening and closes connections (open requests get `closeGraceMs`). Safe to call twice or before
   * `start`. It stops what was started before it was called: a start in progress is waited for, so the server it
   * binds is closed too.
   */
  stop(): Promise<void> {
    const { starting, stopping } = this.#flights;
    return this.#flights.stop(() => this.#stop(starting, stopping));
  }

  /** @param stops - the stop count when `start()` was called: a stop called after it wins. */
  async #start(stops: number): Promise<void> {
    // Checked before waiting for the stop in progress: that stop may itself be waiting for this start.
    if (this.#flights.stoppedSince(stops)) return;
    // A stop in progress still holds the server it is closing; listening before it is done would leave this start
    // resolved with nothing listening once that close lands (or two servers on one port).
    const stopping = this.#flights.stopping;
    if (stopping) await stopping.catch(noop);
    if (this.#flights.stoppedSince(stops) || this.#server) return;
    await this.#listen();
  }

  /**
   * @param starting - the start in progress when `stop()` was called.
   * @param previous - the stop in progress then: a second stop resolves only once the server is closed.
   */
  async #stop(starting: Promise<void> | undefined, previous: Promise<void> | null): Promise<void> {
    await starting?.catch(noop);
    await previous?.catch(noop);
    await this.#close();
  }

  async #listen(): Promise<void> {
    const { port, host } = this.#options;
    const server = createServer(this.#handler);
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ port, host }, () => {
          server.off('error', reject);
          resolve();
        });
      });
    } catch (error) {
      // A raw EADDRINUSE or ENOTFOUND says neither which server nor where; callers (the CLI) report this in one line.
      throw new HealthServerListenError(host ?? null, port, error);
    }
    server.on('error', (error) => this.#options.onError?.(error));
    this.#server = server;
  }

  async #close(): Promise<void> {
    const server = this.#server;
    if (!server) return;
    this.#server = null;
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
 * @throws InvalidOptionError for bad options; HealthServerListenError when it cannot listen (e.g. `EADDRINUSE`).
 */
export async function startHealthServer(options: HealthServerOptions): Promise<HealthServer> {
  const server = new HealthServer(options);
  await server.start();
  return server;
}
