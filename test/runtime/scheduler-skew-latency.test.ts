/**
 * Scenario 16, the latency half: a scheduler whose process clock is 90 s ahead of or behind the database's
 * (`now()` skewed, `sqlNow()` null: the database decides) fires each due tick in the first scan whose database time
 * has reached it, so within one scan interval of database time: not early (a clock ahead would fire 90 s before the
 * tick) and not late (a clock behind would fire 90 s after it). test/schedule/exactly-once.test.ts checks the warning
 * and that nothing fires early; this runs the started scheduler's own loop and times every tick against the scans.
 *
 * The scans are observed through the driver: the database time the scheduler read (`dbNow`), the `now` it passed to
 * `scheduleDue` (which must be that time), and the ticks its `scheduleAdvance` fired.
 * @module
 */
import { afterEach, describe, expect, it } from 'vitest';
import { type Clock, systemClock } from '../../src/clock/clock.js';
import { createWarden } from '../../src/client/warden.js';
import type { WardenEventMap } from '../../src/events/event-map.js';
import { defineSchedule } from '../../src/schedule/define-schedule.js';
import { iso, ms, noopJob, openOracle } from '../schedule/helpers.js';
import { Cleanup } from '../support/cleanup.js';
import { overrideDriver } from '../support/override-driver.js';
import { createTestDatabase, DRIVER_KINDS } from '../support/test-databases.js';
import { silent, within } from './helpers.js';

/** The scheduler's scan interval: the latency bound the scenario sets ("within one evaluation interval"). */
const SCAN_MS = 400;
/** Ticks to watch fire, one a second. */
const TICKS = 3;

/** One scan as the driver saw it. */
interface Scan {
  /** The database time the scheduler read (`dbNow()`) just before this scan; null when it read none since the last scan. */
  dbNow: number | null;
  /** The `now` the scheduler passed to `scheduleDue`: what it decided by. */
  passedNow: number | null;
  /** The ticks this scan's advance fired. */
  fired: number[];
}

describe.each(DRIVER_KINDS)('scheduler with its process clock off the database (%s)', (kind) => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it.each([90_000, -90_000])('process clock %i ms off: every due tick fires in the first scan at or after it in database time', async (offset) => {
    const tdb = cleanup.add(await createTestDatabase(kind), (t) => t.cleanup());
    const oracle = cleanup.add(await openOracle(tdb), (o) => o.close());
    const scans: Scan[] = [];
    let lastDbNow: number | null = null;
    const driver = overrideDriver(tdb.newDriver(), {
      dbNow: (dbNow) => async () => {
        const now = await dbNow();
        lastDbNow = now.getTime();
        return now;
      },
      scheduleDue: (due) => (params) => {
        scans.push({ dbNow: lastDbNow, passedNow: params.now?.getTime() ?? null, fired: [] });
        lastDbNow = null;
        return due(params);
      },
      scheduleAdvance: (advance) => async (params) => {
        const result = await advance(params);
        if (result.advanced) scans.at(-1)!.fired.push(...result.ticks.filter((t) => t.outcome === 'fired' && !t.alreadyHandled).map((t) => t.tickAt.getTime()));
        return result;
      },
    });
    // The real clock for timers, `offset` off for now(), and no injected SQL time (`sqlNow()` null).
    const skewed: Clock = { ...systemClock, now: () => Date.now() + offset };
    const everySecond = defineSchedule({ name: 'every-second', every: '1s', job: noopJob, overlap: 'allow' });
    const w = cleanup.add(createWarden({
      database: driver, logger: silent, clock: skewed, schedules: [everySecond], retention: false,
      scheduler: { scanInterval: SCAN_MS, clockSkewWarning: '30s' },
    }), (w) => w.close());
    const skews: WardenEventMap['clock:skew'][] = [];
    const errors: WardenEventMap['error'][] = [];
    w.on('clock:skew', (e) => skews.push(e));
    w.on('error', (e) => errors.push(e));
    const fired: number[] = [];
    let enough: () => void = () => {};
    const firedEnough = new Promise<void>((resolve) => (enough = resolve));
    w.on('schedule:fired', (e) => {
      fired.push(e.tickAt.getTime());
      if (fired.length >= TICKS) enough();
    });

    await w.start({ worker: false, scheduler: true, retention: false });
    // A clock 90 s ahead would fire the first ticks at once (early), one 90 s behind only after 90 s (late): both miss this.
    await within(firedEnough, `${TICKS} ticks fired by the scheduler's own scans`, 15_000);
    await w.stop();

    // The scheduler saw its clock as skewed.
    expect(skews.length).toBeGreaterThanOrEqual(1);
    expect(Math.abs(skews[0]!.skewMs - offset)).toBeLessThan(5_000);
    expect(errors).toEqual([]);

    // Whole seconds, one after another, each once.
    const ticks = scans.flatMap((s) => s.fired);
    expect(ticks.length).toBeGreaterThanOrEqual(TICKS);
    expect(iso(ticks)).toEqual(iso(ticks.map((_, i) => ticks[0]! + i * 1_000)));
    expect(iso(fired)).toEqual(iso(ticks));

    // Every scan decided by the database's time, read just before it: not the process clock.
    expect(scans.filter((s) => s.dbNow === null || s.passedNow !== s.dbNow)).toEqual([]);
    for (const tick of ticks) {
      const firing = scans.findIndex((s) => s.fired.includes(tick));
      const at = (s: Scan) => iso([s.passedNow!])[0];
      // Not early: the database had reached the tick when the scan that fired it looked.
      expect(scans[firing]!.passedNow!, `tick ${iso([tick])[0]} fired by a scan at database time ${at(scans[firing]!)}`).toBeGreaterThanOrEqual(tick);
      // Not late: it fired in the first scan whose database time had reached it, so within the time from one scan to
      // the next (one scan interval and a scan's work) of its database time.
      expect(scans.slice(0, firing).filter((s) => s.passedNow! >= tick).map(at), `scans at or after tick ${iso([tick])[0]} that did not fire it`).toEqual([]);
      if (firing > 0) expect(scans[firing]!.passedNow! - scans[firing - 1]!.passedNow!).toBeLessThan(SCAN_MS + 1_000);
    }

    // The tick rows say the same in database time: recorded (committed) within a scan interval and one scan's work of
    // the tick, never before it.
    const rows = await oracle.all<{ tick_at: unknown; recorded_at: unknown; outcome: string; late: unknown }>(
      "SELECT tick_at, recorded_at, outcome, late FROM {schedule_ticks} WHERE schedule_name = 'every-second' ORDER BY tick_at",
    );
    expect(iso(rows.map((r) => ms(r.tick_at)))).toEqual(iso(ticks));
    const latencies = rows.map((r) => ms(r.recorded_at) - ms(r.tick_at));
    for (const latency of latencies) {
      expect(latency).toBeGreaterThanOrEqual(0);
      expect(latency).toBeLessThan(SCAN_MS + 1_000);
    }
    expect(rows.every((r) => r.outcome === 'fired' && !r.late)).toBe(true);
    console.info(`[skew ${offset} ${kind}] ${scans.length} scans, tick latency in database time: ${latencies.join(', ')} ms`);
  });
});
