/**
 * What a test opened, closed after it, newest first (a Warden before the driver it was given, a driver before its
 * database), whether the test passed or not.
 *
 * @example
 * const cleanup = new Cleanup();
 * afterEach(() => cleanup.run());
 * it('…', async () => {
 *   const tdb = cleanup.add(await createTestDatabase(kind), (t) => t.cleanup());
 *   const warden = cleanup.add(makeWarden(tdb), (w) => w.close());
 * });
 * @module
 */
export class Cleanup {
  #steps: (() => unknown)[] = [];

  /** Has `close(item)` run after the test, before everything added earlier; returns `item`. */
  add<T>(item: T, close: (item: T) => unknown): T {
    this.#steps.push(() => close(item));
    return item;
  }

  /** Runs every step, newest first, each even when one before it failed; then throws what failed, if anything. */
  async run(): Promise<void> {
    const steps = this.#steps.reverse();
    this.#steps = [];
    const errors: unknown[] = [];
    for (const step of steps) {
      try {
        await step();
      } catch (error) {
        errors.push(error);
      }
    }
    if (errors.length === 1) throw errors[0];
    if (errors.length > 1) throw new AggregateError(errors, `Expected every cleanup step to succeed, got ${errors.length} failures`);
  }
}
