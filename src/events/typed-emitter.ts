import type { WardenEventMap, WardenEventName } from './event-map.js';

type Listener<K extends WardenEventName> = (payload: WardenEventMap[K]) => void;

/**
 * A small typed event emitter over {@link WardenEventMap}. Unlike Node's EventEmitter, an `error` event with
 * no listener is not thrown, and a listener that throws, or returns a promise that rejects, cannot break the
 * emitter's caller nor the process: either is reported as an `error` event (context `listener of <event>`).
 */
export class TypedEmitter {
  /**
   * Listeners per event, replaced (never mutated) on subscribe and unsubscribe: `emit` runs on every job and can
   * then iterate a snapshot without copying it, while listeners added or removed meanwhile take effect from the
   * next emission, as before.
   */
  #listeners = new Map<WardenEventName, readonly Listener<never>[]>();

  /**
   * Subscribes; returns a function that unsubscribes. Subscribing the same listener twice has no effect. The
   * listener may be async: it is not awaited, and its rejection is reported as its throw would be.
   */
  on<K extends WardenEventName>(event: K, listener: Listener<K>): () => void {
    const list = this.#listeners.get(event) ?? [];
    if (!list.includes(listener as Listener<never>)) this.#listeners.set(event, [...list, listener as Listener<never>]);
    return () => this.off(event, listener);
  }

  /** Subscribes for the next emission only. */
  once<K extends WardenEventName>(event: K, listener: Listener<K>): () => void {
    const off = this.on(event, (payload) => {
      off();
      // Returned, so that emit() sees an async listener's promise and reports its rejection.
      return listener(payload);
    });
    return off;
  }

  off<K extends WardenEventName>(event: K, listener: Listener<K>): void {
    const list = this.#listeners.get(event);
    if (!list?.includes(listener as Listener<never>)) return;
    if (list.length === 1) this.#listeners.delete(event);
    else this.#listeners.set(event, list.filter((l) => l !== listener));
  }

  /**
   * Resolves with the next `event` whose payload passes `filter`; rejects when `signal` aborts.
   * Tests wait on this instead of sleeping.
   */
  next<K extends WardenEventName>(event: K, filter: (payload: WardenEventMap[K]) => boolean = () => true, signal?: AbortSignal): Promise<WardenEventMap[K]> {
    return new Promise((resolve, reject) => {
      const off = this.on(event, (payload) => {
        if (!filter(payload)) return;
        off();
        signal?.removeEventListener('abort', onAbort);
        resolve(payload);
      });
      const onAbort = () => {
        off();
        reject(signal?.reason ?? new Error(`Expected event ${event}, got an abort first`));
      };
      if (signal?.aborted) onAbort();
      else signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Whether anyone listens to `event`; lets hot paths skip building payloads nobody reads. */
  has(event: WardenEventName): boolean {
    return this.#listeners.has(event);
  }

  emit<K extends WardenEventName>(event: K, payload: WardenEventMap[K]): void {
    const list = this.#listeners.get(event);
    if (!list) return;
    for (const listener of list) {
      try {
        const result: unknown = (listener as Listener<K>)(payload);
        // An async listener's rejection would otherwise be unhandled, which ends a Node process by default. Native
        // promises only (what async functions return): calling `then` on another thenable, such as a lazy query
        // builder an arrow listener happens to return, would run it.
        if (result instanceof Promise) result.catch((error: unknown) => this.#listenerFailed(event, error));
      } catch (error) {
        this.#listenerFailed(event, error);
      }
    }
  }

  #listenerFailed(event: WardenEventName, error: unknown): void {
    // A failing `error` listener is dropped: reporting it would emit `error` again, without end.
    if (event !== 'error') this.emit('error', { error, context: `listener of ${event}` });
  }
}
