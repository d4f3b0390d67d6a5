/**
 * Reading the ticks a schedule owes without walking all of them: an outage of months holds millions of ticks of a
 * per-second pattern, and each step of a cron pattern is a croner evaluation (tens to hundreds of microseconds).
 * @module
 */
import type { ScheduleDefinition } from './define-schedule.js';

/** Ticks the first walk of {@link TickSeries.newest} reads from the start: short ranges end there. */
const HEAD_WALK = 64;
/** Most reads of the pattern one {@link TickSeries.count} makes. */
const COUNT_READS = 400;
/** Ticks read at a time by {@link TickSeries.count}, to tell whether their spacing repeats. */
const SAMPLE = 8;

/** The ticks of `[from, to)` in order, at most `cap` of them; `complete` unless more were left. */
export interface TickWalk {
  ticks: number[];
  complete: boolean;
}

/**
 * The ticks a schedule owes from its stored next run on: that instant itself (whatever the pattern says of it),
 * then every tick of the pattern after it. Times are ms since the epoch. Every read goes through
 * `schedule.nextTick`, which is monotonic in its argument; its cost is what these methods bound.
 */
export class TickSeries {
  readonly #schedule: ScheduleDefinition;
  readonly #origin: number;

  constructor(schedule: ScheduleDefinition, origin: number) {
    this.#schedule = schedule;
    this.#origin = origin;
  }

  /** The first tick at or after `ms`, or null when there is none. */
  first(ms: number): number | null {
    return ms <= this.#origin ? this.#origin : this.next(ms - 1);
  }

  /** The first tick strictly after `ms`, or null when there is none. */
  next(ms: number): number | null {
    return this.#schedule.nextTick(new Date(ms))?.getTime() ?? null;
  }

  /** The ticks in `[from, to)`, oldest first, reading at most `cap + 2` of them. */
  walk(from: number, to: number, cap: number): TickWalk {
    const ticks: number[] = [];
    for (let t = this.first(from); t !== null && t < to; t = this.next(t)) {
      if (ticks.length === cap) return { ticks, complete: false };
      ticks.push(t);
    }
    return { ticks, complete: true };
  }

  /**
   * The newest `k` ticks in `[from, to)` (all of them when there are fewer), oldest first. Reads back from `to` in
   * stretches sized by the spacing of the ticks seen so far, shrinking one that holds more than twice what is
   * still needed: some `k` plus a few dozen reads for evenly spaced ticks, however many lie between.
   */
  newest(from: number, to: number, k: number): number[] {
    const head = this.walk(from, to, HEAD_WALK);
    if (head.complete) return head.ticks.slice(-k);
    let spacing = Math.max(1, (head.ticks[HEAD_WALK - 1]! - head.ticks[0]!) / (HEAD_WALK - 1));
    let found: number[] = [];
    let bound = to;
    while (found.length < k && bound > from) {
      const need = k - found.length;
      const start = Math.max(from, bound - Math.ceil(spacing * need * 1.25));
      const stretch = this.walk(start, bound, 2 * need + 8);
      if (!stretch.complete) {
        // Denser than its spacing said: try a shorter stretch, sized by the density just seen.
        spacing = (stretch.ticks[stretch.ticks.length - 1]! - start) / stretch.ticks.length / 2;
        continue;
      }
      found = stretch.ticks.slice(-need).concat(found);
      // Sparser (or empty): the next stretch is longer, by at least a quarter.
      spacing = stretch.ticks.length === 0 ? spacing * 2 : Math.max(spacing, (bound - start) / stretch.ticks.length);
      bound = start;
    }
    return found;
  }

  /**
   * The newest tick in `[first tick, before)`, or null when there is none. A binary search over `first`
   * (monotonic), so it costs some 45 reads whatever the number of ticks in between.
   */
  newestBefore(before: number): number | null {
    const isBefore = (tick: number | null) => tick !== null && tick < before;
    let lo = this.#origin;
    if (!isBefore(this.first(lo))) return null;
    // Invariant: a tick lies in [lo, before), none in [hi, before).
    let hi = before;
    while (hi - lo > 1) {
      const mid = lo + Math.floor((hi - lo) / 2);
      if (isBefore(this.first(mid))) lo = mid;
      else hi = mid;
    }
    return this.first(lo);
  }

  /**
   * How many ticks lie in `[from, to)` (`from` at or after the series' start). Exact for `every` (arithmetic). For
   * cron, counted from the oldest tick on, at most {@link COUNT_READS} reads of the pattern: a few ticks are read,
   * and when their spacing repeats (every minute; every 5 s; at :00 and :01 of every minute) the run they start is
   * followed by a search for where it ends, so a run of any length costs some 50 reads. When the reads run out,
   * the rest is extrapolated at the rate counted so far. Exact for patterns whose runs end where a search finds
   * them (`* * * * *` for ten years, `* 9-17 * * *` over a few days); otherwise an estimate.
   */
  count(from: number, to: number): number {
    if (to <= from) return 0;
    const every = this.#schedule.everyMs;
    if (every !== null) {
      // Multiples of the interval, and the start of the series when it is not one (a resumed or changed schedule).
      const extra = from === this.#origin && this.#origin % every !== 0 ? 1 : 0;
      return Math.ceil(to / every) - Math.ceil(from / every) + extra;
    }
    const tally = new Tally(from);
    let at = from;
    const reads = { left: COUNT_READS };
    while (at < to && reads.left > 0) {
      const sample = this.walk(at, to, SAMPLE);
      reads.left -= sample.ticks.length + 2;
      const { ticks } = sample;
      const cycle = sample.complete ? null : repeatingCycle(ticks);
      // Whole cycles from the first tick on, up to the last one found; the next sample starts there.
      const cycles = cycle ? this.#runLength(ticks[0]!, cycle, Math.floor((to - 1 - ticks[0]!) / cycle.span), reads) : 0;
      if (cycle && cycles > 0) {
        tally.run(ticks[0]!, cycles * cycle.count);
        at = ticks[0]! + cycles * cycle.span;
      } else {
        for (const t of ticks) tally.tick(t);
        at = sample.complete ? to : ticks[ticks.length - 1]! + 1;
      }
    }
    return at >= to ? tally.counted : tally.extrapolated(at, to);
  }

  /**
   * How many whole cycles the run starting at `start` holds before its last cycle start found, at most `most`: a
   * galloping search (1, 2, 4 … cycles) for a cycle start that is not one, then a binary search back to the last
   * one that is. The ticks in between are taken as the cycle says, unread.
   */
  #runLength(start: number, cycle: Cycle, most: number, reads: { left: number }): number {
    const holds = (n: number) => {
      reads.left -= 2;
      const at = start + n * cycle.span;
      return this.first(at) === at && this.next(at) === at + cycle.firstGap;
    };
    let good = 0;
    let bad = most + 1;
    for (let n = 1; n <= most; n *= 2) {
      if (!holds(n)) {
        bad = n;
        break;
      }
      good = n;
    }
    if (bad > most && good < most) {
      if (holds(most)) return most;
      bad = most;
    }
    while (bad - good > 1) {
      const mid = good + Math.floor((bad - good) / 2);
      if (holds(mid)) good = mid;
      else bad = mid;
    }
    return good;
  }
}

/** Ticks whose spacing repeats: how many ticks a cycle has, its length, and the gap after its first tick. */
interface Cycle {
  count: number;
  span: number;
  firstGap: number;
}

/** The shortest cycle (of at most 3 ticks) the spacing of `ticks` repeats with, or null when there is none. */
function repeatingCycle(ticks: readonly number[]): Cycle | null {
  const gaps = ticks.slice(1).map((t, i) => t - ticks[i]!);
  for (let length = 1; length <= 3; length++) {
    if (gaps.every((g, i) => i + length >= gaps.length || g === gaps[i + length])) {
      return { count: length, span: gaps.slice(0, length).reduce((a, b) => a + b, 0), firstGap: gaps[0]! };
    }
  }
  return null;
}

/**
 * What {@link TickSeries.count} has counted, and where the widest gap between ticks ended, first and last: ticks
 * often come in clusters (business hours, a burst at midnight), and a rate measured between two cluster starts
 * covers whole periods, where one measured to just after a cluster, or from just before a gap, would not.
 */
class Tally {
  counted = 0;
  #last: number | null = null;
  #widestGap = -1;
  /** The first and the newest tick after a gap of the widest width, each with how many ticks came before it. */
  #firstPhase = { at: 0, before: 0 };
  #lastPhase = { at: 0, before: 0 };

  constructor(readonly from: number) {}

  /** One tick, the next in time. */
  tick(t: number): void {
    this.run(t, 1);
    this.#last = t;
  }

  /** `count` ticks from `start` on (a run; its last tick lies just before the next one counted). */
  run(start: number, count: number): void {
    const gap = this.#last === null ? -1 : start - this.#last;
    if (gap > this.#widestGap) {
      this.#widestGap = gap;
      this.#firstPhase = { at: start, before: this.counted };
    }
    if (gap === this.#widestGap) this.#lastPhase = { at: start, before: this.counted };
    this.counted += count;
    this.#last = null;
  }

  /** The count of `[from, to)` when the ticks before `at` were counted: the rest at the rate of whole periods. */
  extrapolated(at: number, to: number): number {
    const first = this.#firstPhase;
    const last = this.#lastPhase;
    if (this.#widestGap > 0 && last.at > first.at) {
      return last.before + Math.round(((last.before - first.before) / (last.at - first.at)) * (to - last.at));
    }
    return this.counted + Math.round((this.counted / (at - this.from)) * (to - at));
  }
}
