/**
 * External heartbeat pings per schedule, for the failure nothing inside the application can report: the
 * application itself being down. Healthchecks.io-compatible URL convention, per attempt of a schedule's job:
 * `GET <url>/start` when it starts, `GET <url>` when it completes, `GET <url>/fail` when it fails (any outcome but
 * completed, including a rescued lost lease). The external service alerts when the success ping stops arriving.
 *
 * Pings are fire-and-forget with a short timeout: a slow or failing ping service is logged at `warn` (with the
 * URL's host, never the URL: its path is usually the check's key) and never delays or fails a job.
 * @module
 */
import type { Logger } from 'pino';
import type { Clock } from '../clock/clock.js';
import type { JobRef } from '../events/event-map.js';
import type { TypedEmitter } from '../events/typed-emitter.js';
import { describeRequestError, urlHost } from './webhook-sink.js';

/** What {@link HeartbeatPinger} needs. */
export interface HeartbeatPingerDeps {
  events: TypedEmitter;
  clock: Clock;
  logger: Logger;
  /** Base URL (no trailing slash) by schedule name. */
  urls: ReadonlyMap<string, string>;
  timeoutMs: number;
}

/** Which ping: `start`, success (the bare URL), or `fail`. */
export type HeartbeatSignal = 'start' | 'success' | 'fail';

/** The URL of a ping: `<url>/start`, `<url>`, `<url>/fail`. */
export function heartbeatPingUrl(base: string, signal: HeartbeatSignal): string {
  return signal === 'success' ? base : `${base}/${signal}`;
}

/** Pings schedules' heartbeat URLs from the job events of this process. */
export class HeartbeatPinger {
  readonly #deps: HeartbeatPingerDeps;
  readonly #inflight = new Set<Promise<void>>();

  constructor(deps: HeartbeatPingerDeps) {
    this.#deps = deps;
  }

  /** Subscribes to the job events; returns the unsubscribe function. */
  attach(): () => void {
    const { events } = this.#deps;
    const offs = [
      events.on('job:started', (e) => this.#ping(e.job, 'start')),
      events.on('job:completed', (e) => this.#ping(e.job, 'success')),
      events.on('job:failed', (e) => this.#ping(e.job, 'fail')),
      events.on('job:rescued', (e) => this.#ping(e.job, 'fail')),
    ];
    return () => offs.forEach((off) => off());
  }

  /** Resolves when every ping sent so far has finished (answered, failed or timed out). */
  async settled(): Promise<void> {
    while (this.#inflight.size > 0) await Promise.allSettled([...this.#inflight]);
  }

  #ping(job: JobRef, signal: HeartbeatSignal): void {
    const base = job.scheduleName ? this.#deps.urls.get(job.scheduleName) : undefined;
    if (!base) return;
    const work = this.#send(heartbeatPingUrl(base, signal), job, signal);
    this.#inflight.add(work);
    void work.finally(() => this.#inflight.delete(work));
  }

  async #send(url: string, job: JobRef, signal: HeartbeatSignal): Promise<void> {
    const { clock, logger, timeoutMs } = this.#deps;
    const controller = new AbortController();
    const cancel = clock.setTimer(timeoutMs, () => controller.abort());
    try {
      const response = await fetch(url, { method: 'GET', signal: controller.signal, headers: { 'user-agent': 'warden-heartbeat' } });
      await response.body?.cancel().catch(() => undefined);
      if (!response.ok) logger.warn({ schedule: job.scheduleName, jobId: job.id, signal, host: urlHost(url), status: response.status }, 'heartbeat ping refused');
    } catch (error) {
      // Never the error itself: fetch's messages (and so its stack) can quote the whole URL, whose path usually is
      // the check's key and which could carry credentials or a query. The host and a scrubbed description only.
      const reason = controller.signal.aborted ? `no answer within ${timeoutMs}ms` : describeRequestError(error, url);
      logger.warn({ schedule: job.scheduleName, jobId: job.id, signal, host: urlHost(url), code: errorCode(error), error: reason }, 'heartbeat ping failed');
    } finally {
      cancel();
    }
  }
}

/** The innermost error code of a request error (`ECONNREFUSED`, `ENOTFOUND`, `UND_ERR_…`), if any. */
function errorCode(error: unknown): string | undefined {
  let code: string | undefined;
  try {
    let current: unknown = error;
    for (let depth = 0; depth < 4 && typeof current === 'object' && current !== null; depth++) {
      const own = (current as { code?: unknown }).code;
      if (typeof own === 'string') code = own;
      current = (current as { cause?: unknown }).cause;
    }
  } catch {
    // A throwing getter: the description says what there is to say.
  }
  return code;
}
