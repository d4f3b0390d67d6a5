/**
 * `FakeClock` (exported from `warden/testing`) takes times and steps as finite numbers only: `advance(NaN)` fired
 * every pending timer (none is later than a NaN target) and left the time NaN, and `advance("10")` turned the time
 * into the text "010". Refusals leave the time and the timers as they were.
 * @module
 */
import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../src/clock/fake-clock.js';
import { InvalidOptionError } from '../../src/errors.js';

const NOT_TIMES: unknown[] = [Number.NaN, Number.POSITIVE_INFINITY, '2026-01-01', '10', null, new Date(0)];

describe('FakeClock', () => {
  it.each(NOT_TIMES)('refuses to start at %p', (start) => {
    expect(() => new FakeClock(start as number)).toThrow(InvalidOptionError);
    expect(() => new FakeClock(start as number)).toThrow(/^Expected FakeClock\(start\) to be a finite number of milliseconds since the epoch/);
  });

  it('starts now when given no time', () => {
    const before = Date.now();
    expect(new FakeClock().now()).toBeGreaterThanOrEqual(before);
  });

  it.each([...NOT_TIMES, -1])('advance(%p) is refused; nothing fires and the time stays', async (ms) => {
    const clock = new FakeClock(0);
    let fired = false;
    clock.setTimer(3_600_000, () => (fired = true));
    await expect(clock.advance(ms as number)).rejects.toBeInstanceOf(InvalidOptionError);
    expect(fired).toBe(false);
    expect(clock.now()).toBe(0);
    expect(clock.pendingTimers).toBe(1);
  });

  it.each(NOT_TIMES)('set(%p) is refused; the time stays', async (time) => {
    const clock = new FakeClock(1_000);
    await expect(clock.set(time as number)).rejects.toBeInstanceOf(InvalidOptionError);
    expect(clock.now()).toBe(1_000);
  });

  it('still advances, sets (also backwards) and fires timers in order', async () => {
    const clock = new FakeClock(0);
    const fired: number[] = [];
    clock.setTimer(20, () => fired.push(20));
    clock.setTimer(10, () => fired.push(10));
    await clock.advance(0);
    await clock.advance(15);
    expect(fired).toEqual([10]);
    await clock.set(-5);
    expect(clock.now()).toBe(-5);
    await clock.set(25);
    expect(fired).toEqual([10, 20]);
  });
});
