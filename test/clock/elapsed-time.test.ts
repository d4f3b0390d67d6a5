/**
 * Elapsed time beside wall time: `Clock.monotonicNow()` (`performance.now()` in `systemClock`), which a wall clock
 * stepped back does not move, and `elapsedSince`, which local deadlines and waits are measured with (lease renewal
 * deadlines, `acquire`'s `wait`, the metrics' database cache). `FakeClock.set()` backwards steps the wall time only,
 * and its timers run on elapsed time, as Node's do. A clock of the application's own without `monotonicNow` still
 * works, on `now()`; one whose `monotonicNow` is not a function is refused by `createWarden`.
 * @module
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { type Clock, elapsedSince, markClock, systemClock } from '../../src/clock/clock.js';
import { FakeClock } from '../../src/clock/fake-clock.js';
import { createWarden } from '../../src/client/warden.js';
import { InvalidOptionError } from '../../src/errors.js';
import { DatabaseSnapshot } from '../../src/observe/database-snapshot.js';
import { silent } from '../runtime/helpers.js';

const HOUR = 3_600_000;

afterEach(() => {
  vi.restoreAllMocks();
});

/** Date.now() and performance.now() under the test's control: `wall` and `elapsed` are what they return. */
function controlledSystemTime(): { wall: number; elapsed: number } {
  const time = { wall: Date.UTC(2040, 0, 1), elapsed: 1_000 };
  vi.spyOn(Date, 'now').mockImplementation(() => time.wall);
  vi.spyOn(performance, 'now').mockImplementation(() => time.elapsed);
  return time;
}

describe('systemClock.monotonicNow', () => {
  it('reads performance.now(), which a wall clock stepped back does not move', () => {
    const time = controlledSystemTime();
    const mark = markClock(systemClock);
    time.wall -= HOUR;
    time.elapsed += 40;
    expect(systemClock.monotonicNow!()).toBe(1_040);
    expect(elapsedSince(systemClock, mark)).toBe(40);
  });
});

describe('elapsedSince', () => {
  it('is the longer of elapsed and wall time, never below 0', () => {
    const time = controlledSystemTime();
    const mark = markClock(systemClock);
    // A system suspend: monotonic time (and Node's timers) stood still, the wall clock did not.
    time.wall += 5_000;
    time.elapsed += 10;
    expect(elapsedSince(systemClock, mark)).toBe(5_000);
    time.wall -= 2 * HOUR;
    expect(elapsedSince(systemClock, mark)).toBe(10);
    const fresh = markClock(systemClock);
    time.wall -= HOUR;
    expect(elapsedSince(systemClock, fresh)).toBe(0);
  });

  it('measures on now() for a clock without monotonicNow', () => {
    let wall = 1_000;
    const clock: Clock = { now: () => wall, sqlNow: () => null, sleep: systemClock.sleep, setTimer: systemClock.setTimer };
    const mark = markClock(clock);
    wall += 250;
    expect(elapsedSince(clock, mark)).toBe(250);
  });
});

describe('FakeClock elapsed time', () => {
  it('set() backwards steps the wall time only: elapsed time and timers stay; advance() moves both', async () => {
    const clock = new FakeClock(10_000);
    const fired: [number, number][] = [];
    clock.setTimer(500, () => fired.push([clock.now(), clock.monotonicNow()]));
    await clock.advance(200);
    await clock.set(10_200 - HOUR);
    expect([clock.now(), clock.monotonicNow()]).toEqual([10_200 - HOUR, 10_200]);
    await clock.advance(299);
    expect(fired).toEqual([]);
    await clock.advance(1);
    expect(fired).toEqual([[10_500 - HOUR, 10_500]]);
  });

  it('set() forwards moves elapsed time as much, and fires what is then due', async () => {
    const clock = new FakeClock(0);
    const fired: number[] = [];
    clock.setTimer(1_000, () => fired.push(clock.monotonicNow()));
    await clock.set(-HOUR);
    await clock.set(-HOUR + 1_000);
    expect(clock.monotonicNow()).toBe(1_000);
    expect(fired).toEqual([1_000]);
  });
});

describe('createWarden and a clock of its own', () => {
  const methods = { now: () => 0, sqlNow: () => null, sleep: systemClock.sleep, setTimer: systemClock.setTimer };

  it.each([5, 'performance.now', null])('refuses monotonicNow = %p with InvalidOptionError', (monotonicNow) => {
    expect(() => createWarden({ database: 'sqlite::memory:', logger: silent, clock: { ...methods, monotonicNow } as unknown as Clock })).toThrow(InvalidOptionError);
    expect(() => createWarden({ database: 'sqlite::memory:', logger: silent, clock: { ...methods, monotonicNow } as unknown as Clock })).toThrow(/monotonicNow, when given, is a method/);
  });

  it('accepts one without monotonicNow', async () => {
    await createWarden({ database: 'sqlite::memory:', logger: silent, retention: false, clock: methods }).close();
  });
});

describe('the metrics database cache and a wall clock stepped back', () => {
  it('expires after cacheMs (and finishedCacheMs) of elapsed time, not that plus the step', async () => {
    const time = controlledSystemTime();
    const reads = { fetches: 0, full: 0 };
    const driver = { queueList: async () => (reads.full++, []), queueActivity: async () => [], scheduleList: async () => (reads.fetches++, []) };
    const snapshot = new DatabaseSnapshot({ driver: driver as never, cacheMs: 5_000, finishedCacheMs: 60_000, timeoutMs: 10_000, onError: (e) => { throw e; } });
    await snapshot.get();
    time.wall -= HOUR;
    time.elapsed += 4_999;
    await snapshot.get();
    expect(reads).toEqual({ fetches: 1, full: 1 });
    time.elapsed += 1;
    await snapshot.get();
    expect(reads).toEqual({ fetches: 2, full: 1 });
    time.elapsed += 55_000;
    await snapshot.get();
    expect(reads).toEqual({ fetches: 3, full: 2 });
  });
});
