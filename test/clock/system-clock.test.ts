import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { MAX_TIMER_MS, systemClock } from '../../src/clock/clock.js';

const DAY = 86_400_000;

// Node's own timers, faked: like Node, they fire a delay over 2^31 − 1 ms after 1 ms, which is what these guard.
beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('systemClock with delays past what setTimeout keeps', () => {
  it('setTimer(90 days) fires after 90 days, not after 1 ms', () => {
    const fn = vi.fn();
    systemClock.setTimer(90 * DAY, fn);
    vi.advanceTimersByTime(5);
    expect(fn).not.toHaveBeenCalled();
    vi.advanceTimersByTime(90 * DAY - 6);
    expect(fn).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(fn).toHaveBeenCalledTimes(1);
  });

  it('setTimer of exactly the longest single delay fires once, on time', () => {
    const fn = vi.fn();
    systemClock.setTimer(MAX_TIMER_MS, fn);
    vi.advanceTimersByTime(MAX_TIMER_MS - 1);
    expect(fn).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(fn).toHaveBeenCalledTimes(1);
  });

  it('a long timer can be cancelled in any of its steps', () => {
    const fn = vi.fn();
    const cancel = systemClock.setTimer(60 * DAY, fn);
    vi.advanceTimersByTime(30 * DAY);
    cancel();
    vi.advanceTimersByTime(60 * DAY);
    expect(fn).not.toHaveBeenCalled();
  });

  it('sleep(30 days) resolves true after 30 days, and false when aborted meanwhile', async () => {
    let slept: boolean | undefined;
    void systemClock.sleep(30 * DAY).then((v) => (slept = v));
    await vi.advanceTimersByTimeAsync(5);
    expect(slept).toBeUndefined();
    await vi.advanceTimersByTimeAsync(30 * DAY);
    expect(slept).toBe(true);

    const controller = new AbortController();
    let aborted: boolean | undefined;
    void systemClock.sleep(30 * DAY, controller.signal).then((v) => (aborted = v));
    await vi.advanceTimersByTimeAsync(26 * DAY);
    controller.abort();
    await vi.advanceTimersByTimeAsync(0);
    expect(aborted).toBe(false);
    // Nothing left armed: the abort cleared the step that was running.
    expect(vi.getTimerCount()).toBe(0);
  });
});
