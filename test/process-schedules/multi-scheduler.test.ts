/**
 * Schedules fired by several scheduler processes at once, on both drivers. Every process runs the same
 * `every: '1s'` schedule and scans every 100 ms; the compare-and-swap on `next_run_at` must let exactly one of
 * them handle each tick: one tick row and one job per whole second, no gap and no duplicate, also while processes
 * are SIGKILLed and restarted. With every scheduler down, the misfire policy decides: `skip` records the ticks
 * beyond the grace as `missed` (no job); `run-once` runs the newest of them once, `late`.
 *
 * The run windows below are deliberate stretches of real time (schedules fire on the wall clock); everything
 * else waits on messages or polls the database with a deadline.
 */
import { afterAll, describe, type ExpectStatic, it } from 'vitest';
import { type Child, errorEvents, killAllChildren, killChild, pollUntil, spawnChild, waitForExit, waitForMessage } from '../process/child-process.js';
import { type Oracle, openOracle } from '../process/db-oracle.js';
import { createTestDatabase, DRIVER_KINDS, type DriverKind, type TestDatabase } from '../support/test-databases.js';

/** The scheduler script, relative to test/process/children/ (where `spawnChild` looks). */
const SCRIPT = '../../process-schedules/children/scheduler.ts';
const SCAN = '100ms';
/** Slack between a scan's planning time and the `recorded_at` of the transaction that writes its plan. */
const RECORD_SLACK_MS = 1_000;

interface ScheduleConfig {
  name: string;
  every: string;
  policy: 'skip' | 'run-once' | 'catch-up';
  grace: string;
}
const TICK: ScheduleConfig = { name: 'tick', every: '1s', policy: 'catch-up', grace: '5s' };

afterAll(async () => {
  await killAllChildren();
});

/** One test's database, raw access to it, its children, and the test's own `expect` (tests run concurrently). */
interface Ctx {
  kind: DriverKind;
  tdb: TestDatabase;
  oracle: Oracle;
  children: Child[];
  expect: ExpectStatic;
}

/** Runs `body` on a fresh database; afterwards kills what is left of its children and drops the database. */
async function withDatabase(kind: DriverKind, expect: ExpectStatic, body: (ctx: Ctx) => Promise<void>): Promise<void> {
  const tdb = await createTestDatabase(kind);
  let oracle: Oracle | undefined;
  const children: Child[] = [];
  try {
    oracle = await openOracle(tdb);
    await body({ kind, tdb, oracle, children, expect });
  } finally {
    await Promise.allSettled(children.map((c) => killChild(c)));
    await oracle?.close();
    await tdb.cleanup();
  }
}

interface TickRow {
  tickAt: number;
  kind: string;
  outcome: 'fired' | 'skipped' | 'missed';
  late: boolean;
  jobId: string | null;
  recordedAt: number;
}
interface JobRowLite {
  id: string;
  tickAt: number;
  state: string;
  name: string;
}

/** Epoch ms of a time column: a Date (PostgreSQL) or integer ms (SQLite). */
const ms = (v: unknown): number => (v instanceof Date ? v.getTime() : Number(v));

async function readTicks(ctx: Ctx, name: string): Promise<TickRow[]> {
  const rows = await ctx.oracle.all<Record<string, unknown>>(
    'SELECT tick_at, kind, outcome, late, job_id, recorded_at FROM {schedule_ticks} WHERE schedule_name = $1 ORDER BY tick_at, kind',
    [name],
  );
  return rows.map((r) => ({
    tickAt: ms(r.tick_at),
    kind: String(r.kind),
    outcome: r.outcome as TickRow['outcome'],
    late: r.late === true || Number(r.late) === 1,
    jobId: r.job_id === null ? null : String(r.job_id),
    recordedAt: ms(r.recorded_at),
  }));
}

async function readJobs(ctx: Ctx, name: string): Promise<JobRowLite[]> {
  const rows = await ctx.oracle.all<Record<string, unknown>>('SELECT id, tick_at, state, name FROM {jobs} WHERE schedule_name = $1 ORDER BY id', [name]);
  return rows.map((r) => ({ id: String(r.id), tickAt: ms(r.tick_at), state: String(r.state), name: String(r.name) }));
}

function spawnScheduler(ctx: Ctx, name: string, schedules: ScheduleConfig[]): Child {
  const child = spawnChild(`${ctx.kind}/${name}`, SCRIPT, { url: ctx.tdb.url, schema: ctx.tdb.schema, name, schedules, scanInterval: SCAN });
  ctx.children.push(child);
  return child;
}

function ready(child: Child): Promise<unknown> {
  return waitForMessage(child, (m) => m.type === 'ready', 60_000);
}

/** A deliberate stretch of real time during which the schedulers run (not a synchronisation). */
function runFor(msToRun: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, msToRun));
}

async function dbNow(ctx: Ctx): Promise<number> {
  return (await ctx.tdb.driver.dbNow()).getTime();
}

async function stopGracefully({ expect }: Ctx, child: Child): Promise<void> {
  child.signal('SIGTERM');
  expect(await waitForExit(child, 20_000), child.describe()).toEqual({ code: 0, signal: null });
  expect(child.ofType('stopped'), child.describe()).toHaveLength(1);
}

/**
 * The exactly-once invariants of one schedule: every tick row is a scheduled whole second; the rows run
 * second by second from the first to the last (0 missing, 0 duplicated); each `fired` row has exactly one job,
 * with its tick, and no job exists for any other tick or twice for one tick.
 */
function checkExactlyOnce({ expect }: Ctx, label: string, ticks: TickRow[], jobs: JobRowLite[]): void {
  expect(ticks.length, `${label}: tick rows`).toBeGreaterThan(0);
  expect(ticks.filter((t) => t.kind !== 'scheduled'), `${label}: non-scheduled ticks`).toEqual([]);
  expect(ticks.filter((t) => t.tickAt % 1000 !== 0), `${label}: ticks off whole seconds`).toEqual([]);
  const duplicates = ticks.filter((t, k) => k > 0 && t.tickAt === ticks[k - 1]!.tickAt);
  const gaps = ticks.slice(1).flatMap((t, k) => {
    const missing = (t.tickAt - ticks[k]!.tickAt) / 1000 - 1;
    return missing > 0 ? [{ after: new Date(ticks[k]!.tickAt).toISOString(), missing }] : [];
  });
  expect(duplicates, `${label}: duplicate tick rows`).toEqual([]);
  expect(gaps, `${label}: gaps between tick rows`).toEqual([]);
  expect(ticks.filter((t) => t.outcome === 'skipped'), `${label}: skipped ticks (overlap is allow)`).toEqual([]);

  const jobTicks = jobs.map((j) => j.tickAt);
  expect(jobTicks.filter((t, k) => jobTicks.indexOf(t) !== k), `${label}: ticks with more than one job`).toEqual([]);
  const fired = ticks.filter((t) => t.outcome === 'fired');
  expect(fired.filter((t) => t.jobId === null), `${label}: fired ticks without a job`).toEqual([]);
  expect(ticks.filter((t) => t.outcome === 'missed' && t.jobId !== null), `${label}: missed ticks with a job`).toEqual([]);
  const byId = new Map(jobs.map((j) => [j.id, j]));
  expect(fired.filter((t) => byId.get(t.jobId!)?.tickAt !== t.tickAt), `${label}: fired ticks whose job is not that tick's`).toEqual([]);
  expect(jobs.length, `${label}: jobs vs fired ticks`).toBe(fired.length);
  expect(jobs.filter((j) => j.state !== 'queued' || j.name !== 'scheduled-tick'), `${label}: jobs not queued scheduled-tick jobs`).toEqual([]);
}

/** `schedule:fired` events of all children, per tick; each tick must be reported fired by at most one process. */
function firedEvents(children: Child[], schedule: string): Map<number, { child: string; jobId: string; late: boolean }[]> {
  const byTick = new Map<number, { child: string; jobId: string; late: boolean }[]>();
  for (const c of children) {
    for (const m of c.ofType('event')) {
      if (m.event !== 'schedule:fired' || m.schedule !== schedule) continue;
      const at = Date.parse(m.tickAt as string);
      byTick.set(at, [...(byTick.get(at) ?? []), { child: c.name, jobId: String(m.jobId), late: m.late === true }]);
    }
  }
  return byTick;
}

function checkNoErrors({ expect }: Ctx, children: Child[]): void {
  for (const c of children) {
    expect(errorEvents(c), c.describe()).toEqual([]);
    expect(c.ofType('crash'), c.describe()).toEqual([]);
    expect(c.ofType('event').filter((m) => m.event === 'clock:skew'), c.describe()).toEqual([]);
  }
}

// Each scenario runs on both drivers side by side (`it.concurrent`: most of it is real time waiting); the
// scenarios (plain `describe`s) run one after another.
describe('3 schedulers for ~8 s: each whole second fired exactly once, no gap, no duplicate', () => {
  for (const kind of DRIVER_KINDS) it.concurrent(`(${kind})`, ({ expect }) => withDatabase(kind, expect, async (ctx) => {
    const children = [0, 1, 2].map((n) => spawnScheduler(ctx, `s${n}`, [TICK]));
    await Promise.all(children.map((c) => ready(c)));
    const from = await dbNow(ctx);
    await runFor(8_000);
    const to = await dbNow(ctx);
    await Promise.all(children.map((c) => stopGracefully(ctx, c)));

    const ticks = await readTicks(ctx, TICK.name);
    const jobs = await readJobs(ctx, TICK.name);
    checkExactlyOnce(ctx, kind, ticks, jobs);
    checkNoErrors(ctx, children);
    expect(ticks.filter((t) => t.outcome !== 'fired' || t.late), 'ticks not fired on time').toEqual([]);
    // The whole window is covered: from the first second after every scheduler was up to the last one before stop.
    expect(ticks[0]!.tickAt).toBeLessThanOrEqual(Math.ceil(from / 1000) * 1000 + 1000);
    expect(ticks[ticks.length - 1]!.tickAt).toBeGreaterThanOrEqual(Math.floor(to / 1000) * 1000 - 1000);
    expect(ticks.length).toBeGreaterThanOrEqual(7);

    // Every tick was reported fired by exactly one process, with the job the database has for it.
    const events = firedEvents(children, TICK.name);
    expect([...events.keys()].sort((x, y) => x - y)).toEqual(ticks.map((t) => t.tickAt));
    expect([...events].filter(([, list]) => list.length !== 1)).toEqual([]);
    expect([...events].filter(([at, [e]]) => ticks.find((t) => t.tickAt === at)!.jobId !== e!.jobId)).toEqual([]);
    const [schedule] = await ctx.oracle.all<Record<string, unknown>>('SELECT last_tick_at, next_run_at FROM {schedules} WHERE name = $1', [TICK.name]);
    expect(ms(schedule!.last_tick_at)).toBe(ticks[ticks.length - 1]!.tickAt);
    expect(ms(schedule!.next_run_at)).toBeGreaterThan(ticks[ticks.length - 1]!.tickAt);
    console.log(JSON.stringify({ kind, test: 'steady', ticks: ticks.length, firedBy: Object.fromEntries(children.map((c) => [c.name, c.ofType('event').filter((m) => m.event === 'schedule:fired').length])) }));
  }), 90_000);
});

describe('SIGKILLing one of 3 schedulers every ~2 s and restarting it: still no gap and no duplicate', () => {
  for (const kind of DRIVER_KINDS) it.concurrent(`(${kind})`, ({ expect }) => withDatabase(kind, expect, async (ctx) => {
    const live = [0, 1, 2].map((n) => spawnScheduler(ctx, `s${n}`, [TICK]));
    const all = [...live];
    await Promise.all(live.map((c) => ready(c)));
    const from = await dbNow(ctx);
    const kills: { name: string; at: number }[] = [];
    for (let k = 0; k < 4; k++) {
      await runFor(2_000);
      const slot = k % 3;
      const victim = live[slot]!;
      // Only kill once all three are up (a replacement may take seconds to start on a busy machine), so the
      // other two are running when the victim dies.
      await Promise.all(live.map((c) => ready(c)));
      expect(await killChild(victim)).toEqual({ code: null, signal: 'SIGKILL' });
      kills.push({ name: victim.name, at: await dbNow(ctx) });
      const replacement = spawnScheduler(ctx, `s${slot}.${k + 1}`, [TICK]);
      live[slot] = replacement;
      all.push(replacement);
    }
    await runFor(2_000);
    await Promise.all(live.map((c) => ready(c)));
    const to = await dbNow(ctx);
    await Promise.all(live.map((c) => stopGracefully(ctx, c)));

    const ticks = await readTicks(ctx, TICK.name);
    const jobs = await readJobs(ctx, TICK.name);
    checkExactlyOnce(ctx, kind, ticks, jobs);
    checkNoErrors(ctx, all);
    expect(ticks.filter((t) => t.outcome !== 'fired'), 'ticks not fired').toEqual([]);
    expect(kills).toHaveLength(4);
    expect(ticks[0]!.tickAt).toBeLessThanOrEqual(Math.ceil(from / 1000) * 1000 + 1000);
    expect(ticks[ticks.length - 1]!.tickAt).toBeGreaterThanOrEqual(Math.floor(to / 1000) * 1000 - 1000);
    expect(ticks.length).toBeGreaterThanOrEqual(9);
    // No tick was reported fired twice (a killed process may have committed a tick without printing it).
    const events = firedEvents(all, TICK.name);
    expect([...events].filter(([, list]) => list.length !== 1)).toEqual([]);
    expect([...events.keys()].filter((at) => !ticks.some((t) => t.tickAt === at))).toEqual([]);
    console.log(JSON.stringify({ kind, test: 'kills', ticks: ticks.length, late: ticks.filter((t) => t.late).length, kills: kills.map((k) => k.name) }));
  }), 120_000);
});

describe('all schedulers down for ~4 s: skip records the ticks beyond the grace as missed; run-once runs one late job', () => {
  for (const kind of DRIVER_KINDS) it.concurrent(`(${kind})`, ({ expect }) => withDatabase(kind, expect, async (ctx) => {
    const GRACE_MS = 1_500;
    const skip: ScheduleConfig = { name: 'tick-skip', every: '1s', policy: 'skip', grace: `${GRACE_MS}ms` };
    const once: ScheduleConfig = { name: 'tick-once', every: '1s', policy: 'run-once', grace: `${GRACE_MS}ms` };
    const first = [0, 1, 2].map((n) => spawnScheduler(ctx, `s${n}`, [skip, once]));
    await Promise.all(first.map((c) => ready(c)));
    const firedOf = async (name: string) => (await readTicks(ctx, name)).filter((t) => t.outcome === 'fired');
    await pollUntil('two ticks fired for each schedule', async () => Math.min((await firedOf(skip.name)).length, (await firedOf(once.name)).length), (n) => n >= 2, { timeoutMs: 30_000, children: first });

    for (const c of first) expect(await killChild(c)).toEqual({ code: null, signal: 'SIGKILL' });
    const killedAt = await dbNow(ctx);
    await runFor(4_000); // the outage
    const restarted = spawnScheduler(ctx, 's0.1', [skip, once]);
    await ready(restarted);
    const upAt = await dbNow(ctx);
    await pollUntil(
      'both schedules fired a tick after the restart',
      async () => Math.min(...(await Promise.all([skip.name, once.name].map(async (n) => Math.max(0, ...(await firedOf(n)).map((t) => t.tickAt)))))),
      (newest) => newest >= upAt + 1_000,
      { timeoutMs: 30_000, children: [restarted] },
    );
    await stopGracefully(ctx, restarted);
    checkNoErrors(ctx, [...first, restarted]);

    for (const schedule of [skip, once]) {
      const label = `${kind} ${schedule.name}`;
      const ticks = await readTicks(ctx, schedule.name);
      const jobs = await readJobs(ctx, schedule.name);
      // No gap even across the outage: every second is recorded, fired or missed.
      checkExactlyOnce(ctx, label, ticks, jobs);
      const before = ticks.filter((t) => t.recordedAt < killedAt);
      const after = ticks.filter((t) => t.recordedAt >= killedAt);
      expect(before.filter((t) => t.outcome !== 'fired' || t.late), `${label}: ticks before the outage not fired on time`).toEqual([]);
      expect(before.length, `${label}: ticks before the outage`).toBeGreaterThanOrEqual(2);
      const lateness = (t: TickRow) => t.recordedAt - t.tickAt;
      const missed = after.filter((t) => t.outcome === 'missed');
      const lateRuns = after.filter((t) => t.outcome === 'fired' && t.late);
      const onTime = after.filter((t) => t.outcome === 'fired' && !t.late);
      // Missed: recorded as such (late, no job), only ticks beyond the grace, one block before the on-time ones.
      expect(missed.filter((t) => !t.late || t.jobId !== null || lateness(t) <= GRACE_MS), `${label}: bad missed rows`).toEqual([]);
      expect(onTime.filter((t) => lateness(t) > GRACE_MS + RECORD_SLACK_MS), `${label}: ticks fired on time though beyond the grace`).toEqual([]);
      expect(onTime.length, `${label}: on-time ticks after the restart`).toBeGreaterThanOrEqual(1);
      const newestOutageTick = Math.max(...missed.map((t) => t.tickAt), ...lateRuns.map((t) => t.tickAt));
      expect(onTime.filter((t) => t.tickAt < newestOutageTick), `${label}: on-time ticks inside the outage block`).toEqual([]);
      // The outage block starts about when the schedulers were killed (their last tick was shortly before).
      expect(Math.min(...missed.map((t) => t.tickAt))).toBeGreaterThan(killedAt - 3_000);
      const missedEvents = restarted.ofType('event').filter((m) => m.event === 'schedule:missed' && m.schedule === schedule.name).map((m) => Date.parse(m.tickAt as string));
      expect(missedEvents.sort((x, y) => x - y)).toEqual(missed.map((t) => t.tickAt));

      if (schedule.policy === 'skip') {
        expect(lateRuns, `${label}: late runs`).toEqual([]);
        expect(missed.length, `${label}: missed ticks`).toBeGreaterThanOrEqual(2);
      } else {
        // Exactly one late job stands in for the outage: the newest missed tick, within one interval past the grace.
        expect(lateRuns, `${label}: late runs`).toHaveLength(1);
        const run = lateRuns[0]!;
        expect(lateness(run)).toBeGreaterThan(GRACE_MS);
        expect(lateness(run)).toBeLessThanOrEqual(GRACE_MS + 1_000 + RECORD_SLACK_MS);
        expect(missed.filter((t) => t.tickAt > run.tickAt), `${label}: missed ticks newer than the late run`).toEqual([]);
        expect(missed.length, `${label}: missed ticks`).toBeGreaterThanOrEqual(1);
        expect(jobs.filter((j) => j.tickAt === run.tickAt)).toHaveLength(1);
        const lateEvents = restarted.ofType('event').filter((m) => m.event === 'schedule:fired' && m.schedule === schedule.name && m.late === true);
        expect(lateEvents.map((m) => [Date.parse(m.tickAt as string), String(m.jobId)])).toEqual([[run.tickAt, run.jobId]]);
      }
      console.log(JSON.stringify({ label, before: before.length, missed: missed.length, lateRuns: lateRuns.length, onTime: onTime.length, outageMs: upAt - killedAt }));
    }
  }), 120_000);
});
