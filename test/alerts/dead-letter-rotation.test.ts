/**
 * The monitor's resolution of dead-letter alerts with more open than one pass checks, on both drivers: each pass
 * reads the jobs of {@link ALERTS_CHECKED} alerts, in rounds over the alerts open when the round began, taking up
 * where the last pass stopped, so every open dead letter is checked within `ceil(n / ALERTS_CHECKED)` passes
 * (docs/alerts.md, Limits), however many stay dead, and however many open meanwhile.
 * Time is a fake clock; each pass is one `alerts.check()`.
 * @module
 */
import { describe, expect, it } from 'vitest';
import { ALERTS_CHECKED } from '../../src/alerts/alert-monitor.js';
import { createWarden, type Warden } from '../../src/client/warden.js';
import { deadLetterKey } from '../../src/driver/alert-params.js';
import { defineJob } from '../../src/job/define-job.js';
import type { JobRow } from '../../src/job/job-record.js';
import { claim, errorInfo, finishOf, insertJobs } from '../conformance/helpers.js';
import { silent } from '../schedule/helpers.js';
import { alertTestBed, onlyRules } from '../support/alert-rules.js';
import { overrideDriver } from '../support/override-driver.js';
import { DRIVER_KINDS } from '../support/test-databases.js';

const RULES = onlyRules({ deadLetter: true });
/** Dead at its first attempt. */
const doomed = defineJob<{ i: number }>({ name: 'doomed', retry: { maxAttempts: 1 }, handler: () => { throw new Error('no'); } });

describe.each(DRIVER_KINDS)('dead-letter alert resolution with many dead letters (%s)', (kind) => {
  const bed = alertTestBed(kind);
  let warden: Warden;

  /** `count` more dead jobs, each with its open alert. */
  async function kill(count: number, first = 0): Promise<void> {
    await warden.enqueueMany(Array.from({ length: count }, (_, i) => ({ job: doomed, payload: { i: first + i } })));
    await warden.drain();
    await warden.alerts.settled();
  }

  // 199 others: every alert fits one pass (the control). 200: the oldest is past the newest 200.
  it.each([ALERTS_CHECKED - 1, ALERTS_CHECKED])('resolves the alert of an older dead job the operator discarded, with %i other jobs staying dead', async (others) => {
    warden = bed.warden({ jobs: [doomed], alerts: { rules: RULES } });
    const first = await warden.enqueue(doomed, { i: 0 });
    await warden.drain();
    await warden.alerts.settled();
    await bed.clock.advance(1_000);
    await kill(others, 1);
    expect(await warden.alerts.list({ state: 'open', limit: 1_000 })).toHaveLength(others + 1);

    await warden.jobs.discard(first.id);
    for (let pass = 0; pass < Math.ceil((others + 1) / ALERTS_CHECKED); pass++) await warden.alerts.check();
    const row = (await warden.alerts.list({ limit: 1_000 })).find((a) => a.key === `dead-letter:${first.id}:1`)!;
    expect(row).toMatchObject({ state: 'resolved', details: { resolution: 'the job was discarded or pruned' } });
  });

  it(`checks every open dead letter within ceil(n / ${ALERTS_CHECKED}) passes, reading ${ALERTS_CHECKED} jobs a pass`, async () => {
    let reads: string[] | null = null;
    const driver = overrideDriver(bed.tdb.newDriver(), {
      jobGetMany: (real) => (params) => {
        reads?.push(...params.ids);
        return real(params);
      },
    });
    warden = bed.closeAfter(createWarden({ database: driver, logger: silent, jobs: [doomed], clock: bed.clock, alerts: { rules: RULES } }), (w) => w.close());
    const n = 2 * ALERTS_CHECKED + 1;
    await kill(n);
    const open = await warden.alerts.list({ state: 'open', limit: 1_000 });
    expect(open).toHaveLength(n);

    // The operator deals with the oldest, one in the middle and the newest.
    const ids = open.map((a) => a.details.jobId as string);
    const discarded = [ids[0]!, ids[ALERTS_CHECKED]!, ids[n - 1]!];
    for (const id of discarded) await warden.jobs.discard(id);

    const checked = new Set<string>();
    for (let pass = 0; pass < Math.ceil(n / ALERTS_CHECKED); pass++) {
      reads = [];
      await warden.alerts.check();
      expect(reads.length).toBeLessThanOrEqual(ALERTS_CHECKED);
      for (const id of reads) checked.add(id);
    }
    reads = null;
    expect(checked.size).toBe(n);
    const resolved = await warden.alerts.list({ state: 'resolved', limit: 1_000 });
    expect(resolved.map((a) => a.details.jobId).sort()).toEqual([...discarded].sort());
  });

  /** `count` jobs dead-lettered straight through the driver, each with its dead-letter alert opened now. */
  async function deadWithAlerts(count: number): Promise<JobRow[]> {
    const { tdb } = bed;
    const now = new Date(bed.clock.now());
    const jobs = await insertJobs(tdb.driver, Array.from({ length: count }, () => ({ name: 'doomed', queue: 'doomed' })), now);
    const claimed: JobRow[] = [];
    while (claimed.length < count) claimed.push(...(await claim(tdb.driver, { queues: ['doomed'], limit: 500, now })));
    await tdb.driver.jobFinishMany({ items: claimed.map((j) => finishOf(j, { outcome: 'failed', state: 'dead', error: errorInfo('no') })), now });
    for (let i = 0; i < jobs.length; i += 100) {
      await Promise.all(jobs.slice(i, i + 100).map((j) => tdb.driver.alertOpen({
        key: deadLetterKey(j.id, 1), rule: 'dead-letter', severity: 'critical', summary: `job doomed ${j.id} is dead`,
        detailsJson: JSON.stringify({ jobId: j.id, job: 'doomed', attempt: 1 }), instance: 'test', since: null, now,
      })));
    }
    return jobs;
  }

  it(`comes back to an alert it checked while more than ${ALERTS_CHECKED} dead letters open a pass`, async () => {
    warden = bed.warden({ jobs: [doomed], alerts: { rules: RULES } });
    const first = await deadWithAlerts(ALERTS_CHECKED + 1);
    // All opened at one time: the monitor checks them by key, so the first key is checked at the first pass.
    const [target] = first.map((j) => deadLetterKey(j.id, 1)).sort();
    await warden.alerts.check();
    await warden.jobs.discard(target!.split(':')[1]!);
    // A round over the 201 open at the first pass, then one over those open at its end: 2 passes, and 2 to spare.
    // Before, each pass took up after the last alert checked, those opened since included: with more opening a pass
    // than it checks it never came round to the oldest again.
    for (let pass = 0; pass < 4; pass++) {
      await bed.clock.advance(1_000);
      await deadWithAlerts(ALERTS_CHECKED + 50);
      await warden.alerts.check();
    }
    expect(await bed.tdb.driver.alertGet({ key: target! })).toMatchObject({ state: 'resolved', details: { resolution: 'the job was discarded or pruned' } });
  });
});
