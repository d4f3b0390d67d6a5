/**
 * A worker's side of the PostgreSQL hand-off, driven through `Driver.listen` alone: the jobs handed to it, the
 * wake-ups and errors, as they arrive.
 * @module
 */
import type { Driver, ListenParams } from '../../src/driver/driver.js';
import type { JobRow } from '../../src/job/job-record.js';

/** A worker's listener: hand-offs and wake-ups as they arrive, awaited as typed values, never slept for. */
export class HandoffListener {
  readonly jobs: { row: JobRow; slotsLeft: number }[] = [];
  readonly wakes: string[] = [];
  readonly errors: unknown[] = [];
  missed = 0;
  #waiters: (() => void)[] = [];
  stop: () => Promise<void> = async () => {};

  static async open(driver: Driver, workerId: string | null): Promise<HandoffListener> {
    const listener = new HandoffListener();
    const notify = () => listener.#waiters.splice(0).forEach((w) => w());
    const params: ListenParams = {
      onWake: (queue) => {
        listener.wakes.push(queue ?? '');
        notify();
      },
      onReconnect: () => {},
      onError: (error) => listener.errors.push(error),
      ...(workerId ? {
        handoff: {
          workerId,
          onJob: (row: JobRow, slotsLeft: number) => {
            listener.jobs.push({ row, slotsLeft });
            notify();
          },
          onMissed: () => {
            listener.missed++;
            notify();
          },
        },
      } : {}),
    };
    listener.stop = await driver.listen!(params);
    return listener;
  }

  /** Resolves once `check` holds, re-checked at every notification. */
  async until(check: () => boolean): Promise<void> {
    while (!check()) await new Promise<void>((resolve) => this.#waiters.push(resolve));
  }
}
