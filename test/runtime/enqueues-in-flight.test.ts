/**
 * EnqueuesInFlight: what a worker waits for before starting a job handed to it — the enqueues of its process in
 * flight at that moment, settled either way, and nothing when there are none.
 * @module
 */
import { describe, expect, it } from 'vitest';
import { EnqueuesInFlight } from '../../src/runtime/enqueues-in-flight.js';

/** A promise settled from outside, either way. */
function settleable<T>() {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

describe('EnqueuesInFlight', () => {
  it('has nothing to wait for when no enqueue is in flight, nor once they have settled', async () => {
    const inFlight = new EnqueuesInFlight();
    expect(inFlight.settled()).toBeNull();
    const done = inFlight.track(Promise.resolve('id'));
    await expect(done).resolves.toBe('id');
    await new Promise((resolve) => setImmediate(resolve));
    expect(inFlight.settled()).toBeNull();
  });

  it('waits for the enqueues in flight when asked, resolved or rejected, and not for those begun after', async () => {
    const inFlight = new EnqueuesInFlight();
    const first = settleable<string>();
    const second = settleable<string>();
    const failing = inFlight.track(first.promise);
    inFlight.track(second.promise);
    const settled = inFlight.settled()!;
    const later = settleable<string>();
    inFlight.track(later.promise);
    let done = false;
    void settled.then(() => (done = true));
    first.reject(new Error('insert failed'));
    await expect(failing).rejects.toThrow('insert failed');
    await new Promise((resolve) => setImmediate(resolve));
    expect(done).toBe(false);
    second.resolve('b');
    await settled;
    expect(done).toBe(true);
    // The one begun after is still in flight.
    expect(inFlight.settled()).not.toBeNull();
    later.resolve('c');
  });
});
