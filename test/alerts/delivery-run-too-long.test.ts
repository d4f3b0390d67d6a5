/**
 * Warden's own delivery jobs and the run-too-long rule, on both drivers: a delivery hanging on a slow receiver
 * opens no alert under the global threshold ("left out of every job rule", docs/alerts.md), while a job of the
 * application running as long does. Time is a fake clock; the running attempts are claimed straight through the
 * driver, so no handler ends them.
 * @module
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ALERT_DELIVERY_JOBS, ALERT_WEBHOOK_JOB } from '../../src/alerts/alert-delivery.js';
import type { AlertRulesOptions } from '../../src/alerts/alert-options.js';
import { FakeClock } from '../../src/clock/fake-clock.js';
import type { Warden } from '../../src/client/warden.js';
import { defineJob } from '../../src/job/define-job.js';
import { makeWarden, MINUTE, T0 } from '../schedule/helpers.js';
import { createTestDatabase, DRIVER_KINDS, type TestDatabase } from '../support/test-databases.js';

const OFF: AlertRulesOptions = { deadLetter: false, consecutiveFailures: false, failureRate: false, missedRun: false, runTooLong: false, queueLag: false, leaseExpiry: false };
const slow = defineJob({ name: 'slow', handler: () => undefined });

describe.each(DRIVER_KINDS)('delivery jobs and the run-too-long rule (%s)', (kind) => {
  let tdb: TestDatabase;
  let warden: Warden;

  beforeEach(async () => {
    tdb = await createTestDatabase(kind);
  });

  afterEach(async () => {
    await warden?.close();
    await tdb?.cleanup();
  });

  it('never opens a run-too-long alert about a delivery job, and still does about the application\'s', async () => {
    const clock = new FakeClock(T0);
    warden = makeWarden(tdb, {
      clock,
      jobs: [slow],
      alerts: {
        sinks: [{ type: 'webhook', url: 'http://127.0.0.1:9/hook', secret: 'a-secret-of-16-chars!' }],
        rules: { ...OFF, consecutiveFailures: { count: 1 }, runTooLong: { threshold: '5m' } },
      },
    });
    // One alert, hence one delivery job in the `warden` queue.
    warden.events.emit('job:failed', { job: { id: '999', name: 'flaky', queue: 'default' }, attempt: 1, outcome: 'failed', error: { name: 'Error', message: 'x' }, nextState: 'dead', durationMs: 1 });
    await warden.alerts.settled();
    const app = await warden.enqueue(slow, {});
    // A worker takes the delivery and the receiver hangs; another takes the application's job, which hangs too.
    const claim = (queue: string) => warden.driver.jobClaim({ queues: [queue], limit: 10, workerId: 'w-stuck', leaseMs: 60 * MINUTE, now: clock.sqlNow() });
    expect((await claim('warden')).map((j) => j.name)).toEqual([ALERT_WEBHOOK_JOB]);
    expect((await claim('default')).map((j) => j.id)).toEqual([app.id]);

    await clock.advance(6 * MINUTE);
    await warden.alerts.check();
    const tooLong = await warden.alerts.list({ rule: 'run-too-long' });
    expect(tooLong.map((a) => a.details.job)).toEqual(['slow']);
    expect(tooLong.filter((a) => ALERT_DELIVERY_JOBS.includes(a.details.job as string))).toEqual([]);
  });
});
