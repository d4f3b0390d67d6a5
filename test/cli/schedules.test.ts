import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { describeSpec, formatInterval } from '../../src/cli/commands/schedules.js';
import { workerCommand } from '../../src/cli/commands/worker.js';
import { jobsFromModule, looksLikeScheduleDefinition, schedulesFromModule } from '../../src/cli/load-jobs.js';
import { type CliDatabase, cli, cliJson, expectOneLineError, JOBS, migratedDatabase, waitFor } from './cli-helpers.js';
import * as schedulesFixture from './fixtures/schedules.js';
import * as schedulesOnlyFixture from './fixtures/schedules-only.js';

const SCHEDULES = fileURLToPath(new URL('./fixtures/schedules.ts', import.meta.url));
const SCHEDULES_KEYED = fileURLToPath(new URL('./fixtures/schedules-keyed.ts', import.meta.url));
const SCHEDULES_ONLY = fileURLToPath(new URL('./fixtures/schedules-only.ts', import.meta.url));
const SCHEDULES_CHANGED = fileURLToPath(new URL('./fixtures/schedules-changed.ts', import.meta.url));
const HOUR = 3_600_000;

let db: CliDatabase | undefined;
let previousUser: string | undefined;
beforeEach(() => {
  delete process.env.WARDEN_JOBS;
  previousUser = process.env.USER;
  process.env.USER = 'tester';
});
afterEach(async () => {
  if (previousUser === undefined) delete process.env.USER;
  else process.env.USER = previousUser;
  await db?.cleanup();
  db = undefined;
});

/** Captures what a command run in-process writes. */
function capture() {
  const output = { out: '', err: '' };
  return { output, io: { out: (t: string) => void (output.out += t), err: (t: string) => void (output.err += t) } };
}

describe.each(['sqlite', 'postgres'] as const)('warden schedules (%s)', (kind) => {
  it('lists nothing before a sync, then the schedule, its triggered tick and job after schedules trigger', async () => {
    const database = (db = await migratedDatabase(kind));
    expect(await cli(['schedules', 'list', ...database.args])).toEqual({ code: 0, out: 'no schedules\n', err: '' });
    expect(await cliJson(['schedules', 'list', ...database.args])).toEqual([]);

    const triggered = await cli(['schedules', 'trigger', 'hourly-cleanup', '--jobs', SCHEDULES, ...database.args]);
    expect(triggered.err).toBe('');
    expect(triggered.code).toBe(0);
    const jobId = /^triggered schedule hourly-cleanup: job (\d+)\n$/.exec(triggered.out)?.[1];
    expect(jobId).toBeDefined();

    const jobs = await cliJson(['jobs', 'list', ...database.args]);
    expect(jobs).toEqual([expect.objectContaining({ id: jobId, name: 'cleanup', queue: 'maintenance', state: 'queued', payload: { scope: 'all' }, scheduleName: 'hourly-cleanup' })]);

    const ticks = await cliJson(['schedules', 'ticks', 'hourly-cleanup', ...database.args]);
    expect(ticks).toEqual([
      expect.objectContaining({ scheduleName: 'hourly-cleanup', kind: 'triggered', outcome: 'fired', jobId, jobState: 'queued', actor: 'cli:tester' }),
    ]);

    const [row, ...rest] = await cliJson(['schedules', 'list', ...database.args]);
    expect(rest).toEqual([]);
    expect(row).toMatchObject({
      name: 'hourly-cleanup',
      paused: false,
      spec: expect.objectContaining({ everyMs: HOUR, job: 'cleanup', queue: 'maintenance' }),
      lastTick: expect.objectContaining({ kind: 'triggered', outcome: 'fired', jobId, jobState: 'queued', actor: 'cli:tester' }),
    });
    const nextRunAt = new Date(row.nextRunAt as string).getTime();
    expect(nextRunAt % HOUR).toBe(0);
    expect(nextRunAt).toBeGreaterThan(Date.now() - 60_000);
    expect(nextRunAt).toBeLessThanOrEqual(Date.now() + HOUR + 60_000);

    const text = await cli(['schedules', 'list', ...database.args]);
    expect(text.code).toBe(0);
    const [header, line] = text.out.split('\n');
    expect(header).toMatch(/^NAME +SCHEDULE +NEXT RUN +LAST TICK +PAUSED$/);
    expect(line).toMatch(new RegExp(`^hourly-cleanup +every 1h +\\d{4}-\\d\\d-\\d\\d \\d\\d:00:00Z \\(in \\S+\\) +\\S+ \\S+ fired \\(triggered\\) job ${jobId} queued +no$`));

    const ticksText = await cli(['schedules', 'ticks', 'hourly-cleanup', '--limit', '5', ...database.args]);
    expect(ticksText.out.split('\n')[0]).toMatch(/^TICK AT +KIND +OUTCOME +LATE +JOB +JOB STATE +ACTOR +RECORDED$/);
    expect(ticksText.out.split('\n')[1]).toMatch(new RegExp(`^\\S+ \\S+ +triggered +fired +no +${jobId} +queued +cli:tester +\\S+ \\S+$`));
  });
});

describe('warden schedules pause, resume and trigger', () => {
  it('reflects pause and resume in schedules list --json', async () => {
    const database = (db = await migratedDatabase('sqlite'));
    expect((await cli(['schedules', 'trigger', 'hourly-cleanup', '--jobs', SCHEDULES, ...database.args])).code).toBe(0);

    expect(await cli(['schedules', 'pause', 'hourly-cleanup', ...database.args])).toEqual({ code: 0, out: 'paused schedule hourly-cleanup\n', err: '' });
    expect(await cliJson(['schedules', 'list', ...database.args])).toEqual([expect.objectContaining({ name: 'hourly-cleanup', paused: true })]);
    expect((await cli(['schedules', 'list', ...database.args])).out.split('\n')[1]).toMatch(/^hourly-cleanup +every 1h +- +.* +yes$/);

    const resumed = await cliJson(['schedules', 'resume', 'hourly-cleanup', ...database.args]);
    expect(resumed).toMatchObject({ name: 'hourly-cleanup', paused: false, nextRunAt: expect.any(String) });
    expect(await cliJson(['schedules', 'list', ...database.args])).toEqual([expect.objectContaining({ name: 'hourly-cleanup', paused: false })]);
    const text = await cli(['schedules', 'resume', 'hourly-cleanup', ...database.args]);
    expect(text.out).toMatch(/^resumed schedule hourly-cleanup \(next run \d{4}-\d\d-\d\d \d\d:00:00Z\)\n$/);
  });

  it('syncs only the triggered schedule: others stay, and a differing stored definition is kept, with a note', async () => {
    const database = (db = await migratedDatabase('sqlite'));
    expect((await cli(['schedules', 'trigger', 'daily-report', '--jobs', SCHEDULES_ONLY, ...database.args])).code).toBe(0);
    expect((await cli(['schedules', 'trigger', 'hourly-cleanup', '--jobs', SCHEDULES, ...database.args])).code).toBe(0);
    let rows = await cliJson(['schedules', 'list', ...database.args]);
    expect(rows.map((r: any) => r.name)).toEqual(['daily-report', 'hourly-cleanup']);
    expect((await cli(['schedules', 'list', ...database.args])).out).toMatch(/^daily-report +cron 0 6 \* \* \* \(Europe\/London\) +/m);

    const changed = await cli(['schedules', 'trigger', 'hourly-cleanup', '--jobs', SCHEDULES_CHANGED, ...database.args]);
    expect(changed.code).toBe(0);
    expect(changed.err).toMatch(/^note: schedule hourly-cleanup in the database has another definition \(another deploy\?\); triggering with the job and payload of \S+schedules-changed\.ts\n$/);
    rows = await cliJson(['schedules', 'list', ...database.args]);
    expect(rows.find((r: any) => r.name === 'hourly-cleanup').spec.everyMs).toBe(HOUR);
    const ticks = await cliJson(['schedules', 'ticks', 'hourly-cleanup', ...database.args]);
    expect(ticks).toHaveLength(2);
    const jobs = await cliJson(['jobs', 'list', '--name', 'cleanup', ...database.args]);
    expect(jobs.map((j: any) => j.payload)).toEqual([{ scope: 'changed' }, { scope: 'all' }]);
  });

  it('registers the jobs of a module that only exports schedules, so they can be enqueued', async () => {
    const database = (db = await migratedDatabase('sqlite'));
    const result = await cliJson(['enqueue', 'daily-report', '{}', '--jobs', SCHEDULES_ONLY, ...database.args]);
    expect(result).toMatchObject({ duplicate: false, job: expect.objectContaining({ name: 'daily-report', state: 'queued' }) });
  });

  it('a trigger whose job matches an active job by its unique key says so: no new run, the tick skipped', async () => {
    const database = (db = await migratedDatabase('sqlite'));
    const first = await cli(['schedules', 'trigger', 'hourly-rebuild', '--jobs', SCHEDULES_KEYED, ...database.args]);
    const jobId = /^triggered schedule hourly-rebuild: job (\d+)\n$/.exec(first.out)?.[1];
    expect(jobId).toBeDefined();
    const second = await cli(['schedules', 'trigger', 'hourly-rebuild', '--jobs', SCHEDULES_KEYED, ...database.args]);
    expect([second.code, second.err]).toEqual([0, '']);
    expect(second.out).toBe(`schedule hourly-rebuild not triggered: its job's unique key matches active job ${jobId} (tick recorded skipped)\n`);
    const json = await cliJson(['schedules', 'trigger', 'hourly-rebuild', '--jobs', SCHEDULES_KEYED, ...database.args]);
    expect(json).toEqual({ schedule: 'hourly-rebuild', jobId, tickAt: expect.any(String), duplicate: true, replaced: false });

    // A key that replaces a waiting job: that job now runs with this trigger's payload and due time.
    const waiting = /^triggered schedule hourly-refresh: job (\d+)\n$/.exec((await cli(['schedules', 'trigger', 'hourly-refresh', '--jobs', SCHEDULES_KEYED, ...database.args])).out)?.[1];
    expect(waiting).toBeDefined();
    const replacing = await cli(['schedules', 'trigger', 'hourly-refresh', '--jobs', SCHEDULES_KEYED, ...database.args]);
    expect(replacing.out).toBe(`triggered schedule hourly-refresh: waiting job ${waiting} has its job's unique key and now runs with this trigger's payload and due time (no new job; tick recorded fired)\n`);
  });

  it('prints {schedule, jobId, tickAt, duplicate, replaced} with --json, taking the module from WARDEN_JOBS', async () => {
    const database = (db = await migratedDatabase('sqlite'));
    process.env.WARDEN_JOBS = SCHEDULES;
    const result = await cliJson(['schedules', 'trigger', 'hourly-cleanup', ...database.args]);
    expect(result).toEqual({ schedule: 'hourly-cleanup', jobId: expect.stringMatching(/^\d+$/), tickAt: expect.any(String), duplicate: false, replaced: false });
  });
});

describe('warden schedules errors', () => {
  it('requires the module for trigger', async () => {
    db = await migratedDatabase('sqlite');
    expectOneLineError(
      await cli(['schedules', 'trigger', 'hourly-cleanup', ...db.args]),
      1,
      /^warden: Expected --jobs <module> \(or WARDEN_JOBS\) defining schedule hourly-cleanup, got none\n$/,
    );
  });

  it.each([
    [['pause', 'nope']],
    [['resume', 'nope']],
    [['ticks', 'nope']],
    [['trigger', 'nope', '--jobs', SCHEDULES]],
  ])('reports an unknown schedule in one line: %j', async (args) => {
    db = await migratedDatabase('sqlite');
    expectOneLineError(await cli(['schedules', ...args, ...db.args]), 1, /^warden: Expected the name of an active schedule, got "nope"/);
  });

  it.each([
    [['pause', 'a;drop']],
    [['resume', 'a;drop']],
    [['ticks', 'a;drop']],
    [['trigger', 'a;drop', '--jobs', SCHEDULES]],
    [['trigger', 'a;drop']],
  ])('rejects an invalid schedule name in one line: %j', async (args) => {
    db = await migratedDatabase('sqlite');
    expectOneLineError(await cli(['schedules', ...args, ...db.args]), 1, /Expected schedule name to match .*, got "a;drop"/);
  });

  it('rejects a module that does not define a schedule known to the database', async () => {
    db = await migratedDatabase('sqlite');
    expect((await cli(['schedules', 'trigger', 'daily-report', '--jobs', SCHEDULES_ONLY, ...db.args])).code).toBe(0);
    expectOneLineError(
      await cli(['schedules', 'trigger', 'daily-report', '--jobs', SCHEDULES, ...db.args]),
      1,
      /Expected the jobs module \S+schedules\.ts to define schedule daily-report \(its job and payload are code\), got schedules: hourly-cleanup$/m,
    );
    expectOneLineError(await cli(['schedules', 'trigger', 'daily-report', '--jobs', JOBS, ...db.args]), 1, /got schedules: none$/m);
  });

  it('rejects a bad --limit in one line', async () => {
    db = await migratedDatabase('sqlite');
    expectOneLineError(await cli(['schedules', 'ticks', 'hourly-cleanup', '--limit', '0', ...db.args]), 1, /Expected --limit to be a whole number from 1 to 1000, got "0"/);
  });
});

describe('warden worker with schedules', () => {
  it('fires schedules without running jobs with --scheduler-only', async () => {
    const database = (db = await migratedDatabase('sqlite'));
    const { output, io } = capture();
    const controller = new AbortController();
    const running = workerCommand({ database: database.url, schema: 'warden', jobs: SCHEDULES, schedulerOnly: true, signal: controller.signal, handleSignals: false }, io);
    await waitFor('the started line', async () => (output.out.includes('started') ? true : undefined));
    expect(output.out).toBe('scheduler started (no worker), schedules: hourly-cleanup\n');
    // The scheduler writes the module's schedules to the database when it starts.
    const rows = await waitFor('the schedule to be synced', async () => {
      const list = await cliJson(['schedules', 'list', ...database.args]);
      return list.length > 0 ? list : undefined;
    });
    expect(rows).toEqual([expect.objectContaining({ name: 'hourly-cleanup', paused: false, lastTick: null, nextRunAt: expect.any(String) })]);
    controller.abort();
    expect(await running).toBe(0);
    expect(output.out).toBe('scheduler started (no worker), schedules: hourly-cleanup\nscheduler stopped\n');
    expect(output.err).toBe('');
  });

  it('--scheduler-only stopped while its metrics server opens starts nothing and prints no stop line', async () => {
    const database = (db = await migratedDatabase('sqlite'));
    let out = '';
    const controller = new AbortController();
    const running = workerCommand(
      { database: database.url, schema: 'warden', jobs: SCHEDULES, schedulerOnly: true, metricsPort: '0', signal: controller.signal, handleSignals: false },
      // The abort lands right after the server is listening, before `start()` is called.
      { out: (t) => void (out += t), err: (t) => void (t.startsWith('serving /metrics') && controller.abort()) },
    );
    expect(await running).toBe(0);
    expect(out).toBe('');
    // Nothing started, so nothing synced the module's schedules.
    expect(await cliJson(['schedules', 'list', ...database.args])).toEqual([]);
  });

  it('runs the scheduler with the worker by default, and names the schedules in the started line', async () => {
    const database = (db = await migratedDatabase('sqlite'));
    const { output, io } = capture();
    const controller = new AbortController();
    const running = workerCommand({ database: database.url, schema: 'warden', jobs: SCHEDULES, signal: controller.signal, handleSignals: false }, io);
    await waitFor('the started line', async () => (output.out.includes('started') ? true : undefined));
    expect(output.out).toMatch(/^worker \S+ started: queues maintenance, concurrency 10, schedules: hourly-cleanup\n$/);
    await waitFor('the schedule to be synced', async () => ((await cliJson(['schedules', 'list', ...database.args])).length > 0 ? true : undefined));
    controller.abort();
    expect(await running).toBe(0);
    expect(output.out).toMatch(/^worker \S+ stopped$/m);
  });

  it('prints the schedules in the --json started document, and none with --no-scheduler', async () => {
    const database = (db = await migratedDatabase('sqlite'));
    for (const [scheduler, schedules] of [[undefined, ['hourly-cleanup']], [false, []]] as const) {
      const { output, io } = capture();
      const controller = new AbortController();
      const running = workerCommand({ database: database.url, schema: 'warden', json: true, jobs: SCHEDULES, scheduler, signal: controller.signal, handleSignals: false }, io);
      await waitFor('the started document', async () => (output.out.length > 0 ? true : undefined));
      controller.abort();
      expect(await running).toBe(0);
      expect(JSON.parse(output.out)).toMatchObject({ workerId: expect.any(String), queues: ['maintenance'], schedules });
    }
  });

  it('does not sync or fire schedules with --no-scheduler', async () => {
    const database = (db = await migratedDatabase('sqlite'));
    const { output, io } = capture();
    const controller = new AbortController();
    const running = workerCommand({ database: database.url, schema: 'warden', jobs: SCHEDULES, scheduler: false, pollInterval: '50ms', signal: controller.signal, handleSignals: false }, io);
    await waitFor('the started line', async () => (output.out.includes('started') ? true : undefined));
    expect(output.out).toMatch(/^worker \S+ started: queues maintenance, concurrency 10\n$/);
    await new Promise((r) => setTimeout(r, 300));
    controller.abort();
    expect(await running).toBe(0);
    expect(await cliJson(['schedules', 'list', ...database.args])).toEqual([]);
  });

  it.each([
    [['--jobs', SCHEDULES, '--scheduler-only', '--no-scheduler'], 2, /^warden: Expected at most one of --scheduler-only and --no-scheduler, got both\n$/],
    [['--jobs', JOBS, '--scheduler-only'], 1, /Expected the jobs module \S+jobs\.ts to define schedules for --scheduler-only, got none/],
  ])('fails in one line for %j', async (args, code, message) => {
    db = await migratedDatabase('sqlite');
    expectOneLineError(await cli(['worker', ...args, ...db.args]), code, message);
  });
});

describe('jobs module loading and formatting', () => {
  it('takes named schedule exports and export const schedules = [...], apart from jobs', () => {
    expect(schedulesFromModule(schedulesFixture)).toEqual([schedulesFixture.hourlyCleanup]);
    expect(jobsFromModule(schedulesFixture)).toEqual([schedulesFixture.cleanup]);
    expect(schedulesFromModule(schedulesOnlyFixture)).toBe(schedulesOnlyFixture.schedules);
    expect(jobsFromModule(schedulesOnlyFixture)).toEqual([]);
    expect(schedulesFromModule({ a: schedulesFixture.hourlyCleanup, b: schedulesFixture.hourlyCleanup })).toHaveLength(1);
    expect(looksLikeScheduleDefinition(schedulesFixture.cleanup)).toBe(false);
    expect(looksLikeScheduleDefinition({ name: 'x', nextTick: () => null })).toBe(false);
  });

  it('describes when a schedule fires', () => {
    expect(describeSpec({ cron: '*/5 * * * *', timezone: 'UTC' })).toBe('cron */5 * * * * (UTC)');
    expect(describeSpec({ cron: null, everyMs: 90 * 60_000 })).toBe('every 90m');
    expect(describeSpec(null)).toBe('?');
    expect([86_400_000, HOUR, 15_000, 1500].map(formatInterval)).toEqual(['1d', '1h', '15s', '1500ms']);
  });
});
