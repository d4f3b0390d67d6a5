import type { WardenEventMap, WardenEventName } from './event-map.js';

type Listener<K extends WardenEventName> = (payload: WardenEventMap[K]) => void;

/**
 * A small typed event emitter over {@link WardenEventMap}. Unlike Node's EventEmitter, an `error` event with
 * no listener is not thrown, and a throwing listener cannot break the emitter's caller.
 */
export class TypedEmitter {
  #listeners = new Map<WardenEventName, Set<Listener<never>>>();

  /** Subscribes; returns a function that unsubscribes. */
  on<K extends WardenEventName>(event: K, listener: Listener<K>): () => void {
    let set = this.#listeners.get(event);
    if (!set) this.#listeners.set(event, (set = new Set()));
    set.add(listener as Listener<never>);
    return () => this.off(event, listener);
  }

  /** Subscribes for the next emission only. */
  once<K extends WardenEventName>(event: K, listener: Listener<K>): () => void {
    const off = this.on(event, (payload) => {
      off();
      listener(payload);
    });
    return off;
  }

  off<K extends WardenEventName>(event: K, listener: Listener<K>): void {
    this.#listeners.get(event)?.delete(listener as Listener<never>);
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
    return (this.#listeners.get(event)?.size ?? 0) > 0;
  }

  emit<K extends WardenEventName>(event: K, payload: WardenEventMap[K]): void {
    const set = this.#listeners.get(event);
    if (!set) return;
    for (const listener of [...set]) {
      try {
        (listener as Listener<K>)(payload);
      } catch (error) {
        if (event !== 'error') this.emit('error', { error, context: `listener of ${event}` });
      }
    }
  }
}
