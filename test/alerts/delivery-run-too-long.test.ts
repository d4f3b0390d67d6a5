/**
 * Warden's own delivery jobs and the run-too-long rule, on both drivers: a delivery hanging on a slow receiver
 * opens no alert under the global threshold ("left out of every job rule", docs/alerts.md), while a job of the
 * application running as long does. Time is a fake clock; the running attempts are claimed straight through the
 * driver, so no handler ends them.
 * @module
 */
import { describe, expect, it } from 'vitest';
import { ALERT_DELIVERY_JOBS, ALERT_WEBHOOK_JOB } from '../../src/alerts/alert-delivery.js';
import { defineJob } from '../../src/job/define-job.js';
import { MINUTE } from '../schedule/helpers.js';
import { alertTestBed, onlyRules } from '../support/alert-rules.js';
import { DRIVER_KINDS } from '../support/test-databases.js';

const slow = defineJob({ name: 'slow', handler: () => undefined });

describe.each(DRIVER_KINDS)('delivery jobs and the run-too-long rule (%s)', (kind) => {
  const bed = alertTestBed(kind);

  it('never opens a run-too-long alert about a delivery job, and still does about the application\'s', async () => {
    const { clock } = bed;
    const warden = bed.warden({
      jobs: [slow],
      alerts: {
        sinks: [{ type: 'webhook', url: 'http://127.0.0.1:9/hook', secret: 'a-secret-of-16-chars!' }],
        rules: onlyRules({ consecutiveFailures: { count: 1 }, runTooLong: { threshold: '5m' } }),
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
