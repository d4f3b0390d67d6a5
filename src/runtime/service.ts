import type { Clock } from '../clock/clock.js';

/**
 * The lifecycle every long-running part shares: `start()` begins `run(signal)`, `stop()` aborts the signal
 * and waits for `run` to return. Stopping twice, or before starting, is a no-op.
 */
export abstract class Service {
  #controller: AbortController | null = null;
  #running: Promise<void> | null = null;

  /** Whether `run` is in progress. */
  get running(): boolean {
    return this.#running !== null;
  }

  start(): void {
    if (this.#running) return;
    const controller = (this.#controller = new AbortController());
    this.#running = this.run(controller.signal).catch((error) => this.onCrash(error));
  }

  async stop(): Promise<void> {
    const running = this.#running;
    if (!running) return;
    this.#controller?.abort();
    await running;
    this.#running = null;
    this.#controller = null;
  }

  /** The service's body. It must return soon after `signal` aborts. */
  protected abstract run(signal: AbortSignal): Promise<void>;

  /** Called if `run` throws; services are expected to catch their own errors, so this is a last resort. */
  protected abstract onCrash(error: unknown): void;
}

/** Runs `tick` every `intervalMs` (first run at once), surviving errors, until stopped. */
export class PeriodicTask extends Service {
  readonly #clock: Clock;
  readonly #intervalMs: number;
  readonly #tick: (signal: AbortSignal) => Promise<void>;
  readonly #onError: (error: unknown) => void;
  readonly #runFirstAtOnce: boolean;

  constructor(options: { clock: Clock; intervalMs: number; tick: (signal: AbortSignal) => Promise<void>; onError: (error: unknown) => void; runFirstAtOnce?: boolean }) {
    super();
    this.#clock = options.clock;
    this.#intervalMs = options.intervalMs;
    this.#tick = options.tick;
    this.#onError = options.onError;
    this.#runFirstAtOnce = options.runFirstAtOnce ?? false;
  }

  protected async run(signal: AbortSignal): Promise<void> {
    if (!this.#runFirstAtOnce && !(await this.#clock.sleep(this.#intervalMs, signal))) return;
    while (!signal.aborted) {
      try {
        await this.#tick(signal);
      } catch (error) {
        this.#onError(error);
      }
      if (!(await this.#clock.sleep(this.#intervalMs, signal))) return;
    }
  }

  protected onCrash(error: unknown): void {
    this.#onError(error);
  }
}
