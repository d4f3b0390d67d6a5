/**
 * Waiting for an audit trail on a fake clock to write what it holds, for tests whose appends fail for a while.
 * @module
 */
import type { Warden } from '../../src/client/warden.js';
import { type TestClock, within } from '../runtime/helpers.js';

/**
 * Resolves once a flush of `warden`'s trail succeeds, moving fake time past the trail's backoff between failed
 * appends (a flush that timed out on that time is asked again).
 */
export async function settleTrail(warden: Warden, clock: TestClock): Promise<void> {
  await within((async () => {
    for (;;) {
      let state: 'waiting' | 'ok' | 'failed' = 'waiting';
      void warden.audit.flush().then(() => (state = 'ok'), () => (state = 'failed'));
      while (state === 'waiting') {
        await clock.advance(500);
        await new Promise((resolve) => setImmediate(resolve));
      }
      if (state === 'ok') return;
    }
  })(), 'the trail to settle');
}
