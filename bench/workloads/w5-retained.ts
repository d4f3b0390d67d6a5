/**
 * W5 cost growth: W1's drain rate with many finished jobs retained in the tables against an empty store, and
 * the worker's resident memory sampled over one long drain. Sizes come from BENCH_W5_RETAINED and
 * BENCH_W5_DRAIN (see settings.ts).
 * @module
 */
import { now } from '../clock.js';
import { settle } from '../settle.js';
import { slope } from '../stats.js';
import { bulkEnqueue, drain, withStore, type RepetitionContext, type Workload } from './workload.js';

const MB = 1024 * 1024;

async function drainRate(ctx: RepetitionContext, suffix: string, retained: number): Promise<number> {
  return withStore({ ...ctx, id: `${ctx.id}_${suffix}` }, async (target, producer) => {
    if (retained > 0) {
      const t0 = now();
      await ctx.system.seedFinished!(target, retained);
      console.log(`    seeded ${retained.toLocaleString('en-US')} finished jobs in ${((now() - t0) / 1000).toFixed(1)} s`);
      // The question is what a million rows cost the drain, not what writing them just now does: PostgreSQL's
      // checkpoint of the seeded pages and autovacuum would otherwise run during the measured drain.
      await settle(ctx.settings.pgUrl);
    }
    await bulkEnqueue(ctx.settings, producer, ctx.settings.jobs);
    return (await drain({ ...ctx, id: `${ctx.id}_${suffix}` }, target, producer, ctx.settings.jobs, 1)).perSec;
  });
}

/** Memory over one long drain: RSS after warm-up (2% of the jobs), peak, at the end, and the growth trend. */
async function longDrain(ctx: RepetitionContext): Promise<Record<string, number>> {
  const jobs = ctx.settings.longDrain;
  return withStore({ ...ctx, id: `${ctx.id}_long` }, async (target, producer) => {
    await bulkEnqueue(ctx.settings, producer, jobs);
    const result = await drain({ ...ctx, id: `${ctx.id}_long` }, target, producer, jobs, 1, { rssEveryMs: 250, trackExecutions: false });
    const samples = result.rss.map(([, count, rss]) => ({ x: count, y: rss }));
    const warm = samples.filter((s) => s.x >= jobs * 0.02);
    const trend = warm.filter((s) => s.x >= jobs * 0.1 && s.x < jobs);
    // The second half alone: a leak grows there as much as in the first; start-up effects do not.
    const late = warm.filter((s) => s.x >= jobs * 0.5 && s.x < jobs);
    return {
      longRate: result.perSec,
      rssStart: (warm[0]?.y ?? Number.NaN) / MB,
      rssPeak: samples.length > 0 ? Math.max(...samples.map((s) => s.y)) / MB : Number.NaN,
      rssEnd: (samples[samples.length - 1]?.y ?? Number.NaN) / MB,
      // MB per 100,000 jobs processed, least squares over the samples after the first 10% of the drain.
      // Fewer than 10 samples (a short drain) cannot show a trend.
      growth: trend.length >= 10 ? (slope(trend) * 100_000) / MB : Number.NaN,
      growthLate: late.length >= 10 ? (slope(late) * 100_000) / MB : Number.NaN,
      samples: samples.length,
    };
  });
}

export const w5Retained: Workload = {
  id: 'W5',
  title: 'W5 cost growth: retained finished jobs, worker memory',
  method: (s) => `Five repetitions (at least). Per repetition, W1's drain (${s.jobs.toLocaleString('en-US')} jobs, one worker child) on an empty store and on a store seeded with ${s.retained.toLocaleString('en-US')} finished jobs (each a clone of a job Warden really ran, with its attempt rows if it has any: since migration 0011 a completed job keeps its completing attempt on its own row; PostgreSQL then \`VACUUM ANALYZE\`d as autovacuum would have; SQLite's WAL checkpointed into the file, PostgreSQL \`CHECKPOINT\`ed and the machine left to settle, so the drain measures the rows' presence, not the cost of having just written them); ratio = retained ÷ empty. Memory: once, a ${s.longDrain.toLocaleString('en-US')}-job drain by one worker child with its RSS sampled every 250 ms, each sample right after a full garbage collection (\`--expose-gc\`: memory the worker holds, not garbage V8 has yet to collect; without it V8's old-space sawtooth, about 1.2M jobs long on the SQLite worker, reads as growth over a 1M-job drain) and with execution tracking off, so the samples are the worker's own memory; growth = least-squares slope of RSS over jobs processed after the first 10% (the target's figure), and over the second half alone (a leak grows there as much as anywhere).`,
  metrics: [
    { key: 'empty', label: 'drain, empty (jobs/s)', better: 'higher' },
    { key: 'retained', label: 'drain, retained (jobs/s)', better: 'higher' },
    { key: 'ratio', label: 'retained ÷ empty (%)', better: 'higher', digits: 1 },
    { key: 'longRate', label: 'long drain (jobs/s)', better: 'higher' },
    { key: 'rssStart', label: 'RSS after warm-up (MB)', better: 'lower', digits: 1 },
    { key: 'rssPeak', label: 'RSS peak (MB)', better: 'lower', digits: 1 },
    { key: 'rssEnd', label: 'RSS at end (MB)', better: 'lower', digits: 1 },
    { key: 'growth', label: 'RSS growth after 10% (MB per 100k jobs)', better: 'lower', digits: 2 },
    { key: 'growthLate', label: 'RSS growth, second half (MB per 100k jobs)', better: 'lower', digits: 2 },
  ],
  // Each ratio compares two drains of under a second each, which one garbage collection or one noisy moment on
  // a shared 2-core machine moves by a fifth (single repetitions from 72 to 136 % on the same code): the
  // median of at least five instead of three.
  repetitions: (settings) => (settings.quick ? settings.repetitions : Math.max(settings.repetitions, 5)),
  async measure(ctx) {
    const empty = await drainRate(ctx, 'empty', 0);
    const retained = await drainRate(ctx, 'kept', ctx.settings.retained);
    const result: Record<string, number> = { empty, retained, ratio: (retained / empty) * 100 };
    // The long drain is expensive, so it runs once (in the first repetition), not three times.
    if (ctx.rep === 1 && ctx.settings.longDrain > 0) Object.assign(result, await longDrain(ctx));
    return result;
  },
};
