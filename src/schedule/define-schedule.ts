import { Cron } from 'croner';
import { heartbeatUrl } from '../alerts/alert-options.js';
import { InvalidOptionError } from '../errors.js';
import { type JobDefinition, validatePriority } from '../job/define-job.js';
import { type Duration, parseDuration } from '../validation/duration.js';
import { integerInRange } from '../validation/integer-in-range.js';
import { checkKnownKeys } from '../validation/known-keys.js';
import { validateName } from '../validation/names.js';
import { optionalOptionsObject } from '../validation/options-object.js';
import { nextCronTick } from './next-cron-tick.js';
import { MAX_RECORDED_TICKS } from './plan-ticks.js';
import { everyNextTick, shortHash } from './schedule-spec.js';

/** What to do with a tick while the previous run of the same schedule is still queued or running. */
export type OverlapPolicy = 'skip' | 'queue-one' | 'allow' | 'replace';
/** What to do with ticks missed while no scheduler was running. */
export type MisfirePolicy = 'skip' | 'run-once' | 'catch-up';

/** Options for {@link defineSchedule}. */
export interface ScheduleOptions<TInput> {
  /** Unique schedule name, `^[a-z0-9][a-z0-9._-]{0,63}$`. A renamed schedule is a new schedule. */
  name: string;
  /** A cron pattern (5 fields, or 6 with seconds first; `L`, `W`, `#` supported). Exactly one of `cron`/`every`. */
  cron?: string;
  /** A fixed interval, e.g. `"5m"`; ticks fall on multiples of it since the Unix epoch, so every instance agrees. */
  every?: Duration;
  /** IANA time zone the cron pattern is read in. @default "UTC" */
  timezone?: string;
  /** The job each tick enqueues. */
  job: JobDefinition<TInput, any>;
  /** The payload, or a function computing it at each tick. @default {} */
  payload?: TInput | ((tick: { tickAt: Date; scheduleName: string }) => TInput);
  /** Overrides the job's queue. */
  queue?: string;
  /** Overrides the job's priority. */
  priority?: number;
  /**
   * While the previous run is still queued or running: `skip` the tick (recorded and counted), `queue-one`
   * (at most one waiting), `allow` overlapping runs, or `replace` (cancel the previous run through its signal).
   * @default "skip"
   */
  overlap?: OverlapPolicy;
  /**
   * Ticks later than `grace` are missed (all schedulers were down). `skip`: none run; `run-once`: one run if the
   * newest missed tick is within `within`; `catch-up`: one run per missed tick within `within`, at most
   * `maxCount` (the newest).
   * @default { policy: "run-once", within: one interval plus grace, maxCount: 100, grace: "1m" }
   */
  misfire?: { policy?: MisfirePolicy; within?: Duration; maxCount?: number; grace?: Duration };
  /** Missed-run expectation, read by alerting: a successful run is expected within this after each tick. */
  expect?: { within: Duration; maxRuntime?: Duration };
  /**
   * An external heartbeat (Healthchecks.io style) pinged by the worker running each run: `<url>/start`, then
   * `<url>` on success or `<url>/fail` on failure. See docs/alerts.md. @default none
   */
  heartbeat?: { url: string };
}

/** A validated schedule, registered with `createWarden({ schedules })`. */
export interface ScheduleDefinition {
  readonly name: string;
  readonly cron: string | null;
  readonly everyMs: number | null;
  readonly timezone: string;
  readonly job: JobDefinition<any, any>;
  readonly payload: (tick: { tickAt: Date; scheduleName: string }) => unknown;
  readonly queue: string;
  readonly priority: number;
  readonly overlap: OverlapPolicy;
  /** Whether `overlap` was given (not the default); read by `warden doctor`. Not part of `definitionHash`. */
  readonly overlapExplicit?: boolean;
  readonly misfire: { policy: MisfirePolicy; withinMs: number | null; maxCount: number; graceMs: number };
  readonly expect: { withinMs: number; maxRuntimeMs: number | null } | null;
  /** The heartbeat base URL (no trailing slash), or null. Not part of `definitionHash`: changing it does not reset ticks. */
  readonly heartbeat: { url: string } | null;
  /**
   * Hash of everything that decides when and what fires. A sync that stores a changed hash resets the schedule's next
   * tick only when the timing changed too (the stored spec's pattern and time zone, or interval, differ); otherwise
   * the stored next tick is kept.
   */
  readonly definitionHash: string;
  /** The first tick strictly after `after`, or null when the pattern never fires again. */
  nextTick(after: Date): Date | null;
}

const OVERLAPS: readonly OverlapPolicy[] = ['skip', 'queue-one', 'allow', 'replace'];
const MISFIRES: readonly MisfirePolicy[] = ['skip', 'run-once', 'catch-up'];

type Options = ScheduleOptions<unknown>;
/*
 * The keys of each object of the options, checked against the interface (an option added there cannot be missing
 * here): any other key is refused, since a misspelt one (`timzone`, `misfire: { polcy }`) would be ignored.
 */
const SCHEDULE_KEYS = Object.keys({
  name: true, cron: true, every: true, timezone: true, job: true, payload: true, queue: true, priority: true, overlap: true, misfire: true, expect: true, heartbeat: true,
} satisfies Record<keyof Options, true>);
const MISFIRE_KEYS = Object.keys({ policy: true, within: true, maxCount: true, grace: true } satisfies Record<keyof NonNullable<Options['misfire']>, true>);
const EXPECT_KEYS = Object.keys({ within: true, maxRuntime: true } satisfies Record<keyof NonNullable<Options['expect']>, true>);
const HEARTBEAT_KEYS = Object.keys({ url: true } satisfies Record<keyof NonNullable<Options['heartbeat']>, true>);

/** Most fields of a cron pattern: 5, or 6 with seconds first. croner would read a 7th as the year. */
const MAX_CRON_FIELDS = 6;

/**
 * Reads `pattern` with croner, refusing what the documented patterns are not (more than 6 fields) and a pattern
 * that never fires (30 February): a schedule would be stored with no next run, and never tick.
 * @throws InvalidOptionError
 */
function parseCron(field: string, pattern: unknown, timezone: string): Cron {
  if (typeof pattern !== 'string') throw new InvalidOptionError(field, pattern, 'a cron pattern string');
  if (pattern.trim().split(/\s+/).length > MAX_CRON_FIELDS) throw new InvalidOptionError(field, pattern, 'a cron pattern of 5 fields, or 6 with seconds first');
  let cron: Cron;
  try {
    cron = new Cron(pattern, { timezone, paused: true });
  } catch (error) {
    throw new InvalidOptionError(field, pattern, `a valid cron pattern (${(error as Error).message})`);
  }
  if (cron.nextRun() === null) throw new InvalidOptionError(field, pattern, 'a cron pattern that fires (this one matches no date from now on)');
  return cron;
}

/**
 * Defines a schedule. Every field is validated here: a bad cron pattern, an unknown time zone or a bad policy
 * throws an `InvalidOptionError` naming the field, before anything is written.
 * @example
 * defineSchedule({ name: "rescreen-customers", cron: "0 * * * *", timezone: "Europe/London", job: rescreen,
 *   overlap: "skip", misfire: { policy: "run-once", within: "6h" }, expect: { within: "15m" } });
 */
export function defineSchedule<TInput>(options: ScheduleOptions<TInput>): ScheduleDefinition {
  if (typeof options !== 'object' || options === null) throw new InvalidOptionError('defineSchedule(options)', options, 'an object');
  const name = validateName('schedule name', options.name);
  const field = (f: string) => `${f} of schedule "${name}"`;
  checkKnownKeys(`schedule "${name}"`, options, SCHEDULE_KEYS);
  if (typeof options.job?.name !== 'string' || typeof options.job.handler !== 'function') throw new InvalidOptionError(field('job'), options.job, 'a job made with defineJob()');
  if ((options.cron === undefined) === (options.every === undefined)) throw new InvalidOptionError(field('cron/every'), options.cron ?? options.every, 'exactly one of cron or every');
  const timezone = options.timezone ?? 'UTC';
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: timezone });
  } catch {
    throw new InvalidOptionError(field('timezone'), timezone, 'an IANA time zone such as "Europe/London"');
  }
  let cron: Cron | null = null;
  let everyMs: number | null = null;
  if (options.cron !== undefined) {
    cron = parseCron(field('cron'), options.cron, timezone);
  } else {
    everyMs = parseDuration(field('every'), options.every, { allowZero: false });
    if (everyMs < 1000) throw new InvalidOptionError(field('every'), options.every, 'an interval of at least 1s');
  }
  const overlap = options.overlap ?? 'skip';
  if (!OVERLAPS.includes(overlap)) throw new InvalidOptionError(field('overlap'), overlap, OVERLAPS.map((o) => `"${o}"`).join(', '));
  const m = optionalOptionsObject(field('misfire'), options.misfire, MISFIRE_KEYS, 'an object { policy?, within?, maxCount?, grace? }') ?? {};
  const policy = m.policy ?? 'run-once';
  if (!MISFIRES.includes(policy)) throw new InvalidOptionError(field('misfire.policy'), policy, MISFIRES.map((o) => `"${o}"`).join(', '));
  const maxCount = m.maxCount ?? 100;
  integerInRange(field('misfire.maxCount'), maxCount, MAX_RECORDED_TICKS);
  const misfire = {
    policy,
    withinMs: m.within === undefined ? null : parseDuration(field('misfire.within'), m.within, { allowZero: false }),
    maxCount,
    graceMs: parseDuration(field('misfire.grace'), m.grace ?? '1m'),
  };
  const e = optionalOptionsObject(field('expect'), options.expect, EXPECT_KEYS, 'an object { within, maxRuntime? }');
  const expect = e === undefined ? null : {
    withinMs: parseDuration(field('expect.within'), e.within, { allowZero: false }),
    maxRuntimeMs: e.maxRuntime === undefined ? null : parseDuration(field('expect.maxRuntime'), e.maxRuntime, { allowZero: false }),
  };
  const h = optionalOptionsObject(field('heartbeat'), options.heartbeat, HEARTBEAT_KEYS, 'an object { url }');
  const heartbeat = h === undefined ? null : { url: heartbeatUrl(field('heartbeat.url'), h.url) };
  const queue = validateName(field('queue'), options.queue ?? options.job.queue);
  const priority = validatePriority(field('priority'), options.priority ?? options.job.priority);
  const payloadOption = options.payload;
  const payload = typeof payloadOption === 'function'
    ? (payloadOption as (tick: { tickAt: Date; scheduleName: string }) => unknown)
    : () => (payloadOption === undefined ? {} : payloadOption);
  const nextTick = cron
    ? (after: Date) => nextCronTick(cron, after)
    : (after: Date) => everyNextTick(everyMs!, after);
  const definitionHash = shortHash([options.cron ?? null, everyMs, timezone, options.job.name, queue, priority, overlap, misfire, expect]);
  return Object.freeze({ name, cron: options.cron ?? null, everyMs, timezone, job: options.job, payload, queue, priority, overlap, overlapExplicit: options.overlap !== undefined, misfire, expect, heartbeat, definitionHash, nextTick });
}
