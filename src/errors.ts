/**
 * Every public error class Warden throws. Each carries the data a caller needs to branch on,
 * forwards `cause`, and words its message as "Expected …, got …" where input was at fault.
 * @module
 */
import { constants } from 'node:buffer';

/** The longest string, in UTF-16 code units, this runtime holds (V8 on 64-bit: 2^29 - 24). */
const MAX_STRING_LENGTH = constants.MAX_STRING_LENGTH;

/** Base class of every error Warden throws on purpose. */
export class WardenError extends Error {
  /** A stable, machine-readable code, e.g. `"INVALID_NAME"`. */
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** A name (job, queue, schema, worker) does not match its strict pattern. Nothing was written. */
export class InvalidNameError extends WardenError {
  readonly field: string;
  readonly value: unknown;
  /** @param expectation what was expected, after "to": e.g. `match /^[a-z]+$/`. */
  constructor(field: string, value: unknown, expectation: string, options?: { cause?: unknown }) {
    super('INVALID_NAME', `Expected ${field} to ${expectation}, got ${describe(value)}`, options);
    this.field = field;
    this.value = value;
  }
}

/** A duration option ("30s", "5m", 1500) is malformed, negative or out of range. */
export class InvalidDurationError extends WardenError {
  readonly field: string;
  readonly value: unknown;
  constructor(field: string, value: unknown, expected: string) {
    super('INVALID_DURATION', `Expected ${field} to be ${expected}, got ${describe(value)}`);
    this.field = field;
    this.value = value;
  }
}

/** An option or configuration value is out of range or of the wrong type. */
export class InvalidOptionError extends WardenError {
  readonly field: string;
  readonly value: unknown;
  constructor(field: string, value: unknown, expected: string, options?: { cause?: unknown }) {
    super('INVALID_OPTION', `Expected ${field} to be ${expected}, got ${describe(value)}`, options);
    this.field = field;
    this.value = value;
  }
}

/** A job name was used that no job definition registered with this Warden instance has. */
export class UnknownJobError extends WardenError {
  readonly jobName: string;
  readonly known: readonly string[];
  constructor(jobName: string, known: readonly string[]) {
    super(
      'UNKNOWN_JOB',
      `Expected a registered job name (${known.length ? known.join(', ') : 'none registered'}), got ${describe(jobName)}`,
    );
    this.jobName = jobName;
    this.known = known;
  }
}

/** One problem reported by a Standard Schema validator. */
export interface SchemaIssue {
  /** Human-readable description of the problem. */
  message: string;
  /** Path to the offending value, e.g. `["to"]`. Empty for the root. */
  path: readonly (string | number)[];
}

/** A payload failed its job's schema, at enqueue or before a handler runs. */
export class PayloadValidationError extends WardenError {
  readonly jobName: string;
  readonly issues: readonly SchemaIssue[];
  constructor(jobName: string, issues: readonly SchemaIssue[]) {
    const list = issues.map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`).join('; ');
    super('PAYLOAD_INVALID', `Expected a payload for job "${jobName}" that satisfies its schema, got ${issues.length} issue(s): ${list}`);
    this.jobName = jobName;
    this.issues = issues;
  }
}

/** A payload (or step result, cursor) is not plain JSON: BigInt, a cycle, a function, undefined, a non-finite number… */
export class NonJsonValueError extends WardenError {
  readonly path: string;
  constructor(what: string, path: string, got: string) {
    super('NOT_JSON', `Expected ${what} to be plain JSON, got ${got} at ${path}`);
    this.path = path;
  }
}

/** A payload's JSON encoding exceeds the configured limit. Nothing was written. */
export class PayloadTooLargeError extends WardenError {
  /**
   * The JSON's size in UTF-8 bytes; null when it is longer than the longest string the runtime can hold
   * (`MAX_STRING_LENGTH` of `node:buffer`, about 512 MiB), so it was never measured: more bytes than that, since
   * each UTF-16 code unit is at least one byte, and far over any limit. `cause` is then the runtime's `RangeError`.
   */
  readonly bytes: number | null;
  readonly limit: number;
  constructor(what: string, bytes: number | null, limit: number, options?: { cause?: unknown }) {
    const got = bytes === null ? `more than ${MAX_STRING_LENGTH} bytes (JSON longer than the longest string this runtime holds)` : `${bytes} bytes`;
    super('PAYLOAD_TOO_LARGE', `Expected ${what} of at most ${limit} bytes as JSON, got ${got}`, options);
    this.bytes = bytes;
    this.limit = limit;
  }
}

/**
 * Throw from a handler to stop retrying at once: the job goes straight to the dead letters.
 * @example throw new NonRetryableError("card declined", { cause: err })
 */
export class NonRetryableError extends WardenError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('NON_RETRYABLE', message, options);
  }
}

/** An attempt ran past its job's `timeout`; its `ctx.signal` was aborted with this as the reason. */
export class JobTimeoutError extends WardenError {
  readonly timeoutMs: number;
  constructor(jobName: string, timeoutMs: number) {
    super('JOB_TIMEOUT', `Expected job "${jobName}" to finish within ${timeoutMs}ms, got no result in time`);
    this.timeoutMs = timeoutMs;
  }
}

/**
 * The attempt no longer holds the job's lease (it expired and was rescued, the job was cancelled, or a newer
 * attempt took over). Used as the `ctx.signal` abort reason; the attempt's writes were rejected.
 */
export class LeaseLostError extends WardenError {
  readonly jobId: string;
  readonly leaseToken: number;
  constructor(jobId: string, leaseToken: number, why: string) {
    super('LEASE_LOST', `Expected to hold the lease of job ${jobId} with token ${leaseToken}, got ${why}`);
    this.jobId = jobId;
    this.leaseToken = leaseToken;
  }
}

/** The worker is shutting down and the grace period ran out; the attempt is returned for retry. */
export class ShutdownAbortError extends WardenError {
  constructor(graceMs: number) {
    super('SHUTDOWN', `Expected in-flight jobs to finish within the ${graceMs}ms shutdown grace period, got still running`);
  }
}

/** No job with that id exists. */
export class JobNotFoundError extends WardenError {
  readonly jobId: string;
  constructor(jobId: string) {
    super('JOB_NOT_FOUND', `Expected an existing job id, got ${describe(jobId)}`);
    this.jobId = jobId;
  }
}

/** An operator action is not allowed from the job's current state (e.g. retrying a completed job). */
export class JobStateError extends WardenError {
  readonly jobId: string;
  readonly state: string;
  constructor(jobId: string, action: string, allowed: readonly string[], state: string) {
    super('JOB_STATE', `Expected job ${jobId} to be ${allowed.join(' or ')} to ${action} it, got ${state}`);
    this.jobId = jobId;
    this.state = state;
  }
}

/** A database URL or connection option is malformed or names an unsupported database. */
export class DatabaseConfigError extends WardenError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('DATABASE_CONFIG', message, options);
  }
}

/** The database schema is older than this version of Warden needs; run `warden migrate`. */
export class MigrationRequiredError extends WardenError {
  readonly pending: readonly string[];
  constructor(pending: readonly string[]) {
    super('MIGRATION_REQUIRED', `Expected the database schema to be migrated, got ${pending.length} pending migration(s): ${pending.join(', ')}. Run \`warden migrate\`.`);
    this.pending = pending;
  }
}

/**
 * A call on a Warden that `close()` is closing or has closed: `start()` from the call of `close()` on; writes
 * (`enqueue`, `enqueueMany`, operator actions, `migrate`, `drain`, `rescue`, `runSchedulerOnce`, `runRetentionOnce`,
 * schedule operations) once `close()` has stopped the worker. Nothing was started or written.
 */
export class WardenClosedError extends WardenError {
  /** The call refused, e.g. `"start()"`. */
  readonly call: string;
  constructor(call: string) {
    super('WARDEN_CLOSED', `Expected ${call} on an open Warden, got one closing or closed by close()`);
    this.call = call;
  }
}

/** A row `PRAGMA foreign_key_check` reported: its table and rowid, and the table its reference finds no row in. */
export interface ForeignKeyViolation {
  table: string;
  rowid: number | bigint | null;
  parent: string;
  fkid: number;
}

/**
 * A migration that rebuilt tables left rows whose references find no row (SQLite). The migration's transaction
 * was rolled back: the schema is as it was before.
 */
export class MigrationIntegrityError extends WardenError {
  readonly migration: string;
  readonly violations: readonly ForeignKeyViolation[];
  constructor(migration: string, violations: readonly ForeignKeyViolation[]) {
    const first = violations[0];
    super(
      'MIGRATION_INTEGRITY',
      `Expected every reference to find its row after migration ${migration}, got ${violations.length} broken (first: ${first?.table} row ${String(first?.rowid)} -> ${first?.parent}); nothing was applied`,
    );
    this.migration = migration;
    this.violations = violations;
  }
}

/** A transaction handle passed as `tx` is not of the kind this driver can write through. */
export class InvalidTransactionError extends WardenError {
  /**
   * @param gotText what was got, in words, for a subclass whose problem is not the value itself.
   * @default `got` described
   */
  constructor(expected: string, got: unknown, gotText: string = describe(got)) {
    super('INVALID_TX', `Expected tx to be ${expected}, got ${gotText}`);
  }
}

/**
 * A transaction handle Warden gave to a function (`ctx.transaction`'s, a `{ transaction: true }` step's, a
 * transactional batch's) was used after that function returned or after its transaction ended. By then its
 * connection may carry no transaction, or another caller's, so nothing was run on it.
 */
export class TransactionEndedError extends InvalidTransactionError {
  readonly jobId: string;
  /**
   * @param holder what the handle was given to, e.g. `step "charge"`.
   * @param after what had ended, e.g. `its function returned`.
   */
  constructor(jobId: string, holder: string, after: string) {
    super(`used while the function of ${holder} of job ${jobId} runs in its transaction`, undefined, `it used after ${after}`);
    this.jobId = jobId;
  }
}

/** `ctx.step` was called twice with one name in one attempt: step names identify recorded results. */
export class StepNameConflictError extends WardenError {
  readonly jobId: string;
  readonly stepName: string;
  constructor(jobId: string, stepName: string) {
    super('STEP_NAME_CONFLICT', `Expected each step name to be used once per attempt of job ${jobId}, got ${describe(stepName)} twice`);
    this.jobId = jobId;
    this.stepName = stepName;
  }
}

/**
 * A job-context call (`ctx.step`, `ctx.transaction`, `ctx.iterate`, a checkpoint) came after the attempt had
 * already ended: it completed inside `ctx.transaction`, timed out, lost its lease, or was aborted by shutdown; or a
 * step was called after the handler returned. Nothing was written, and the step's function did not run.
 */
export class AttemptEndedError extends WardenError {
  readonly jobId: string;
  constructor(jobId: string, call: string, options?: { cause?: unknown }) {
    super('ATTEMPT_ENDED', `Expected the attempt of job ${jobId} to still be running for ${call}, got it already ended`, options);
    this.jobId = jobId;
  }
}

/**
 * The `source` of `ctx.iterate` threw, or returned something other than `{ items: [...], next }`. The job
 * retries by its policy and resumes from its last saved checkpoint, which is left intact.
 */
export class IterationSourceError extends WardenError {
  readonly jobId: string;
  /** The cursor the source was called with. */
  readonly cursor: unknown;
  constructor(jobId: string, cursor: unknown, got: string, options?: { cause?: unknown }) {
    super('ITERATION_SOURCE', `Expected the source of ctx.iterate in job ${jobId} to return { items: [...], next } for cursor ${describeJson(cursor)}, got ${got}`, options);
    this.jobId = jobId;
    this.cursor = cursor;
  }
}

/**
 * Thrown by `ctx.iterate` after it saved its checkpoint to hand over to a fresh attempt (its `maxRuntime`
 * passed, or the worker began shutting down). Let it propagate: the attempt ends as `yielded` and the job is
 * queued again at once, without using up an attempt.
 */
export class IterationYieldError extends WardenError {
  readonly jobId: string;
  readonly reason: 'max-runtime' | 'shutdown';
  constructor(jobId: string, reason: 'max-runtime' | 'shutdown') {
    super('ITERATION_YIELD', `Expected job ${jobId} to hand over to a fresh attempt after its checkpoint, got ${reason === 'shutdown' ? 'the worker shutting down' : 'its maxRuntime passed'}`);
    this.jobId = jobId;
    this.reason = reason;
  }
}

function describeJson(value: unknown): string {
  try {
    const text = JSON.stringify(value) ?? 'undefined';
    return text.length > 80 ? `${text.slice(0, 77)}...` : text;
  } catch {
    return describe(value);
  }
}

/** Renders a value for an error message without ever throwing, and without dumping huge values. */
export function describe(value: unknown): string {
  if (typeof value === 'string') {
    const shown = value.length > 80 ? `${value.slice(0, 77)}...` : value;
    return `${JSON.stringify(shown)} (string, length ${value.length})`;
  }
  if (typeof value === 'bigint') return `${value}n (bigint)`;
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (typeof value === 'number' || typeof value === 'boolean') return `${value} (${typeof value})`;
  if (typeof value === 'function') return 'a function';
  if (Array.isArray(value)) return `an array of length ${value.length}`;
  const ctor = (value as object).constructor?.name;
  return ctor && ctor !== 'Object' ? `an instance of ${ctor}` : 'an object';
}

/**
 * An operator retry would make two active jobs share one dedup key. The message names the other job, not the key:
 * a key made from a payload can carry a sensitive value, and messages reach logs and the CLI (`key` holds it).
 */
export class KeyConflictError extends WardenError {
  readonly key: string;
  readonly existingJobId: string | null;
  constructor(key: string, existingJobId: string | null, options?: { cause?: unknown }) {
    super('KEY_CONFLICT', `Expected no other active job with this job's dedup key, got job ${existingJobId ?? '(unknown)'}`, options);
    this.key = key;
    this.existingJobId = existingJobId;
  }
}

/**
 * A replacing (debounce) insert found the waiting holder of its key changed by another transaction, between the
 * statement's read and its update, more than `MAX_REPLACE_MISSES` (PostgreSQL driver) times in a row. The enqueue did not
 * complete; outside an application's transaction nothing was written (inside one, roll it back), and enqueueing
 * again once that job settles works. The message names the input's position, not the key: a key made from a
 * payload can carry a sensitive value, and messages reach logs and the CLI (`key` holds it).
 */
export class KeyReplaceContentionError extends WardenError {
  readonly key: string;
  /** The input's position in the batch (0 for `enqueue`). */
  readonly index: number;
  readonly misses: number;
  constructor(key: string, index: number, misses: number) {
    super(
      'KEY_REPLACE_CONTENTION',
      `Expected the waiting job holding the dedup key of input ${index} to stay waiting long enough to replace it, got it changed by other transactions ${misses} times in a row`,
    );
    this.key = key;
    this.index = index;
    this.misses = misses;
  }
}

/** No active schedule has that name. */
export class ScheduleNotFoundError extends WardenError {
  readonly scheduleName: string;
  constructor(name: string) {
    super('SCHEDULE_NOT_FOUND', `Expected the name of an active schedule, got ${describe(name)}`);
    this.scheduleName = name;
  }
}

/**
 * `warden.schedules.resume` found the schedule's stored definition replaced (by syncs of other definitions) after
 * each of its reads, so it never knew which definition to compute the next tick from. Nothing was written; resuming
 * again once the deploy settled works.
 */
export class ScheduleChangedError extends WardenError {
  readonly scheduleName: string;
  /** The stored definition hash of the last read. */
  readonly lastReadHash: string | null;
  readonly attempts: number;
  constructor(name: string, lastReadHash: string | null, attempts: number) {
    super(
      'SCHEDULE_CHANGED',
      `Expected the definition of schedule ${describe(name)} to stay as read while resuming it, got it replaced after each of ${attempts} reads (last read ${lastReadHash ?? 'none'})`,
    );
    this.scheduleName = name;
    this.lastReadHash = lastReadHash;
    this.attempts = attempts;
  }
}

/** A lease lock was lost: its renewal failed, it expired, or it was released. Used as the lease signal's reason. */
export class LockLostError extends WardenError {
  readonly lockName: string;
  readonly token: number;
  constructor(name: string, token: number, why: string) {
    super('LOCK_LOST', `Expected to hold lock ${describe(name)} with token ${token}, got ${why}`);
    this.lockName = name;
    this.token = token;
  }
}

/** A fence check failed: a newer token was granted, or the lease expired. The caller must not write. */
export class FenceError extends WardenError {
  readonly lockName: string;
  readonly token: number;
  readonly currentToken: number | null;
  constructor(name: string, token: number, currentToken: number | null) {
    super('FENCED', `Expected token ${token} to be the live holder of lock ${describe(name)}, got ${currentToken === null ? 'no grant' : `newest token ${currentToken}`} (or an expired lease)`);
    this.lockName = name;
    this.token = token;
    this.currentToken = currentToken;
  }
}

/** An alert notice could not be delivered to a sink (the delivery job retries it with backoff). */
export class AlertDeliveryError extends WardenError {
  readonly sink: string;
  constructor(sink: string, got: string, options?: { cause?: unknown }) {
    super('ALERT_DELIVERY_FAILED', `Expected alert sink ${JSON.stringify(sink)} to accept the notice, got ${got}`, options);
    this.sink = sink;
  }
}

/** Why a listen error usually happens, for the message; other codes fall back to the system message. */
const LISTEN_REASONS: Readonly<Record<string, string>> = {
  EADDRINUSE: 'the port is already in use',
  EACCES: 'permission denied',
  EADDRNOTAVAIL: 'the address is not one of this machine',
  ENOTFOUND: 'the host name does not resolve',
  EAI_AGAIN: 'the host name could not be resolved now',
};

/**
 * The health server (`HealthServer`, `startHealthServer`, `warden worker --metrics-port`) could not listen: the port
 * is taken, the host does not resolve or is not local, or binding is not permitted. Nothing listens.
 * `code` is the system error's (`EADDRINUSE`, `ENOTFOUND`…, `"LISTEN_FAILED"` when it has none), as the listen
 * error itself had, so code that branches on it keeps working; the error is kept as `cause`.
 */
export class HealthServerListenError extends WardenError {
  /** The host it tried to listen on, or null for all interfaces. */
  readonly host: string | null;
  /** The port it tried to listen on (0: any free port). */
  readonly port: number;
  constructor(host: string | null, port: number, cause: unknown) {
    const system = (cause as { code?: unknown } | null)?.code;
    const code = typeof system === 'string' && system.length > 0 ? system : 'LISTEN_FAILED';
    const reason = LISTEN_REASONS[code] ?? (cause instanceof Error ? cause.message : String(cause));
    const where = host === null ? `port ${port} of all interfaces` : `port ${port} of ${host}`;
    super(code, `Expected the health server to listen on ${where}, got ${code} (${reason})`, { cause });
    this.host = host;
    this.port = port;
  }
}

/**
 * Audit entries were not written in time: the database refused them, the trail's backlog was full, or the
 * trail was closed first. The action they describe was applied; entries still queued are written when the
 * database accepts them again.
 */
export class AuditWriteError extends WardenError {
  constructor(got: string, options?: { cause?: unknown }) {
    super('AUDIT_WRITE_FAILED', `Expected the audit entries to be written, got ${got} (the action itself was applied)`, options);
  }
}

/**
 * An audit append failed after its batch was sent to the database (the connection was lost, or the statement or its
 * commit failed): the batch may or may not have been written. It names what was sealed, so a retry can name it in
 * `AuditAppendParams.retryOf` (with every other attempt still in doubt at the same seq) and the driver writes the
 * entries only if none of them is in the chain.
 */
export class AuditAppendUnconfirmedError extends WardenError {
  /** The seq the batch was sealed at. */
  readonly firstSeq: number;
  /** The hash of its last entry. */
  readonly lastHash: string;
  constructor(firstSeq: number, lastHash: string, options: { cause: unknown }) {
    const why = options.cause instanceof Error ? options.cause.message : String(options.cause);
    super('AUDIT_APPEND_UNCONFIRMED', `Expected the audit batch sealed at seq ${firstSeq} to be acknowledged, got ${why}`, options);
    this.firstSeq = firstSeq;
    this.lastHash = lastHash;
  }
}
