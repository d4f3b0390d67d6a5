/**
 * The run-too-long rule with many jobs running, on both drivers. It reads the running attempts already past the
 * smallest run-time limit, oldest start first, {@link RUNNING_READ} a pass and on from there at the next, and
 * resolves each open alert by reading its own job. Before, it read the newest 1,000 running jobs: past that, the
 * oldest (the likeliest to be over the limit) were never read, and no alert resolved, since only a complete read
 * could tell that an attempt ended. Time is a fake clock; the attempts are claimed straight through the driver, so no
 * handler ends them; each pass is one `alerts.check()`.
 * @module
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { ALERTS_CHECKED, RUNNING_READ } from '../../src/alerts/alert-monitor.js';
import type { Warden } from '../../src/client/warden.js';
import { defineJob } from '../../src/job/define-job.js';
import type { JobRow } from '../../src/job/job-record.js';
import { claim, finishOf, insertJobs } from '../conformance/helpers.js';
import { MINUTE } from '../schedule/helpers.js';
import { alertTestBed, onlyRules } from '../support/alert-rules.js';
import { DRIVER_KINDS } from '../support/test-databases.js';

const job = defineJob({ name: 'test-job', handler: () => undefined });
const DAY = 24 * 60 * MINUTE;

describe.each(DRIVER_KINDS)('run-too-long with many jobs running (%s)', (kind) => {
  const bed = alertTestBed(kind);
  let warden: Warden;

  beforeEach(() => {
    warden = bed.warden({ jobs: [job], alerts: { rules: onlyRules({ runTooLong: { threshold: '30m' } }) } });
  });

  /** `count` jobs of `queue` claimed now, with a lease of a day. */
  async function running(count: number, queue: string): Promise<JobRow[]> {
    const now = new Date(bed.clock.now());
    await insertJobs(bed.tdb.driver, Array.from({ length: count }, () => ({ queue })), now);
    const claimed: JobRow[] = [];
    while (claimed.length < count) claimed.push(...(await claim(bed.tdb.driver, { queues: [queue], limit: 500, leaseMs: DAY, now })));
    return claimed;
  }

  function keys(jobs: JobRow[]): string[] {
    return jobs.map((j) => `run-too-long:${j.id}:${j.attempt}`);
  }

  it(`alerts for the oldest running attempt while ${RUNNING_READ} newer ones run`, async () => {
    const opened: string[] = [];
    warden.on('alert:opened', (e) => opened.push(e.alert.key));
    const stuck = await running(1, 'slow');
    await bed.clock.advance(60 * MINUTE);
    await running(RUNNING_READ, 'busy');
    await bed.clock.advance(1_000);
    await warden.alerts.check();
    // 60 minutes, twice the threshold; the others a second only.
    expect(opened).toEqual(keys(stuck));
  });

  it(`alerts for every attempt over the limit within two passes when ${RUNNING_READ + 1} are`, async () => {
    const opened: string[] = [];
    warden.on('alert:opened', (e) => opened.push(e.alert.key));
    const stuck = await running(RUNNING_READ + 1, 'slow');
    await bed.clock.advance(60 * MINUTE);
    await warden.alerts.check();
    expect(opened).toHaveLength(RUNNING_READ);
    await warden.alerts.check();
    expect(new Set(opened)).toEqual(new Set(keys(stuck)));
    expect(opened).toHaveLength(RUNNING_READ + 1);
  });

  it(`resolves the alert of an attempt that ended while ${RUNNING_READ} others over the limit still run`, async () => {
    const resolved: string[] = [];
    warden.on('alert:resolved', (e) => resolved.push(e.alert.key));
    const [stuck] = await running(1, 'slow');
    await running(RUNNING_READ, 'busy');
    await bed.clock.advance(60 * MINUTE);
    await warden.alerts.check();
    await warden.alerts.check();
    expect(await warden.alerts.list({ state: 'open', limit: 2_000 })).toHaveLength(RUNNING_READ + 1);
    await bed.tdb.driver.jobFinishMany({ items: [finishOf(stuck!)], now: new Date(bed.clock.now()) });
    await bed.clock.advance(1_000);
    for (let pass = 0; pass < Math.ceil((RUNNING_READ + 1) / ALERTS_CHECKED); pass++) await warden.alerts.check();
    expect(resolved).toEqual(keys([stuck!]));
    expect((await warden.alerts.list({ state: 'resolved' }))[0]!.details).toMatchObject({ jobId: stuck!.id, resolution: 'the attempt ended' });
  });

  it(`resolves every ended attempt's alert within ceil(n / ${ALERTS_CHECKED}) passes, the others staying open`, async () => {
    const stuck = await running(ALERTS_CHECKED + 2, 'slow');
    await bed.clock.advance(60 * MINUTE);
    await warden.alerts.check();
    expect(await warden.alerts.list({ state: 'open', limit: 1_000 })).toHaveLength(stuck.length);
    // All opened at one time, the monitor checks them by key: the first and the last of that order end.
    const byKey = [...stuck].sort((a, b) => (keys([a])[0]! < keys([b])[0]! ? -1 : 1));
    const ended = [byKey[0]!, byKey.at(-1)!];
    await bed.tdb.driver.jobFinishMany({ items: ended.map((j) => finishOf(j)), now: new Date(bed.clock.now()) });
    for (let pass = 0; pass < Math.ceil(stuck.length / ALERTS_CHECKED); pass++) await warden.alerts.check();
    expect((await warden.alerts.list({ state: 'resolved', limit: 1_000 })).map((a) => a.key).sort()).toEqual(keys(ended).sort());
    expect(await warden.alerts.list({ state: 'open', limit: 1_000 })).toHaveLength(stuck.length - ended.length);
  });
});
