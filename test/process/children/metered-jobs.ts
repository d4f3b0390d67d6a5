/**
 * The job of the metrics crash test (`metrics-crash.test.ts`), shared by its worker child and the surviving worker
 * in the test process: `metered` takes {@link METERED_MS} (aborting with its signal), then succeeds, or fails
 * when `payload.fail` is set; 3 attempts in all, a fixed 50 ms apart, then dead.
 * @module
 */
import { defineJob } from '../../../src/index.js';
import { sleep } from './child-common.js';

/** How long one attempt of `metered` takes. */
export const METERED_MS = 150;

export const metered = defineJob<{ n: number; fail: boolean }>({
  name: 'metered',
  retry: { maxAttempts: 3, backoff: { type: 'fixed', base: '50ms', jitter: 'none' } },
  handler: async ({ fail }, ctx) => {
    await sleep(METERED_MS, ctx.signal);
    if (fail) throw new Error('metered job fails on purpose');
  },
});
