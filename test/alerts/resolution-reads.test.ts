/**
 * The reads of the monitor's resolution checks, on both drivers: the jobs of a pass's share of open dead-letter
 * alerts are read in one `jobGetMany`, and those of the open run-too-long alerts in another, whatever the number of
 * alerts (before, one `jobGet` per alert: up to 200 per rule a pass); a rule with none open reads nothing. The
 * alerts of the jobs that ended still resolve, the others stay open. Time is a fake clock; each pass is one
 * `alerts.check()`; the running attempts are claimed straight through the driver, so no handler ends them.
 * @module
 */
import { describe, expect, it } from 'vitest';
import { createWarden, type Warden } from '../../src/client/warden.js';
import type { JobGetManyParams } from '../../src/driver/driver.js';
import { defineJob } from '../../src/job/define-job.js';
import type { JobRow } from '../../src/job/job-record.js';
import { claim, finishOf, insertJobs } from '../conformance/helpers.js';
import { MINUTE, silent } from '../schedule/helpers.js';
import { alertTestBed, onlyRules } from '../support/alert-rules.js';
import { overrideDriver } from '../support/override-driver.js';
import { DRIVER_KINDS } from '../support/test-databases.js';

/** Dead at its first attempt. */
const doomed = defineJob<{ i: number }>({ name: 'doomed', retry: { maxAttempts: 1 }, handler: () => { throw new Error('no'); } });
const COUNT = 30;

describe.each(DRIVER_KINDS)('resolution reads of the alert monitor (%s)', (kind) => {
  const bed = alertTestBed(kind);

  it('reads the jobs of each rule\'s open alerts in one statement a pass, and still resolves those that ended', async () => {
    const reads: { jobGet: string[]; jobGetMany: JobGetManyParams[] } = { jobGet: [], jobGetMany: [] };
    const driver = overrideDriver(bed.tdb.newDriver(), {
      jobGet: (real) => (params) => {
        reads.jobGet.push(params.id);
        return real(params);
      },
      jobGetMany: (real) => (params) => {
        reads.jobGetMany.push(params);
        return real(params);
      },
    });
    const rules = onlyRules({ deadLetter: true, runTooLong: { threshold: '30m' } });
    const warden: Warden = bed.closeAfter(createWarden({ database: driver, logger: silent, jobs: [doomed], clock: bed.clock, alerts: { rules } }), (w) => w.close());
    /** One pass, and the reads it made. */
    async function pass(): Promise<typeof reads> {
      reads.jobGet = [];
      reads.jobGetMany = [];
      await warden.alerts.check();
      return reads;
    }
    expect(await pass()).toEqual({ jobGet: [], jobGetMany: [] });

    await warden.enqueueMany(Array.from({ length: COUNT }, (_, i) => ({ job: doomed, payload: { i } })));
    await warden.drain();
    await warden.alerts.settled();
    const now = new Date(bed.clock.now());
    await insertJobs(bed.tdb.driver, Array.from({ length: COUNT }, () => ({ queue: 'stuck' })), now);
    const running: JobRow[] = await claim(bed.tdb.driver, { queues: ['stuck'], limit: COUNT, leaseMs: 24 * 60 * MINUTE, now });
    await bed.clock.advance(60 * MINUTE);
    // Opens the run-too-long alerts; checks the dead letters' (one read).
    expect((await pass()).jobGetMany).toHaveLength(1);
    expect(await warden.alerts.list({ state: 'open', limit: 1_000 })).toHaveLength(2 * COUNT);

    const deadLetters = await warden.alerts.list({ state: 'open', rule: 'dead-letter', limit: 1_000 });
    const discarded = deadLetters[0]!.details.jobId as string;
    await warden.jobs.discard(discarded);
    await bed.tdb.driver.jobFinishMany({ items: [finishOf(running[0]!)], now: new Date(bed.clock.now()) });
    const { jobGet, jobGetMany } = await pass();
    expect(jobGet).toEqual([]);
    expect(jobGetMany.map((r) => [...r.ids].sort())).toEqual([
      running.map((j) => j.id).sort(),
      deadLetters.map((a) => a.details.jobId as string).sort(),
    ]);
    const resolved = await warden.alerts.list({ state: 'resolved' });
    expect(resolved.map((a) => [a.rule, a.details.jobId, a.details.resolution]).sort()).toEqual([
      ['dead-letter', discarded, 'the job was discarded or pruned'],
      ['run-too-long', running[0]!.id, 'the attempt ended'],
    ]);
    expect(await warden.alerts.list({ state: 'open', limit: 1_000 })).toHaveLength(2 * COUNT - 2);
  });
});
