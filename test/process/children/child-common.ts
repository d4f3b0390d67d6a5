/**
 * What every process-test child shares: its JSON config (argv[2]), one-JSON-object-per-line reporting on
 * stdout, and forwarding of Warden events to the parent.
 * @module
 */
import type { Warden, WardenEventName } from '../../../src/index.js';

/** The config every child gets; scripts add their own fields. */
export interface BaseConfig {
  /** `sqlite:/…/warden.db` or the PostgreSQL URL. */
  url: string;
  /** PostgreSQL schema (undefined for SQLite). */
  schema?: string;
  /** A name for this child, recorded in effects and reports. */
  name: string;
}

/** The config passed as the first argument, parsed. */
export function readConfig<T extends BaseConfig>(): T {
  const raw = process.argv[2];
  if (!raw) throw new Error('Expected a JSON config as the first argument, got none');
  return JSON.parse(raw) as T;
}

/** Prints one message to the parent: one JSON object on one line. Synchronous on Linux pipes. */
export function send(message: { type: string; [key: string]: unknown }): void {
  process.stdout.write(`${JSON.stringify(message)}\n`);
}

/** A serializable description of any thrown value. */
export function describeError(error: unknown): Record<string, unknown> {
  if (error instanceof Error) {
    const e = error as Error & { code?: unknown; cause?: unknown };
    return { name: e.name, message: e.message, code: e.code ?? null, stack: e.stack?.split('\n').slice(0, 6).join('\n'), cause: e.cause === undefined ? null : describeError(e.cause) };
  }
  return { name: typeof error, message: String(error) };
}

/** Forwards the named events to the parent as `{ type: 'event', event, ...payload }` (errors serialized). */
export function forwardEvents(warden: Warden, events: WardenEventName[]): void {
  for (const event of events) {
    warden.events.on(event, (payload: any) => {
      if (event === 'error') send({ type: 'event', event, context: payload.context, error: describeError(payload.error) });
      else send({ type: 'event', event, ...payload });
    });
  }
}

/** Reports anything that would otherwise kill the child silently. */
export function reportCrashes(): void {
  process.on('uncaughtException', (error) => {
    send({ type: 'crash', kind: 'uncaughtException', error: describeError(error) });
    process.exit(70);
  });
  process.on('unhandledRejection', (error) => {
    send({ type: 'crash', kind: 'unhandledRejection', error: describeError(error) });
    process.exit(70);
  });
}

/** A promise that resolves after `ms`, or rejects with the signal's reason when `signal` aborts first. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
