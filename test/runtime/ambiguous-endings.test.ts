/**
 * An attempt's ending whose write failed after it committed (the connection dropped between the commit and the
 * reply): the retry finds the lease already gone. It must still be reported as the ending that ended the job, with
 * its events and audit entry, not as a stale write; and an ending whose failed write did not commit, and whose
 * lease was then taken, must still be stale. The real database underneath; only the driver's reply is lost.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Warden } from '../../src/client/warden.js';
import { createWarden } from '../../src/client/warden.js';
import type { Driver, JobFinishManyParams } from '../../src/driver/driver.js';
import { defineJob } from '../../src/job/define-job.js';
import { overrideDriver } from '../support/override-driver.js';
import { createTestDatabase, DRIVER_KINDS, type TestDatabase } from '../support/test-databases.js';
import { deferred, record, silent, within } from './helpers.js';

/** `driver` with `jobFinishMany` replaced by `finish`, which gets the real one. */
function withFinish(driver: Driver, finish: (real: Driver['jobFinishMany'], params: JobFinishManyParams) => ReturnType<Driver['jobFinishMany']>): Driver {
  return overrideDriver(driver, { jobFinishMany: (real) => (params) => finish(real, params) });
}

/** What a dropped connection looks like to the caller: no SQLSTATE, so the write's fate is unknown. */
const connectionLost = () => new Error('Connection terminated unexpectedly');

describe.each(DRIVER_KINDS)('endings whose write failed (%s)', (kind) => {
  let tdb: TestDatabase;
  let warden: Warden | undefined;

  afterEach(async () => {
    await warden?.close();
    warden = undefined;
    await tdb?.cleanup();
  });

  it('an ending that committed before its write failed is applied: its events and audit entries are written, nothing is stale', async () => {
    tdb = await createTestDatabase(kind);
    const gate = deferred();
    const ok = defineJob({ name: 'ok', handler: () => gate.promise });
    const bad = defineJob({
      name: 'bad',
      retry: { maxAttempts: 1 },
      handler: async () => {
        await gate.promise;
        throw new Error('handler failed');
      },
    });
    let lost = 0;
    const driver = withFinish(tdb.newDriver(), async (real, params) => {
      const result = await real(params);
      // The first write commits, and its reply is lost.
      if (lost++ === 0) throw connectionLost();
      return result;
    });
    warden = createWarden({ database: driver, logger: silent, jobs: [ok, bad], audit: true });
    const completed = record(warden, 'job:completed');
    const dead = record(warden, 'job:dead');
    const stale = record(warden, 'job:stale-write-rejected');
    const errors = record(warden, 'error');
    const ended = new Promise<void>((resolve) => {
      const check = () => completed.length + dead.length + stale.length === 3 && resolve();
      for (const event of ['job:completed', 'job:dead', 'job:stale-write-rejected'] as const) warden!.on(event, check);
    });
    const ids = (await warden.enqueueMany([{ job: ok, payload: {} }, { job: ok, payload: {} }, { job: bad, payload: {} }])).map((r) => r.id);
    let running = 0;
    const allStarted = new Promise<void>((resolve) => warden!.on('job:started', () => ++running === 3 && resolve()));
    await warden.start({ concurrency: 3 });
    await within(allStarted, 'the three jobs to start');
    // All three handlers settle in one turn, so their endings share the write that fails.
    gate.resolve();
    await within(ended, 'the three endings');
    expect(errors.map((e) => e.context)).toContain('writing attempt endings');
    expect(lost).toBeGreaterThan(1);
    expect(stale).toEqual([]);
    expect(completed.map((e) => e.job.id).sort()).toEqual([ids[0], ids[1]].sort());
    expect(dead.map((e) => e.job.id)).toEqual([ids[2]]);

    // Each ending was written once: one failed attempt for the dead job, one completion each for the others.
    expect((await warden.jobs.attempts(ids[2]!)).map((a) => a.outcome)).toEqual(['failed']);
    for (const id of ids.slice(0, 2)) expect((await warden.jobs.attempts(id!)).map((a) => a.outcome)).toEqual(['completed']);

    await warden.audit.flush();
    const actions = new Map<string, string[]>();
    for await (const e of warden.audit.entries()) actions.set(e.subjectId, [...(actions.get(e.subjectId) ?? []), `${e.action}:${e.after}`]);
    for (const id of ids.slice(0, 2)) expect(actions.get(id!)).toContain('job.completed:completed');
    expect(actions.get(ids[2]!)?.some((a) => a.endsWith(':dead'))).toBe(true);
  });

  it('an ending whose failed write did not commit, and whose job was cancelled meanwhile, is still stale', async () => {
    tdb = await createTestDatabase(kind);
    const ok = defineJob({ name: 'ok', handler: () => {} });
    const admin = tdb.newDriver();
    let first = true;
    const driver = withFinish(tdb.newDriver(), async (real, params) => {
      if (first) {
        first = false;
        // Not written; meanwhile an operator cancels the running job (its lease ends with a `cancelled` attempt).
        for (const item of params.items) await admin.jobCancel({ id: item.id, now: null });
        throw connectionLost();
      }
      return real(params);
    });
    warden = createWarden({ database: driver, logger: silent, jobs: [ok] });
    const completed = record(warden, 'job:completed');
    const { id } = await warden.enqueue(ok, {});
    const rejected = warden.events.next('job:stale-write-rejected', (e) => e.jobId === id);
    // Whichever comes first: a wrongly applied ending must fail the test, not time it out.
    const outcome = Promise.race([rejected.then((e) => `stale (${e.write})`), warden.events.next('job:completed', (e) => e.job.id === id).then(() => 'completed')]);
    await warden.start({ concurrency: 1 });
    expect(await within(outcome, 'the ending to be settled')).toBe('stale (finish)');
    expect(completed).toEqual([]);
    expect((await warden.jobs.get(id))?.state).toBe('cancelled');
    expect((await warden.jobs.attempts(id)).map((a) => a.outcome)).toEqual(['cancelled']);
  });
});
