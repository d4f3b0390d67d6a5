import type { Clock } from '../clock/clock.js';
import type { Driver } from '../driver/driver.js';
import type { ScheduleAdvanceResult, ScheduleRow, ScheduleTickResult, ScheduleTickWrite } from '../driver/schedule-params.js';
import type { TypedEmitter } from '../events/typed-emitter.js';
import type { JobState } from '../job/job-record.js';
import { buildJobInsert } from '../job/build-job-insert.js';
import { Service } from '../runtime/service.js';
import type { OverlapPolicy, ScheduleDefinition } from './define-schedule.js';
import { holderRef } from './holder-ref.js';
import { planTicks } from './plan-ticks.js';
import { ScheduleAdvanceError, type ScheduleAdvanceFailure } from './schedule-advance-error.js';
import { toSyncItem } from './schedule-spec.js';

/** Options of {@link Scheduler}. */
export interface SchedulerDeps {
  driver: Driver;
  clock: Clock;
  events: TypedEmitter;
  schedules: readonly ScheduleDefinition[];
  payloadLimit: number;
  /** How often due schedules are looked for. */
  scanMs: number;
  /** Warn (`clock:skew`) when this process's clock differs from the database's by more. */
  skewWarnMs: number;
  /** Called with queues that got a job, so a local worker can look at once. */
  onEnqueued: (queue: string) => void;
  /**
   * This scheduler's identity, stored on the tick rows it writes (`fired_by`), unique per instance: after an
   * advance whose reply was lost it finds its own ticks by it.
   */
  instanceId: string;
}

/** An advance that failed after it may have committed: its ticks' events are still owed if it did. */
interface UnconfirmedAdvance {
  def: ScheduleDefinition;
  tickAts: Date[];
  /** The tick the advance started at, and how many ticks older than the policy's window it counted. */
  from: Date;
  unlistedMissed: number;
}

/** Job states that make a new tick wait, per overlap policy. */
const BLOCKING: Record<OverlapPolicy, JobState[]> = {
  skip: ['queued', 'retrying', 'running'],
  'queue-one': ['queued', 'retrying'],
  allow: [],
  replace: [],
};

/**
 * Fires schedules. Every instance may run one: each scan reads the due schedules and, for each, writes its plan
 * with a compare-and-swap on the schedule's `next_run_at` in the same transaction as the tick rows and jobs — so
 * any number of instances may race and each tick is handled exactly once, by whichever swap wins. Time comes from
 * the database (or the injected clock), never from this process's wall clock.
 */
export class Scheduler extends Service {
  readonly #deps: SchedulerDeps;
  readonly #byName: Map<string, ScheduleDefinition>;
  #lastSkewWarning = -Infinity;
  /** Advances that failed (error, no answer), by schedule name, settled at the start of the next scan. */
  readonly #unconfirmed = new Map<string, UnconfirmedAdvance>();

  constructor(deps: SchedulerDeps) {
    super();
    this.#deps = deps;
    this.#byName = new Map(deps.schedules.map((s) => [s.name, s]));
  }

  /**
   * Writes the code's schedules to the database: new ones added, changed ones stored (their next tick reset only when
   * their timing changed), missing ones removed.
   */
  async sync(): Promise<void> {
    const now = await this.#now();
    await this.#deps.driver.scheduleSync({
      schedules: this.#deps.schedules.map((s) => toSyncItem(s, now)),
      // A process without schedules must not read as "the deployment has none": it would remove everyone's.
      removeMissing: this.#deps.schedules.length > 0,
      now: this.#deps.clock.sqlNow(),
    });
  }

  /**
   * One pass: handles every due schedule, and resolves with how many this instance advanced. A schedule whose
   * advance fails is reported as an `error` event naming it and left due, and the pass goes on with the others:
   * the failing one keeps the oldest `next_run_at`, so it comes first in every pass, and stopping there would hold
   * back every schedule due after it for as long as it fails.
   * @throws ScheduleAdvanceError once the others were handled, when some schedule failed; the database's error when
   * the pass could not start (reading the time, the due schedules, or what a lost advance wrote).
   */
  async scan(): Promise<number> {
    const { driver, clock, events } = this.#deps;
    await this.#settleUnconfirmed();
    const now = await this.#now();
    const due = await driver.scheduleDue({ now: clock.sqlNow() ?? now, limit: 100 });
    let advanced = 0;
    const failures: ScheduleAdvanceFailure[] = [];
    for (const row of due) {
      const def = this.#byName.get(row.name);
      // Another deploy's definition (or one this process does not know) is that deploy's to fire.
      if (!def || def.definitionHash !== row.definitionHash || !row.nextRunAt) continue;
      try {
        if (await this.#advance(def, row, now)) advanced++;
      } catch (error) {
        failures.push({ schedule: def.name, error });
        events.emit('error', { error, context: `advancing schedule ${def.name}` });
      }
    }
    if (failures.length > 0) throw new ScheduleAdvanceError(failures, advanced);
    return advanced;
  }

  protected async run(signal: AbortSignal): Promise<void> {
    const { clock, events, scanMs } = this.#deps;
    let synced = false;
    while (!signal.aborted) {
      try {
        if (!synced) {
          await this.sync();
          synced = true;
        }
        await this.scan();
      } catch (error) {
        // A ScheduleAdvanceError's failures were each reported already, naming their schedule.
        if (!(error instanceof ScheduleAdvanceError)) events.emit('error', { error, context: synced ? 'scanning schedules' : 'syncing schedules' });
      }
      await clock.sleep(scanMs, signal);
    }
  }

  protected onCrash(error: unknown): void {
    this.#deps.events.emit('error', { error, context: 'scheduler' });
  }

  async #advance(def: ScheduleDefinition, row: ScheduleRow, now: Date): Promise<boolean> {
    const { driver, clock, events, payloadLimit } = this.#deps;
    const plan = planTicks(def, row.nextRunAt!, now);
    const ticks: ScheduleTickWrite[] = [];
    for (const t of plan.ticks) {
      if (t.action === 'missed') {
        ticks.push({ tickAt: t.tickAt, action: 'missed', late: true, job: null, blockIfActiveIn: [], cancelActive: false });
        continue;
      }
      try {
        const insert = await buildJobInsert(def.job, def.payload({ tickAt: t.tickAt, scheduleName: def.name }), { queue: def.queue, priority: def.priority }, payloadLimit);
        ticks.push({ tickAt: t.tickAt, action: 'fire', late: t.late, job: { ...insert, scheduleName: def.name, tickAt: t.tickAt }, blockIfActiveIn: BLOCKING[def.overlap], cancelActive: def.overlap === 'replace' });
      } catch (error) {
        // A payload function that throws or returns an invalid payload cannot fire this tick; record it as
        // missed (so it is visible and alerted on) rather than retrying the same tick forever.
        events.emit('error', { error, context: `building the payload of schedule ${def.name}` });
        ticks.push({ tickAt: t.tickAt, action: 'missed', late: t.late, job: null, blockIfActiveIn: [], cancelActive: false });
      }
    }
    let result: ScheduleAdvanceResult;
    try {
      result = await driver.scheduleAdvance({
        name: def.name, definitionHash: def.definitionHash, expectedNextRunAt: row.nextRunAt!, nextRunAt: plan.nextRunAt, ticks, now: clock.sqlNow(),
        firedBy: this.#deps.instanceId,
      });
    } catch (error) {
      // It may have committed with its reply lost: the next scan asks which of these ticks it wrote.
      this.#unconfirmed.set(def.name, { def, tickAts: ticks.map((t) => t.tickAt), from: row.nextRunAt!, unlistedMissed: plan.unlistedMissed });
      throw error;
    }
    if (!result.advanced) return false;
    await this.#emitTicks(def, row.nextRunAt!, plan.unlistedMissed, result.ticks);
    return true;
  }

  /** The events of an advance that committed: one per tick it handled now (see the `schedule:*` events). */
  async #emitTicks(def: ScheduleDefinition, from: Date, unlistedMissed: number, ticks: readonly ScheduleTickResult[]): Promise<void> {
    const { events } = this.#deps;
    if (unlistedMissed > 0) events.emit('schedule:missed', { schedule: def.name, tickAt: from, count: unlistedMissed });
    for (const t of ticks) {
      // A tick handled before (e.g. a sync moved next_run_at back over it) did nothing now: no event may say it did.
      if (t.alreadyHandled) continue;
      if (t.cancelledJobIds.length > 0) events.emit('schedule:replaced', { schedule: def.name, tickAt: t.tickAt, cancelledJobIds: t.cancelledJobIds });
      if (t.outcome === 'fired' && t.jobId) {
        // Replaced: no new job; the waiting holder of the job's key took this tick's payload and due time.
        const replaced = t.replaced === true;
        const job = { id: t.jobId, name: def.job.name, queue: t.queue ?? def.queue, scheduleName: def.name };
        events.emit('job:enqueued', { job, duplicate: replaced, replaced, runAt: t.tickAt, inTransaction: false });
        events.emit('schedule:fired', { schedule: def.name, tickAt: t.tickAt, jobId: t.jobId, job, late: t.late, actor: null, replaced });
        if (t.queue) this.#deps.onEnqueued(t.queue);
      } else if (t.outcome === 'skipped') {
        // The driver names the active job only when the tick's job was deduplicated on its key; a tick the overlap
        // policy held back has none.
        const reason = t.jobId === null ? 'overlap' : 'duplicate';
        // An enqueue that returned the active job, as a trigger's does: counted as deduplicated, not audited (it
        // changed nothing), and nothing new to wake a worker for. Named as that job is (holderRef).
        if (t.jobId !== null) {
          const { job, runAt } = await holderRef(this.#deps.driver, events, t.jobId, { job: { id: t.jobId, name: def.job.name, queue: def.queue, scheduleName: def.name }, runAt: t.tickAt });
          events.emit('job:enqueued', { job, duplicate: true, replaced: false, runAt, inTransaction: false });
        }
        events.emit('schedule:skipped', { schedule: def.name, tickAt: t.tickAt, reason, activeJobId: t.jobId, actor: null });
      } else if (t.outcome === 'missed') {
        events.emit('schedule:missed', { schedule: def.name, tickAt: t.tickAt, count: 1 });
      }
    }
  }

  /**
   * Settles the advances whose call failed: the ticks this instance wrote among theirs (read once no advance of the
   * schedule is in flight) were committed, and get their events now; none means the advance did not commit, and the
   * scan handles the ticks as due. Cancellations by overlap `replace` are not known here, so a lost reply loses
   * their `schedule:replaced` event; so is the count of ticks too old to list of an advance that listed none (it
   * wrote no tick row, so it cannot be told from one that did not commit). A read that fails leaves the advance
   * for the next scan.
   */
  async #settleUnconfirmed(): Promise<void> {
    for (const [name, u] of this.#unconfirmed) {
      const written = await this.#deps.driver.scheduleTicksWrittenBy({ name, firedBy: this.#deps.instanceId, tickAts: u.tickAts });
      this.#unconfirmed.delete(name);
      if (written.length === 0) continue;
      const queue = u.def.queue;
      await this.#emitTicks(u.def, u.from, u.unlistedMissed, written.map((t) => ({
        ...t, cancelledJobIds: [], queue: t.outcome === 'fired' ? queue : null, alreadyHandled: false,
      })));
    }
  }

  /** Database time (or the injected clock's), with a warning when this process's clock has drifted from it. */
  async #now(): Promise<Date> {
    const { clock, driver, events, skewWarnMs } = this.#deps;
    const injected = clock.sqlNow();
    if (injected) return injected;
    const before = clock.now();
    const dbNow = await driver.dbNow();
    const after = clock.now();
    const skewMs = Math.round((before + after) / 2 - dbNow.getTime());
    if (Math.abs(skewMs) > skewWarnMs && after - this.#lastSkewWarning > 60_000) {
      this.#lastSkewWarning = after;
      events.emit('clock:skew', { skewMs, thresholdMs: skewWarnMs });
    }
    return dbNow;
  }
}
