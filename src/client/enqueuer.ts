/**
 * The producer side of a Warden: turns `enqueue` and `enqueueMany` calls into validated inserts, writes them
 * through the driver (inside producer spans when tracing is on), announces each job (`job:enqueued`) and wakes this
 * process's worker for the queues that got new due work.
 * @module
 */
import type { Clock } from '../clock/clock.js';
import type { Driver, JobInsert, JobInsertResult } from '../driver/driver.js';
import { InvalidOptionError, UnknownJobError } from '../errors.js';
import type { TypedEmitter } from '../events/typed-emitter.js';
import { assertInsertTimesInRange, completeJobInsert, type JobInsertSnapshot, snapshotJobInsert } from '../job/build-job-insert.js';
import type { JobDefinition } from '../job/define-job.js';
import type { JobTracer } from '../observe/job-tracer.js';
import { EnqueuesInFlight } from '../runtime/enqueues-in-flight.js';
import { checkKnownKeys, unknownKey, unknownKeyError } from '../validation/known-keys.js';
import { isOptionsObject } from '../validation/options-object.js';
import type { EnqueueOptions, EnqueueResult } from './warden-options.js';

/** One item of `Warden.enqueueMany`. */
export interface EnqueueItem {
  job: JobDefinition<any, any> | string;
  payload: unknown;
  options?: Omit<EnqueueOptions, 'tx'>;
}

/**
 * Every key of {@link EnqueueOptions}, checked against the interface so an option added there is known here: any
 * other is refused, since a misspelt one (`dealy`) would be ignored and the job due at once.
 */
const ENQUEUE_OPTION_KEYS = Object.keys({ delay: true, runAt: true, priority: true, queue: true, key: true, unique: true, tx: true } satisfies Record<keyof EnqueueOptions, true>);
const ITEM_KEYS = Object.keys({ job: true, payload: true, options: true } satisfies Record<keyof EnqueueItem, true>);

/** What an {@link Enqueuer} needs from its Warden. */
export interface EnqueuerDeps {
  driver: Driver;
  clock: Clock;
  events: TypedEmitter;
  /** The registered job definitions, by name: jobs named by string must be here. */
  registry: ReadonlyMap<string, JobDefinition<any, any>>;
  /** Most bytes of a payload's UTF-8 JSON. */
  payloadLimit: number;
  /** Producer spans; null when tracing is off. */
  tracer: JobTracer | null;
  /** `queue` got new due work outside an application's transaction: this process's worker may look at once. */
  onQueueReady: (queue: string) => void;
}

/** Validates, writes and announces enqueued jobs for one Warden (see the module comment). */
export class Enqueuer {
  readonly #deps: EnqueuerDeps;
  /** Single enqueues awaiting their reply: a job one hands to this process's worker starts after its event. */
  readonly #inFlight = new EnqueuesInFlight();

  constructor(deps: EnqueuerDeps) {
    this.#deps = deps;
  }

  /** One job; see `Warden.enqueue`. */
  async enqueue<TInput>(job: JobDefinition<TInput, any> | string, payload: TInput, options: EnqueueOptions = {}): Promise<EnqueueResult> {
    // Checked before `options.tx` is read: null or a string would otherwise be a TypeError or silently no options.
    if (!isOptionsObject(options)) throw new InvalidOptionError('options', options, 'an object of enqueue options, or left out');
    checkKnownKeys('enqueue options', options, ENQUEUE_OPTION_KEYS);
    const { tx } = options;
    const now = this.#deps.clock.sqlNow();
    // Taken before the first await: what the caller changes afterwards is not what gets validated or stored.
    const snapshot = this.#snapshot(job, payload, options);
    const [result] = await this.#write([await this.#complete(snapshot, now)], tx, now);
    return result!;
  }

  /** Many jobs in one transaction; see `Warden.enqueueMany`. */
  async enqueueMany(items: EnqueueItem[], options: { tx?: unknown } = {}): Promise<EnqueueResult[]> {
    if (!Array.isArray(items)) throw new InvalidOptionError('enqueueMany(items)', items, 'an array');
    if (!isOptionsObject(options)) throw new InvalidOptionError('enqueueMany(items, options)', options, 'an object { tx? }, or left out');
    checkKnownKeys('enqueueMany options', options, ['tx']);
    // Every item's shape first, so a malformed one is named by its position whatever the others hold.
    for (const [index, item] of items.entries()) checkItem(item, index);
    const { tx } = options;
    const now = this.#deps.clock.sqlNow();
    // Every item is taken before the first await (see `enqueue`). An item whose options are refused here stops the
    // snapshots, but the items before it are validated first: the first bad item is the one reported, as when each
    // item was taken and validated in turn.
    const snapshots: JobInsertSnapshot[] = [];
    let refused: { index: number; error: unknown } | null = null;
    for (const [index, item] of items.entries()) {
      try {
        snapshots.push(this.#snapshot(item.job, item.payload, item.options ?? {}));
      } catch (error) {
        refused = { index, error };
        break;
      }
    }
    const inserts: JobInsert[] = [];
    for (const [index, snapshot] of snapshots.entries()) {
      try {
        inserts.push(await this.#complete(snapshot, now));
      } catch (error) {
        throw atItem(error, index);
      }
    }
    if (refused) throw atItem(refused.error, refused.index);
    if (inserts.length === 0) return [];
    return this.#write(inserts, tx, now);
  }

  /**
   * The writes of this process that may hand their job off (see {@link Enqueuer.#write}) in flight now, settled
   * (null when none): a job handed to this process's worker starts after them, so its `job:enqueued` comes first.
   */
  settled(): Promise<void> | null {
    return this.#inFlight.settled();
  }

  /**
   * Writes validated inserts and announces them. A lone unkeyed job outside an application's transaction, whichever
   * call enqueued it, may be handed to an idle worker by its own statement (PostgreSQL): such a write is tracked
   * until its reply, so a job handed to this process's worker starts after its `job:enqueued`.
   */
  #write(inserts: JobInsert[], tx: unknown, now: Date | null): Promise<EnqueueResult[]> {
    const write = this.#insert(inserts, tx, now).then((results) => {
      this.#afterInsert(results, tx !== undefined);
      return results.map(toResult);
    });
    const mayHandOff = tx === undefined && inserts.length === 1 && inserts[0]!.key === null && this.#deps.driver.capabilities.handoff;
    return mayHandOff ? this.#inFlight.track(write) : write;
  }

  /** Inserts through the driver at `now` (the clock's, or null for database time), in producer spans when tracing. */
  #insert(jobs: JobInsert[], tx: unknown, now: Date | null): Promise<JobInsertResult[]> {
    const { driver, tracer } = this.#deps;
    const insert = () => driver.jobInsertMany({ jobs, now, tx });
    return tracer ? tracer.publish(jobs, insert) : insert();
  }

  /** One job's options checked and its payload and run time taken as they are now (`snapshotJobInsert`). */
  #snapshot(job: JobDefinition<any, any> | string, payload: unknown, options: EnqueueItem['options'] & object): JobInsertSnapshot {
    return snapshotJobInsert(this.#resolveJob(job), payload, options, this.#deps.payloadLimit);
  }

  /**
   * Validates one job and finishes its insert. `now` is the time the insert will be written at: when the clock (not
   * the database) decides it, the run time a `delay` gives is known here and checked too.
   */
  async #complete(snapshot: JobInsertSnapshot, now: Date | null): Promise<JobInsert> {
    const insert = await completeJobInsert(snapshot);
    assertInsertTimesInRange(insert, now);
    return insert;
  }

  #resolveJob(job: JobDefinition<any, any> | string): JobDefinition<any, any> {
    const { registry } = this.#deps;
    if (typeof job === 'string') {
      const def = registry.get(job);
      if (!def) throw new UnknownJobError(job, [...registry.keys()]);
      return def;
    }
    if (typeof job !== 'object' || job === null || typeof job.name !== 'string') throw new InvalidOptionError('job', job, 'a job made with defineJob() or a registered job name');
    const registered = registry.get(job.name);
    if (registered && registered !== job) throw new InvalidOptionError('job', job.name, 'the same definition object that was registered under this name');
    return job;
  }

  #afterInsert(results: JobInsertResult[], inUserTx: boolean): void {
    const queues = new Set<string>();
    for (const { job, duplicate, replaced } of results) {
      // Handed to an idle worker: inserted running under its lease, nothing left for a claim to find.
      const handedTo = !duplicate && job.state === 'running' && job.leaseWorker ? job.leaseWorker : undefined;
      this.#deps.events.emit('job:enqueued', { job: { id: job.id, name: job.name, queue: job.queue }, duplicate, replaced, runAt: job.runAt, inTransaction: inUserTx, ...(handedTo ? { handedTo } : {}) });
      if ((!duplicate || replaced) && !handedTo) queues.add(job.queue);
    }
    // Inside the caller's transaction the jobs are not visible yet; the worker finds them by notification
    // (PostgreSQL, delivered at commit) or by polling.
    if (!inUserTx) for (const q of queues) this.#deps.onQueueReady(q);
  }
}

/**
 * Refuses an `enqueueMany` item that is not `{ job, payload, options? }`, naming its position. A `tx` in an item's
 * options is refused, not ignored: the items share one transaction, `enqueueMany`'s own `tx`, and a per-item one
 * would be written outside the application's transaction (PostgreSQL: surviving its rollback) or wait on its lock
 * (SQLite).
 * @throws InvalidOptionError
 */
function checkItem(item: unknown, index: number): asserts item is EnqueueItem {
  if (!isOptionsObject(item)) throw new InvalidOptionError(`items[${index}]`, item, 'an object { job, payload, options? }');
  // Run per item of a bulk enqueue: the field's name is built only for an error.
  const itemKey = unknownKey(item, ITEM_KEYS);
  if (itemKey !== undefined) throw unknownKeyError(`items[${index}]`, itemKey, ITEM_KEYS);
  const { options } = item as { options?: unknown };
  if (options === undefined) return;
  if (!isOptionsObject(options)) throw new InvalidOptionError(`items[${index}].options`, options, 'an object of enqueue options (without tx), or left out');
  const { tx } = options as { tx?: unknown };
  if (tx !== undefined) {
    throw new InvalidOptionError(`items[${index}].options.tx`, tx, 'left out: every item is written in one transaction, so pass it once as enqueueMany(items, { tx })');
  }
  // `tx` is known here only to be refused above with its own reason.
  const optionKey = unknownKey(options, ENQUEUE_OPTION_KEYS);
  if (optionKey !== undefined) throw unknownKeyError(`items[${index}].options`, optionKey, ENQUEUE_OPTION_KEYS);
}

/** `error` of `enqueueMany`'s item `index`, its message prefixed with the item's position. */
function atItem(error: unknown, index: number): unknown {
  if (error instanceof Error) error.message = `items[${index}]: ${error.message}`;
  return error;
}

function toResult(r: JobInsertResult): EnqueueResult {
  return { id: r.job.id, duplicate: r.duplicate, replaced: r.replaced, job: r.job };
}
