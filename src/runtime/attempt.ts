import type { Logger } from 'pino';
import { type Clock, type ClockMark, elapsedSince, markClock } from '../clock/clock.js';
import type { Driver, GuardedWriteResult, JobFinish } from '../driver/driver.js';
import { AttemptEndedError, JobTimeoutError, LeaseLostError, NonRetryableError, PayloadValidationError, UnknownJobError } from '../errors.js';
import type { JobRef } from '../events/event-map.js';
import type { TypedEmitter } from '../events/typed-emitter.js';
import type { JobContext, JobDefinition } from '../job/define-job.js';
import type { TransactionHandle } from '../job/job-context-options.js';
import type { AttemptOutcome, ErrorInfo, JobRow } from '../job/job-record.js';
import { validateWithSchema } from '../job/payload.js';
import { DEFAULT_RETRY, retryDelayMs } from '../job/retry-policy.js';
import type { JobTracer, ProcessSpan } from '../observe/job-tracer.js';
import { createRedactor, type Redactor } from '../observe/redact.js';
import { type Completer, endingRecorded } from './completer.js';
import { isError, toErrorInfo } from './error-info.js';
import { createJobContext } from './job-context.js';
import { type AfterBody, JobTransaction } from './job-transaction.js';
import { settledUnlessAborted } from './settled-unless-aborted.js';

/** What every attempt needs from its worker. */
export interface AttemptDeps {
  driver: Driver;
  clock: Clock;
  events: TypedEmitter;
  logger: Logger;
  registry: ReadonlyMap<string, JobDefinition<any, any>>;
  completer: Completer;
  random: () => number;
  workerId: string;
  /** The byte limit of step results and checkpoints (the payload limit). */
  payloadLimit: number;
  /** Aborted when the worker begins shutting down: iterations hand over at their next batch boundary. */
  draining: AbortSignal;
  /** Counts writes rejected because the lease was no longer held. */
  onStaleWrite: () => void;
  /** Creates each attempt's consumer span; absent or null: no tracing. */
  tracer?: JobTracer | null;
  /** Called once per attempt when its handler settled (or will never run): the worker's slot is free again. */
  onHandlerSettled: (attempt: Attempt) => void;
  /** Called once per attempt when {@link Attempt.run} is about to resolve: its ending is written or given up on. */
  onSettled: (attempt: Attempt) => void;
  /**
   * Called when the attempt stops holding its lease, which can be before {@link Attempt.run} settles (a handler that
   * ignores its signal after its timeout's ending was written): its ending written, refused as stale or given up
   * on, or its lease found lost. May be called more than once.
   */
  onLeaseReleased: (attempt: Attempt) => void;
}

/** Why an iteration handed over to a fresh attempt. */
export type YieldReason = 'max-runtime' | 'shutdown';

/**
 * One attempt of one claimed job: validates the payload, runs the handler with a timeout and an abort
 * signal, and submits exactly one ending. The ending can come from the handler, the timeout, the loss of the
 * lease, shutdown, `ctx.transaction` (inside the application's transaction) or an iteration handing over —
 * whichever is first wins (`done`), and the rest are ignored.
 */
export class Attempt {
  readonly row: JobRow;
  /** True once an ending was submitted or the lease is known lost: nothing more is written for this attempt. */
  done = false;
  /**
   * Its ending could not be written and was given up on: the job stays `running` under this lease until it expires
   * and is rescued (a `lost` attempt). The worker must not hand such a job back as never received.
   */
  endingGivenUp = false;
  /** Set by the worker once it counted this attempt's lease released ({@link AttemptDeps.onLeaseReleased}). */
  leaseReleased = false;
  readonly deps: AttemptDeps;
  /**
   * When the attempt started, by the injected clock. Its duration (`durationMs` of its events, an iteration's
   * `maxRuntime`) is measured from it with {@link elapsedSince}: a wall clock stepped back meanwhile neither makes it
   * negative nor stretches it by the step.
   */
  readonly started: ClockMark;
  /** Set by an iteration that saved its checkpoint and hands over: the attempt ends as `yielded`. */
  yieldRequest: { reason: YieldReason; done: number } | null = null;
  /**
   * Set by a transactional iteration: the transaction its last batch joined (another call opened it), holding that
   * batch's writes and checkpoint, while it was not known to have committed when the iteration went on. Should it roll
   * back, the attempt must not complete, though its handler returned (it may have caught the failure of that
   * transaction's opener): its items would never be processed.
   */
  batchTransaction: JobTransaction | null = null;
  /**
   * The transaction the job context has open (`ctx.transaction`, a transactional step or batch). Job-context
   * writes made meanwhile go through it: on SQLite the driver's own connection could not write while it is
   * open, and on PostgreSQL they then commit or roll back with it. Transactional steps and batches started
   * meanwhile join it (see {@link Attempt.inTransaction}). Set once its BEGIN returned.
   */
  #activeTx: JobTransaction | null = null;
  /**
   * The transaction a transactional call is opening, from the call until its BEGIN returned (then it is
   * {@link Attempt.#activeTx}): calls made meanwhile join it, so that the job context never has two transactions
   * taking calls at once (see {@link Attempt.joinableTransaction}). Job-context writes meanwhile go as if it were not.
   */
  #opening: JobTransaction | null = null;

  /** Whether `deps.onHandlerSettled` was called. */
  #handlerDone = false;
  /** Whether the handler's promise settled: steps called from then on are refused (see {@link Attempt.trackStep}). */
  #handlerReturned = false;
  #controller: AbortController | null = null;
  /** This attempt's consumer span, when tracing is active. */
  #span: ProcessSpan | null = null;
  /** undefined until first needed; null when the job has no sensitive fields. */
  #redactor: Redactor | null | undefined;
  /**
   * Job-context writes in flight (step records, checkpoints), made on first use. The ending waits for them: a
   * handler that rejects early (`Promise.all` of steps, one of which failed) must not end the attempt under a step
   * whose function succeeded and whose record is on its way, or the record arrives stale and the step runs again.
   */
  #writes: Set<Promise<GuardedWriteResult>> | null = null;
  /**
   * Steps called while the handler ran and not yet settled (function and record), made on first use. The ending
   * waits for them too: a step whose function is still running when the handler rejects (`Promise.all`, a sibling
   * step failed) would otherwise succeed after the ending, its record refused, and run again on the next attempt.
   */
  #steps: Set<Promise<unknown>> | null = null;
  /**
   * The submitted ending while it is being written, whoever submitted it; null before and once written. The timeout
   * and shutdown submit theirs beside {@link Attempt.run}, which waits for it (see its `finally`).
   */
  #ending: Promise<boolean> | null = null;

  /** `deps` is shared by all of a worker's attempts: per-attempt callbacks would cost closures on every job. */
  constructor(row: JobRow, deps: AttemptDeps) {
    this.row = row;
    this.deps = deps;
    this.started = markClock(deps.clock);
  }

  /**
   * Aborts the handler (`ctx.signal`): timeout, lost lease, shutdown. Made on first use, since most attempts of
   * most jobs never abort nor read their signal; an abort before the signal is read still reaches it.
   */
  get controller(): AbortController {
    return (this.#controller ??= new AbortController());
  }

  /**
   * Redaction for this job (its definition's `sensitive` fields, the secrets in its payload), or null when it
   * has none. Used for `ctx.log` and for every error stored or announced.
   */
  get redactor(): Redactor | null {
    if (this.#redactor === undefined) this.#redactor = createRedactor(this.deps.registry.get(this.row.name)?.sensitive, this.row.payload);
    return this.#redactor;
  }

  /** The storable, redacted description of a thrown value. */
  errorInfo(error: unknown): ErrorInfo {
    const redactor = this.redactor;
    if (!redactor) return toErrorInfo(error);
    // A thrown non-Error is serialized whole into the message: redact its keys first. Its texts are redacted
    // inside toErrorInfo, before they are cut to length: redacting the cut text would miss a secret straddling
    // the cut and keep its first characters.
    // isError, not instanceof: an Error from another realm would lose its message and stack to the deep copy.
    return toErrorInfo(isError(error) ? error : redactor.value(error), redactor.text);
  }

  #endSpan(outcome: AttemptOutcome | 'stale', error: ErrorInfo | null, nextState: string | null): void {
    if (this.#span) this.deps.tracer?.endProcess(this.#span, outcome, error, nextState);
  }

  #handlerSettled(): void {
    if (this.#handlerDone) return;
    this.#handlerDone = true;
    this.deps.onHandlerSettled(this);
  }

  /**
   * Runs the attempt to its end: settles once its ending, whoever submitted it (the handler's path, the timeout,
   * shutdown), is written or given up on. Never rejects.
   */
  async run(): Promise<void> {
    const { events, workerId } = this.deps;
    const row = this.row;
    // Usually nobody listens (the audit trail and heartbeat pings do): skip building the payload then.
    if (events.has('job:started')) events.emit('job:started', { job: ref(row), attempt: row.attempt, leaseToken: row.leaseToken, workerId });
    // Whether the handler asked not to be retried; outside the try, so that the fallback ending keeps it.
    let nonRetryable = false;
    // One async function for the whole attempt (not a nested one): a promise and an await less per job.
    try {
      this.#span = this.deps.tracer?.startProcess(row, workerId) ?? null;
      const { registry } = this.deps;
      const def = registry.get(row.name);
      if (!def) {
        this.#handlerSettled();
        // Another version of the application may know this job; retry rather than dead-letter.
        await this.fail('failed', new UnknownJobError(row.name, [...registry.keys()]), false);
        return;
      }
      let payload: unknown = row.payload;
      if (def.schema) {
        const outcome = await validateWithSchema(def.schema, row.payload);
        if (!outcome.ok) {
          this.#handlerSettled();
          // A stored payload that no longer validates will never validate: dead-letter it with the issues.
          await this.end('invalid', 'dead', 0, this.errorInfo(new PayloadValidationError(row.name, outcome.issues)));
          return;
        }
        payload = outcome.value;
      }
      const cancelTimeout = def.timeoutMs === null ? null : this.#startTimeout(def.timeoutMs);
      let threw = false;
      let error: unknown;
      try {
        const ctx = createJobContext(this);
        await (this.#span ? this.#handleInSpan(this.#span, def, payload, ctx) : def.handler(payload, ctx));
      } catch (thrown) {
        threw = true;
        error = thrown;
        // Decided before anything that can throw: a fallback ending must not retry what the handler said not to.
        nonRetryable = isNonRetryable(thrown);
      }
      this.#handlerReturned = true;
      // Steps it called and left running are still its work: its slot stays taken until they settle.
      if (this.#steps !== null) await this.#stepsSettled();
      this.#handlerSettled();
      // The timeout still bounds the wait for writes in flight: one that never answers ends the attempt as a timeout.
      if (this.#writes !== null && this.#writes.size > 0) await this.#writesSettled();
      cancelTimeout?.();
      // Settled by now: its opener is a step, which the wait above covered (unless the attempt was aborted, which
      // submitted its own ending), or ctx.transaction, which the handler awaits (whose committed completion won).
      const batchOutcome = this.batchTransaction?.outcome;
      // An iteration that handed over throws to unwind the handler; that is not a failure.
      if (this.yieldRequest) await this.#endYielded();
      else if (threw) await this.fail('failed', error, nonRetryable);
      else if (batchOutcome?.committed === false) await this.fail('failed', batchOutcome.error, isNonRetryable(batchOutcome.error));
      else await this.end('completed', 'completed', 0, null);
    } catch (error) {
      // Something outside the handler threw (a schema's validator, a tracer): the attempt still gets its ending, a
      // retryable failure (a validator that throws may work next time), instead of the job staying `running` until
      // its lease expires and this promise rejecting unhandled in the worker. A NonRetryableError from the handler
      // is still dead-lettered.
      await this.#endAfterCrash(error, nonRetryable);
    } finally {
      // The timeout or shutdown may have submitted the ending, and a handler honouring ctx.signal rejects at once:
      // until that ending is written (or given up on) the attempt is in flight (heartbeats, shutdown and running a
      // job lost before alone rely on it), and its span waits for the real outcome. Its submitter reports a failure.
      const pending = this.#ending;
      if (pending !== null) await pending.catch(noop);
      // Endings that were never applied (the lease was lost) leave the span open until here.
      this.#endSpan('stale', null, null);
      // Whatever threw before the handler ran (a tracer, say), the slot and the in-flight entry are given back.
      this.#handlerSettled();
      this.deps.onSettled(this);
    }
  }

  /**
   * {@link Attempt.run}'s fallback ending; never rejects (a failure to end is reported as an `error` event, and so is
   * a throw after the ending was submitted: a listener of the ending's event, say).
   * @param nonRetryable the handler threw a NonRetryableError: the job is dead-lettered, not retried.
   */
  async #endAfterCrash(error: unknown, nonRetryable: boolean): Promise<void> {
    this.#handlerSettled();
    if (this.done) {
      this.deps.events.emit('error', { error, context: `after ending job ${this.row.id}` });
      return;
    }
    try {
      await this.fail('failed', error, nonRetryable);
    } catch (failure) {
      // Not String(error): it throws for a null-prototype object, and this method must not reject.
      const { name, message } = this.errorInfo(error);
      this.deps.events.emit('error', { error: failure, context: `ending job ${this.row.id} after ${name}: ${message}` });
    }
  }

  // The closures of the timeout and the span live in these helpers, not in run(): a closure there would make
  // every run() allocate a context for the variables it captures, timeout or not.
  #startTimeout(timeoutMs: number): () => void {
    return this.deps.clock.setTimer(timeoutMs, () => {
      const error = new JobTimeoutError(this.row.name, timeoutMs);
      this.controller.abort(error);
      // Beside run(), which waits for this ending but leaves reporting its failure to its submitter.
      this.fail('timeout', error, false).catch((failure: unknown) => this.deps.events.emit('error', { error: failure, context: `timing out job ${this.row.id}` }));
    });
  }

  #handleInSpan(span: ProcessSpan, def: JobDefinition<any, any>, payload: unknown, ctx: JobContext): unknown {
    return this.deps.tracer!.runInSpan(span, () => def.handler(payload, ctx));
  }

  /** Ends the attempt as failed: retried by the job's policy, or dead when out of attempts or not retryable. */
  async fail(outcome: AttemptOutcome, error: unknown, nonRetryable: boolean): Promise<void> {
    const row = this.row;
    const policy = this.deps.registry.get(row.name)?.retry ?? DEFAULT_RETRY;
    if (nonRetryable || row.attempt >= row.maxAttempts) {
      await this.end(outcome, 'dead', 0, this.errorInfo(error));
    } else {
      await this.end(outcome, 'retrying', retryDelayMs(policy, row.attempt, this.deps.random), this.errorInfo(error));
    }
  }

  /** Submits this attempt's one ending; true when it was applied. Later calls are ignored (false). */
  end(outcome: AttemptOutcome, state: JobFinish['state'], retryDelayMs: number, error: ErrorInfo | null, extendAttempts = false): Promise<boolean> {
    if (this.done) return Promise.resolve(false);
    this.done = true;
    // Not async itself: the ending's own async function is the one promise per job (see #ending).
    const ending = this.#writeEnding(outcome, state, retryDelayMs, error, extendAttempts);
    this.#ending = ending;
    return ending;
  }

  async #writeEnding(outcome: AttemptOutcome, state: JobFinish['state'], retryDelayMs: number, error: ErrorInfo | null, extendAttempts: boolean): Promise<boolean> {
    const { completer, events } = this.deps;
    const row = this.row;
    try {
      let result: 'applied' | 'stale';
      try {
        result = await completer.finish({ id: row.id, leaseToken: row.leaseToken, outcome, state, retryDelayMs, error, extendAttempts });
      } catch (writeError) {
        // The database stayed unreachable until shutdown: the lease will expire and the job be rescued.
        this.endingGivenUp = true;
        events.emit('error', { error: writeError, context: `finishing job ${row.id}` });
        // Nothing was recorded (the job stays running, to be rescued as lost): the span must not claim the outcome.
        this.#endSpan('stale', null, null);
        return false;
      }
      if (result === 'stale') {
        this.#endSpan('stale', null, null);
        this.deps.onStaleWrite();
        events.emit('job:stale-write-rejected', { jobId: row.id, leaseToken: row.leaseToken, write: 'finish' });
        return false;
      }
      this.#emitEnding(outcome, state, retryDelayMs, error);
      return true;
    } finally {
      // Written, refused or given up on: nothing left for run() to wait for, so its own ending costs it no await.
      this.#ending = null;
      this.deps.onLeaseReleased(this);
    }
  }

  /**
   * A lease-guarded write by the job context (a step record, a checkpoint). Refused before writing when the
   * attempt already ended; a stale result marks the lease lost and throws.
   * @throws AttemptEndedError, LeaseLostError
   */
  async guardedWrite(write: 'step' | 'checkpoint', call: string, fn: () => Promise<GuardedWriteResult>): Promise<void> {
    this.assertRunning(call);
    const pending = fn();
    const writes = (this.#writes ??= new Set());
    writes.add(pending);
    let result: GuardedWriteResult;
    try {
      result = await pending;
    } finally {
      writes.delete(pending);
    }
    if (result === 'stale') throw this.markLost(write);
  }

  /**
   * Settles once the steps the handler left running have (see {@link Attempt.#steps}), or once the attempt ended
   * otherwise: aborted (its timeout, a lost lease, the end of a shutdown's grace), which submits the ending itself,
   * or completed by `ctx.transaction`. A step still running then cannot record.
   */
  async #stepsSettled(): Promise<void> {
    if (this.#steps !== null && this.#steps.size > 0 && !this.done) await settledUnlessAborted(this.#steps, this.controller.signal);
  }

  /** Settles once no job-context write is in flight (see {@link Attempt.#writes}). */
  async #writesSettled(): Promise<void> {
    while (this.#writes !== null && this.#writes.size > 0) await Promise.allSettled([...this.#writes]);
  }

  /**
   * Counts a step called by the handler until `work` (its function and record) settles: the ending waits for it.
   * @throws AttemptEndedError once the handler returned (or threw): a step it did not wait for must not start an
   * effect that nothing waits to record.
   */
  trackStep<T>(call: string, work: () => Promise<T>): Promise<T> {
    if (this.#handlerReturned) throw new AttemptEndedError(this.row.id, `${call} after the handler returned`);
    const pending = work();
    const steps = (this.#steps ??= new Set());
    steps.add(pending);
    const untrack = () => steps.delete(pending);
    pending.then(untrack, untrack);
    return pending;
  }

  /**
   * Throws unless the attempt can still write: the abort reason (timeout, lease lost, shutdown) when it was
   * aborted, else {@link AttemptEndedError} when it already ended.
   */
  assertRunning(call: string): void {
    // Without a controller nothing aborted yet: no need to make one.
    const signal = this.#controller?.signal;
    if (signal?.aborted) throw signal.reason;
    if (this.done) throw new AttemptEndedError(this.row.id, call);
  }

  /** Records that the lease is gone (a guarded write matched no row): stops writes, aborts the handler. */
  markLost(write: 'step' | 'checkpoint' | 'finish'): LeaseLostError {
    const row = this.row;
    const error = new LeaseLostError(row.id, row.leaseToken, 'a lease that expired, was cancelled, or was taken over');
    if (!this.done) {
      this.done = true;
      this.deps.onStaleWrite();
      this.deps.events.emit('job:stale-write-rejected', { jobId: row.id, leaseToken: row.leaseToken, write });
    }
    if (!this.controller.signal.aborted) this.controller.abort(error);
    this.deps.onLeaseReleased(this);
    return error;
  }

  /** The job context's open transaction, if any (see {@link Attempt.inTransaction}). */
  get activeTx(): TransactionHandle | undefined {
    return this.#activeTx?.handle;
  }

  /**
   * Runs `body` (user code) in a transaction, then `after` (Warden's own writes in it: a record, a checkpoint, the
   * completion). When the job context has a transaction open, the call joins it, nested or beside its opener: that
   * transaction then commits or rolls back only once every call that joined it has finished (see
   * {@link JobTransaction}). Otherwise it opens a new one from the driver, open for the job context's writes until it
   * ends. `body` gets a handle usable only while it runs; `after` the transaction's own, and the transaction: a call
   * that joined resolves before that one commits, and only its {@link JobTransaction.outcome} tells it committed.
   * @param holder what `body` belongs to, for errors: `step "charge"`, `ctx.transaction`.
   * @throws TransactionEndedError when `body` uses its handle after it returned or after the transaction ended
   */
  inTransaction<T, R>(holder: string, body: (tx: TransactionHandle) => Promise<T> | T, after: AfterBody<T, R>): Promise<R> {
    const open = this.joinableTransaction;
    if (open !== null) {
      // After ctx.transaction claimed the ending nothing may join: its completion is being written.
      this.assertRunning(holder);
      return open.join(holder, body, after);
    }
    return this.#openTransaction(holder, body, after);
  }

  /**
   * The job-context transaction a transactional call made now joins: the one being opened, else the open one unless
   * it is sealed (about to commit; one bound to roll back refuses the call with its failure); null when the call opens
   * its own (after a sealed one on SQLite, one writer). At most one takes calls at a time: a new one is opened only
   * when none does, and takes calls from that moment. So a transaction that takes calls is the one the next call joins.
   */
  get joinableTransaction(): JobTransaction | null {
    if (this.#opening !== null) return this.#opening;
    const open = this.#activeTx;
    return open !== null && (open.joinable || open.failed) ? open : null;
  }

  /**
   * {@link Attempt.inTransaction} opening a new transaction: settles once it committed or rolled back, and says which.
   * It takes calls at once, before the driver's BEGIN returned: two calls made in one turn (steps awaiting the same
   * read) must not open two transactions, the second of which could commit while the first may still roll back.
   */
  async #openTransaction<T, R>(holder: string, body: (tx: TransactionHandle) => Promise<T> | T, after: AfterBody<T, R>): Promise<R> {
    const transaction = new JobTransaction(this.row.id, holder);
    this.#opening = transaction;
    try {
      const result = await this.deps.driver.transaction(async (raw) => {
        if (this.#opening === transaction) this.#opening = null;
        transaction.begin(raw);
        this.#activeTx = transaction;
        try {
          return await transaction.run(body, after, this.controller.signal);
        } finally {
          if (this.#activeTx === transaction) this.#activeTx = null;
          transaction.end();
        }
      });
      transaction.settle(null);
      return result;
    } catch (error) {
      // Also a BEGIN that failed (the callback never ran): the calls that joined meanwhile fail with its error.
      if (this.#opening === transaction) this.#opening = null;
      transaction.settle({ error });
      throw error;
    }
  }

  /**
   * `ctx.transaction`: runs `fn` in a new transaction and completes the job in it. The ending is claimed
   * (`done`) only after `fn` resolved, so a timeout or lost lease during `fn` wins and rolls everything back; and only
   * once the transaction an iteration's last batch joined ({@link Attempt.batchTransaction}) committed: a rollback of
   * that one rolls this one back too, and throws its failure, as the attempt's own ending would fail.
   */
  async completeInTransaction<T>(fn: (tx: TransactionHandle) => Promise<T> | T): Promise<T> {
    this.assertRunning('ctx.transaction');
    const { driver, clock } = this.deps;
    const row = this.row;
    let claimed = false;
    let stale = false;
    let value: T | undefined;
    try {
      if (this.#activeTx !== null || this.#opening !== null) throw new AttemptEndedError(row.id, 'ctx.transaction inside another job-context transaction (it would complete the job in the middle of it)');
      const result = await this.inTransaction('ctx.transaction', fn, async (fnValue, tx, transaction) => {
        value = fnValue;
        // An iteration's last batch joined another transaction: its writes and checkpoint are the job's only if that
        // one committed. Not joinable now (this one takes the calls), so the wait is for its COMMIT or ROLLBACK only;
        // a rollback throws its failure, and the completion rolls back with everything else.
        const batch = this.batchTransaction;
        if (batch !== null && batch !== transaction) await batch.committed();
        this.assertRunning('ctx.transaction');
        this.done = true;
        claimed = true;
        const finish: JobFinish = { id: row.id, leaseToken: row.leaseToken, outcome: 'completed', state: 'completed', retryDelayMs: 0, error: null };
        const applied = await driver.jobFinishMany({ items: [finish], now: clock.sqlNow(), tx });
        if (applied.stale.length > 0) {
          stale = true;
          throw new LeaseLostError(row.id, row.leaseToken, 'a lease that expired, was cancelled, or was taken over');
        }
        return fnValue;
      });
      this.#emitEnding('completed', 'completed', 0, null);
      this.deps.onLeaseReleased(this);
      return result;
    } catch (error) {
      if (stale) {
        this.done = false;
        throw this.markLost('finish');
      }
      // The completion was sent, and the transaction failed after: if only its COMMIT's reply was lost, it committed.
      // The job's history says so (guarantees.md, "A write that failed may still have committed"): then the attempt
      // completed the job, and ctx.transaction returns as if the reply had come.
      if (claimed && (await endingRecorded(driver, row, 'completed', (e) => this.deps.events.emit('error', { error: e, context: `reading the attempts of job ${row.id} after its transaction failed` })))) {
        this.#emitEnding('completed', 'completed', 0, null);
        this.deps.onLeaseReleased(this);
        return value as T;
      }
      // The ending did not commit: give it back, so the handler's failure is recorded as usual.
      if (claimed) this.done = false;
      throw error;
    }
  }

  async #endYielded(): Promise<void> {
    const request = this.yieldRequest!;
    if (await this.end('yielded', 'queued', 0, null, true)) this.deps.events.emit('job:yielded', { job: ref(this.row), attempt: this.row.attempt, ...request, durationMs: elapsedSince(this.deps.clock, this.started) });
  }

  #emitEnding(outcome: AttemptOutcome, state: JobFinish['state'], retryDelayMs: number, error: ErrorInfo | null): void {
    const { events, clock } = this.deps;
    const row = this.row;
    const durationMs = elapsedSince(clock, this.started);
    const job = ref(row);
    this.#endSpan(outcome, error, state);
    if (outcome === 'completed') {
      events.emit('job:completed', { job, attempt: row.attempt, durationMs });
      return;
    }
    if (outcome === 'yielded') return;
    events.emit('job:failed', { job, attempt: row.attempt, outcome, error: error!, nextState: state, durationMs });
    if (state === 'dead') events.emit('job:dead', { job, attempt: row.attempt, reason: outcome, error });
    else events.emit('job:retry-scheduled', { job, attempt: row.attempt, delayMs: retryDelayMs });
  }
}

/** Whether `error` is a NonRetryableError; false when its prototype chain cannot be read (a Proxy's trap throws). */
function isNonRetryable(error: unknown): boolean {
  try {
    return error instanceof NonRetryableError;
  } catch {
    return false;
  }
}

/** The identity of a job in events. */
export function ref(row: { id: string; name: string; queue: string; scheduleName?: string | null }): JobRef {
  return { id: row.id, name: row.name, queue: row.queue, scheduleName: row.scheduleName ?? null };
}

function noop(): void {}
