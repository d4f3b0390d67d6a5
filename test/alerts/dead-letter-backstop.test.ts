/**
 * The monitor opens the dead-letter alerts that the `job:dead` listener never wrote, on both drivers: its one write
 * failed (before, the error was reported and nothing tried again), or the process died between the job's dead state
 * and that write (here: a job dead-lettered straight through the driver, with no event at all). docs/guarantees.md:
 * "A dead job raises one dead-letter alert". The two ways open the same key, so it is notified once however they
 * interleave; an alert an operator resolved stays resolved; Warden's own deliveries stay out; and each pass is bounded
 * (docs/alerts.md, Limits). Time is a fake clock; each pass is one `alerts.check()`.
 * @module
 */
import { describe, expect, it } from 'vitest';
import { ALERT_WEBHOOK_JOB } from '../../src/alerts/alert-delivery.js';
import { DEAD_JOBS_READ, DEAD_LETTERS_OPENED } from '../../src/alerts/alert-monitor.js';
import { createWarden, type Warden } from '../../src/client/warden.js';
import { deadLetterKey } from '../../src/driver/alert-params.js';
import type { JobInsert } from '../../src/driver/driver.js';
import { defineJob } from '../../src/job/define-job.js';
import type { JobRow } from '../../src/job/job-record.js';
import { claim, errorInfo, finishOf, insertJobs } from '../conformance/helpers.js';
import { deferred } from '../runtime/helpers.js';
import { MINUTE, silent } from '../schedule/helpers.js';
import { alertTestBed, onlyRules } from '../support/alert-rules.js';
import { overrideDriver, type DriverOverrides } from '../support/override-driver.js';
import { DRIVER_KINDS } from '../support/test-databases.js';

const RULES = onlyRules({ deadLetter: true });
/** Dead at its first attempt, its error quoting the payload's sensitive card number. */
const doomed = defineJob<{ card: string }>({
  name: 'doomed', retry: { maxAttempts: 1 }, sensitive: ['card'],
  handler: (payload) => {
    throw new Error(`card ${payload.card} declined`);
  },
});

describe.each(DRIVER_KINDS)('dead-letter alerts the monitor opens (%s)', (kind) => {
  const bed = alertTestBed(kind);
  let warden: Warden;

  /** A Warden alerting dead letters, on a driver of its own with `overrides`. */
  function alerting(overrides: DriverOverrides = {}): Warden {
    const driver = bed.closeAfter(overrideDriver(bed.tdb.newDriver(), overrides), (d) => d.close());
    return bed.closeAfter(createWarden({ database: driver, logger: silent, clock: bed.clock, jobs: [doomed], alerts: { rules: RULES } }), (w) => w.close());
  }

  /** The keys of the alerts this Warden opened, in order. */
  function openedKeys(w: Warden): string[] {
    const keys: string[] = [];
    w.on('alert:opened', (e) => keys.push(e.alert.key));
    return keys;
  }

  /** `count` jobs dead-lettered straight through the driver, as by a process that died before alerting. */
  async function deadWithoutEvents(count: number, jobs: Partial<JobInsert> = {}): Promise<JobRow[]> {
    const now = new Date(bed.clock.now());
    const inserted = await insertJobs(bed.tdb.driver, Array.from({ length: count }, () => ({ queue: 'doomed', ...jobs })), now);
    const claimed: JobRow[] = [];
    while (claimed.length < count) claimed.push(...(await claim(bed.tdb.driver, { queues: ['doomed'], limit: 500, now })));
    const error = (j: JobRow) => errorInfo(`card ${(j.payload as { card?: string }).card} declined`);
    await bed.tdb.driver.jobFinishMany({ items: claimed.map((j) => finishOf(j, { outcome: 'failed', state: 'dead', error: error(j) })), now });
    return inserted;
  }

  it('opens it at the next check when the open from job:dead failed, notifying once', async () => {
    let failures = 0;
    warden = alerting({
      alertOpen: (real) => async (params) => {
        if (failures++ === 0) throw new Error('Connection terminated unexpectedly (test: one transient failure)');
        return real(params);
      },
    });
    const opened = openedKeys(warden);
    const errors: string[] = [];
    warden.on('error', (e) => errors.push(e.context));
    const { id } = await warden.enqueue(doomed, { card: '4111111111111111' });
    await warden.drain();
    await warden.alerts.settled();
    expect((await warden.jobs.get(id))!.state).toBe('dead');
    expect(errors).toEqual([`dead-letter alert for job ${id}`]);
    expect(opened).toEqual([]);

    await bed.clock.advance(MINUTE);
    await warden.alerts.check();
    for (let pass = 0; pass < 3; pass++) await warden.alerts.check();
    expect(opened).toEqual([deadLetterKey(id, 1)]);
    const [alert] = await warden.alerts.list({ state: 'open' });
    expect(alert).toMatchObject({
      key: deadLetterKey(id, 1), rule: 'dead-letter', severity: 'critical', episode: 1, notices: 1,
      details: { jobId: id, job: 'doomed', queue: 'default', attempt: 1, reason: 'failed', error: { name: 'Error', message: 'card [redacted] declined' } },
    });
  });

  it('opens it for a job dead-lettered with no job:dead seen (the process died first), as the event would have', async () => {
    const [job] = await deadWithoutEvents(1, { name: 'doomed', payloadJson: JSON.stringify({ card: '5500005555555559' }) });
    warden = alerting();
    const opened = openedKeys(warden);
    await warden.alerts.check();
    expect(opened).toEqual([deadLetterKey(job!.id, 1)]);
    const [alert] = await warden.alerts.list({ state: 'open' });
    expect(alert!.summary).toBe(`job doomed ${job!.id} is dead after 1 attempt(s) (failed)`);
    expect(alert!.details).toEqual({
      jobId: job!.id, job: 'doomed', queue: 'doomed', schedule: null, attempt: 1, reason: 'failed', error: { name: 'Error', message: 'card [redacted] declined' },
    });
    // A lease lost for good: the rescue's attempt says so.
    const [lost] = await insertJobs(bed.tdb.driver, [{ name: 'doomed', queue: 'lost', maxAttempts: 1 }], new Date(bed.clock.now()));
    await claim(bed.tdb.driver, { queues: ['lost'], leaseMs: 1_000, now: new Date(bed.clock.now()) });
    await bed.clock.advance(MINUTE);
    expect((await bed.tdb.driver.jobRescue({ maxLost: 5, limit: 10, now: new Date(bed.clock.now()) })).map((j) => [j.id, j.state])).toEqual([[lost!.id, 'dead']]);
    await warden.alerts.check();
    expect(opened).toEqual([deadLetterKey(job!.id, 1), deadLetterKey(lost!.id, 1)]);
    expect((await warden.alerts.list({ state: 'open' }))[0]!.details).toMatchObject({ jobId: lost!.id, reason: 'lost' });
  });

  it('never opens it twice when the open from job:dead and the check race', async () => {
    const held = deferred();
    const eventOpen = deferred();
    warden = alerting({
      alertOpen: (real) => async (params) => {
        // The event's open (no `since`) waits until the check has opened the alert.
        if (params.since === null) {
          eventOpen.resolve();
          await held.promise;
        }
        return real(params);
      },
    });
    const opened = openedKeys(warden);
    const { id } = await warden.enqueue(doomed, { card: '4111111111111111' });
    await warden.drain();
    await eventOpen.promise;
    try {
      await warden.alerts.check();
      expect(opened).toEqual([deadLetterKey(id, 1)]);
    } finally {
      held.resolve();
    }
    await warden.alerts.settled();
    await warden.alerts.check();
    expect(opened).toEqual([deadLetterKey(id, 1)]);
    expect(await warden.alerts.list({})).toMatchObject([{ key: deadLetterKey(id, 1), state: 'open', episode: 1, notices: 1 }]);
  });

  it('leaves a dead letter resolved by an operator resolved, and Warden\'s own dead deliveries unalerted', async () => {
    warden = alerting();
    const opened = openedKeys(warden);
    const { id } = await warden.enqueue(doomed, { card: '4111111111111111' });
    await warden.drain();
    await warden.alerts.settled();
    expect(await warden.alerts.resolve(deadLetterKey(id, 1), { actor: 'alice', reason: 'known' })).toMatchObject({ state: 'resolved' });
    await deadWithoutEvents(1, { name: ALERT_WEBHOOK_JOB });
    await bed.clock.advance(MINUTE);
    await warden.alerts.check();
    expect(opened).toEqual([deadLetterKey(id, 1)]);
    expect((await warden.alerts.list({})).map((a) => [a.key, a.state])).toEqual([[deadLetterKey(id, 1), 'resolved']]);
  });

  it(`opens at most ${DEAD_LETTERS_OPENED} a pass, the rest at the next`, async () => {
    const jobs = await deadWithoutEvents(DEAD_LETTERS_OPENED + 50);
    warden = alerting();
    const opened = openedKeys(warden);
    await warden.alerts.check();
    // Newest first.
    expect(opened).toEqual(jobs.slice(-DEAD_LETTERS_OPENED).reverse().map((j) => deadLetterKey(j.id, 1)));
    await warden.alerts.check();
    expect(opened).toHaveLength(jobs.length);
    expect(new Set(opened)).toEqual(new Set(jobs.map((j) => deadLetterKey(j.id, 1))));
  });

  it(`reaches a dead job past the newest ${DEAD_JOBS_READ} at the next pass`, async () => {
    const jobs = await deadWithoutEvents(DEAD_JOBS_READ + 1);
    // Every one alerted but the oldest.
    for (let i = 1; i < jobs.length; i += 250) {
      await Promise.all(jobs.slice(i, i + 250).map((j) => bed.tdb.driver.alertOpen({
        key: deadLetterKey(j.id, 1), rule: 'dead-letter', severity: 'critical', summary: 'dead', detailsJson: '{}', instance: 'test', since: null, now: new Date(bed.clock.now()),
      })));
    }
    warden = bed.warden({ jobs: [doomed], alerts: { rules: RULES } });
    const opened = openedKeys(warden);
    await warden.alerts.check();
    expect(opened).toEqual([]);
    await warden.alerts.check();
    expect(opened).toEqual([deadLetterKey(jobs[0]!.id, 1)]);
  });
});
