/**
 * The recording side of the audit trail: a service that turns events into entries (`audit-events.ts`), redacts
 * them, and appends them in batches ("group commit", like the completer): while one append transaction is in
 * flight, new entries queue and go in the next one, so under load one transaction carries hundreds of entries
 * and the per-chain serialization costs little.
 *
 * Crash window: an event is emitted after its state change committed, and its entry is written a moment later;
 * a process killed in between loses those entries (the job rows stay the source of truth). Operator actions wait
 * for their entry to be written before returning (see {@link AuditTrail.barrier}), so an operator is never told
 * "done" for an unrecorded action.
 * @module
 */
import type { Clock } from '../clock/clock.js';
import type { AuditBatchRef, AuditEntry, AuditEntryInput } from '../driver/audit-params.js';
import type { Driver } from '../driver/driver.js';
import { AuditAppendUnconfirmedError, AuditWriteError } from '../errors.js';
import type { TypedEmitter } from '../events/typed-emitter.js';
import type { AuditLevel, JobDefinition } from '../job/define-job.js';
import type { ErrorInfo } from '../job/job-record.js';
import { collectSensitiveValues, redact, REDACTED, redactText } from '../observe/redact.js';
import { Service } from '../runtime/service.js';
import type { ScheduleDefinition } from '../schedule/define-schedule.js';
import { type AuditEvent, subscribeAuditEvents } from './audit-events.js';
import type { ResolvedAuditOptions } from './audit-options.js';

/** Failures of a single entry, written alone, before a non-transient error makes the trail give up on it. */
const MAX_SINGLE_FAILURES = 3;
/** Longest error message kept in an entry. */
const MAX_MESSAGE = 2_000;

/**
 * A {@link AuditTrail.barrier} waiting for the entry numbered `seq` (entries are numbered in the order queued) to
 * be written or given up on.
 */
interface Waiter {
  seq: number;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/** What {@link AuditTrail} works with. */
export interface AuditTrailDeps {
  driver: Driver;
  clock: Clock;
  events: TypedEmitter;
  /** The registered job definitions (levels and `sensitive` fields), by name. */
  jobs: ReadonlyMap<string, JobDefinition<any, any>>;
  /** The registered schedules, by name. */
  schedules: ReadonlyMap<string, ScheduleDefinition>;
  options: ResolvedAuditOptions;
}

/**
 * Records events to the audit chain. `start()` subscribes, `stop()` unsubscribes and flushes (retrying for up to
 * `flushTimeout` while the database is unreachable, then giving up on what is left with an `error` event).
 */
export class AuditTrail extends Service {
  readonly #deps: AuditTrailDeps;
  readonly #options: ResolvedAuditOptions;
  /**
   * Entries not yet written, oldest first; `#queue[0]` is entry number `#firstSeq`. No promise per entry: with the
   * full trail on there are two or three entries a job, and a promise with its resolvers each was most of what
   * recording one allocated. Only {@link AuditTrail.barrier} waits, on {@link Waiter}s.
   */
  #queue: (AuditEntryInput | Promise<AuditEntryInput>)[] = [];
  #firstSeq = 1;
  /** Barriers waiting, in increasing `seq`. */
  #waiters: Waiter[] = [];
  #flushing: Promise<void> | null = null;
  /** Aborted when stop()'s deadline passes: failed writes are then given up instead of retried. */
  #giveUp = new AbortController();
  /** Why the newest entry was dropped at once (backlog full) rather than queued; null when it was queued. */
  #lastDropped: AuditWriteError | null = null;
  #written = 0;
  #dropped = 0;
  /**
   * The batches whose append failed after they were sent and which may still be in the chain: every attempt at the
   * entries at the head of the queue since the last append known to have landed, each holding the first `count` of
   * them. All were sealed at one first seq, onto one head, so at most one of them is (or will be) written; the
   * next append passes them all as `retryOf` and learns which one. Not just the newest: an attempt that was still
   * waiting on the server when its connection dropped can commit after a later one was lost.
   */
  #unconfirmed: UnconfirmedBatch[] = [];

  constructor(deps: AuditTrailDeps) {
    super();
    this.#deps = deps;
    this.#options = deps.options;
  }

  /** The chain this trail appends to. */
  get chain(): string {
    return this.#options.chain;
  }

  /** Entries queued and not yet written. */
  get pending(): number {
    return this.#queue.length;
  }

  /** Entries written by this trail. */
  get written(): number {
    return this.#written;
  }

  /** Entries given up on (backlog full, refused by the database, or unwritten at stop). */
  get dropped(): number {
    return this.#dropped;
  }

  /**
   * Resolves once every entry queued so far is written or given up on. Rejects with {@link AuditWriteError} when
   * the newest of them was dropped or given up on (earlier ones are reported as `error` events when it happens), or
   * when that takes longer than `flushTimeout` (the entries stay queued). Operator actions await this right after
   * emitting their event, whose listener queued the entry synchronously: the newest entry is theirs.
   */
  barrier(): Promise<void> {
    if (this.#lastDropped) return Promise.reject(this.#lastDropped);
    if (this.#queue.length === 0) return Promise.resolve();
    const seq = this.#firstSeq + this.#queue.length - 1;
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        seq,
        resolve: () => {
          cancel();
          resolve();
        },
        reject: (error) => {
          cancel();
          reject(error);
        },
      };
      const cancel = this.#deps.clock.setTimer(this.#options.flushTimeoutMs, () => {
        const at = this.#waiters.indexOf(waiter);
        if (at >= 0) this.#waiters.splice(at, 1);
        reject(new AuditWriteError(`no write within ${this.#options.flushTimeoutMs}ms; the entries stay queued`));
      });
      this.#waiters.push(waiter);
    });
  }

  /**
   * Queues one entry (see `audit-events.ts`); entries are written in the order queued. A full backlog drops it,
   * reported through an `error` event (and to the next {@link AuditTrail.barrier}).
   */
  record(event: AuditEvent): void {
    if (this.#queue.length >= this.#options.maxPending) {
      this.#dropped++;
      this.#lastDropped = new AuditWriteError(`a full backlog (${this.#options.maxPending} entries waiting); dropped ${event.input.action} of ${event.input.subjectKind} ${event.input.subjectId}`);
      this.#deps.events.emit('error', { error: this.#lastDropped, context: 'audit trail' });
      return;
    }
    this.#queue.push(this.#prepare(event));
    this.#lastDropped = null;
    this.#flushing ??= this.#flushLoop();
  }

  /** Settles the barriers waiting for entries before number `#firstSeq` (written, or given up on with `error`). */
  #settleWaiters(error: unknown = null): void {
    let n = 0;
    while (n < this.#waiters.length && this.#waiters[n]!.seq < this.#firstSeq) n++;
    for (const waiter of this.#waiters.splice(0, n)) {
      if (error === null) waiter.resolve();
      else waiter.reject(error);
    }
  }

  protected async run(signal: AbortSignal): Promise<void> {
    this.#giveUp = new AbortController();
    const { options, jobs, schedules } = this.#deps;
    // Subscribed synchronously, before the first await: start() returns with every listener in place.
    const unsubscribe = subscribeAuditEvents(this.#deps.events, {
      systemActor: options.actor,
      levelOf: (name: string | null): AuditLevel => options.level ?? (name === null ? undefined : jobs.get(name)?.audit) ?? options.unknownJobLevel,
      scheduleJob: (name) => {
        const def = schedules.get(name);
        return def ? { name: def.job.name, queue: def.queue } : null;
      },
      record: (event) => this.record(event),
    });
    await new Promise<void>((resolve) => {
      if (signal.aborted) resolve();
      else signal.addEventListener('abort', () => resolve(), { once: true });
    });
    unsubscribe();
    const cancel = this.#deps.clock.setTimer(options.flushTimeoutMs, () => this.#giveUp.abort());
    try {
      while (this.#flushing) await this.#flushing;
    } finally {
      cancel();
    }
  }

  protected onCrash(error: unknown): void {
    this.#deps.events.emit('error', { error, context: 'audit trail' });
  }

  /**
   * The entry as it will be stored: `data` (with the error's name and message) redacted by the job's `sensitive`
   * fields. Key redaction cannot see a secret copied into an error message, so for a job with sensitive fields the
   * message is also scrubbed of the payload's sensitive values, read from the job row (or replaced entirely when
   * the row cannot be read). Never rejects.
   */
  #prepare(event: AuditEvent): AuditEntryInput | Promise<AuditEntryInput> {
    const sensitive = event.job ? (this.#deps.jobs.get(event.job.name)?.sensitive ?? []) : [];
    const { input, error } = event;
    if (!error) return sensitive.length === 0 || input.data === null ? input : { ...input, data: redact(input.data, sensitive) as Record<string, unknown> };
    const info = { name: error.name.slice(0, 200), message: error.message.slice(0, MAX_MESSAGE) };
    const withError = (e: Pick<ErrorInfo, 'name' | 'message'>): AuditEntryInput => ({ ...input, data: redact({ ...input.data, error: e }, sensitive) as Record<string, unknown> });
    if (sensitive.length === 0) return withError(info);
    return this.#deps.driver.jobGet({ id: event.job!.id }).then(
      (row) => withError({ name: info.name, message: row ? redactText(info.message, collectSensitiveValues(row.payload, sensitive)) : REDACTED }),
      () => withError({ name: info.name, message: REDACTED }),
    );
  }

  async #flushLoop(): Promise<void> {
    const { driver, clock, events } = this.#deps;
    try {
      // Yield once so entries produced in the same tick share the first batch.
      await new Promise<void>((resolve) => setImmediate(resolve));
      let failures = 0;
      // After a failed batch, entries are written one at a time until one succeeds, so a single entry the
      // database refuses cannot hold back the others.
      let isolate = false;
      while (this.#queue.length > 0) {
        const batch = this.#queue.slice(0, isolate ? 1 : this.#options.maxBatch);
        try {
          // Most entries are ready; Promise.all would still wrap each in a promise of its own.
          const entries = batch.some(isPromise) ? await Promise.all(batch) : (batch as AuditEntryInput[]);
          const unconfirmed = this.#unconfirmed;
          const appended = await driver.auditAppend({ chain: this.#options.chain, entries, now: clock.sqlNow(), retryOf: unconfirmed });
          // Landed: one of the attempts in doubt (returned as stored; this batch was not written), or this batch,
          // sealed at or after their seq, so none of them can land any more.
          this.#unconfirmed = [];
          const done = landedAttempt(unconfirmed, appended)?.count ?? batch.length;
          this.#shift(done);
          this.#written += done;
          failures = 0;
          isolate = false;
          this.#settleWaiters();
        } catch (error) {
          events.emit('error', { error, context: 'audit trail append' });
          // Sent and unacknowledged: the next append (of these entries, or of the first alone) asks for it too.
          if (error instanceof AuditAppendUnconfirmedError) this.#unconfirmed = inDoubt(this.#unconfirmed, { firstSeq: error.firstSeq, lastHash: error.lastHash, count: batch.length });
          if (this.#giveUp.signal.aborted) {
            this.#giveUpOn(this.#queue.length, error);
            break;
          }
          failures += 1;
          if (batch.length > 1) {
            isolate = true;
            continue;
          }
          if (failures >= MAX_SINGLE_FAILURES && !driver.isTransientError(error instanceof AuditAppendUnconfirmedError ? error.cause : error)) {
            this.#giveUpOn(1, error);
            failures = 0;
            continue;
          }
          await clock.sleep(Math.min(5_000, 50 * 2 ** Math.min(failures, 7)), this.#giveUp.signal);
        }
      }
    } finally {
      this.#flushing = null;
    }
  }

  /** Removes the `count` oldest entries from the queue. */
  #shift(count: number): void {
    this.#queue.splice(0, count);
    this.#firstSeq += count;
  }

  /** Gives up on the `count` oldest entries: counted as dropped, reported, and any barrier waiting for them rejected. */
  #giveUpOn(count: number, cause: unknown): void {
    if (count === 0) return;
    // The batches in doubt start at the queue's head: what is left of one, if it turns out written, is counted so.
    // One left with nothing is forgotten: if it lands after all, the next append is sealed after it.
    this.#unconfirmed = this.#unconfirmed.flatMap((b) => (b.count > count ? [{ ...b, count: b.count - count }] : []));
    this.#shift(count);
    this.#dropped += count;
    const error = new AuditWriteError(`${count} entr${count === 1 ? 'y' : 'ies'} given up on: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.#deps.events.emit('error', { error, context: 'audit trail' });
    this.#settleWaiters(error);
  }
}

function isPromise(value: AuditEntryInput | Promise<AuditEntryInput>): value is Promise<AuditEntryInput> {
  return value instanceof Promise;
}

/** A batch whose append was not confirmed: where it was sealed, and how many entries at the queue's head it holds. */
interface UnconfirmedBatch extends AuditBatchRef {
  count: number;
}

/**
 * The attempts in doubt once `sent` is unconfirmed too. The driver throws that only after sealing, and seals at the
 * seq of the attempts before only while none of them has landed (the head is still the one they were sealed onto):
 * then `sent` is one more of them. Sealed later, it found them all not written, for good.
 */
function inDoubt(before: UnconfirmedBatch[], sent: UnconfirmedBatch): UnconfirmedBatch[] {
  if (before[0]?.firstSeq !== sent.firstSeq) return [sent];
  return before.some((b) => b.lastHash === sent.lastHash) ? before : [...before, sent];
}

/**
 * Which of the attempts in doubt an append's result is: the driver returns the one in the chain as stored, and
 * writes nothing. A batch written afresh has the same first seq and last hash only if it was sealed exactly like
 * that attempt (same entries, same time): the same entries are in the chain either way. (An attempt counts fewer
 * entries than it was sealed with only after some were given up on, which happens one entry a batch, so a fresh
 * batch then is shorter than any attempt it could be taken for.)
 */
function landedAttempt(attempts: UnconfirmedBatch[], appended: AuditEntry[]): UnconfirmedBatch | undefined {
  const first = appended[0]?.seq;
  const last = appended.at(-1)?.hash;
  return attempts.find((b) => b.firstSeq === first && b.lastHash === last);
}
