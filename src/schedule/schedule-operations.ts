import type { Clock } from '../clock/clock.js';
import type { Driver } from '../driver/driver.js';
import {
  TICK_LIST_DEFAULT_LIMIT, TICK_LIST_LIMIT_EXPECTED, TICK_LIST_MAX_LIMIT, type ScheduleRow, type ScheduleTickRow,
} from '../driver/schedule-params.js';
import { InvalidOptionError, ScheduleChangedError, ScheduleNotFoundError } from '../errors.js';
import type { TypedEmitter } from '../events/typed-emitter.js';
import { buildJobInsert } from '../job/build-job-insert.js';
import { validateName } from '../validation/names.js';
import type { ScheduleDefinition } from './define-schedule.js';
import { holderRef } from './holder-ref.js';
import { nextTickFromSpec, type ScheduleSpec, toSyncItem } from './schedule-spec.js';

/**
 * How many times `resume` reads a schedule and computes its next tick before giving up: each retry means a sync
 * stored another definition between the read and the write, so more than one is already a deploy storm.
 */
export const RESUME_ATTEMPTS = 5;

/** Operator actions on schedules: `warden.schedules`. */
export class ScheduleOperations {
  readonly #driver: Driver;
  readonly #clock: Clock;
  readonly #events: TypedEmitter;
  readonly #defs: ReadonlyMap<string, ScheduleDefinition>;
  readonly #payloadLimit: number;
  readonly #onEnqueued: (queue: string) => void;
  readonly #afterAction: () => Promise<void>;
  readonly #whileOpen: <T>(call: string, write: () => Promise<T>) => Promise<T>;

  /**
   * `afterAction` runs after each operator action's events and before it returns (the audit trail's flush).
   * `whileOpen` runs each write (sync, pause, resume, trigger): the Warden refuses it once closed and waits for it
   * before closing (default: runs it as it is).
   */
  constructor(deps: {
    driver: Driver; clock: Clock; events: TypedEmitter; definitions: ReadonlyMap<string, ScheduleDefinition>; payloadLimit: number;
    onEnqueued: (queue: string) => void; afterAction?: () => Promise<void>; whileOpen?: <T>(call: string, write: () => Promise<T>) => Promise<T>;
  }) {
    this.#driver = deps.driver;
    this.#clock = deps.clock;
    this.#events = deps.events;
    this.#defs = deps.definitions;
    this.#payloadLimit = deps.payloadLimit;
    this.#onEnqueued = deps.onEnqueued;
    this.#afterAction = deps.afterAction ?? (() => Promise.resolve());
    this.#whileOpen = deps.whileOpen ?? ((_call, write) => write());
  }

  /**
   * Writes this process's schedule definitions to the database, as a starting scheduler does. `names` limits it to
   * some of them; `removeMissing` (default false here) also marks every other stored schedule removed — only right
   * for a process that holds the whole deployment's set.
   * @throws InvalidOptionError for a name this process does not define.
   */
  sync(options: { names?: string[]; removeMissing?: boolean } = {}): Promise<void> {
    return this.#whileOpen('schedules.sync()', () => this.#sync(options));
  }

  async #sync(options: { names?: string[]; removeMissing?: boolean }): Promise<void> {
    const defs = options.names === undefined ? [...this.#defs.values()] : options.names.map((name) => {
      const def = this.#defs.get(name);
      if (!def) throw new InvalidOptionError('names[]', name, `a schedule defined in this process (known: ${[...this.#defs.keys()].join(', ') || 'none'})`);
      return def;
    });
    const now = this.#clock.sqlNow() ?? (await this.#driver.dbNow());
    await this.#driver.scheduleSync({ schedules: defs.map((d) => toSyncItem(d, now)), removeMissing: options.removeMissing ?? false, now: this.#clock.sqlNow() });
  }

  /** Every active schedule with its next run, last tick (and that run's state) and pause state. */
  list(): Promise<ScheduleRow[]> {
    return this.#driver.scheduleList();
  }

  /** One active schedule as {@link list} shows it, or null when it is not stored or was removed. */
  get(name: string): Promise<ScheduleRow | null> {
    return this.#driver.scheduleGet({ name: validateName('schedule name', name) });
  }

  /**
   * A schedule's tick history, newest first: fired, skipped (overlap or duplicate key), missed, triggered. `limit`:
   * at most that many ticks, a whole number from 1 to 1,000 (default 100).
   * @throws InvalidNameError at once, as {@link get} does; InvalidOptionError for a `limit` outside that range (the
   * promise rejects).
   */
  ticks(name: string, options: { limit?: number } = {}): Promise<ScheduleTickRow[]> {
    validateName('schedule name', name);
    const { limit = TICK_LIST_DEFAULT_LIMIT } = options;
    // Refused rather than replaced (as `jobs.list` does): a limit read as some other number hides the caller's mistake.
    if (!Number.isInteger(limit) || limit < 1 || limit > TICK_LIST_MAX_LIMIT) {
      return Promise.reject(new InvalidOptionError('limit', limit, TICK_LIST_LIMIT_EXPECTED));
    }
    return this.#driver.scheduleTickList({ name, limit });
  }

  /** Pauses a schedule in the database: no instance fires it until resumed. @throws ScheduleNotFoundError */
  pause(name: string, options: { actor?: string; reason?: string } = {}): Promise<ScheduleRow> {
    return this.#whileOpen('schedules.pause()', () => this.#pause(name, options));
  }

  async #pause(name: string, options: { actor?: string; reason?: string }): Promise<ScheduleRow> {
    const row = await this.#driver.schedulePause({ name: validateName('schedule name', name), now: this.#clock.sqlNow() });
    this.#events.emit('schedule:operator-action', { schedule: name, action: 'pause', actor: options.actor ?? 'api', reason: options.reason ?? null });
    await this.#afterAction();
    return row;
  }

  /**
   * Resumes a paused schedule from its next future tick; ticks that fell in the pause are not misfires. A schedule
   * that is not paused keeps its `next_run_at`, so a tick already due still fires (or is handled by the misfire
   * policy). The next tick comes from the stored definition: this process's only when its hash is the stored one.
   * The resume applies only while the stored definition is still the one the next tick was computed from; when a
   * sync stored another one in between (a deploy), the schedule is read again and the next tick recomputed, up to
   * {@link RESUME_ATTEMPTS} times.
   * @throws ScheduleNotFoundError; ScheduleChangedError when the definition changed under every attempt.
   */
  resume(name: string, options: { actor?: string; reason?: string } = {}): Promise<ScheduleRow> {
    return this.#whileOpen('schedules.resume()', () => this.#resume(name, options));
  }

  async #resume(name: string, options: { actor?: string; reason?: string }): Promise<ScheduleRow> {
    validateName('schedule name', name);
    const def = this.#defs.get(name);
    let stored: ScheduleRow | null = null;
    for (let attempt = 1; attempt <= RESUME_ATTEMPTS; attempt++) {
      const now = this.#clock.sqlNow() ?? (await this.#driver.dbNow());
      stored = await this.#driver.scheduleGet({ name });
      if (!stored) throw new ScheduleNotFoundError(name);
      // Another deploy's definition may tick differently: the stored one is what the schedulers fire.
      const nextRunAt = def?.definitionHash === stored.definitionHash ? def.nextTick(now) : nextTickFromSpec(stored.spec as ScheduleSpec, now);
      // Sets next_run_at only if paused; null when a sync replaced the definition since the read: read again.
      const row = await this.#driver.scheduleResume({ name, expectedHash: stored.definitionHash, nextRunAt, now: this.#clock.sqlNow() });
      if (!row) continue;
      this.#events.emit('schedule:operator-action', { schedule: name, action: 'resume', actor: options.actor ?? 'api', reason: options.reason ?? null });
      await this.#afterAction();
      return row;
    }
    throw new ScheduleChangedError(name, stored?.definitionHash ?? null, RESUME_ATTEMPTS);
  }

  /**
   * Enqueues one run now, recorded as a triggered tick with its actor. Needs the schedule's definition in this
   * process (its payload is code). A schedule never stored yet (no scheduler has run) is stored first, as a first
   * sync would; one removed by another deployment stays removed and is not triggered. A job deduplicated on its
   * unique key against an active one is not a new run: the tick is recorded `skipped`, `jobId` is that active job,
   * and the events say so (`job:enqueued` with `duplicate: true`, `schedule:skipped` with reason `duplicate` and the
   * actor, no `schedule:fired`). When that key replaces a waiting job's payload and due time (`replaced: true`),
   * that job runs for this trigger: the tick is recorded `fired` with it, and `schedule:fired` says `replaced`.
   * @throws ScheduleNotFoundError, InvalidOptionError when this process does not define the schedule;
   * WardenClosedError once the Warden's `close()` stopped it (as for every write here).
   */
  trigger(name: string, options: { actor?: string; reason?: string } = {}): Promise<{ jobId: string; tickAt: Date; duplicate: boolean; replaced: boolean }> {
    return this.#whileOpen('schedules.trigger()', () => this.#trigger(name, options));
  }

  async #trigger(name: string, options: { actor?: string; reason?: string }): Promise<{ jobId: string; tickAt: Date; duplicate: boolean; replaced: boolean }> {
    validateName('schedule name', name);
    const def = this.#defs.get(name);
    if (!def) throw new InvalidOptionError('schedule', name, `a schedule defined in this process (known: ${[...this.#defs.keys()].join(', ') || 'none'}); pass its module with --jobs`);
    const actor = options.actor ?? 'api';
    const tickAt = this.#clock.sqlNow() ?? (await this.#driver.dbNow());
    const job = await buildJobInsert(def.job, def.payload({ tickAt, scheduleName: name }), { queue: def.queue, priority: def.priority }, this.#payloadLimit);
    // Its definition goes along, so a schedule no scheduler has stored yet is stored first (a removed one is not).
    const result = await this.#driver.scheduleTrigger({ name, job, actor, now: this.#clock.sqlNow(), define: toSyncItem(def, tickAt) });
    const { duplicate, replaced } = result;
    const jobRef = { id: result.jobId, name: def.job.name, queue: def.queue, scheduleName: name };
    this.#events.emit('schedule:operator-action', { schedule: name, action: 'trigger', actor, reason: options.reason ?? null });
    // A duplicate is named as the key's holder is (holderRef); a new or replaced job as this trigger made it.
    const enqueued = duplicate && !replaced ? await holderRef(this.#driver, this.#events, result.jobId, { job: jobRef, runAt: result.tickAt }) : { job: jobRef, runAt: result.tickAt };
    this.#events.emit('job:enqueued', { ...enqueued, duplicate, replaced, inTransaction: false });
    if (duplicate && !replaced) {
      // Nothing runs for this trigger: the active job holds the key. Not an overlap: no scheduled tick was held back.
      this.#events.emit('schedule:skipped', { schedule: name, tickAt: result.tickAt, reason: 'duplicate', activeJobId: result.jobId, actor });
    } else {
      // A replaced holder runs this trigger's payload: the trigger's run, though no new job (the tick row says fired).
      this.#events.emit('schedule:fired', { schedule: name, tickAt: result.tickAt, jobId: result.jobId, job: jobRef, late: false, actor, replaced });
    }
    // A replaced holder got this trigger's due time, so it may be due now as a new job would be.
    if (!duplicate || replaced) this.#onEnqueued(def.queue);
    await this.#afterAction();
    return { jobId: result.jobId, tickAt: result.tickAt, duplicate, replaced };
  }
}
