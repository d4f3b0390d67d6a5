import type { Clock } from '../clock/clock.js';

/**
 * A level-triggered wake-up signal. `wait()` returns when `wake()` was called since the last wait, when
 * `ms` elapses, or when `signal` aborts, whichever comes first. Several wakes before a wait coalesce into one:
 * the flag says "look again", it carries no data.
 */
export class Wakeup {
  #pending = false;
  #resolve: (() => void) | null = null;
  readonly #clock: Clock;

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  wake(): void {
    this.#pending = true;
    const resolve = this.#resolve;
    this.#resolve = null;
    resolve?.();
  }

  async wait(ms: number, signal: AbortSignal): Promise<void> {
    if (this.#pending || signal.aborted) {
      this.#pending = false;
      return;
    }
    const local = new AbortController();
    const onAbort = () => local.abort();
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      await Promise.race([
        this.#clock.sleep(ms, local.signal),
        new Promise<void>((resolve) => {
          this.#resolve = resolve;
        }),
      ]);
    } finally {
      local.abort();
      signal.removeEventListener('abort', onAbort);
      this.#resolve = null;
      this.#pending = false;
    }
  }
}
