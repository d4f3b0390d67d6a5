/**
 * The seam every benchmarked system implements: an isolated store per repetition, a producer used by the
 * benchmark process, and a worker started inside a child process. Workloads only talk to this interface, so
 * each system gets exactly the same job count, concurrency, payloads and no-op counting handler.
 * @module
 */
import type { SystemName, WorkloadId } from '../settings.js';

/** A job's payload in every system: its index in the run, and (W3) the enqueue time on the shared clock. */
export interface BenchPayload {
  i: number;
  t?: number;
}

/**
 * Where one repetition's isolated store lives. Plain JSON: it is sent to worker children.
 * `url` is a PostgreSQL database (created for the repetition) or an SQLite file; `prefix` a Redis key prefix.
 */
export interface StoreTarget {
  system: SystemName;
  url: string;
  prefix: string;
  queue: string;
  /** System-specific settings the workers need (e.g. the raw ceiling's batch size). */
  options: Record<string, number | string | boolean>;
}

/** The benchmark process's handle for enqueueing and checking progress. */
export interface Producer {
  /** Enqueues the payloads with the system's fastest bulk call (one call per chunk). */
  enqueueBulk(payloads: BenchPayload[]): Promise<void>;
  /** One awaited single enqueue, as an application would do per request. */
  enqueueOne(payload: BenchPayload): Promise<void>;
  /** Jobs enqueued but not yet recorded as completed by the system (queued, running, or awaiting completion). */
  remaining(): Promise<number>;
  /** W6: entries in the system's audit trail, for systems that have one. */
  auditEntries?(): Promise<number>;
  close(): Promise<void>;
}

/** A running worker inside a child process. */
export interface RunningWorker {
  /** Stops gracefully, letting in-flight jobs finish and their completions be written. */
  stop(): Promise<void>;
}

/** What a worker child is asked to run. */
export interface WorkerSpec {
  concurrency: number;
  /** The no-op handler: counts the job. Called once per execution, at the start of the handler. */
  onJob(payload: BenchPayload): void;
}

/** One benchmarked system. */
export interface BenchSystem {
  name: SystemName;
  /** How the report names it, with version. */
  label: string;
  /** How it is driven and tuned, for the report's settings section. */
  describe: string;
  /** The workloads it takes part in; the others are reported as not applicable with `notApplicable`'s reason. */
  workloads: readonly WorkloadId[];
  notApplicable?: Partial<Record<WorkloadId, string>>;
  /** Whether it has an audit trail W6 can switch on (`StoreTarget.options.audit`); the others run W6 as W1. */
  supportsAudit?: boolean;
  /** Creates a fresh store (database, file or key prefix) with the system's schema installed. */
  prepare(id: string): Promise<StoreTarget>;
  /** Removes everything `prepare` and the run created. */
  destroy(target: StoreTarget): Promise<void>;
  producer(target: StoreTarget): Promise<Producer>;
  /** Starts a worker; called in a child process. */
  startWorker(target: StoreTarget, spec: WorkerSpec): Promise<RunningWorker>;
  /** W5: inserts `count` jobs in their finished state, as a long-running deployment retains them. */
  seedFinished?(target: StoreTarget, count: number): Promise<void>;
}
