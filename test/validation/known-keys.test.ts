/**
 * Unknown option keys are refused, not ignored: a misspelt option (`timout`, `dealy`, `retention: { complete }`)
 * would otherwise silently be its default. `checkKnownKeys` itself, then each user-facing resolver that uses it.
 * Known keys set to `undefined` (spread optional fields) and unknown keys set to `undefined` (which set nothing) pass.
 * @module
 */
import { afterEach, describe, expect, it } from 'vitest';
import { resolveAlertOptions } from '../../src/alerts/alert-options.js';
import { resolveAuditOptions } from '../../src/audit/audit-options.js';
import { createWarden } from '../../src/client/warden.js';
import type { WardenOptions } from '../../src/client/warden-options.js';
import { createDriver } from '../../src/driver/create-driver.js';
import { InvalidOptionError } from '../../src/errors.js';
import { defineJob, type JobDefinitionOptions } from '../../src/job/define-job.js';
import { resolveJobRetention } from '../../src/maintenance/retention-policy.js';
import { resolveRetentionOptions } from '../../src/maintenance/retention-service.js';
import { attachMetrics } from '../../src/observe/metrics.js';
import { defineSchedule, type ScheduleOptions } from '../../src/schedule/define-schedule.js';
import { checkKnownKeys } from '../../src/validation/known-keys.js';
import { makeWarden, silent } from '../runtime/helpers.js';
import { Cleanup } from '../support/cleanup.js';
import { createTestDatabase, DRIVER_KINDS } from '../support/test-databases.js';

const handler = (): void => undefined;
const job = defineJob({ name: 'j', handler });
const webhook = { type: 'webhook' as const, url: 'https://hooks.example.com/warden', secret: 'at-least-sixteen-chars' };

/** Runs `run`, expecting an InvalidOptionError for the unknown key `key`; returns it. */
async function unknownKey(run: () => unknown, key: string): Promise<InvalidOptionError> {
  let caught: unknown;
  try {
    await run();
  } catch (error) {
    caught = error;
  }
  expect(caught, `expected the unknown key ${key} to be refused`).toBeInstanceOf(InvalidOptionError);
  const error = caught as InvalidOptionError;
  expect(error.value).toBe(key);
  expect(error.field).toMatch(/^option name in /);
  return error;
}

describe('checkKnownKeys', () => {
  it('names the unknown key and lists the known ones', () => {
    expect(() => checkKnownKeys('retention', { complete: '1d' }, ['completed', 'dead'])).toThrow(
      'Expected option name in retention to be one of completed, dead, got "complete" (string, length 8)',
    );
  });

  it('lets known keys through, and any key whose value is undefined', () => {
    expect(() => checkKnownKeys('x', { a: 1, b: undefined, c: undefined }, ['a', 'b'])).not.toThrow();
  });

  it('never shows the value of the unknown key (a misspelt secret is still a secret)', () => {
    let caught: unknown;
    try {
      checkKnownKeys('alerts.sinks[0]', { secert: 'hunter2-hunter2-hunter2' }, ['secret']);
    } catch (error) {
      caught = error;
    }
    expect((caught as Error).message).not.toContain('hunter2');
    expect(JSON.stringify(caught)).not.toContain('hunter2');
  });
});

describe('resolvers refuse unknown keys', () => {
  it('defineJob, its retry and backoff, unique and retention', async () => {
    const define = (extra: Record<string, unknown>) => () => defineJob({ name: 'a', handler, ...extra } as JobDefinitionOptions<unknown, unknown>);
    // `timout`: the job would have no time limit at all.
    expect((await unknownKey(define({ timout: '5s' }), 'timout')).message).toContain('option name in job "a"');
    await unknownKey(define({ retry: { maxAttemps: 3 } }), 'maxAttemps');
    await unknownKey(define({ retry: { backoff: { tpye: 'fixed' } } }), 'tpye');
    await unknownKey(define({ unique: { windows: '1h' } }), 'windows');
    await unknownKey(define({ retention: { complete: '1d' } }), 'complete');
    // A job type's own retention sets states only: the service's options belong to createWarden's.
    await unknownKey(() => resolveJobRetention('a', { interval: '1h' }), 'interval');
    expect(() => defineJob({ name: 'a', handler, timeout: undefined, retry: { maxAttempts: 3, backoff: undefined } })).not.toThrow();
  });

  it('defineSchedule and its misfire, expect and heartbeat', async () => {
    const define = (extra: Record<string, unknown>) => () => defineSchedule({ name: 's', every: '1m', job, ...extra } as ScheduleOptions<unknown>);
    await unknownKey(define({ timzone: 'Europe/London' }), 'timzone');
    await unknownKey(define({ misfire: { polcy: 'skip' } }), 'polcy');
    await unknownKey(define({ expect: { within: '5m', maxRuntim: '1m' } }), 'maxRuntim');
    await unknownKey(define({ heartbeat: { url: 'https://hc.example.com/x', ur: 'x' } }), 'ur');
    expect(() => defineSchedule({ name: 's', every: '1m', job, misfire: { policy: 'skip' }, expect: { within: '5m' } })).not.toThrow();
  });

  it('createWarden: its top level, databaseOptions, scheduler, worker, metrics and tracing, before the database is opened', async () => {
    const create = (extra: Record<string, unknown>) => () => createWarden({ database: 'sqlite:/nonexistent-dir/never-created.db', logger: silent, ...extra } as WardenOptions);
    await unknownKey(create({ jbos: [job] }), 'jbos');
    // `url`, `schema` and `onError` come from createWarden's own options: given here they would be ignored.
    await unknownKey(create({ databaseOptions: { url: 'sqlite::memory:' } }), 'url');
    await unknownKey(create({ databaseOptions: { poolsize: 5 } }), 'poolsize');
    await unknownKey(create({ scheduler: { scanIntreval: '5s' } }), 'scanIntreval');
    await unknownKey(create({ worker: { concurency: 5 } }), 'concurency');
    await unknownKey(create({ metrics: { prefx: 'app_' } }), 'prefx');
    // createWarden passes its own events, driver and clock to the metrics.
    await unknownKey(create({ metrics: { clock: {} } }), 'clock');
    await unknownKey(create({ tracing: { consumerParnet: 'none' } }), 'consumerParnet');
  });

  it('retention, audit and alerts (top level, rules and their thresholds, sinks, delivery)', async () => {
    await unknownKey(() => resolveRetentionOptions({ complete: '1d' } as never), 'complete');
    expect(() => resolveRetentionOptions({ completed: '1d', scheduleTicks: false, interval: '1h', batchSize: 10, maxPerPass: 10 })).not.toThrow();
    await unknownKey(() => resolveAuditOptions({ chian: 'payments' } as never), 'chian');
    await unknownKey(() => resolveAlertOptions({ heartbeat: {} } as never), 'heartbeat');
    await unknownKey(() => resolveAlertOptions({ rules: { deadletter: false } } as never), 'deadletter');
    await unknownKey(() => resolveAlertOptions({ rules: { failureRate: { treshold: 0.2 } } } as never), 'treshold');
    await unknownKey(() => resolveAlertOptions({ sinks: [{ ...webhook, secert: 'x' }] } as never), 'secert');
    await unknownKey(() => resolveAlertOptions({ sinks: [{ type: 'email', smtp: 'smtp://relay', from: 'a@example.com', to: 'b@example.com', url: 'x' }] } as never), 'url');
    await unknownKey(() => resolveAlertOptions({ delivery: { queu: 'alerts' } } as never), 'queu');
    await unknownKey(() => resolveAlertOptions({ delivery: { retry: { maxAttempts: 2, backof: {} } } } as never), 'backof');
  });

  it('createDriver and attachMetrics', async () => {
    await unknownKey(() => createDriver({ url: 'sqlite:/nonexistent-dir/never-created.db', busyTimeout: 5 } as never), 'busyTimeout');
    await unknownKey(() => attachMetrics({ events: {}, driver: {}, cache: '1s', colectTimeout: '1s' } as never), 'colectTimeout');
  });
});

describe.each(DRIVER_KINDS)('calls refuse unknown keys before writing (%s)', (kind) => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('enqueue, enqueueMany, start, drain, rescue and locks', async () => {
    const tdb = cleanup.add(await createTestDatabase(kind), (t) => t.cleanup());
    const warden = cleanup.add(makeWarden(tdb, { jobs: [job], retention: false }), (w) => w.close());
    const started: unknown[] = [];
    warden.on('worker:started', (e) => started.push(e));
    // `dealy`: the job would be due at once instead of in an hour.
    expect((await unknownKey(() => warden.enqueue(job, {}, { dealy: '1h' } as never), 'dealy')).message).toContain('option name in enqueue options');
    await unknownKey(() => warden.enqueue(job, {}, { unique: { key: 'k', replce: true } } as never), 'replce');
    await unknownKey(() => warden.enqueueMany([{ job, payload: {}, options: { priorty: 1 } }] as never), 'priorty');
    await unknownKey(() => warden.enqueueMany([{ job, payload: {}, optons: { delay: '1h' } }] as never), 'optons');
    await unknownKey(() => warden.enqueueMany([{ job, payload: {} }], { transaction: {} } as never), 'transaction');
    expect(await warden.jobs.list({})).toEqual([]);

    await unknownKey(() => warden.start({ concurency: 5 } as never), 'concurency');
    await unknownKey(() => warden.start({ schedular: false } as never), 'schedular');
    expect(started).toEqual([]);
    await unknownKey(() => warden.drain({ concurency: 5 } as never), 'concurency');
    await unknownKey(() => warden.rescue({ maxlost: 5 } as never), 'maxlost');

    await unknownKey(() => warden.locks.acquire('l', { ttl: '5s', wiat: '1s' } as never), 'wiat');
    await unknownKey(() => warden.locks.withLock('l', { ttl: '5s', hodler: 'me' } as never, async () => 1), 'hodler');
    expect(await warden.locks.list()).toEqual([]);
  });
});
