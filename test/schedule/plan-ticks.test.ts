/**
 * `planTicks` as a pure function: which due ticks in [nextRunAt, now] fire and which are missed, for each misfire
 * policy; the grace boundary (exactly `grace` late fires, 1 ms more is missed); the default misfire window (one
 * interval plus the grace); `maxCount`; the returned `nextRunAt` (the first tick strictly after `now`); and a long
 * outage, whose listed ticks stay bounded while `unlistedMissed` counts the rest, and which still finds an irregular
 * cron's newest missed tick in its own default window.
 * @module
 */
import { describe, expect, it } from 'vitest';
import { defineSchedule, type ScheduleOptions } from '../../src/schedule/define-schedule.js';
import { MAX_RECORDED_TICKS, planTicks, type TickPlan } from '../../src/schedule/plan-ticks.js';
import { HOUR, iso, MINUTE, noopJob, T0 } from './helpers.js';

const SECOND = 1_000;

/** An every-minute schedule (cron or interval) with the given misfire options. */
function minutely(misfire: ScheduleOptions<unknown>['misfire'] = {}, form: 'cron' | 'every' = 'every') {
  return defineSchedule({ name: 'minutely', ...(form === 'cron' ? { cron: '* * * * *' } : { every: '1m' }), job: noopJob, misfire });
}

const at = (offsetMs: number) => new Date(T0 + offsetMs);

/** The plan as [iso tick, action, late] triples, for readable diffs. */
function summary(plan: TickPlan): [string, string, boolean][] {
  return plan.ticks.map((t) => [t.tickAt.toISOString(), t.action, t.late]);
}

function fired(plan: TickPlan): number[] {
  return plan.ticks.filter((t) => t.action === 'fire').map((t) => t.tickAt.getTime() - T0);
}

function missed(plan: TickPlan): number[] {
  return plan.ticks.filter((t) => t.action === 'missed').map((t) => t.tickAt.getTime() - T0);
}

describe('planTicks: on time', () => {
  it.each(['cron', 'every'] as const)('fires a tick that is due now, not late, and moves nextRunAt past now (%s)', (form) => {
    const plan = planTicks(minutely({}, form), at(MINUTE), at(MINUTE));
    expect(summary(plan)).toEqual([[iso([T0 + MINUTE])[0], 'fire', false]]);
    expect(plan.nextRunAt?.getTime()).toBe(T0 + 2 * MINUTE);
    expect(plan.unlistedMissed).toBe(0);
  });

  it('plans nothing when nextRunAt is still in the future, keeping nextRunAt', () => {
    const plan = planTicks(minutely(), at(MINUTE), at(MINUTE - 1));
    expect(plan.ticks).toEqual([]);
    expect(plan.nextRunAt?.getTime()).toBe(T0 + MINUTE);
    expect(plan.unlistedMissed).toBe(0);
  });

  it('fires every due tick that is within the grace, oldest first', () => {
    const s = defineSchedule({ name: 'often', every: '10s', job: noopJob });
    const plan = planTicks(s, at(10 * SECOND), at(45 * SECOND));
    expect(summary(plan)).toEqual([
      [iso([T0 + 10 * SECOND])[0], 'fire', false],
      [iso([T0 + 20 * SECOND])[0], 'fire', false],
      [iso([T0 + 30 * SECOND])[0], 'fire', false],
      [iso([T0 + 40 * SECOND])[0], 'fire', false],
    ]);
    expect(plan.nextRunAt?.getTime()).toBe(T0 + 50 * SECOND);
  });

  it('returns as nextRunAt the first tick strictly after now, also when now is exactly on a tick', () => {
    const s = minutely();
    for (const now of [MINUTE, MINUTE + 1, 2 * MINUTE - 1, 5 * MINUTE, 5 * MINUTE + 30 * SECOND]) {
      const plan = planTicks(s, at(MINUTE), at(now));
      expect(plan.nextRunAt!.getTime() - T0, `now = +${now}ms`).toBe((Math.floor(now / MINUTE) + 1) * MINUTE);
      expect(plan.nextRunAt!.getTime()).toBeGreaterThan(T0 + now);
      // Every tick in [nextRunAt, now] is listed, each once, in order.
      expect(plan.ticks.map((t) => t.tickAt.getTime() - T0)).toEqual(Array.from({ length: Math.floor(now / MINUTE) }, (_, i) => (i + 1) * MINUTE));
    }
  });
});

describe('planTicks: the grace boundary', () => {
  it.each(['skip', 'run-once', 'catch-up'] as const)('fires a tick exactly `grace` late on time, under %s', (policy) => {
    const s = minutely({ policy, grace: '5s' });
    const plan = planTicks(s, at(MINUTE), at(MINUTE + 5 * SECOND));
    expect(summary(plan)).toEqual([[iso([T0 + MINUTE])[0], 'fire', false]]);
  });

  it('misses a tick grace + 1 ms late under skip', () => {
    const plan = planTicks(minutely({ policy: 'skip', grace: '5s' }), at(MINUTE), at(MINUTE + 5 * SECOND + 1));
    expect(summary(plan)).toEqual([[iso([T0 + MINUTE])[0], 'missed', true]]);
  });

  it('runs a tick grace + 1 ms late once, as late, under run-once', () => {
    const plan = planTicks(minutely({ policy: 'run-once', grace: '5s' }), at(MINUTE), at(MINUTE + 5 * SECOND + 1));
    expect(summary(plan)).toEqual([[iso([T0 + MINUTE])[0], 'fire', true]]);
  });

  it('uses a grace of 1m by default', () => {
    const s = minutely({ policy: 'skip' });
    expect(summary(planTicks(s, at(MINUTE), at(2 * MINUTE - 1)))).toEqual([[iso([T0 + MINUTE])[0], 'fire', false]]);
    // At +2m the +1m tick is exactly 1m late (fires) and the +2m tick is due now (fires).
    expect(summary(planTicks(s, at(MINUTE), at(2 * MINUTE)))).toEqual([
      [iso([T0 + MINUTE])[0], 'fire', false],
      [iso([T0 + 2 * MINUTE])[0], 'fire', false],
    ]);
    expect(summary(planTicks(s, at(MINUTE), at(2 * MINUTE + 1)))).toEqual([
      [iso([T0 + MINUTE])[0], 'missed', true],
      [iso([T0 + 2 * MINUTE])[0], 'fire', false],
    ]);
  });

  it('with grace 0 only a tick due exactly now is on time', () => {
    const s = minutely({ policy: 'skip', grace: 0 });
    expect(summary(planTicks(s, at(MINUTE), at(MINUTE)))).toEqual([[iso([T0 + MINUTE])[0], 'fire', false]]);
    expect(summary(planTicks(s, at(MINUTE), at(MINUTE + 1)))).toEqual([[iso([T0 + MINUTE])[0], 'missed', true]]);
  });
});

describe('planTicks: misfire policies after an outage of 5 ticks', () => {
  // Ticks at +1m … +5m were all missed: the scheduler comes back at +5m30s with a 5s grace.
  const nextRunAt = at(MINUTE);
  const now = at(5 * MINUTE + 30 * SECOND);
  const all = [1, 2, 3, 4, 5].map((m) => m * MINUTE);

  it('skip: none fire, all five are recorded missed', () => {
    const plan = planTicks(minutely({ policy: 'skip', grace: '5s' }), nextRunAt, now);
    expect(fired(plan)).toEqual([]);
    expect(missed(plan)).toEqual(all);
    expect(plan.ticks.every((t) => t.late)).toBe(true);
    expect(plan.nextRunAt?.getTime()).toBe(T0 + 6 * MINUTE);
  });

  it('run-once: the newest fires once (late), the others are missed', () => {
    const plan = planTicks(minutely({ policy: 'run-once', grace: '5s' }), nextRunAt, now);
    expect(fired(plan)).toEqual([5 * MINUTE]);
    expect(missed(plan)).toEqual(all.slice(0, 4));
    expect(plan.ticks.every((t) => t.late)).toBe(true);
  });

  it('run-once: nothing fires when the newest missed tick is older than `within`', () => {
    const s = minutely({ policy: 'run-once', grace: '5s', within: '20s' });
    expect(fired(planTicks(s, nextRunAt, now))).toEqual([]);
    expect(missed(planTicks(s, nextRunAt, now))).toEqual(all);
    // 30s late is within 30s: fires.
    expect(fired(planTicks(minutely({ policy: 'run-once', grace: '5s', within: '30s' }), nextRunAt, now))).toEqual([5 * MINUTE]);
  });

  it('catch-up with a wide window: each missed tick fires, in order, late', () => {
    const plan = planTicks(minutely({ policy: 'catch-up', grace: '5s', within: '10m' }), nextRunAt, now);
    expect(fired(plan)).toEqual(all);
    expect(missed(plan)).toEqual([]);
    expect(plan.ticks.every((t) => t.late)).toBe(true);
  });

  it('catch-up with the default window (one interval plus the grace): only ticks within 65s fire', () => {
    const plan = planTicks(minutely({ policy: 'catch-up', grace: '5s' }), nextRunAt, now);
    // +5m is 30s late (in the window), +4m is 90s late (out of it).
    expect(fired(plan)).toEqual([5 * MINUTE]);
    expect(missed(plan)).toEqual(all.slice(0, 4));
  });

  it('catch-up fires only the newest maxCount', () => {
    const plan = planTicks(minutely({ policy: 'catch-up', grace: '5s', within: '10m', maxCount: 3 }), nextRunAt, now);
    expect(fired(plan)).toEqual(all.slice(2));
    expect(missed(plan)).toEqual(all.slice(0, 2));
  });

  it('mixes late and on-time ticks: a tick within the grace fires on time beside the late ones', () => {
    // At +5m05s: +5m is 5s late (on time); +1m…+4m are missed.
    const plan = planTicks(minutely({ policy: 'catch-up', grace: '5s', within: '10m' }), nextRunAt, at(5 * MINUTE + 5 * SECOND));
    expect(summary(plan)).toEqual([
      ...all.slice(0, 4).map((t) => [iso([T0 + t])[0], 'fire', true]),
      [iso([T0 + 5 * MINUTE])[0], 'fire', false],
    ]);
  });
});

describe('planTicks: the default misfire window is one interval plus the grace', () => {
  // Ticks +1m…+4m; grace 5s, so the window is 65s.
  const s = minutely({ policy: 'catch-up', grace: '5s' });

  it('a tick exactly 65s late is in the window', () => {
    const plan = planTicks(s, at(MINUTE), at(4 * MINUTE + 5 * SECOND));
    // +4m is exactly 5s late (on time); +3m is exactly 65s late (in the window, fires late).
    expect(summary(plan)).toEqual([
      [iso([T0 + MINUTE])[0], 'missed', true],
      [iso([T0 + 2 * MINUTE])[0], 'missed', true],
      [iso([T0 + 3 * MINUTE])[0], 'fire', true],
      [iso([T0 + 4 * MINUTE])[0], 'fire', false],
    ]);
  });

  it('1 ms later it is not', () => {
    const plan = planTicks(s, at(MINUTE), at(4 * MINUTE + 5 * SECOND + 1));
    expect(summary(plan)).toEqual([
      [iso([T0 + MINUTE])[0], 'missed', true],
      [iso([T0 + 2 * MINUTE])[0], 'missed', true],
      [iso([T0 + 3 * MINUTE])[0], 'missed', true],
      [iso([T0 + 4 * MINUTE])[0], 'fire', true],
    ]);
  });

  it('run-once always finds the newest missed tick in its default window', () => {
    const hourly = defineSchedule({ name: 'hourly', cron: '0 * * * *', job: noopJob, misfire: { policy: 'run-once', grace: '1m' } });
    for (const late of [61 * SECOND, 30 * MINUTE, 59 * MINUTE + 59 * SECOND]) {
      const plan = planTicks(hourly, at(HOUR), at(3 * HOUR + late));
      expect(fired(plan), `+${late}ms after the newest tick`).toEqual([3 * HOUR]);
      expect(missed(plan)).toEqual([HOUR, 2 * HOUR]);
    }
  });

  it('follows an irregular cron interval: a monthly tick missed by 20 days is within one month plus grace', () => {
    const monthly = defineSchedule({ name: 'monthly', cron: '0 0 1 * *', job: noopJob, misfire: { policy: 'catch-up' } });
    const feb1 = new Date(Date.UTC(2040, 1, 1));
    const plan = planTicks(monthly, new Date(Date.UTC(2040, 0, 1)), new Date(Date.UTC(2040, 1, 21)));
    // Jan 1 is 51 days late: more than January (31 days) plus 1m, so missed; Feb 1 is 20 days late: in its window.
    expect(summary(plan)).toEqual([
      ['2040-01-01T00:00:00.000Z', 'missed', true],
      [feb1.toISOString(), 'fire', true],
    ]);
    expect(plan.nextRunAt?.toISOString()).toBe('2040-03-01T00:00:00.000Z');
  });
});

describe('planTicks: a long outage', () => {
  it(`lists every tick of an outage of up to ${MAX_RECORDED_TICKS} ticks`, () => {
    const s = defineSchedule({ name: 'every-second', every: '1s', job: noopJob, misfire: { policy: 'skip', grace: '5s' } });
    // Down for 900 s: ticks +1s … +905s are due; the newest 6 (0…5 s late) are on time.
    const plan = planTicks(s, at(SECOND), at(905 * SECOND));
    expect(plan.ticks).toHaveLength(905);
    expect(plan.unlistedMissed).toBe(0);
    expect(plan.ticks.filter((t) => t.action === 'fire' && !t.late)).toHaveLength(6);
    expect(plan.ticks.filter((t) => t.action === 'missed')).toHaveLength(899);
    expect(plan.nextRunAt?.getTime()).toBe(T0 + 906 * SECOND);
  });

  it(`skips over a longer outage to the policy's window and counts the skipped ticks in unlistedMissed`, () => {
    const s = defineSchedule({ name: 'every-second', every: '1s', job: noopJob, misfire: { policy: 'skip', grace: '5s' } });
    // Down for an hour: ticks +1s … +3600s are due (3600 ticks). Under skip the window is the grace: +3595s … +3600s.
    const plan = planTicks(s, at(SECOND), at(HOUR));
    expect(plan.ticks.map((t) => t.tickAt.getTime() - T0)).toEqual([3_595, 3_596, 3_597, 3_598, 3_599, 3_600].map((n) => n * SECOND));
    expect(plan.ticks.every((t) => t.action === 'fire' && !t.late)).toBe(true);
    expect(plan.unlistedMissed).toBe(3_594);
    expect(plan.nextRunAt?.getTime()).toBe(T0 + HOUR + SECOND);
  });

  it('run-once still fires the newest missed tick after a long outage, without listing the whole outage', () => {
    const s = defineSchedule({ name: 'minutely', every: '1m', job: noopJob, misfire: { policy: 'run-once', grace: '5s' } });
    // Down for 3 days and 30 s: 4320 due ticks; the window is one interval plus the grace (65 s).
    const plan = planTicks(s, at(MINUTE), at(3 * 24 * HOUR + 30 * SECOND));
    expect(plan.ticks.map((t) => [t.tickAt.getTime() - T0, t.action, t.late])).toEqual([[3 * 24 * HOUR, 'fire', true]]);
    expect(plan.unlistedMissed).toBe(3 * 24 * 60 - 1);
    expect(fired(plan)).toEqual([3 * 24 * HOUR]);
    expect(plan.nextRunAt?.getTime()).toBe(T0 + 3 * 24 * HOUR + MINUTE);
  });

  it('catch-up after a long outage fires the newest maxCount within the window', () => {
    const s = defineSchedule({ name: 'every-second', every: '1s', job: noopJob, misfire: { policy: 'catch-up', grace: '5s', within: '10m', maxCount: 100 } });
    const plan = planTicks(s, at(SECOND), at(HOUR));
    const late = plan.ticks.filter((t) => t.action === 'fire' && t.late).map((t) => t.tickAt.getTime() - T0);
    // On time: +3595s…+3600s. Missed within 10m: +3000s…+3594s; the newest 100 of them fire.
    expect(late).toEqual(Array.from({ length: 100 }, (_, i) => (3_495 + i) * SECOND));
    expect(plan.ticks.filter((t) => t.action === 'fire' && !t.late)).toHaveLength(6);
  });

  describe('an irregular cron with the default window (its own interval plus the grace, per tick)', () => {
    // Every minute during business hours (09:00–17:59 UTC): after 17:59 the next tick is 09:00 the next day, so the
    // 17:59 tick's own interval is 15h01m, while the outage started where ticks were a minute apart.
    const business = (policy: 'run-once' | 'catch-up') => defineSchedule({ name: 'biz', cron: '* 9-17 * * *', job: noopJob, misfire: { policy } });
    const now = new Date('2026-03-03T18:30:00Z');

    it.each(['run-once', 'catch-up'] as const)('%s: after a long outage the newest missed tick (17:59, 31 min late) still fires, once', (policy) => {
      const plan = planTicks(business(policy), new Date('2026-03-02T10:00:00Z'), now);
      expect(summary(plan)).toEqual([['2026-03-03T17:59:00.000Z', 'fire', true]]);
      expect(plan.nextRunAt?.toISOString()).toBe('2026-03-04T09:00:00.000Z');
      // Counted, not estimated from the one-minute interval at the outage's start (that said 1,919): the 1,019
      // ticks really skipped, 10:00–17:59 on the 2nd and 09:00–17:58 on the 3rd.
      expect(plan.unlistedMissed).toBe(1_019);
    });

    it('the same tick fires after a short outage, where every tick is listed', () => {
      const plan = planTicks(business('run-once'), new Date('2026-03-03T10:00:00Z'), now);
      expect(fired(plan).map((t) => new Date(T0 + t).toISOString())).toEqual(['2026-03-03T17:59:00.000Z']);
      expect(plan.unlistedMissed).toBe(0);
    });

    it('a minutely cron down for ten years is planned without walking its ticks', () => {
      const s = defineSchedule({ name: 'minutely', cron: '* * * * *', job: noopJob, misfire: { grace: '5s' } });
      const plan = planTicks(s, at(MINUTE), at(10 * 365 * 24 * HOUR + 30 * SECOND));
      expect(summary(plan)).toEqual([[iso([T0 + 10 * 365 * 24 * HOUR])[0], 'fire', true]]);
      expect(plan.unlistedMissed).toBe(10 * 365 * 24 * 60 - 1);
      // How few reads of the pattern that takes is counted in plan-cost.test.ts (a count, not a timing).
    });
  });

  it(`considers at most ${MAX_RECORDED_TICKS} ticks per scan, the newest, even when more are within the window`, () => {
    const s = defineSchedule({ name: 'every-second', every: '1s', job: noopJob, misfire: { policy: 'catch-up', grace: '5s', within: '1h', maxCount: MAX_RECORDED_TICKS } });
    // 3005 due ticks, all within the 1 h window: the newest 1000 are listed (5 on time, 995 late), 2005 counted.
    const plan = planTicks(s, at(SECOND), at(3_005 * SECOND));
    expect(plan.ticks).toHaveLength(MAX_RECORDED_TICKS);
    expect(plan.ticks.filter((t) => t.action === 'fire' && t.late)).toHaveLength(MAX_RECORDED_TICKS - 6);
    expect(plan.ticks.filter((t) => t.action === 'fire' && !t.late)).toHaveLength(6);
    expect(plan.unlistedMissed).toBe(3_005 - MAX_RECORDED_TICKS);
  });
});
