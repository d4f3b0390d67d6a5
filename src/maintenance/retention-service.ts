/**
 * The retention service: deletes finished jobs past their retention, dedup keys left without a holder, and old
 * schedule ticks, in bounded batches, in one instance at a time.
 * @module
 */
import { MAX_COUNTED_TICKS } from '../alerts/missed-run.js';
import type { Clock } from '../clock/clock.js';
import type { Driver } from '../driver/driver.js';
import type { PrunableState } from '../driver/retention-params.js';
import { InvalidOptionError } from '../errors.js';
import type { TypedEmitter } from '../events/typed-emitter.js';
import type { JobDefinition } from '../job/define-job.js';
import type { Lease } from '../lock/lease.js';
import type { LockManager } from '../lock/lock-manager.js';
import { Service } from '../runtime/service.js';
import { type Duration, parseDuration } from '../validation/duration.js';
import { integerInRange } from '../validation/integer-in-range.js';
import { PRUNABLE_STATES, type ResolvedRetentionPolicy, type RetentionPolicy, resolveRetentionPolicy } from './retention-policy.js';

/** Options of `createWarden({ retention })`: the global policy and how passes run. */
export interface RetentionOptions extends RetentionPolicy {
  /**
   * Schedule ticks older than this are deleted; `false`: never. Always kept: each schedule's newest tick, and the ticks
   * its missed-run check reads (from its last success on, up to 1,000 scheduled ticks after it), however old, so an
   * `expect.within` longer than this still alerts. @default "30d"
   */
  scheduleTicks?: Duration | false;
  /** Time between passes. The first pass runs one minute after `start()` (or after `interval`, if shorter). @default "1h" */
  interval?: Duration;
  /** Rows deleted per statement: small enough that no statement holds locks for long. @default 1000 */
  batchSize?: number;
  /**
   * Most rows one pass deletes of each kind (jobs of one state and age — the global policy's, or a job type's own —,
   * orphaned keys, ticks); the rest waits for the next pass. @default 100000
   */
  maxPerPass?: number;
}

/** Resolved {@link RetentionOptions}. */
export interface ResolvedRetentionOptions {
  policy: ResolvedRetentionPolicy;
  scheduleTicksMs: number | null;
  intervalMs: number;
  batchSize: number;
  maxPerPass: number;
}

/** What one pass deleted, as in the `retention:pruned` event. */
export interface RetentionResult {
  jobs: Record<PrunableState, number>;
  keys: number;
  ticks: number;
  durationMs: number;
  /** False when the pass stopped before it was done (stop, lost lock, `maxPerPass`). */
  complete: boolean;
}

/** The lease lock passes run under, so only one instance prunes at a time. */
export const RETENTION_LOCK = 'warden:retention';
/** The lock's lease: renewed every third of it while a pass runs; a crashed pass frees it at expiry. */
const LOCK_TTL = '2m';
/** Delay before the first pass: long enough not to slow start-up, short enough for processes that restart often. */
const FIRST_PASS_MS = 60_000;

/**
 * Checks {@link RetentionOptions}.
 * @throws InvalidOptionError, InvalidDurationError naming the bad field.
 */
export function resolveRetentionOptions(options: RetentionOptions = {}): ResolvedRetentionOptions {
  const policy = resolveRetentionPolicy('retention', options);
  const ticks = options.scheduleTicks ?? '30d';
  const scheduleTicksMs = ticks === false ? null : parseDuration('retention.scheduleTicks', ticks, { allowZero: false });
  const intervalMs = parseDuration('retention.interval', options.interval ?? '1h', { allowZero: false });
  const batchSize = options.batchSize ?? 1000;
  integerInRange('retention.batchSize', batchSize, 100_000);
  const maxPerPass = options.maxPerPass ?? 100_000;
  if (!Number.isInteger(maxPerPass) || maxPerPass < batchSize) throw new InvalidOptionError('retention.maxPerPass', maxPerPass, `an integer of at least batchSize (${batchSize})`);
  return { policy, scheduleTicksMs, intervalMs, batchSize, maxPerPass };
}

/** What the service needs from its Warden. */
export interface RetentionDeps {
  driver: Driver;
  clock: Clock;
  events: TypedEmitter;
  locks: LockManager;
  /** The registered job definitions, for their own `retention`. */
  definitions: ReadonlyMap<string, JobDefinition<any, any>>;
}

/** One prune call: a state, an age and the names it applies to (or every name but `excludeNames`). */
interface PrunePlan {
  state: PrunableState;
  olderThanMs: number;
  names: string[] | null;
  excludeNames: string[] | null;
}

/**
 * A service running retention passes every `interval` while started (`start`/`stop`), each under the
 * {@link RETENTION_LOCK} lease lock: an instance that finds it held skips the pass. Times are database time.
 * Deletes jobs per final state (the job type's own `retention` where it sets one, the global policy for every
 * other name, including jobs this process has no definition for), then dedup keys whose holder is gone, then
 * schedule ticks past `scheduleTicks` but those the missed-run alert reads. The audit trail is never touched.
 * Errors are reported as `error` events and the next pass tries again.
 */
export class RetentionService extends Service {
  readonly #deps: RetentionDeps;
  readonly #options: ResolvedRetentionOptions;
  /** Where the sweep over dedup keys continues (null: from the first key); kept across passes. */
  #keyCursor: string | null = null;

  constructor(deps: RetentionDeps, options: ResolvedRetentionOptions) {
    super();
    this.#deps = deps;
    this.#options = options;
  }

  protected async run(signal: AbortSignal): Promise<void> {
    let waitMs = Math.min(FIRST_PASS_MS, this.#options.intervalMs);
    while (await this.#deps.clock.sleep(waitMs, signal)) {
      try {
        await this.runOnce(signal);
      } catch (error) {
        this.onCrash(error);
      }
      waitMs = this.#options.intervalMs;
    }
  }

  protected onCrash(error: unknown): void {
    this.#deps.events.emit('error', { error, context: 'pruning finished jobs (retention)' });
  }

  /**
   * Runs one pass now, under the retention lock; it stops early (between statements) when `signal` aborts.
   * Resolves with what it deleted, or null when another instance holds the lock.
   * @throws the database's error; the lock is released either way.
   */
  async runOnce(signal?: AbortSignal): Promise<RetentionResult | null> {
    const result = await this.#deps.locks.withLock(RETENTION_LOCK, { ttl: LOCK_TTL }, (lease) => this.#pass(lease, signal));
    if (result) this.#deps.events.emit('retention:pruned', result);
    return result;
  }

  async #pass(lease: Lease, signal: AbortSignal | undefined): Promise<RetentionResult> {
    const { driver, clock } = this.#deps;
    const { batchSize, maxPerPass, scheduleTicksMs } = this.#options;
    const startedAt = clock.now();
    const stopped = () => signal?.aborted === true || !lease.held;
    const jobs: Record<PrunableState, number> = { completed: 0, dead: 0, cancelled: 0 };
    let complete = true;
    // Deletes in batches until a batch comes back short (nothing left), the per-pass cap, or a stop.
    const drain = async (call: (limit: number) => Promise<number>): Promise<number> => {
      let total = 0;
      for (;;) {
        const limit = Math.min(batchSize, maxPerPass - total);
        if (stopped() || limit <= 0) {
          complete = false;
          return total;
        }
        const deleted = await call(limit);
        total += deleted;
        if (deleted < limit) return total;
      }
    };
    for (const plan of this.#plans()) {
      jobs[plan.state] += await drain((limit) => driver.jobPrune({ ...plan, limit, now: clock.sqlNow() }));
    }
    const keys = await this.#sweepKeys(stopped, () => (complete = false));
    // The ticks the missed-run check reads are kept however old (its `expect.within` may be longer than the
    // retention, or the schedule failing for longer): those from its last success through as many as it reads.
    const ticks = scheduleTicksMs === null ? 0 : await drain((limit) => driver.scheduleTickPrune({ olderThanMs: scheduleTicksMs, keepAfterSuccess: MAX_COUNTED_TICKS, limit, now: clock.sqlNow() }));
    return { jobs, keys, ticks, durationMs: clock.now() - startedAt, complete };
  }

  /**
   * Looks at up to `maxPerPass` dedup keys, `batchSize` per statement, from where the last pass stopped, deleting
   * those whose holder is gone; wraps around at the end. Every key is looked at, so the sweep is bounded per
   * pass rather than by the number of orphans found.
   */
  async #sweepKeys(stopped: () => boolean, incomplete: () => void): Promise<number> {
    const { batchSize, maxPerPass } = this.#options;
    let deleted = 0;
    for (let seen = 0; seen < maxPerPass; seen += batchSize) {
      if (stopped()) {
        incomplete();
        return deleted;
      }
      const step = await this.#deps.driver.jobKeyPrune({ afterKey: this.#keyCursor, limit: batchSize });
      deleted += step.deleted;
      this.#keyCursor = step.lastKey;
      if (step.lastKey === null) return deleted;
    }
    // The rest of the keys waits for the next pass, which goes on from the cursor.
    incomplete();
    return deleted;
  }

  /**
   * The prune calls of a pass. Per state: one call per distinct age among the job types that set their own, for
   * those names; then the global age for every other name (none when the global policy keeps that state).
   */
  #plans(): PrunePlan[] {
    const plans: PrunePlan[] = [];
    for (const state of PRUNABLE_STATES) {
      const own = new Map<number, string[]>();
      const overridden: string[] = [];
      for (const def of this.#deps.definitions.values()) {
        const ms = def.retention?.[state];
        if (ms === undefined) continue;
        overridden.push(def.name);
        if (ms !== null) own.set(ms, [...(own.get(ms) ?? []), def.name]);
      }
      for (const [olderThanMs, names] of own) plans.push({ state, olderThanMs, names, excludeNames: null });
      const global = this.#options.policy[state];
      if (global !== null) plans.push({ state, olderThanMs: global, names: null, excludeNames: overridden.length > 0 ? overridden : null });
    }
    return plans;
  }
}
