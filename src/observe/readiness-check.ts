import type { Driver } from '../driver/driver.js';
import { InvalidOptionError } from '../errors.js';
import type { TypedEmitter } from '../events/typed-emitter.js';
import { type Duration, parseDuration } from '../validation/duration.js';
import { withTimeout } from './with-timeout.js';

/** Where this process's worker is in its life, as seen through its events. */
export type WorkerPhase = 'not-started' | 'running' | 'draining' | 'stopped';

/** The answer of a readiness check, served as `/readyz`'s JSON body. */
export interface ReadinessResult {
  ready: boolean;
  /** Why the process is not ready; null when it is. */
  reason: string | null;
  /** Whether the database answered in time; null when it was not asked (the worker was already draining). */
  database: 'reachable' | 'unreachable' | null;
  worker: WorkerPhase;
}

/** Options of {@link createReadinessCheck}. */
export interface ReadinessCheckOptions {
  /** The database to ask for its time, usually `warden.driver`. */
  driver: Driver;
  /** The event stream whose `worker:*` events tell whether the worker is draining, usually `warden.events`. */
  events: TypedEmitter;
  /** How long the database may take to answer before the process counts as not ready. @default "2s" */
  timeout?: Duration;
}

/** What {@link createReadinessCheck} returns. */
export interface ReadinessCheck {
  /** Decides readiness now. Never rejects. Concurrent calls share one database round trip. */
  check(): Promise<ReadinessResult>;
  /** The worker's phase as last reported by its events. */
  readonly workerPhase: WorkerPhase;
  /** Unsubscribes from the events. Safe to call twice. */
  detach(): void;
}

/** Longest database error message put in a probe response: enough to diagnose, not a dump. */
const MAX_REASON_CHARS = 200;

/**
 * Readiness for `/readyz`: ready when the worker is not draining or stopped, and the database answers
 * `dbNow()` within `timeout`. A process whose worker never started (a producer, a scheduler-only process) is
 * ready whenever its database is. Draining is checked first, so a shutting-down process stops receiving traffic
 * without a database round trip; a worker started again (`warden.start()` after `stop()`) is ready again.
 * @throws InvalidOptionError for a missing driver or events; InvalidDurationError for a bad `timeout`.
 * @example
 * const readiness = createReadinessCheck({ driver: warden.driver, events: warden.events });
 * server.on('request', createHttpEndpoints({ registry, ready: readiness.check }));
 */
export function createReadinessCheck(options: ReadinessCheckOptions): ReadinessCheck {
  const { driver, events } = options;
  if (typeof driver?.dbNow !== 'function') throw new InvalidOptionError('driver', driver, 'a Warden driver (warden.driver)');
  if (typeof events?.on !== 'function') throw new InvalidOptionError('events', events, "Warden's event emitter (warden.events)");
  const timeoutMs = parseDuration('timeout', options.timeout ?? '2s', { allowZero: false });

  let phase: WorkerPhase = 'not-started';
  const offs = [
    events.on('worker:started', () => (phase = 'running')),
    events.on('worker:draining', () => (phase = 'draining')),
    events.on('worker:stopped', () => (phase = 'stopped')),
  ];
  let inFlight: Promise<ReadinessResult> | null = null;

  const askDatabase = async (): Promise<ReadinessResult> => {
    try {
      await withTimeout(driver.dbNow(), timeoutMs, 'the database to answer dbNow()');
    } catch (error) {
      return { ready: false, reason: `database unreachable: ${describeError(error)}`, database: 'unreachable', worker: phase };
    }
    // The phase may have changed while the database answered: the newer state wins.
    if (phase === 'draining' || phase === 'stopped') return notRunning(phase, 'reachable');
    return { ready: true, reason: null, database: 'reachable', worker: phase };
  };

  return {
    check() {
      if (phase === 'draining' || phase === 'stopped') return Promise.resolve(notRunning(phase, null));
      inFlight ??= askDatabase().finally(() => {
        inFlight = null;
      });
      return inFlight;
    },
    get workerPhase() {
      return phase;
    },
    detach() {
      for (const off of offs.splice(0)) off();
    },
  };
}

function notRunning(phase: 'draining' | 'stopped', database: ReadinessResult['database']): ReadinessResult {
  return { ready: false, reason: phase === 'draining' ? 'worker draining: shutting down' : 'worker stopped', database, worker: phase };
}

function describeError(error: unknown): string {
  const text = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  return text.length > MAX_REASON_CHARS ? `${text.slice(0, MAX_REASON_CHARS - 3)}...` : text;
}
