/**
 * `handleShutdownSignals`' remover, called while the first signal's stop and close are still running (as
 * `warden worker` does once its worker has stopped), leaves the handlers installed until that close has finished:
 * a second signal must find the handler (exit 130), not Node's default action. Signals are emitted in-process on
 * SIGUSR2 with `exit: false`, so nothing here ends the test process.
 * @module
 */
import { describe, expect, it } from 'vitest';
import { handleShutdownSignals } from '../../src/runtime/shutdown-signals.js';

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('handleShutdownSignals: removing the handlers', () => {
  it('while a signal\'s close runs, removal waits for it to finish', async () => {
    const before = process.listenerCount('SIGUSR2');
    const closing = deferred();
    let closed = false;
    const remove = handleShutdownSignals(
      { stop: async () => {}, close: () => closing.promise.then(() => void (closed = true)) },
      { signals: ['SIGUSR2'], exit: false },
    );
    expect(process.listenerCount('SIGUSR2')).toBe(before + 1);
    process.emit('SIGUSR2', 'SIGUSR2');
    await tick();
    remove();
    // The close is still running: a second signal must still be caught.
    expect(process.listenerCount('SIGUSR2')).toBe(before + 1);
    closing.resolve();
    await tick();
    expect(closed).toBe(true);
    expect(process.listenerCount('SIGUSR2')).toBe(before);
  });

  it('without a signal, or after its close finished, removal is immediate (and twice is harmless)', async () => {
    const before = process.listenerCount('SIGUSR2');
    const idle = handleShutdownSignals({ stop: async () => {}, close: async () => {} }, { signals: ['SIGUSR2'], exit: false });
    idle();
    expect(process.listenerCount('SIGUSR2')).toBe(before);
    idle();
    expect(process.listenerCount('SIGUSR2')).toBe(before);

    const done = handleShutdownSignals({ stop: async () => {}, close: async () => {} }, { signals: ['SIGUSR2'], exit: false });
    process.emit('SIGUSR2', 'SIGUSR2');
    await tick();
    done();
    expect(process.listenerCount('SIGUSR2')).toBe(before);
  });
});
