/**
 * Bad schedule (and lock) input is refused before anything is written: `defineSchedule` throws an
 * `InvalidOptionError` naming the field (the schedule's name, like every name, is an `InvalidNameError`),
 * `createWarden` refuses duplicate schedule names and a schedule whose job clashes with another registered job of
 * the same name, and `locks.acquire` refuses a TTL <= 0 and a bad lock name. Each database is then checked to
 * hold no schedule, tick, job or lock. Also: the defaults, and `every` ticking on multiples of the interval since
 * the Unix epoch.
 * @module
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Warden } from '../../src/client/warden.js';
import { InvalidDurationError, InvalidNameError, InvalidOptionError, WardenError } from '../../src/errors.js';
import { defineJob } from '../../src/job/define-job.js';
import { defineSchedule, type ScheduleOptions } from '../../src/schedule/define-schedule.js';
import { createTestDatabase, DRIVER_KINDS, type TestDatabase } from '../support/test-databases.js';
import { makeWarden, MINUTE, noopJob, openOracle, type Oracle } from './helpers.js';

type ErrorClass = new (...args: any[]) => WardenError & { field: string; value: unknown };

/** Calls `fn`, which must throw an `errorClass` whose `field` matches `field`; returns the error. */
function expectRefused(fn: () => unknown, errorClass: ErrorClass, field: string | RegExp): WardenError & { field: string; value: unknown } {
  let caught: unknown;
  try {
    fn();
  } catch (error) {
    caught = error;
  }
  expect(caught, 'expected a throw').toBeInstanceOf(errorClass);
  const error = caught as WardenError & { field: string; value: unknown };
  if (typeof field === 'string') expect(error.field).toBe(field);
  else expect(error.field).toMatch(field);
  expect(error.message).toMatch(/^Expected /);
  return error;
}

/** A valid schedule's options, overridden field by field. */
function options(overrides: Partial<ScheduleOptions<unknown>> & Record<string, unknown> = {}): ScheduleOptions<unknown> {
  return { name: 'nightly', cron: '0 3 * * *', job: noopJob, ...overrides } as ScheduleOptions<unknown>;
}

/** Every bad definition, with the error class and field it must be refused with. */
const BAD_DEFINITIONS: { what: string; input: () => ScheduleOptions<unknown>; error: ErrorClass; field: string }[] = [
  { what: 'a minute of 61 in the cron pattern', input: () => options({ cron: '61 * * * *' }), error: InvalidOptionError, field: 'cron of schedule "nightly"' },
  { what: 'a cron pattern that is not one', input: () => options({ cron: 'every day' }), error: InvalidOptionError, field: 'cron of schedule "nightly"' },
  { what: 'an unknown time zone', input: () => options({ timezone: 'Mars/Base' }), error: InvalidOptionError, field: 'timezone of schedule "nightly"' },
  { what: 'both cron and every', input: () => options({ cron: '* * * * *', every: '1m' }), error: InvalidOptionError, field: 'cron/every of schedule "nightly"' },
  { what: 'neither cron nor every', input: () => options({ cron: undefined }), error: InvalidOptionError, field: 'cron/every of schedule "nightly"' },
  { what: 'an interval under 1s', input: () => options({ cron: undefined, every: '500ms' }), error: InvalidOptionError, field: 'every of schedule "nightly"' },
  { what: 'an unknown overlap policy', input: () => options({ overlap: 'never' as never }), error: InvalidOptionError, field: 'overlap of schedule "nightly"' },
  { what: 'an unknown misfire policy', input: () => options({ misfire: { policy: 'all' as never } }), error: InvalidOptionError, field: 'misfire.policy of schedule "nightly"' },
  { what: 'misfire.maxCount 0', input: () => options({ misfire: { policy: 'catch-up', maxCount: 0 } }), error: InvalidOptionError, field: 'misfire.maxCount of schedule "nightly"' },
  { what: 'misfire.maxCount 1.5', input: () => options({ misfire: { maxCount: 1.5 } }), error: InvalidOptionError, field: 'misfire.maxCount of schedule "nightly"' },
  { what: 'a job that is not a job definition', input: () => options({ job: { name: 'x' } as never }), error: InvalidOptionError, field: 'job of schedule "nightly"' },
  { what: 'a bad queue override', input: () => options({ queue: 'Bad Queue' }), error: InvalidNameError, field: 'queue of schedule "nightly"' },
  { what: 'a non-integer priority', input: () => options({ priority: 0.5 }), error: InvalidOptionError, field: 'priority of schedule "nightly"' },
  { what: 'a negative grace', input: () => options({ misfire: { grace: -1 } }), error: InvalidDurationError, field: 'misfire.grace of schedule "nightly"' },
  { what: 'a zero misfire window', input: () => options({ misfire: { within: 0 } }), error: InvalidDurationError, field: 'misfire.within of schedule "nightly"' },
  // Names are checked like every other name in Warden (jobs, queues): InvalidNameError, naming the field.
  { what: "an invalid schedule name ('a;drop')", input: () => options({ name: 'a;drop' }), error: InvalidNameError, field: 'schedule name' },
  { what: 'an upper-case schedule name', input: () => options({ name: 'Nightly' }), error: InvalidNameError, field: 'schedule name' },
];

describe('defineSchedule', () => {
  it.each(BAD_DEFINITIONS)('refuses $what, naming the field', ({ input, error, field }) => {
    expectRefused(() => defineSchedule(input()), error, field);
  });

  it('names the cause of a bad cron pattern and a bad time zone in the message', () => {
    expect(expectRefused(() => defineSchedule(options({ cron: '61 * * * *' })), InvalidOptionError, /cron/).message).toContain('"61 * * * *"');
    expect(expectRefused(() => defineSchedule(options({ timezone: 'Mars/Base' })), InvalidOptionError, /timezone/).message).toContain('"Mars/Base"');
  });

  it('applies the documented defaults', () => {
    const s = defineSchedule(options());
    expect(s).toMatchObject({
      name: 'nightly',
      cron: '0 3 * * *',
      everyMs: null,
      timezone: 'UTC',
      queue: noopJob.queue,
      priority: noopJob.priority,
      overlap: 'skip',
      misfire: { policy: 'run-once', withinMs: null, maxCount: 100, graceMs: 60_000 },
      expect: null,
    });
    expect(s.payload({ tickAt: new Date(0), scheduleName: 'nightly' })).toEqual({});
    expect(Object.isFrozen(s)).toBe(true);
  });

  it('accepts the boundaries: every 1s, maxCount 1 and 1000, grace 0', () => {
    expect(defineSchedule(options({ cron: undefined, every: '1s' })).everyMs).toBe(1_000);
    expect(defineSchedule(options({ misfire: { maxCount: 1 } })).misfire.maxCount).toBe(1);
    expect(defineSchedule(options({ misfire: { maxCount: 1_000 } })).misfire.maxCount).toBe(1_000);
    expect(defineSchedule(options({ misfire: { grace: 0 } })).misfire.graceMs).toBe(0);
    expectRefused(() => defineSchedule(options({ misfire: { maxCount: 1_001 } })), InvalidOptionError, /maxCount/);
  });

  it("ticks `every: '1m'` on multiples of 60 s since the epoch, strictly after the given time", () => {
    const s = defineSchedule(options({ cron: undefined, every: '1m' }));
    const samples = [0, 1, 59_999, 60_000, 60_001, Date.UTC(2026, 2, 8, 6, 59, 59, 999), Date.UTC(2040, 0, 1, 0, 0, 0), 1_234_567_890_123];
    for (const t of samples) {
      const next = s.nextTick(new Date(t))!.getTime();
      expect(next % MINUTE, `next tick after ${t}`).toBe(0);
      expect(next).toBeGreaterThan(t);
      expect(next - t).toBeLessThanOrEqual(MINUTE);
    }
    expect(s.nextTick(new Date(Date.UTC(2040, 0, 1, 0, 0, 0)))!.toISOString()).toBe('2040-01-01T00:01:00.000Z');
    expect(s.nextTick(new Date(Date.UTC(2040, 0, 1, 0, 0, 30)))!.toISOString()).toBe('2040-01-01T00:01:00.000Z');
  });

  it('ticks an interval that does not divide an hour on its multiples since the epoch too', () => {
    const s = defineSchedule(options({ cron: undefined, every: '7s' }));
    let t = new Date(Date.UTC(2040, 0, 1, 0, 0, 3));
    for (let i = 0; i < 20; i++) {
      const next = s.nextTick(t)!;
      expect(next.getTime() % 7_000).toBe(0);
      expect(next.getTime() - t.getTime()).toBeLessThanOrEqual(7_000);
      t = next;
    }
  });

  it('gives the same definition hash for the same definition and a different one when timing changes', () => {
    const a = defineSchedule(options());
    expect(defineSchedule(options()).definitionHash).toBe(a.definitionHash);
    expect(defineSchedule(options({ cron: '0 4 * * *' })).definitionHash).not.toBe(a.definitionHash);
    expect(defineSchedule(options({ timezone: 'Europe/Berlin' })).definitionHash).not.toBe(a.definitionHash);
    expect(defineSchedule(options({ overlap: 'allow' })).definitionHash).not.toBe(a.definitionHash);
  });
});

describe.each(DRIVER_KINDS)('bad schedule and lock input writes nothing (%s)', (kind) => {
  let tdb: TestDatabase;
  let oracle: Oracle;
  let warden: Warden | undefined;

  beforeEach(async () => {
    tdb = await createTestDatabase(kind);
    oracle = await openOracle(tdb);
  });

  afterEach(async () => {
    await warden?.close();
    warden = undefined;
    await oracle?.close();
    await tdb?.cleanup();
  });

  async function expectNothingWritten(): Promise<void> {
    expect(await tdb.driver.scheduleList()).toEqual([]);
    expect(await tdb.driver.lockList()).toEqual([]);
    expect(await oracle.number('SELECT COUNT(*) FROM {schedules}')).toBe(0);
    expect(await oracle.number('SELECT COUNT(*) FROM {schedule_ticks}')).toBe(0);
    expect(await oracle.number('SELECT COUNT(*) FROM {jobs}')).toBe(0);
    expect(await oracle.number('SELECT COUNT(*) FROM {locks}')).toBe(0);
  }

  it('refuses every bad definition, then finds the database empty', async () => {
    for (const { input, error, field } of BAD_DEFINITIONS) expectRefused(() => defineSchedule(input()), error, field);
    await expectNothingWritten();
  });

  it('refuses duplicate schedule names in createWarden (InvalidOptionError), writing nothing', async () => {
    const a = defineSchedule({ name: 'report', cron: '0 * * * *', job: noopJob });
    const b = defineSchedule({ name: 'report', every: '5m', job: noopJob });
    const error = expectRefused(() => makeWarden(tdb, { schedules: [a, b] }), InvalidOptionError, 'schedules[]');
    expect(error.value).toBe('report');
    // The same definition object twice is a duplicate as well.
    expectRefused(() => makeWarden(tdb, { schedules: [a, a] }), InvalidOptionError, 'schedules[]');
    await expectNothingWritten();
  });

  it('refuses a schedule whose job clashes with a different registered job of the same name, writing nothing', async () => {
    const report = defineJob({ name: 'report', handler: () => undefined });
    const impostor = defineJob({ name: 'report', handler: () => 'other' });
    const schedule = defineSchedule({ name: 'hourly-report', cron: '0 * * * *', job: impostor });
    const error = expectRefused(() => makeWarden(tdb, { jobs: [report], schedules: [schedule] }), InvalidOptionError, 'job of schedule "hourly-report"');
    expect(error.value).toBe('report');
    // Two schedules whose jobs are different definitions with one name clash the same way.
    const other = defineSchedule({ name: 'daily-report', cron: '0 0 * * *', job: report });
    expectRefused(() => makeWarden(tdb, { schedules: [other, schedule] }), InvalidOptionError, 'job of schedule "hourly-report"');
    // The same definition object registered in jobs and used by a schedule is fine.
    warden = makeWarden(tdb, { jobs: [report], schedules: [other] });
    expect(warden.definitions.get('report')).toBe(report);
    await expectNothingWritten();
  });

  it('refuses a lock TTL <= 0 (InvalidDurationError) and a bad lock name (InvalidNameError), writing nothing', async () => {
    warden = makeWarden(tdb, { jobs: [noopJob] });
    const locks = warden.locks;
    for (const ttl of [0, -1, '0s', '-1s'] as const) {
      const error = await locks.acquire('x', { ttl: ttl as never }).then(
        () => null,
        (e: unknown) => e,
      );
      expect(error, `ttl ${String(ttl)}`).toBeInstanceOf(InvalidDurationError);
      expect((error as InvalidDurationError).field).toBe('ttl');
    }
    for (const name of ['', 'bad name', '-leading-dash', 'x'.repeat(129), 'semi;colon']) {
      const error = await locks.acquire(name, { ttl: '30s' }).then(
        () => null,
        (e: unknown) => e,
      );
      expect(error, `lock name ${JSON.stringify(name)}`).toBeInstanceOf(InvalidNameError);
      expect((error as InvalidNameError).field).toBe('lock name');
    }
    await expectNothingWritten();
    expect(await warden.driver.lockList()).toEqual([]);
  });
});
