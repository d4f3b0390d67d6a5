/**
 * Shared helpers for the runtime behaviour tests: a fake clock that can tell when the worker has gone back
 * to waiting, a guard that turns a hang into a clear failure, and Warden construction on a test database.
 *
 * Nothing here replaces a database or a Warden component: the clock is Warden's own `FakeClock`, only
 * observed, and every Warden talks to the real SQLite file or PostgreSQL schema of its `TestDatabase`.
 * @module
 */
import { pino } from 'pino';
import { FakeClock } from '../../src/clock/fake-clock.js';
import { createWarden, type Warden } from '../../src/client/warden.js';
import type { WardenOptions } from '../../src/client/warden-options.js';
import type { WardenEventMap, WardenEventName } from '../../src/events/event-map.js';
import type { TestDatabase } from '../support/test-databases.js';

/** The fixed start of fake time: in the future, so SQL that used the database clock would find nothing due. */
export const T0 = Date.UTC(2040, 0, 1, 0, 0, 0, 0);

/** A silent logger for every Warden in these tests. */
export const silent = pino({ level: 'silent' });

/**
 * Real-time bound on any single wait in these tests. It is a guard against hangs, never a way to wait for
 * something to happen: every wait resolves on an event or a state change long before it.
 */
export const GUARD_MS = 15_000;

/** Rejects with a message naming `what` if `promise` has not settled within `ms` of real time. */
export async function within<T>(promise: Promise<T>, what: string, ms = GUARD_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const guard = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Expected ${what} within ${ms}ms of real time, got nothing`)), ms);
  });
  try {
    return await Promise.race([promise, guard]);
  } finally {
    clearTimeout(timer);
  }
}

/** Polls `check` every 10 ms of real time until it holds; the caller bounds it with {@link within}. */
export async function waitFor(check: () => boolean | Promise<boolean>): Promise<void> {
  while (!(await check())) await new Promise((resolve) => setTimeout(resolve, 10));
}

/** A promise with its resolve exposed. */
export interface Deferred<T = void> {
  promise: Promise<T>;
  resolve(value: T): void;
  readonly settled: boolean;
}

export function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let settled = false;
  const promise = new Promise<T>((r) => {
    resolve = (value: T) => {
      settled = true;
      r(value);
    };
  });
  return {
    promise,
    resolve,
    get settled() {
      return settled;
    },
  };
}

/** Subscribes to `event` and collects every payload from now on. */
export function record<K extends WardenEventName>(warden: Warden, event: K): WardenEventMap[K][] {
  const seen: WardenEventMap[K][] = [];
  warden.on(event, (payload) => seen.push(payload));
  return seen;
}

/**
 * Warden's `FakeClock`, observed: it reports when timers are registered, so a test can wait until the worker
 * has finished the database work a timer started (its claim loop, heartbeater and rescuer each re-arm a timer
 * when they go back to waiting). `FakeClock.advance` lets one macrotask run per timer, which is enough for
 * SQLite's synchronous calls but not for a PostgreSQL round trip; {@link TestClock.step} closes that gap.
 */
export class TestClock extends FakeClock {
  #waiters: (() => void)[] = [];

  constructor(start = T0) {
    super(start);
  }

  override setTimer(ms: number, fn: () => void): () => void {
    const cancel = super.setTimer(ms, fn);
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
    return cancel;
  }

  /** Resolves once at least `count` timers are pending (re-checked whenever a timer is registered). */
  async waitForTimers(count: number, what = `${count} pending timers`): Promise<void> {
    while (this.pendingTimers < count) {
      await within(new Promise<void>((resolve) => this.#waiters.push(resolve)), `${what} (have ${this.pendingTimers})`);
    }
  }

  /**
   * Advances fake time by `totalMs` in steps of `stepMs`. After each step it waits until `idleTimers` timers
   * are pending again, i.e. every task woken in that step has finished its I/O and is waiting on the clock.
   * With `idleTimers` = the worker's steady set (claim-loop poll, heartbeater, rescuer, plus one per attempt
   * with a timeout), every poll inside the span really looks at the database at its own fake time.
   */
  async step(totalMs: number, stepMs: number, idleTimers: number): Promise<void> {
    if (totalMs % stepMs !== 0) throw new Error(`Expected totalMs ${totalMs} to be a multiple of stepMs ${stepMs}`);
    for (let done = 0; done < totalMs; done += stepMs) {
      await this.advance(stepMs);
      await this.waitForTimers(idleTimers, `the worker to be idle again at +${this.now() - T0}ms`);
    }
  }
}

/** Options of {@link makeWarden}: anything but the database, which comes from the test database. */
export type MakeWardenOptions = Omit<WardenOptions, 'database' | 'schema' | 'logger'>;

/** A Warden on `tdb` (its own connections, like another process would have), with a silent logger. */
export function makeWarden(tdb: TestDatabase, options: MakeWardenOptions = {}): Warden {
  return createWarden({ database: tdb.url, schema: tdb.schema, logger: silent, ...options });
}

/** Timers a started worker keeps pending while idle: the claim loop's poll, the heartbeater and the rescuer. */
export const IDLE_TIMERS = 3;
