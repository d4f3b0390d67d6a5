/**
 * Helpers for testing code that uses Warden, without a database server: a throwaway SQLite database, a fake
 * clock, `drain()` and enqueue assertions.
 * @example
 * const t = await createTestWarden({ jobs: [sendEmail] });
 * await signUp(t.warden, "a@example.com");
 * await expectEnqueued(t.warden, sendEmail, { to: "a@example.com" });
 * await t.warden.drain();
 * await t.cleanup();
 * @module
 */
export { FakeClock } from '../clock/fake-clock.js';
export { createTestWarden, type TestWarden, type TestWardenOptions } from './create-test-warden.js';
export { expectEnqueued, expectNotEnqueued, EnqueueAssertionError, type EnqueueMatch } from './expect-enqueued.js';
