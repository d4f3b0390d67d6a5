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
  /** Why the process is not ready (`"closed"` once its Warden was closed); null when it is. */
  reason: string | null;
  /** Whether the database answered in time; null when it was not asked (the worker draining, the Warden closed). */
  database: 'reachable' | 'unreachable' | null;
  worker: WorkerPhase;
  /**
   * `"current"` once a check found no migration pending (never asked again: this process's migrations cannot
   * change), `"pending"` when the last check found some, null while not known (not asked, or no answer).
   */
  migrations: 'current' | 'pending' | null;
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
  /**
   * Marks the process closed (`warden.close()` does, first): every check from now on, and one still waiting for
   * the database, answers not ready with reason `"closed"`, without asking the database, which is not to blame
   * (with a driver of its own the Warden closes it).
   */
  markClosed(): void;
  /** Unsubscribes from the events. Safe to call twice. */
  detach(): void;
}

/** Longest reason made of what the database answered (its error, the pending migrations): enough to diagnose, not a dump. */
const MAX_REASON_CHARS = 200;

/**
 * Readiness for `/readyz`: ready when not closed ({@link ReadinessCheck.markClosed}), the worker is not draining or
 * stopped, and the database answers within `timeout` with no migration of this release pending (the enqueues and
 * claims of this process would fail, and `warden.start()` refuses to start). Migrations are asked for (instead of
 * `dbNow()`) until they are found current, then no more. A database migrated by a newer release (migrations this
 * one does not know, none pending) is ready, as `start()` accepts it. A process whose worker never started (a
 * producer, a scheduler-only process) is ready whenever its database is. Closed and draining are checked first, so
 * a shutting-down process stops receiving traffic without a database round trip; a worker started again
 * (`warden.start()` after `stop()`) is ready again.
 * @throws InvalidOptionError for a missing driver or events; InvalidDurationError for a bad `timeout`.
 * @example
 * const readiness = createReadinessCheck({ driver: warden.driver, events: warden.events });
 * server.on('request', createHttpEndpoints({ registry, ready: readiness.check }));
 */
export function createReadinessCheck(options: ReadinessCheckOptions): ReadinessCheck {
  const { driver, events } = options;
  if (typeof driver?.dbNow !== 'function' || typeof driver.migrationStatus !== 'function') throw new InvalidOptionError('driver', driver, 'a Warden driver (warden.driver)');
  if (typeof events?.on !== 'function') throw new InvalidOptionError('events', events, "Warden's event emitter (warden.events)");
  const timeoutMs = parseDuration('timeout', options.timeout ?? '2s', { allowZero: false });

  let phase: WorkerPhase = 'not-started';
  let closed = false;
  let migrationsCurrent = false;
  const offs = [
    events.on('worker:started', () => (phase = 'running')),
    events.on('worker:draining', () => (phase = 'draining')),
    events.on('worker:stopped', () => (phase = 'stopped')),
  ];
  let inFlight: Promise<ReadinessResult> | null = null;

  const known = (): ReadinessResult['migrations'] => (migrationsCurrent ? 'current' : null);
  const closedResult = (): ReadinessResult => ({ ready: false, reason: 'closed', database: null, worker: phase, migrations: known() });
  /** Not ready whatever the database answers: closed, or the worker not running; null otherwise. */
  const notRunning = (database: ReadinessResult['database']): ReadinessResult | null => {
    if (closed) return closedResult();
    if (phase === 'draining') return { ready: false, reason: 'worker draining: shutting down', database, worker: phase, migrations: known() };
    if (phase === 'stopped') return { ready: false, reason: 'worker stopped', database, worker: phase, migrations: known() };
    return null;
  };

  const askDatabase = async (): Promise<ReadinessResult> => {
    let pending: string[] = [];
    try {
      // Asking for the migration status tells whether the database answers too: no dbNow() beside it.
      if (migrationsCurrent) await withTimeout(driver.dbNow(), timeoutMs, 'the database to answer dbNow()');
      else pending = (await withTimeout(driver.migrationStatus(), timeoutMs, 'the database to answer migrationStatus()')).pending;
    } catch (error) {
      // Closed meanwhile (its own driver closed under this check): the database is not to blame.
      if (closed) return closedResult();
      return { ready: false, reason: `database unreachable: ${describeError(error)}`, database: 'unreachable', worker: phase, migrations: known() };
    }
    if (pending.length === 0) migrationsCurrent = true;
    // The phase may have changed while the database answered: the newer state wins.
    const stopped = notRunning('reachable');
    if (stopped) return stopped;
    if (pending.length > 0) return { ready: false, reason: cut(`migrations pending: ${pending.join(', ')}`), database: 'reachable', worker: phase, migrations: 'pending' };
    return { ready: true, reason: null, database: 'reachable', worker: phase, migrations: 'current' };
  };

  return {
    check() {
      const stopped = notRunning(null);
      if (stopped) return Promise.resolve(stopped);
      inFlight ??= askDatabase().finally(() => {
        inFlight = null;
      });
      return inFlight;
    },
    get workerPhase() {
      return phase;
    },
    markClosed() {
      closed = true;
    },
    detach() {
      for (const off of offs.splice(0)) off();
    },
  };
}

function describeError(error: unknown): string {
  return cut(error instanceof Error ? `${error.name}: ${error.message}` : String(error));
}

function cut(text: string): string {
  return text.length > MAX_REASON_CHARS ? `${text.slice(0, MAX_REASON_CHARS - 3)}...` : text;
}
