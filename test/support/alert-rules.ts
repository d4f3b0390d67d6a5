/**
 * What most alert tests set up alike: the rules, every one off but those a test exercises ({@link onlyRules}), and
 * per test a fresh database of one driver kind, a fake clock at `T0` and the closing of what the test opened
 * ({@link alertTestBed}).
 *
 * @example
 * describe.each(DRIVER_KINDS)('queue lag (%s)', (kind) => {
 *   const bed = alertTestBed(kind);
 *   it('…', async () => {
 *     const warden = bed.warden({ alerts: { rules: onlyRules({ queueLag: { threshold: '1m' } }) } });
 *     await bed.clock.advance(2 * MINUTE);
 *     await warden.alerts.check();
 *   });
 * });
 * @module
 */
import { afterEach, beforeEach } from 'vitest';
import type { AlertRulesOptions } from '../../src/alerts/alert-options.js';
import { FakeClock } from '../../src/clock/fake-clock.js';
import type { Warden } from '../../src/client/warden.js';
import { makeWarden, T0, type MakeWardenOptions } from '../schedule/helpers.js';
import { Cleanup } from './cleanup.js';
import { createTestDatabase, type DriverKind, type TestDatabase } from './test-databases.js';

/** Every built-in rule off. Written out whole, so a rule added later is a compile error here, not on by default in tests. */
export const NO_RULES: Required<AlertRulesOptions> = {
  deadLetter: false, consecutiveFailures: false, failureRate: false, missedRun: false, runTooLong: false, queueLag: false, leaseExpiry: false,
};

/** `alerts.rules` with every rule off but those in `on`, as given there. */
export function onlyRules(on: AlertRulesOptions): AlertRulesOptions {
  return { ...NO_RULES, ...on };
}

/** One test's database, clock and closing; see {@link alertTestBed}. */
export interface AlertTestBed {
  /** The running test's database, fresh for each test. */
  readonly tdb: TestDatabase;
  /** The running test's fake clock, at `T0` when the test starts. */
  readonly clock: FakeClock;
  /** A Warden on the test's database with the test's clock (unless `options` gives one), closed after the test. */
  warden(options?: MakeWardenOptions): Warden;
  /** `item`, closed by `close` after the test before anything opened earlier; the database is closed last. */
  closeAfter<T>(item: T, close: (item: T) => unknown): T;
}

/**
 * Registers, on the enclosing `describe`, a fresh {@link AlertTestBed} for each of its tests: a database of `kind`
 * and a clock before each, and after each, whatever the test opened through the bed closed newest first (each even
 * when one before it fails), then the database. Read `tdb` and `clock` inside tests only.
 */
export function alertTestBed(kind: DriverKind): AlertTestBed {
  const cleanup = new Cleanup();
  let current: { tdb: TestDatabase; clock: FakeClock } | undefined;
  beforeEach(async () => {
    const tdb = cleanup.add(await createTestDatabase(kind), (t) => t.cleanup());
    current = { tdb, clock: new FakeClock(T0) };
  });
  afterEach(async () => {
    current = undefined;
    await cleanup.run();
  });
  const test = (): { tdb: TestDatabase; clock: FakeClock } => {
    if (!current) throw new Error('Expected an alert test bed read inside a test, got none running');
    return current;
  };
  return {
    get tdb() {
      return test().tdb;
    },
    get clock() {
      return test().clock;
    },
    warden: (options = {}) => cleanup.add(makeWarden(test().tdb, { clock: test().clock, ...options }), (w) => w.close()),
    closeAfter: (item, close) => cleanup.add(item, close),
  };
}
