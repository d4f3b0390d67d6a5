/**
 * The next tick of a cron pattern, with Warden's daylight-saving rule on top of croner's.
 * @module
 */
import { Cron } from 'croner';

/** What the rule needs of one pattern, worked out once per `Cron`. */
interface WallTimeRule {
  timezone: string;
  /** The same pattern read in UTC: it tells which local wall times (written as UTC) match, whatever the offset. */
  wallClock: Cron;
}

const DAY_MS = 86_400_000;
/** Offsets of a zone change at most once within this: its transitions are looked for in steps of it. */
const STEP_MS = 7 * DAY_MS;
/** Zones with one offset for ever: no rule to apply. */
const FIXED_ZONES = new Set(['UTC', 'Etc/UTC', 'GMT', 'Etc/GMT']);
/** croner's nicknames, by whether they name their hours (all but `@hourly` run at midnight). */
const NAMED_HOURS: Readonly<Record<string, boolean>> = { '@yearly': true, '@annually': true, '@monthly': true, '@weekly': true, '@daily': true, '@midnight': true, '@hourly': false };

const rules = new WeakMap<Cron, WallTimeRule | null>();
const formats = new Map<string, Intl.DateTimeFormat>();

/**
 * The first tick of `cron` strictly after `after`, or null when it never fires again.
 *
 * A pattern whose hour field names its hours (`30 2 * * *`, `30 1,2 * * *`, `0 1-2 * * *`) fires at fixed wall
 * times, each one once a day: when the clock falls back and a wall time happens twice, only at its first occurrence;
 * when the clock springs forward over it, once, at the first instant after the gap (several such times share that
 * tick). croner does so by itself only for a single time of day; with a list or range of hours it fires a repeated
 * time in both offsets and drops a skipped one, hence this. A pattern whose hour field is `*` or a step (`*\/15 * *
 * * *`, `0 *\/2 * * *`) runs by real time, as croner reads it: in both offsets in the repeated hour, none in the gap.
 * Every tick is a property of its instant alone, so the result is monotonic in `after` (plan-ticks searches on it).
 */
export function nextCronTick(cron: Cron, after: Date): Date | null {
  const rule = wallTimeRule(cron);
  let tick = cron.nextRun(after);
  if (!rule || !tick) return tick;
  while (tick && isSecondOccurrence(rule.timezone, tick.getTime())) tick = cron.nextRun(tick);
  const gapTick = matchedGapEnd(rule, after.getTime(), tick?.getTime() ?? after.getTime() + STEP_MS);
  return gapTick === null ? tick : new Date(gapTick);
}

/** The rule for `cron`, or null when croner's own reading stands (hours by `*` or step, or a zone without DST). */
function wallTimeRule(cron: Cron): WallTimeRule | null {
  let rule = rules.get(cron);
  if (rule !== undefined) return rule;
  const pattern = cron.getPattern() ?? '';
  const timezone = cron.options.timezone;
  rule = timezone && !FIXED_ZONES.has(timezone) && namesItsHours(pattern)
    ? { timezone, wallClock: new Cron(pattern, { utcOffset: 0, paused: true }) }
    : null;
  rules.set(cron, rule);
  return rule;
}

/** Whether the hour field lists hours rather than `*`, `?` or a step (5 fields: the 2nd; 6: the 3rd). */
function namesItsHours(pattern: string): boolean {
  const fields = pattern.trim().split(/\s+/);
  if (fields.length === 1) return NAMED_HOURS[fields[0]!.toLowerCase()] ?? false;
  const hour = fields[fields.length === 6 ? 2 : 1] ?? '*';
  return !/[*?/]/.test(hour);
}

/** Whether the wall time at `ms` already happened earlier (the clock fell back over it): then at `ms - shift`. */
function isSecondOccurrence(timezone: string, ms: number): boolean {
  const offset = offsetAt(timezone, ms);
  const shift = offsetAt(timezone, ms - DAY_MS) - offset;
  return shift > 0 && offsetAt(timezone, ms - shift) === offset + shift;
}

/**
 * The end of the first spring-forward gap in (after, before) that skipped a wall time the pattern matches: the
 * first instant after it, where such a time fires. Null when there is none.
 */
function matchedGapEnd(rule: WallTimeRule, after: number, before: number): number | null {
  const { timezone, wallClock } = rule;
  let from = after;
  let fromOffset = offsetAt(timezone, from);
  while (from < before) {
    const to = Math.min(before, from + STEP_MS);
    const toOffset = offsetAt(timezone, to);
    if (toOffset > fromOffset) {
      const end = offsetChange(timezone, from, to, fromOffset);
      // The skipped wall times are [wall(end) - shift, wall(end)): does one of them match?
      const wallEnd = end + toOffset;
      const match = wallClock.nextRun(new Date(wallEnd - (toOffset - fromOffset) - 1_000));
      if (end > after && end < before && match !== null && match.getTime() < wallEnd) return end;
    }
    from = to;
    fromOffset = toOffset;
  }
  return null;
}

/** The first whole second in (from, to] whose offset is no longer `fromOffset` (transitions fall on whole seconds). */
function offsetChange(timezone: string, from: number, to: number, fromOffset: number): number {
  let lo = Math.floor(from / 1_000);
  let hi = Math.ceil(to / 1_000);
  while (hi - lo > 1) {
    const mid = lo + Math.floor((hi - lo) / 2);
    if (offsetAt(timezone, mid * 1_000) === fromOffset) lo = mid;
    else hi = mid;
  }
  return hi * 1_000;
}

/** The zone's offset from UTC at `ms`, in ms: local wall time (read as UTC) minus the instant, to the second. */
function offsetAt(timezone: string, ms: number): number {
  let format = formats.get(timezone);
  if (!format) {
    format = new Intl.DateTimeFormat('en-US', { timeZone: timezone, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric' });
    formats.set(timezone, format);
  }
  const part: Record<string, number> = {};
  for (const p of format.formatToParts(ms)) if (p.type !== 'literal') part[p.type] = Number(p.value);
  const wall = Date.UTC(part.year!, part.month! - 1, part.day!, part.hour!, part.minute!, part.second!);
  return wall - Math.floor(ms / 1_000) * 1_000;
}
