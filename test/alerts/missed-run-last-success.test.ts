/**
 * The missed-run alert's last success is read on its own (`Driver.scheduleLastSuccess`), not searched for among the
 * newest ticks read as expected ones: after an outage longer than that window (every scheduler down, then the missed
 * ticks recorded at once), the alert still says when the schedule last succeeded, on both drivers.
 * @module
 */
import { describe, expect, it } from 'vitest';
import { defineSchedule } from '../../src/schedule/define-schedule.js';
import { record } from '../runtime/helpers.js';
import { MINUTE, noopJob, T0 } from '../schedule/helpers.js';
import { alertTestBed } from '../support/alert-rules.js';
import { DRIVER_KINDS } from '../support/test-databases.js';

describe.each(DRIVER_KINDS)('missed-run alert after a long outage (%s)', (kind) => {
  const bed = alertTestBed(kind);

  it('reports the last success older than every tick read, and the new one when it resolves', async () => {
    const { clock } = bed;
    const schedule = defineSchedule({ name: 'rescreen', every: '1m', job: noopJob, overlap: 'allow', misfire: { policy: 'skip', grace: '5s' }, expect: { within: '2m' } });
    const w = bed.warden({ schedules: [schedule], alerts: { rules: { queueLag: false, deadLetter: false } } });
    const opened = record(w, 'alert:opened');
    const resolved = record(w, 'alert:resolved');
    await w.runSchedulerOnce();
    await clock.set(T0 + MINUTE);
    await w.runSchedulerOnce();
    await w.drain(); // +1m completes: the last success

    // Every scheduler down for 150 minutes, then one records +2m…+149m missed and fires +150m.
    await clock.set(T0 + 150 * MINUTE);
    await w.runSchedulerOnce();
    expect((await w.schedules.ticks('rescreen', { limit: 1000 })).filter((t) => t.outcome === 'missed')).toHaveLength(148);
    await w.alerts.check();
    expect(opened.map((e) => [e.alert.key, e.alert.details.lastSuccessTickAt])).toEqual([['missed-run:rescreen', new Date(T0 + MINUTE).toISOString()]]);

    await w.drain({ queues: ['default'] }); // +150m completes
    await w.alerts.check();
    expect(resolved.map((e) => [e.alert.key, e.alert.details.resolution, e.alert.details.lastSuccessTickAt]))
      .toEqual([['missed-run:rescreen', 'a run succeeded', new Date(T0 + 150 * MINUTE).toISOString()]]);
  });
});
