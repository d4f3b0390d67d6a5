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
import { buildJobInsert } from '../job/build-job-insert.js';
import type { JobDefinition } from '../job/define-job.js';
import type { JobTracer } from '../observe/job-tracer.js';
import { EnqueuesInFlight } from '../runtime/enqueues-in-flight.js';
import type { EnqueueOptions, EnqueueResult } from './warden-options.js';

/** One item of `Warden.enqueueMany`. */
export interface EnqueueItem {
  job: JobDefinition<any, any> | string;
  payload: unknown;
  options?: Omit<EnqueueOptions, 'tx'>;
}

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
    const [result] = await this.#write([await this.#prepare({ job, payload, options })], options.tx);
    return result!;
  }

  /** Many jobs in one transaction; see `Warden.enqueueMany`. */
  async enqueueMany(items: EnqueueItem[], options: { tx?: unknown } = {}): Promise<EnqueueResult[]> {
    if (!Array.isArray(items)) throw new InvalidOptionError('enqueueMany(items)', items, 'an array');
    const inserts: JobInsert[] = [];
    for (const [index, item] of items.entries()) {
      try {
        inserts.push(await this.#prepare({ job: item.job, payload: item.payload, options: item.options ?? {} }));
      } catch (error) {
        if (error instanceof Error) error.message = `items[${index}]: ${error.message}`;
        throw error;
      }
    }
    if (inserts.length === 0) return [];
    return this.#write(inserts, options.tx);
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
  #write(inserts: JobInsert[], tx: unknown): Promise<EnqueueResult[]> {
    const write = this.#insert(inserts, tx).then((results) => {
      this.#afterInsert(results, tx !== undefined);
      return results.map(toResult);
    });
    const mayHandOff = tx === undefined && inserts.length === 1 && inserts[0]!.key === null && this.#deps.driver.capabilities.handoff;
    return mayHandOff ? this.#inFlight.track(write) : write;
  }

  /** Inserts through the driver, inside one producer span per job when tracing is active. */
  #insert(jobs: JobInsert[], tx: unknown): Promise<JobInsertResult[]> {
    const { driver, clock, tracer } = this.#deps;
    const insert = () => driver.jobInsertMany({ jobs, now: clock.sqlNow(), tx });
    return tracer ? tracer.publish(jobs, insert) : insert();
  }

  #prepare(item: EnqueueItem): Promise<JobInsert> {
    return buildJobInsert(this.#resolveJob(item.job), item.payload, item.options ?? {}, this.#deps.payloadLimit);
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

function toResult(r: JobInsertResult): EnqueueResult {
  return { id: r.job.id, duplicate: r.duplicate, replaced: r.replaced, job: r.job };
}
