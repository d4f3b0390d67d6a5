/**
 * A wall clock stepped back (an NTP step, a resumed VM) while jobs run: `ctx.iterate`'s time cadence
 * (`checkpointEvery.seconds`) and its `maxRuntime` hand-over are measured as elapsed time, so a step back by an hour
 * neither holds checkpoints back nor keeps the attempt from yielding, and the `durationMs` of attempt and step events
 * is the elapsed time, never negative. `FakeClock.set` to an earlier time moves the wall time (and the SQL `now`)
 * back while elapsed time stands, as such a step does to a real process.
 * @module
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Warden } from '../../src/client/warden.js';
import { NonRetryableError } from '../../src/errors.js';
import { defineJob, type JobDefinition } from '../../src/job/define-job.js';
import type { IterationPage } from '../../src/job/job-context-options.js';
import { createTestDatabase, DRIVER_KINDS, type TestDatabase } from '../support/test-databases.js';
import { makeWarden, record, T0, TestClock } from './helpers.js';

const HOUR = 3_600_000;

/** The integers 1..100 in pages of ten (a keyset source: the page after the last item seen), then an empty last page. */
function hundred(cursor: number | null): IterationPage<number, number> {
  const from = cursor ?? 0;
  if (from >= 100) return { items: [], next: null, total: 100 };
  return { items: Array.from({ length: 10 }, (_, i) => from + 1 + i), next: from + 10, total: 100 };
}

describe.each(DRIVER_KINDS)('a wall clock stepped back while jobs run (%s)', (kind) => {
  let tdb: TestDatabase;
  let clock: TestClock;
  let warden: Warden | undefined;

  beforeEach(async () => {
    tdb = await createTestDatabase(kind);
    clock = new TestClock(T0);
  });

  afterEach(async () => {
    await warden?.close();
    warden = undefined;
    await tdb?.cleanup();
  });

  function open(jobs: JobDefinition<any, any>[]): Warden {
    warden = makeWarden(tdb, { jobs, clock });
    return warden;
  }

  /** Steps the wall clock back by an hour; elapsed time does not move. */
  function stepBack(): Promise<void> {
    return clock.set(clock.now() - HOUR);
  }

  it('checkpointEvery.seconds keeps its cadence: a step back by an hour during the first batch holds no save back', async () => {
    const job = defineJob({
      name: 'by-time',
      handler: async (_payload, ctx) => {
        await ctx.iterate({
          source: hundred,
          // Each batch takes 3 s of elapsed time; the first also steps the wall clock back.
          batch: async (items) => {
            await clock.advance(3_000);
            if (items[0] === 1) await stepBack();
          },
          checkpointEvery: { items: 1_000, seconds: 5 },
        });
      },
    });
    const w = open([job]);
    const checkpointed = record(w, 'job:checkpointed');
    const { id } = await w.enqueue(job, {});
    await w.drain();
    // Every second batch (6 s since the last save), as without the step; on the wall clock only the final save.
    expect(checkpointed.map((e) => e.done)).toEqual([20, 40, 60, 80, 100, 100]);
    expect(await w.jobs.get(id)).toMatchObject({ state: 'completed', progress: { done: 100, total: 100 } });
  });

  it('maxRuntime still hands over after its elapsed time, and the yield reports that time as its duration', async () => {
    const job = defineJob({
      name: 'long-running',
      retry: { maxAttempts: 1 },
      handler: async (_payload, ctx) => {
        const attempt = ctx.attempt;
        await ctx.iterate({
          source: hundred,
          batch: async (items) => {
            await clock.advance(3_000);
            if (attempt === 1 && items[0] === 1) await stepBack();
          },
          maxRuntime: '10s',
          checkpointEvery: { items: 1_000, seconds: HOUR / 1_000 },
        });
      },
    });
    const w = open([job]);
    const yielded = record(w, 'job:yielded');
    const { id } = await w.enqueue(job, {});
    expect(await w.drain()).toEqual({ attempts: 3 });
    // After 12 s of elapsed time (four batches), in the attempt whose wall clock stepped back as in the next one.
    expect(yielded.map((e) => [e.attempt, e.reason, e.done, e.durationMs])).toEqual([
      [1, 'max-runtime', 40, 12_000],
      [2, 'max-runtime', 80, 12_000],
    ]);
    expect(await w.jobs.get(id)).toMatchObject({ state: 'completed', attempt: 3, progress: { done: 100, total: 100 } });
  });

  it('job:completed and job:failed report the elapsed duration of an attempt the step fell into', async () => {
    const steppedBack = (fails: boolean) => async () => {
      await clock.advance(2_000);
      await stepBack();
      await clock.advance(1_000);
      if (fails) throw new NonRetryableError('refused by the downstream service');
    };
    const ok = defineJob({ name: 'ok', handler: steppedBack(false) });
    const bad = defineJob({ name: 'bad', handler: steppedBack(true) });
    const w = open([ok, bad]);
    const completed = record(w, 'job:completed');
    const failed = record(w, 'job:failed');
    // One after the other: a job enqueued before the step would be due an hour later by the stepped-back clock.
    for (const job of [ok, bad]) {
      await w.enqueue(job, {});
      await w.drain();
    }
    expect(completed.map((e) => [e.job.name, e.durationMs])).toEqual([['ok', 3_000]]);
    expect(failed.map((e) => [e.job.name, e.outcome, e.nextState, e.durationMs])).toEqual([['bad', 'failed', 'dead', 3_000]]);
  });

  it('job:step reports the elapsed duration of a step the step back fell into', async () => {
    const job = defineJob({
      name: 'with-step',
      handler: async (_payload, ctx) => {
        await ctx.step('charge', async () => {
          await clock.advance(500);
          await stepBack();
          await clock.advance(250);
          return 'ch_1';
        });
      },
    });
    const w = open([job]);
    const steps = record(w, 'job:step');
    await w.enqueue(job, {});
    await w.drain();
    expect(steps.map((e) => [e.step, e.replayed, e.durationMs])).toEqual([['charge', false, 750]]);
  });
});
