import { elapsedSince, markClock } from '../clock/clock.js';
import type { JobStepRow } from '../driver/driver.js';
import { InvalidNameError, InvalidOptionError, StepNameConflictError } from '../errors.js';
import type { StepInfo, StepOptions } from '../job/job-context-options.js';
import { encodeJson } from '../job/payload.js';
import { booleanOption } from '../validation/boolean-option.js';
import type { Attempt } from './attempt.js';
import { ref } from './attempt.js';

/** Step names: 1–200 characters, no control characters (they end up in idempotency keys and logs). */
export const STEP_NAME_PATTERN = /^[^\u0000-\u001f\u007f]{1,200}$/;

/**
 * `ctx.step` for one attempt: replays results recorded by earlier attempts of the job, runs and records new
 * ones under the attempt's lease, and refuses a name used twice in one attempt.
 */
export class StepRunner {
  readonly #attempt: Attempt;
  /** Names used by this attempt so far (checked synchronously, so concurrent calls cannot both pass). */
  readonly #used = new Set<string>();
  /** Steps recorded by earlier attempts, loaded once at the first step. */
  #recorded: Promise<Map<string, JobStepRow>> | null = null;

  constructor(attempt: Attempt) {
    this.#attempt = attempt;
  }

  /** See `JobContext.step`. */
  async run<T>(name: string, fn: (info: StepInfo) => Promise<T> | T, options: StepOptions = {}): Promise<T> {
    const attempt = this.#attempt;
    const row = attempt.row;
    // Well-formed: PostgreSQL stores a lone surrogate as U+FFFD, so the recorded step would never be found again.
    if (typeof name !== 'string' || !STEP_NAME_PATTERN.test(name) || !name.isWellFormed()) {
      throw new InvalidNameError('step name', name, 'be a string of 1-200 characters without control characters or lone UTF-16 surrogates');
    }
    if (typeof fn !== 'function') throw new InvalidOptionError(`the function of step "${name}"`, fn, 'a function');
    if (typeof options !== 'object' || options === null) throw new InvalidOptionError(`options of step "${name}"`, options, 'an object');
    // Checked before the name is taken or anything runs, as ctx.iterate checks its own: `'yes'` is a mistake, and read
    // as "not true" it would run the step outside any transaction, its writes no longer committed with its record.
    const inTransaction = booleanOption(`transaction of step "${name}"`, options.transaction, false);
    if (this.#used.has(name)) throw new StepNameConflictError(row.id, name);
    this.#used.add(name);
    const call = `ctx.step("${name}")`;
    attempt.assertRunning(call);
    return attempt.trackStep(call, () => this.#run(name, fn, inTransaction));
  }

  /** A step's work once its call was accepted: replay its record, or run its function and record the result. */
  async #run<T>(name: string, fn: (info: StepInfo) => Promise<T> | T, inTransaction: boolean): Promise<T> {
    const attempt = this.#attempt;
    const row = attempt.row;
    const { driver, clock, events, payloadLimit } = attempt.deps;
    const started = markClock(clock);
    this.#recorded ??= driver.jobStepList({ id: row.id }).then((rows) => new Map(rows.map((r) => [r.name, r])));
    let recorded: Map<string, JobStepRow>;
    try {
      recorded = await this.#recorded;
    } catch (error) {
      // A failed read must not poison later steps of this attempt: the next call reads again.
      this.#recorded = null;
      this.#used.delete(name);
      throw error;
    }
    const previous = recorded.get(name);
    if (previous) {
      events.emit('job:step', { job: ref(row), attempt: row.attempt, step: name, replayed: true, durationMs: elapsedSince(clock, started) });
      return copyJson(previous.result) as T;
    }
    const what = `the result of step "${name}" of job ${row.id}`;
    // Inside an open job-context transaction the record joins it (see Attempt.activeTx).
    const record = (resultJson: string | null, tx: unknown = attempt.activeTx) =>
      attempt.guardedWrite('step', `ctx.step("${name}")`, () =>
        driver.jobStepRecord({ id: row.id, leaseToken: row.leaseToken, name, resultJson, attempt: row.attempt, now: clock.sqlNow(), tx }),
      );
    const info = { idempotencyKey: `${row.id}:${name}`, signal: attempt.controller.signal };
    let resultJson: string | null;
    if (inTransaction) {
      resultJson = await attempt.inTransaction(
        `step "${name}"`,
        (tx) => fn({ ...info, tx }),
        async (value, tx) => {
          const json = encodeResult(what, value, payloadLimit);
          await record(json, tx);
          return json;
        },
      );
    } else {
      const json = encodeResult(what, await fn({ ...info, tx: undefined }), payloadLimit);
      await record(json);
      resultJson = json;
    }
    recorded.set(name, { jobId: row.id, name, result: resultJson === null ? undefined : JSON.parse(resultJson), attempt: row.attempt, leaseToken: row.leaseToken, createdAt: new Date(clock.now()) });
    events.emit('job:step', { job: ref(row), attempt: row.attempt, step: name, replayed: false, durationMs: elapsedSince(clock, started) });
    // The caller gets what a later attempt would get: the recorded JSON, not the function's own object.
    return (resultJson === null ? undefined : JSON.parse(resultJson)) as T;
  }
}

/** `undefined` is recorded as "no result" (SQL NULL); anything else must be plain JSON within the limit. */
function encodeResult(what: string, value: unknown, limit: number): string | null {
  return value === undefined ? null : encodeJson(what, value, limit);
}

function copyJson(value: unknown): unknown {
  return value === undefined ? undefined : JSON.parse(JSON.stringify(value));
}
