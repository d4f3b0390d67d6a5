/**
 * Bad input is refused with the named typed error, worded "Expected …, got …", and nothing is written: after
 * every refused enqueue the database holds no job (checked through the driver, not through Warden).
 * @module
 */
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { Warden } from '../../src/client/warden.js';
import { createWarden } from '../../src/client/warden.js';
import {
  InvalidDurationError,
  InvalidNameError,
  InvalidOptionError,
  InvalidTransactionError,
  NonJsonValueError,
  PayloadTooLargeError,
  PayloadValidationError,
  UnknownJobError,
  WardenError,
} from '../../src/errors.js';
import { defineJob, type JobDefinitionOptions } from '../../src/job/define-job.js';
import type { WorkerOptions } from '../../src/runtime/worker-options.js';
import { createTestDatabase, DRIVER_KINDS, PG_URL, type TestDatabase } from '../support/test-databases.js';
import { makeWarden, silent } from './helpers.js';

type ErrorClass<E extends WardenError> = abstract new (...args: any[]) => E;

/** Asserts that `run` throws or rejects with an instance of `type` whose message contains "Expected". */
async function expectRefused<E extends WardenError>(run: () => unknown, type: ErrorClass<E>): Promise<E> {
  let caught: unknown;
  try {
    await run();
  } catch (error) {
    caught = error;
  }
  expect(caught, `expected ${type.name} to be thrown`).toBeInstanceOf(type);
  const error = caught as E;
  expect(error.name).toBe(type.name);
  expect(error.message).toContain('Expected');
  return error;
}

/** Casts a deliberately ill-typed value through the type checker. */
const bad = <T = never>(value: unknown): T => value as T;

const BAD_NAMES: [string, unknown][] = [
  ['a;drop', 'a;drop'],
  ['65 characters', 'a'.repeat(65)],
  ['non-ASCII', 'ünï'],
  ['empty', ''],
  ['upper case', 'Send-Email'],
  ['not a string', 42],
];

const BAD_DURATIONS: [string, unknown][] = [
  ["'5 minutes'", '5 minutes'],
  ['-1', -1],
  ["'1y'", '1y'],
  ['NaN', Number.NaN],
  ['Infinity', Number.POSITIVE_INFINITY],
  ["'366d' (over a year)", '366d'],
];

const noop = (): void => {};

describe('bad input independent of the database', () => {
  it.each(BAD_NAMES)('defineJob refuses job name %s with InvalidNameError', async (_title, name) => {
    const error = await expectRefused(() => defineJob({ name: bad(name), handler: noop }), InvalidNameError);
    expect(error.field).toBe('job name');
  });

  it.each(BAD_NAMES)('defineJob refuses queue %s with InvalidNameError', async (_title, queue) => {
    const error = await expectRefused(() => defineJob({ name: 'ok', queue: bad(queue), handler: noop }), InvalidNameError);
    expect(error.field).toBe('queue');
  });

  it.each(BAD_DURATIONS)('defineJob refuses timeout %s with InvalidDurationError', async (_title, timeout) => {
    const error = await expectRefused(() => defineJob({ name: 'ok', timeout: bad(timeout), handler: noop }), InvalidDurationError);
    expect(error.field).toContain('timeout');
  });

  it('defineJob refuses a zero timeout', async () => {
    await expectRefused(() => defineJob({ name: 'ok', timeout: 0, handler: noop }), InvalidDurationError);
  });

  it.each(BAD_DURATIONS)('defineJob refuses backoff base and max %s with InvalidDurationError', async (_title, value) => {
    const base = await expectRefused(() => defineJob({ name: 'ok', retry: { backoff: { base: bad(value) } }, handler: noop }), InvalidDurationError);
    expect(base.field).toContain('backoff.base');
    const max = await expectRefused(() => defineJob({ name: 'ok', retry: { backoff: { max: bad(value) } }, handler: noop }), InvalidDurationError);
    expect(max.field).toContain('backoff.max');
  });

  it.each([1.5, 'high', 1_000_001, Number.NaN])('defineJob refuses priority %s with InvalidOptionError', async (priority) => {
    await expectRefused(() => defineJob({ name: 'ok', priority: bad(priority), handler: noop }), InvalidOptionError);
  });

  it('defineJob refuses other malformed options', async () => {
    const cases: Partial<JobDefinitionOptions<unknown, unknown>>[] = [
      { name: 'ok', handler: bad('not a function') },
      { name: 'ok', schema: bad({ parse: noop }), handler: noop },
      { name: 'ok', retry: { maxAttempts: 0 }, handler: noop },
      { name: 'ok', retry: { maxAttempts: 1.5 }, handler: noop },
      { name: 'ok', retry: { backoff: { jitter: bad('some') } }, handler: noop },
      { name: 'ok', retry: { backoff: { base: '1m', max: '1s' } }, handler: noop },
    ];
    for (const options of cases) await expectRefused(() => defineJob(options as JobDefinitionOptions<unknown, unknown>), InvalidOptionError);
  });

  it('createWarden refuses duplicate job names with InvalidOptionError', async () => {
    const a = defineJob({ name: 'same-name', handler: noop });
    const b = defineJob({ name: 'same-name', handler: noop });
    const error = await expectRefused(() => createWarden({ database: 'sqlite:/nonexistent-dir/never-opened.db', jobs: [a, b], logger: silent }), InvalidOptionError);
    expect(error.message).toContain('same-name');
  });

  it.each([0, 1, 1.5, 64 * 1024 * 1024 + 1])('createWarden refuses payloadLimit %s with InvalidOptionError', async (payloadLimit) => {
    await expectRefused(() => createWarden({ database: 'sqlite:/nonexistent-dir/never-opened.db', payloadLimit, logger: silent }), InvalidOptionError);
  });

  it.runIf(DRIVER_KINDS.includes('postgres'))('an invalid PostgreSQL schema name is refused before connecting', async () => {
    // Port 1 refuses connections: a driver that tried to connect first would fail with a connection error.
    const unreachable = 'postgres://nobody@127.0.0.1:1/none';
    for (const schema of ['a;drop', 'A', '1abc', 'x'.repeat(64), 'a"b', '']) {
      const error = await expectRefused(() => createWarden({ database: unreachable, schema, logger: silent }), InvalidNameError);
      expect(error.field).toBe('schema');
    }
    // Control: a valid name on the same unreachable server is accepted, since nothing connects yet.
    const lazy = createWarden({ database: unreachable, schema: 'valid_name', logger: silent });
    await lazy.close();
  });
});

describe.each(DRIVER_KINDS)('bad input at enqueue (%s)', (kind) => {
  let tdb: TestDatabase;
  let warden: Warden;
  const LIMIT = 1024;

  const email = defineJob({
    name: 'send-email',
    schema: z.object({ to: z.email(), template: z.string() }),
    handler: noop,
  });
  const raw = defineJob({ name: 'raw-json', handler: noop });

  beforeEach(async () => {
    tdb = await createTestDatabase(kind);
    warden = makeWarden(tdb, { jobs: [email, raw], payloadLimit: LIMIT });
  });

  afterEach(async () => {
    await warden?.close();
    await tdb?.cleanup();
  });

  async function expectNothingWritten(): Promise<void> {
    expect(await tdb.driver.jobList({ limit: 1000 })).toEqual([]);
  }

  it('an unknown job name: UnknownJobError naming the known ones', async () => {
    const error = await expectRefused(() => warden.enqueue('no-such-job', {}), UnknownJobError);
    expect(error.jobName).toBe('no-such-job');
    expect(error.known).toEqual(['send-email', 'raw-json']);
    await expectNothingWritten();
  });

  it('a definition that was never registered: refused', async () => {
    const stranger = defineJob({ name: 'send-email', handler: noop });
    await expectRefused(() => warden.enqueue(stranger, {}), InvalidOptionError);
    await expectNothingWritten();
  });

  it('a payload failing the schema: PayloadValidationError listing each path', async () => {
    const error = await expectRefused(() => warden.enqueue(email, bad({ to: 'not-an-email' })), PayloadValidationError);
    expect(error.jobName).toBe('send-email');
    expect(error.issues.map((i) => i.path)).toEqual(expect.arrayContaining([['to'], ['template']]));
    expect(error.message).toContain('to:');
    expect(error.message).toContain('template:');
    await expectNothingWritten();
  });

  it('a payload over the limit: PayloadTooLargeError; exactly at the limit is accepted and round-trips', async () => {
    // {"s":"…"} is 8 bytes around the string. "é" is 2 bytes of UTF-8: the limit counts bytes, not characters.
    const atLimit = { s: 'é'.repeat((LIMIT - 8) / 2) };
    const overLimit = { s: `${atLimit.s}x` };
    expect(Buffer.byteLength(JSON.stringify(atLimit))).toBe(LIMIT);

    const error = await expectRefused(() => warden.enqueue(raw, overLimit), PayloadTooLargeError);
    expect([error.bytes, error.limit]).toEqual([LIMIT + 1, LIMIT]);
    await expectNothingWritten();

    const { id } = await warden.enqueue(raw, atLimit);
    const row = await tdb.driver.jobGet({ id });
    expect(row!.payload).toEqual(atLimit);
    expect(JSON.stringify(row!.payload)).toBe(JSON.stringify(atLimit));
    if (kind === 'sqlite') {
      const db = new Database(tdb.url.slice('sqlite:'.length), { readonly: true });
      try {
        const stored = db.prepare('SELECT payload FROM jobs WHERE id = ?').get(Number(id)) as { payload: string };
        expect(stored.payload).toBe(JSON.stringify(atLimit));
      } finally {
        db.close();
      }
    }
  });

  const nonJson: [string, () => unknown, string][] = [
    ['BigInt', () => ({ a: { b: 1n } }), '$.a.b'],
    [
      'a cyclic object',
      () => {
        const o: Record<string, any> = { a: {} };
        o.a.b = o;
        return o;
      },
      '$.a.b',
    ],
    ['an undefined value', () => ({ a: { b: undefined } }), '$.a.b'],
    ['a Date', () => ({ a: { b: new Date(0) } }), '$.a.b'],
    ['a Map', () => ({ a: { b: new Map() } }), '$.a.b'],
    ['NaN', () => ({ a: { b: Number.NaN } }), '$.a.b'],
    ['Infinity', () => ({ a: { b: Number.POSITIVE_INFINITY } }), '$.a.b'],
    ['a function', () => ({ a: { b: noop } }), '$.a.b'],
    ['a Symbol', () => ({ a: { b: Symbol('s') } }), '$.a.b'],
    ['a class instance in an array', () => ({ a: [1, new (class Money {})()] }), '$.a[1]'],
    ['undefined at the root', () => undefined, '$'],
  ];
  it.each(nonJson)('%s: NonJsonValueError with its path', async (_title, make, path) => {
    const error = await expectRefused(() => warden.enqueue(raw, make()), NonJsonValueError);
    expect(error.path).toBe(path);
    expect(error.message).toContain(path);
    await expectNothingWritten();
  });

  it.each([
    ['U+0000 in a string', { s: 'a\u0000b' }],
    ['U+0000 in a key', { 'k\u0000': 1 }],
    ['a lone surrogate', { s: '\ud800' }],
  ])('a payload with %s is either stored and round-trips, or refused with a typed error', async (_title, value) => {
    let id: string | undefined;
    let error: unknown;
    try {
      ({ id } = await warden.enqueue(raw, value));
    } catch (e) {
      error = e;
    }
    if (id === undefined) {
      // Refused: it must be Warden's typed, worded refusal, not a raw database error, and nothing written.
      expect(error).toBeInstanceOf(WardenError);
      expect((error as Error).message).toContain('Expected');
      await expectNothingWritten();
    } else {
      expect(JSON.stringify((await tdb.driver.jobGet({ id }))!.payload)).toBe(JSON.stringify(value));
    }
  });

  it.each(BAD_NAMES)('enqueue refuses queue %s with InvalidNameError', async (_title, queue) => {
    const error = await expectRefused(() => warden.enqueue(raw, {}, { queue: bad(queue) }), InvalidNameError);
    expect(error.field).toBe('queue');
    await expectNothingWritten();
  });

  it.each(BAD_DURATIONS)('enqueue refuses delay %s with InvalidDurationError', async (_title, delay) => {
    const error = await expectRefused(() => warden.enqueue(raw, {}, { delay: bad(delay) }), InvalidDurationError);
    expect(error.field).toBe('delay');
    await expectNothingWritten();
  });

  it.each([1.5, 'high', -1_000_001, Number.NaN])('enqueue refuses priority %s with InvalidOptionError', async (priority) => {
    const error = await expectRefused(() => warden.enqueue(raw, {}, { priority: bad(priority) }), InvalidOptionError);
    expect(error.field).toBe('priority');
    await expectNothingWritten();
  });

  it.each([
    ['empty', ''],
    ['300 characters', 'k'.repeat(300)],
    ['a control character', 'a\nb'],
    ['not a string', 42],
  ])('enqueue refuses key %s with InvalidNameError', async (_title, key) => {
    const error = await expectRefused(() => warden.enqueue(raw, {}, { key: bad(key) }), InvalidNameError);
    expect(error.field).toBe('key');
    await expectNothingWritten();
  });

  it('enqueue accepts a key of exactly 255 characters', async () => {
    const { job } = await warden.enqueue(raw, {}, { key: 'k'.repeat(255) });
    expect(job.key).toBe('k'.repeat(255));
  });

  it.each([
    ['a string', 'tomorrow'],
    ['a number', Date.now()],
    ['an invalid Date', new Date(Number.NaN)],
  ])('enqueue refuses runAt %s with InvalidOptionError', async (_title, runAt) => {
    await expectRefused(() => warden.enqueue(raw, {}, { runAt: bad(runAt) }), InvalidOptionError);
    await expectNothingWritten();
  });

  it('enqueue refuses a transaction handle of the wrong kind with InvalidTransactionError', async () => {
    const handles: unknown[] = [{}, 'tx', 42, []];
    const sqlite = new Database(':memory:');
    const pool = new pg.Pool({ connectionString: PG_URL });
    try {
      if (kind === 'sqlite') {
        // A Database on the file with no transaction open, and a pg client.
        const idle = new Database(tdb.url.slice('sqlite:'.length));
        handles.push(idle, new pg.Client({ connectionString: PG_URL }));
        for (const tx of handles) await expectRefused(() => warden.enqueue(raw, {}, { tx }), InvalidTransactionError);
        idle.close();
      } else {
        // A pool would spread statements over connections, outside the caller's transaction.
        handles.push(pool, sqlite);
        for (const tx of handles) await expectRefused(() => warden.enqueue(raw, {}, { tx }), InvalidTransactionError);
      }
      await expectRefused(() => warden.enqueueMany([{ job: raw, payload: {} }], { tx: {} }), InvalidTransactionError);
    } finally {
      sqlite.close();
      await pool.end();
    }
    await expectNothingWritten();
  });

  it('enqueue refuses tx: null with InvalidTransactionError, like every other non-transaction', async () => {
    // docs/driver-contract.md: `tx` when given is a pg client or a better-sqlite3 Database in a transaction;
    // "anything else is InvalidTransactionError". An explicit null must not silently mean "no transaction".
    await expectRefused(() => warden.enqueue(raw, {}, { tx: null }), InvalidTransactionError);
    await expectNothingWritten();
  });

  it('enqueueMany with one bad item among good ones names items[i] and writes none of them', async () => {
    const error = await expectRefused(
      () =>
        warden.enqueueMany([
          { job: email, payload: { to: 'a@example.com', template: 'welcome' } },
          { job: raw, payload: { ok: true } },
          { job: email, payload: { to: 'not-an-email', template: 'welcome' } },
          { job: raw, payload: { ok: true } },
        ]),
      PayloadValidationError,
    );
    expect(error.message).toMatch(/^items\[2\]: Expected/);
    await expectNothingWritten();

    const optionError = await expectRefused(
      () =>
        warden.enqueueMany([
          { job: raw, payload: {} },
          { job: raw, payload: {}, options: { delay: bad('5 minutes') } },
        ]),
      InvalidDurationError,
    );
    expect(optionError.message).toMatch(/^items\[1\]: /);
    await expectNothingWritten();

    await expectRefused(() => warden.enqueueMany(bad({ job: raw, payload: {} })), InvalidOptionError);
    await expectNothingWritten();
  });

  const badWorkerOptions: [string, WorkerOptions][] = [
    ['concurrency 0', { concurrency: 0 }],
    ['concurrency 1.5', { concurrency: 1.5 }],
    ['heartbeat equal to lease', { lease: '30s', heartbeat: '30s' }],
    ['heartbeat longer than lease', { lease: '10s', heartbeat: '1m' }],
    ['batchSize 0', { batchSize: 0 }],
    ['maxLost 0', { maxLost: 0 }],
  ];
  it.each(badWorkerOptions)('start refuses %s with InvalidOptionError and starts nothing', async (_title, options) => {
    await expectRefused(() => warden.start(options), InvalidOptionError);
    expect(warden.workerCounters).toBeNull();
  });

  it('start refuses malformed durations and queue names', async () => {
    await expectRefused(() => warden.start({ pollInterval: bad('soon') }), InvalidDurationError);
    await expectRefused(() => warden.start({ lease: 0 }), InvalidDurationError);
    await expectRefused(() => warden.start({ queues: ['Bad Queue'] }), InvalidNameError);
    await expectRefused(() => warden.drain({ concurrency: 0 }), InvalidOptionError);
    expect(warden.workerCounters).toBeNull();
  });
});
