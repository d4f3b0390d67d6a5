/**
 * Memoized steps (`ctx.step`): a step's function runs once per job, not once per attempt; later attempts get the
 * recorded result back. Stable idempotency keys, `warden.jobs.steps(id)`, `undefined` results, transactional steps
 * whose database writes commit with their record, a replayed object equal in value to the first run's (on PostgreSQL
 * its keys in `jsonb`'s order), bad input (colliding names, non-JSON or oversized results, a bad name or `transaction`
 * option) failing the attempt with a typed error while the job retries by its policy and earlier steps stay
 * recorded, and (PostgreSQL) a step recorded inside an open transaction beside the worker's heartbeat.
 * @module
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createWarden, type Warden } from '../../src/client/warden.js';
import { InvalidNameError, InvalidOptionError, NonJsonValueError, PayloadTooLargeError, StepNameConflictError, type WardenError } from '../../src/errors.js';
import { defineJob, type JobContext, type JobDefinition } from '../../src/job/define-job.js';
import { type Oracle, openOracle } from '../process/db-oracle.js';
import { deferred, makeWarden, type MakeWardenOptions, record, silent, T0, TestClock, waitFor, within } from '../runtime/helpers.js';
import { overrideDriver } from '../support/override-driver.js';
import { createTestDatabase, DRIVER_KINDS, type TestDatabase } from '../support/test-databases.js';
import { type AppTable, attemptSummary, createAppTable, expectTyped, getJob, RETRY_1S } from './helpers.js';

describe.each(DRIVER_KINDS)('memoized steps (%s)', (kind) => {
  let tdb: TestDatabase;
  let oracle: Oracle;
  let clock: TestClock;
  let warden: Warden | undefined;
  /** Executions of each step function, by step name. */
  let runs: Record<string, number>;

  beforeEach(async () => {
    runs = {};
    tdb = await createTestDatabase(kind);
    oracle = await openOracle(tdb);
    clock = new TestClock(T0);
  });

  afterEach(async () => {
    await warden?.close();
    warden = undefined;
    await oracle?.close();
    await tdb?.cleanup();
  });

  function open(jobs: JobDefinition<any, any>[], options: MakeWardenOptions = {}): Warden {
    warden = makeWarden(tdb, { jobs, clock, ...options });
    return warden;
  }

  /** A step function that counts its executions and returns `value`. */
  function counted<T>(name: string, value: T): () => T {
    return () => {
      runs[name] = (runs[name] ?? 0) + 1;
      return value;
    };
  }

  /** Runs every due job, advances the fake clock 1 s (one retry delay), and repeats `times` times. */
  async function drainRetries(w: Warden, times: number): Promise<void> {
    for (let i = 0; i < times; i++) {
      await w.drain();
      await clock.advance(1_000);
    }
  }

  it('3 steps, failing after step 2 on attempt 1: attempt 2 runs only step 3 and gets the results of steps 1 and 2', async () => {
    const seen: { attempt: number; results: unknown[] }[] = [];
    const checkout = defineJob({
      name: 'checkout',
      retry: { maxAttempts: 3, backoff: RETRY_1S },
      handler: async (_payload, ctx: JobContext) => {
        const reserved = await ctx.step('a-reserve', counted('a-reserve', { reservation: 'r-1', items: [1, 2] }));
        const charged = await ctx.step('b-charge', counted('b-charge', { chargeId: 'ch_9', amount: 1250 }));
        if (ctx.attempt === 1) {
          seen.push({ attempt: ctx.attempt, results: [reserved, charged] });
          throw new Error('crashed after charging');
        }
        const shipped = await ctx.step('c-ship', counted('c-ship', 'shipment-7'));
        seen.push({ attempt: ctx.attempt, results: [reserved, charged, shipped] });
      },
    });
    const w = open([checkout]);
    const stepEvents = record(w, 'job:step');
    const { id } = await w.enqueue(checkout, {});

    expect(await w.drain()).toEqual({ attempts: 1 });
    expect(await getJob(w, id)).toMatchObject({ state: 'retrying', attempt: 1 });
    expect(runs).toEqual({ 'a-reserve': 1, 'b-charge': 1 });

    await clock.advance(1_000);
    expect(await w.drain()).toEqual({ attempts: 1 });
    expect(await getJob(w, id)).toMatchObject({ state: 'completed', attempt: 2 });
    expect(runs).toEqual({ 'a-reserve': 1, 'b-charge': 1, 'c-ship': 1 });

    const first = [{ reservation: 'r-1', items: [1, 2] }, { chargeId: 'ch_9', amount: 1250 }];
    expect(seen).toEqual([
      { attempt: 1, results: first },
      { attempt: 2, results: [...first, 'shipment-7'] },
    ]);
    expect(stepEvents.map((e) => [e.attempt, e.step, e.replayed])).toEqual([
      [1, 'a-reserve', false],
      [1, 'b-charge', false],
      [2, 'a-reserve', true],
      [2, 'b-charge', true],
      [2, 'c-ship', false],
    ]);
    expect(await attemptSummary(w, id)).toEqual([
      [1, 'failed', 'Error'],
      [2, 'completed', null],
    ]);

    const steps = await w.jobs.steps(id);
    expect(steps.map((s) => ({ jobId: s.jobId, name: s.name, result: s.result, attempt: s.attempt, leaseToken: s.leaseToken, at: s.createdAt.getTime() }))).toEqual([
      { jobId: id, name: 'a-reserve', result: first[0], attempt: 1, leaseToken: 1, at: T0 },
      { jobId: id, name: 'b-charge', result: first[1], attempt: 1, leaseToken: 1, at: T0 },
      { jobId: id, name: 'c-ship', result: 'shipment-7', attempt: 2, leaseToken: 2, at: T0 + 1_000 },
    ]);
    // Another job has steps of its own: none yet.
    const other = await w.enqueue(checkout, {});
    expect(await w.jobs.steps(other.id)).toEqual([]);
  });

  it('the idempotency key is `${jobId}:${name}`, the same on every attempt', async () => {
    const keys: { attempt: number; key: string }[] = [];
    const pay = defineJob({
      name: 'pay',
      retry: { maxAttempts: 3, backoff: RETRY_1S },
      handler: async (_payload, ctx: JobContext) => {
        await ctx.step('charge card', ({ idempotencyKey, signal, tx }) => {
          keys.push({ attempt: ctx.attempt, key: idempotencyKey });
          expect(signal).toBe(ctx.signal);
          expect(tx).toBeUndefined();
          // The payment provider times out on the first two attempts; nothing is recorded for them.
          if (ctx.attempt < 3) throw new Error('provider timeout');
          return { ok: true };
        });
      },
    });
    const w = open([pay]);
    const { id } = await w.enqueue(pay, {});
    await drainRetries(w, 3);
    expect(keys).toEqual([1, 2, 3].map((attempt) => ({ attempt, key: `${id}:charge card` })));
    expect(await getJob(w, id)).toMatchObject({ state: 'completed', attempt: 3 });
    expect((await w.jobs.steps(id)).map((s) => [s.name, s.attempt, s.result])).toEqual([['charge card', 3, { ok: true }]]);
  });

  it('undefined is recorded as no result and replayed as undefined; null stays null; the caller gets a JSON copy', async () => {
    const seen: unknown[][] = [];
    const returned = { nested: { list: [1, 'two', null] } };
    const job = defineJob({
      name: 'values',
      retry: { maxAttempts: 2, backoff: RETRY_1S },
      handler: async (_payload, ctx: JobContext) => {
        const u = await ctx.step('undefined', counted('undefined', undefined));
        const n = await ctx.step('null', counted('null', null));
        const o = await ctx.step('object', counted('object', returned));
        const f = await ctx.step('false', counted('false', false));
        seen.push([u, n, o, f, o === returned]);
        if (ctx.attempt === 1) throw new Error('again');
      },
    });
    const w = open([job]);
    const { id } = await w.enqueue(job, {});
    await drainRetries(w, 2);
    expect(await getJob(w, id)).toMatchObject({ state: 'completed', attempt: 2 });
    expect(runs).toEqual({ undefined: 1, null: 1, object: 1, false: 1 });
    expect(seen).toEqual([
      [undefined, null, returned, false, false],
      [undefined, null, returned, false, false],
    ]);
    expect(seen[1]![0]).toBeUndefined();
    const steps = await w.jobs.steps(id);
    expect(steps.map((s) => [s.name, s.result])).toEqual([
      ['false', false],
      ['null', null],
      ['object', returned],
      ['undefined', undefined],
    ]);
  });

  it('a replayed object result deep-equals the first run’s (on PostgreSQL its keys may come back in another order)', async () => {
    // Keys in an order jsonb does not keep (it sorts them), nested too.
    const returned = { zeta: 1, amount: 1250, id: 'ch_1', currency: 'eur', lines: [{ sku: 'b', qty: 2 }, { sku: 'a', qty: 1 }] };
    const seen: unknown[] = [];
    const job = defineJob({
      name: 'charge-then-fail',
      retry: { maxAttempts: 2, backoff: RETRY_1S },
      handler: async (_payload, ctx: JobContext) => {
        seen.push(await ctx.step('charge', counted('charge', returned)));
        if (ctx.attempt === 1) throw new Error('failed after the step');
      },
    });
    const w = open([job]);
    const { id } = await w.enqueue(job, {});
    await drainRetries(w, 2);
    expect(await getJob(w, id)).toMatchObject({ state: 'completed', attempt: 2 });
    expect(runs).toEqual({ charge: 1 });
    expect(seen).toHaveLength(2);
    expect(seen[0]).toEqual(returned);
    expect(seen[1]).toEqual(seen[0]);
    expect((await w.jobs.steps(id)).map((s) => s.result)).toEqual([returned]);
  });

  it('an operator retry of a dead job keeps its steps; discarding the job deletes them', async () => {
    let failing = true;
    const job = defineJob({
      name: 'operator',
      retry: { maxAttempts: 1 },
      handler: async (_payload, ctx: JobContext) => {
        await ctx.step('kept', counted('kept', { n: 1 }));
        if (failing) throw new Error('dead on its only attempt');
      },
    });
    const w = open([job]);
    const { id } = await w.enqueue(job, {});
    await w.drain();
    expect(await getJob(w, id)).toMatchObject({ state: 'dead', attempt: 1 });
    expect((await w.jobs.steps(id)).map((s) => s.name)).toEqual(['kept']);

    failing = false;
    await w.jobs.retry(id);
    await w.drain();
    expect(await getJob(w, id)).toMatchObject({ state: 'completed', attempt: 2 });
    expect(runs).toEqual({ kept: 1 });

    await w.jobs.discard(id);
    expect(await w.jobs.steps(id)).toEqual([]);
    expect(await oracle.number('SELECT count(*) FROM {job_steps}')).toBe(0);
  });

  it('a step whose record is still being written when a step beside it fails keeps it: the ending waits', async () => {
    // The database is slow to record `charge`: its write is held until the attempt's ending is sent, or, when the
    // ending waits for it (as it must), released after a few turns of the event loop.
    let endingSent: (() => void) | null = null;
    const slowRecords = overrideDriver(tdb.newDriver(), {
      jobStepRecord: (recordStep) => async (params) => {
        await new Promise<void>((release) => {
          endingSent = release;
          let turns = 0;
          const spin = () => (++turns >= 30 ? release() : setImmediate(spin));
          setImmediate(spin);
        });
        return recordStep(params);
      },
      jobFinishMany: (finish) => (params) => {
        endingSent?.();
        return finish(params);
      },
    });
    const job = defineJob({
      name: 'side-by-side',
      retry: { maxAttempts: 3, backoff: RETRY_1S },
      handler: async (_payload, ctx: JobContext) => {
        const charged = deferred();
        const charge = ctx.step('charge', () => {
          runs.charge = (runs.charge ?? 0) + 1;
          charged.resolve();
          return `charge-${runs.charge}`;
        });
        // Replayed (attempt 2), `charge` runs no function: `notify` goes on once it has its result.
        void charge.then(() => charged.resolve(), () => charged.resolve());
        const notify = ctx.step('notify', async () => {
          await charged.promise;
          runs.notify = (runs.notify ?? 0) + 1;
          if (ctx.attempt === 1) throw new Error('notify failed');
          return 'sent';
        });
        // Rejects as soon as `notify` fails, while `charge`'s record is still on its way.
        await Promise.all([charge, notify]);
      },
    });
    warden = createWarden({ database: slowRecords, clock, logger: silent, jobs: [job] });
    const errors = record(warden, 'error');
    const { id } = await warden.enqueue(job, {});
    await drainRetries(warden, 2);
    expect(await getJob(warden, id)).toMatchObject({ state: 'completed', attempt: 2 });
    // `charge` ran once: attempt 2 replayed the record attempt 1 wrote before its ending.
    expect(runs).toEqual({ charge: 1, notify: 2 });
    expect((await warden.jobs.steps(id)).map((s) => [s.name, s.attempt, s.result])).toEqual([['charge', 1, 'charge-1'], ['notify', 2, 'sent']]);
    expect(errors).toEqual([]);
  });

  describe('{ transaction: true }', () => {
    let app: AppTable;
    beforeEach(async () => {
      app = await createAppTable(tdb, oracle);
    });

    it('the step’s write through info.tx and its record commit together; a later attempt replays without writing again', async () => {
      const job = defineJob({
        name: 'tx-step',
        retry: { maxAttempts: 3, backoff: RETRY_1S },
        handler: async (_payload, ctx: JobContext) => {
          const result = await ctx.step(
            'write-order',
            async ({ tx, idempotencyKey }) => {
              runs['write-order'] = (runs['write-order'] ?? 0) + 1;
              expect(tx).toBeDefined();
              await app.insert(tx, ctx.job.id, idempotencyKey);
              return { orderNo: 77 };
            },
            { transaction: true },
          );
          expect(result).toEqual({ orderNo: 77 });
          if (ctx.attempt === 1) throw new Error('after the step');
        },
      });
      const w = open([job]);
      const { id } = await w.enqueue(job, {});
      await drainRetries(w, 2);
      expect(await getJob(w, id)).toMatchObject({ state: 'completed', attempt: 2 });
      expect(runs).toEqual({ 'write-order': 1 });
      expect(await app.tags(id)).toEqual([`${id}:write-order`]);
      expect((await w.jobs.steps(id)).map((s) => [s.name, s.attempt, s.result])).toEqual([['write-order', 1, { orderNo: 77 }]]);
    });

    it('throwing after the write rolls back both: no row, no record; the retry writes once', async () => {
      const job = defineJob({
        name: 'tx-step-fails',
        retry: { maxAttempts: 3, backoff: RETRY_1S },
        handler: async (_payload, ctx: JobContext) => {
          await ctx.step(
            'write-order',
            async ({ tx }) => {
              runs['write-order'] = (runs['write-order'] ?? 0) + 1;
              await app.insert(tx, ctx.job.id, `attempt ${ctx.attempt}`);
              if (ctx.attempt === 1) throw new Error('failed after the write');
              return 'ok';
            },
            { transaction: true },
          );
        },
      });
      const w = open([job]);
      const { id } = await w.enqueue(job, {});
      await w.drain();
      expect(await getJob(w, id)).toMatchObject({ state: 'retrying', attempt: 1 });
      expect(await app.rows()).toEqual([]);
      expect(await w.jobs.steps(id)).toEqual([]);

      await clock.advance(1_000);
      await w.drain();
      expect(await getJob(w, id)).toMatchObject({ state: 'completed', attempt: 2 });
      expect(runs).toEqual({ 'write-order': 2 });
      expect(await app.tags(id)).toEqual(['attempt 2']);
      expect((await w.jobs.steps(id)).map((s) => [s.name, s.attempt])).toEqual([['write-order', 2]]);
      expect(await attemptSummary(w, id)).toEqual([
        [1, 'failed', 'Error'],
        [2, 'completed', null],
      ]);
    });

    it('a non-JSON result rolls the step’s write back too', async () => {
      const job = defineJob({
        name: 'tx-step-bad-result',
        retry: { maxAttempts: 1 },
        handler: async (_payload, ctx: JobContext) => {
          await ctx.step(
            'write',
            async ({ tx }) => {
              await app.insert(tx, ctx.job.id, 'written');
              return new Date(T0);
            },
            { transaction: true },
          );
        },
      });
      const w = open([job]);
      const { id } = await w.enqueue(job, {});
      await w.drain();
      expect(await attemptSummary(w, id)).toEqual([[1, 'failed', 'NonJsonValueError']]);
      expect(await app.rows()).toEqual([]);
      expect(await w.jobs.steps(id)).toEqual([]);
    });
  });

  describe('bad input: a typed error fails the attempt; the job retries by its policy; earlier steps stay', () => {
    it('colliding step names in one attempt: StepNameConflictError (also for concurrent calls)', async () => {
      const errors: unknown[] = [];
      const job = defineJob({
        name: 'collide',
        retry: { maxAttempts: 3, backoff: RETRY_1S },
        handler: async (_payload, ctx: JobContext) => {
          await ctx.step('setup', counted('setup', 1));
          if (ctx.attempt === 1) {
            await ctx.step('x', counted('x', 'first'));
            try {
              await ctx.step('x', counted('x-again', 'second'));
            } catch (error) {
              errors.push(error);
              throw error;
            }
          }
          if (ctx.attempt === 2) {
            // Two calls in flight at once: the second is refused before the first has finished.
            const settled = await Promise.allSettled([ctx.step('y', counted('y', 'y1')), ctx.step('y', counted('y-again', 'y2'))]);
            errors.push(...settled.flatMap((s) => (s.status === 'rejected' ? [s.reason] : [])));
            expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'rejected']);
            throw (settled[1] as PromiseRejectedResult).reason;
          }
          await ctx.step('x', counted('x', 'never'));
          await ctx.step('y', counted('y', 'never'));
        },
      });
      const w = open([job]);
      const { id } = await w.enqueue(job, {});

      await w.drain();
      expect(await getJob(w, id)).toMatchObject({ state: 'retrying', attempt: 1 });
      await clock.advance(1_000);
      await w.drain();
      expect(await getJob(w, id)).toMatchObject({ state: 'retrying', attempt: 2 });
      await clock.advance(1_000);
      await w.drain();
      expect(await getJob(w, id)).toMatchObject({ state: 'completed', attempt: 3 });

      expect(errors).toHaveLength(2);
      expect(expectTyped(errors[0], StepNameConflictError)).toMatchObject({ jobId: id, stepName: 'x' });
      expect(expectTyped(errors[1], StepNameConflictError)).toMatchObject({ jobId: id, stepName: 'y' });
      expect(runs).toEqual({ setup: 1, x: 1, y: 1 });
      expect(await attemptSummary(w, id)).toEqual([
        [1, 'failed', 'StepNameConflictError'],
        [2, 'failed', 'StepNameConflictError'],
        [3, 'completed', null],
      ]);
      expect((await w.jobs.steps(id)).map((s) => [s.name, s.attempt, s.result])).toEqual([
        ['setup', 1, 1],
        ['x', 1, 'first'],
        ['y', 2, 'y1'],
      ]);
    });

    it.each<[string, () => unknown, string]>([
      ['a Date', () => new Date(T0), '$'],
      ['a function', () => ({ callback: () => 1 }), '$.callback'],
      ['a BigInt', () => ({ amount: 10n }), '$.amount'],
      ['NaN', () => [1, Number.NaN], '$[1]'],
      ['a Map', () => new Map([[1, 2]]), '$'],
    ])('a non-JSON result (%s): NonJsonValueError, not recorded; the retry runs it again', async (_title, make, path) => {
      const errors: unknown[] = [];
      const job = defineJob({
        name: 'non-json',
        retry: { maxAttempts: 2, backoff: RETRY_1S },
        handler: async (_payload, ctx: JobContext) => {
          await ctx.step('before', counted('before', 'ok'));
          try {
            await ctx.step('bad', () => {
              runs.bad = (runs.bad ?? 0) + 1;
              return ctx.attempt === 1 ? make() : 'fixed';
            });
          } catch (error) {
            errors.push(error);
            throw error;
          }
        },
      });
      const w = open([job]);
      const { id } = await w.enqueue(job, {});
      await w.drain();
      expect(await getJob(w, id)).toMatchObject({ state: 'retrying', attempt: 1 });
      expect(expectTyped(errors[0], NonJsonValueError).path).toBe(path);
      expect((await w.jobs.steps(id)).map((s) => s.name)).toEqual(['before']);

      await clock.advance(1_000);
      await w.drain();
      expect(await getJob(w, id)).toMatchObject({ state: 'completed', attempt: 2 });
      expect(runs).toEqual({ before: 1, bad: 2 });
      expect(await attemptSummary(w, id)).toEqual([
        [1, 'failed', 'NonJsonValueError'],
        [2, 'completed', null],
      ]);
      expect((await w.jobs.steps(id)).map((s) => [s.name, s.result])).toEqual([
        ['before', 'ok'],
        ['bad', 'fixed'],
      ]);
    });

    it('a result over the payload limit: PayloadTooLargeError, not recorded; the job dies after its last attempt with earlier steps kept', async () => {
      const errors: unknown[] = [];
      const job = defineJob({
        name: 'too-large',
        retry: { maxAttempts: 2, backoff: RETRY_1S },
        handler: async (_payload, ctx: JobContext) => {
          await ctx.step('small', counted('small', 'x'.repeat(50)));
          try {
            await ctx.step('large', counted('large', 'x'.repeat(200)));
          } catch (error) {
            errors.push(error);
            throw error;
          }
        },
      });
      const w = open([job], { payloadLimit: 100 });
      const { id } = await w.enqueue(job, {});
      await drainRetries(w, 2);
      expect(await getJob(w, id)).toMatchObject({ state: 'dead', attempt: 2 });
      expect(errors).toHaveLength(2);
      for (const error of errors) expect(expectTyped(error, PayloadTooLargeError)).toMatchObject({ limit: 100, bytes: 202 });
      expect(runs).toEqual({ small: 1, large: 2 });
      expect(await attemptSummary(w, id)).toEqual([
        [1, 'failed', 'PayloadTooLargeError'],
        [2, 'failed', 'PayloadTooLargeError'],
      ]);
      expect((await w.jobs.steps(id)).map((s) => [s.name, s.result])).toEqual([['small', 'x'.repeat(50)]]);
    });

    /**
     * Runs a job of one attempt whose handler makes `call` (with a counted step function); expects it refused with
     * `type` before the function ran, the attempt failed with it, and nothing recorded. Returns the error.
     */
    async function expectRefusedBeforeRunning<E extends WardenError>(
      call: (ctx: JobContext, fn: () => number) => Promise<unknown>,
      type: abstract new (...args: any[]) => E,
    ): Promise<E> {
      const errors: unknown[] = [];
      const job = defineJob({
        name: 'refused-step',
        retry: { maxAttempts: 1 },
        handler: async (_payload, ctx: JobContext) => {
          try {
            await call(ctx, counted('fn', 1));
          } catch (error) {
            errors.push(error);
            throw error;
          }
        },
      });
      const w = open([job]);
      const { id } = await w.enqueue(job, {});
      await w.drain();
      const typed = expectTyped(errors[0], type);
      expect(runs).toEqual({});
      expect(await attemptSummary(w, id)).toEqual([[1, 'failed', type.name]]);
      expect(await w.jobs.steps(id)).toEqual([]);
      return typed;
    }

    it.each<[string, unknown]>([
      ['empty', ''],
      ['a control character', 'a\nb'],
      ['201 characters', 'x'.repeat(201)],
      ['not a string', 7],
      // PostgreSQL would store U+FFFD for it: the recorded step would never be found again, and would run again.
      ['a lone UTF-16 surrogate', 'charge-\uD800'],
    ])('a step name that is %s: InvalidNameError; the function never runs', async (_title, name) => {
      await expectRefusedBeforeRunning((ctx, fn) => ctx.step(name as string, fn), InvalidNameError);
    });

    // Read as "not true", such a value would run the step outside any transaction, its writes apart from its record.
    it.each<[string, unknown]>([
      ['a string', 'yes'],
      ['a number', 1],
    ])('a transaction option that is %s, not a boolean: InvalidOptionError; the function never runs', async (_title, value) => {
      const error = await expectRefusedBeforeRunning((ctx, fn) => ctx.step('write', fn, { transaction: value as boolean }), InvalidOptionError);
      expect(error.message).toContain('transaction of step "write"');
    });
  });

  // SQLite has no row locks: the open transaction holds the file's write lock, so every write, the heartbeat's too,
  // waits for its commit (a documented limit: docs/guarantees.md, "SQLite").
  if (kind === 'postgres') {
    describe('a step recorded inside a transactional batch, and the worker’s heartbeat', () => {
      // The control has no step in the batch: its transaction has not locked the job row (the checkpoint is written
      // after the batch), so the heartbeat renews both jobs.
      it.each([
        ['without a step in the batch (control)', false],
        ['with a step recorded inside the batch', true],
      ])('a heartbeat sent while the batch runs renews the worker’s other job and aborts nothing: %s', async (_title, withStep) => {
        const batchPaused = deferred();
        const batchResume = deferred();
        const otherStarted = deferred();
        const otherResume = deferred();
        const iterating = defineJob({
          name: 'iterating',
          handler: async (_payload, ctx: JobContext) => {
            await ctx.iterate<number, number>({
              source: (cursor) => (cursor === null ? { items: [1], next: 1 } : { items: [], next: null }),
              batch: async (items) => {
                // A service call memoized inside the transactional batch: its record locks the job row FOR SHARE
                // until the batch's transaction ends.
                if (withStep) await ctx.step(`screen-${items[0]}`, counted('screen', { verdict: 'clear' }));
                batchPaused.resolve();
                await batchResume.promise;
              },
              transaction: true,
            });
          },
        });
        const other = defineJob({
          name: 'other',
          handler: async () => {
            otherStarted.resolve();
            await otherResume.promise;
          },
        });
        const a = open([iterating, other], { worker: { lease: '3s', heartbeat: '1s' } });
        const staleWrites = record(a, 'job:stale-write-rejected');
        const completed = record(a, 'job:completed');
        const { id: iterId } = await a.enqueue(iterating, {});
        const { id: otherId } = await a.enqueue(other, {});
        await a.start({ concurrency: 2, pollInterval: '1h' });
        await within(Promise.all([batchPaused.promise, otherStarted.promise]), 'both jobs to be running');
        // Another instance 3.5 s in: past the claim-time leases (T0 + 3 s), within a renewed one.
        const b = makeWarden(tdb, { clock: new TestClock(T0 + 3_500) });
        try {
          // The heartbeat is due: it renews the other job's lease to T0 + 1 s + 3 s. One that waited on the row the
          // step locked would renew nothing until the batch's transaction ended.
          await clock.advance(1_000);
          await within(waitFor(async () => (await getJob(a, otherId)).leaseExpiresAt?.getTime() === T0 + 4_000), 'the heartbeat to renew the other job');
          // The locked job is not renewed at this beat, nor reported stale (which would abort it).
          expect((await getJob(a, iterId)).leaseExpiresAt?.getTime()).toBe(withStep ? T0 + 3_000 : T0 + 4_000);
          // The rescue skips the locked row, and the other job's lease holds.
          const rescued = record(b, 'job:rescued');
          await b.rescue();
          expect(rescued).toEqual([]);
        } finally {
          // Also after a failure above, so that both jobs end and the instances close.
          batchResume.resolve();
          otherResume.resolve();
          await b.close();
        }
        await within(waitFor(() => completed.length === 2), 'both jobs to complete');
        expect(staleWrites).toEqual([]);
        for (const id of [iterId, otherId]) expect(await getJob(a, id)).toMatchObject({ state: 'completed', attempt: 1 });
        expect(runs).toEqual(withStep ? { screen: 1 } : {});
      });
    });
  }
});
