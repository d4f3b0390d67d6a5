/**
 * Job-context writes made inside an open job-context transaction join it. Found by the #5 test pass: on SQLite a
 * `ctx.step` inside `ctx.transaction`'s function went to the driver's own connection, which cannot write while
 * the process's transaction connection holds the write lock (a 10 s stall, then "database is locked"). Now the
 * step's record goes through the open transaction on both drivers, and commits with the job's completion.
 * @module
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Warden } from '../../src/client/warden.js';
import { defineJob, type JobContext } from '../../src/job/define-job.js';
import { makeWarden, T0, TestClock, within } from '../runtime/helpers.js';
import { createTestDatabase, DRIVER_KINDS, type TestDatabase } from '../support/test-databases.js';
import { attemptSummary } from './helpers.js';

describe.each(DRIVER_KINDS)('job-context writes inside ctx.transaction (%s)', (kind) => {
  let tdb: TestDatabase;
  let warden: Warden | undefined;

  beforeEach(async () => {
    tdb = await createTestDatabase(kind);
  });

  afterEach(async () => {
    await warden?.close();
    await tdb?.cleanup();
  });

  it('ctx.step inside ctx.transaction’s function is recorded promptly', async () => {
    const job = defineJob({
      name: 'step-in-transaction',
      retry: { maxAttempts: 1 },
      handler: async (_payload, ctx: JobContext) => {
        await ctx.transaction(async () => {
          await ctx.step('inner', () => 'charged');
        });
      },
    });
    warden = makeWarden(tdb, { jobs: [job], clock: new TestClock(T0) });
    const { id } = await warden.enqueue(job, {});
    await within(warden.drain(), `the job to run (${kind})`, 3_000);
    expect(await attemptSummary(warden, id)).toEqual([[1, 'completed', null]]);
    expect((await warden.jobs.steps(id)).map((s) => [s.name, s.result])).toEqual([['inner', 'charged']]);
  });
});
