/**
 * Timeouts longer than one `setTimeout` holds (2^31 − 1 ms, about 24.8 days), which Node fires after 1 ms:
 * PostgreSQL's `connectTimeoutMs` (pg waits with one timer) is refused past it, so a connection cannot time out at
 * once; the waits behind metrics' `collectTimeout` and readiness (durations of up to 365 days) are waited in steps.
 * @module
 */
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { MAX_TIMER_MS } from '../../src/clock/clock.js';
import { createWarden, type Warden } from '../../src/client/warden.js';
import { createDriver } from '../../src/driver/create-driver.js';
import { InvalidOptionError } from '../../src/errors.js';
import { defineJob } from '../../src/job/define-job.js';
import { HealthServer } from '../../src/observe/health-server.js';
import { withTimeout } from '../../src/observe/with-timeout.js';
import { scrape, total } from '../observe/helpers.js';
import { makeWarden, silent } from '../runtime/helpers.js';
import { Cleanup } from '../support/cleanup.js';
import { createTestDatabase, DRIVER_KINDS, PG_URL } from '../support/test-databases.js';

describe('connectTimeoutMs (PostgreSQL)', () => {
  it.each([MAX_TIMER_MS + 1, 2 ** 31, 365 * 86_400_000])('is refused at %d ms, before any connection', (connectTimeoutMs) => {
    // An unreachable URL: the refusal cannot come from a connection.
    expect(() => createDriver({ url: 'postgres://nobody@127.0.0.1:1/none', connectTimeoutMs })).toThrow(InvalidOptionError);
    expect(() => createDriver({ url: 'postgres://nobody@127.0.0.1:1/none', connectTimeoutMs })).toThrow(`Expected connectTimeoutMs to be an integer number of milliseconds from 1 to ${MAX_TIMER_MS}`);
    expect(() => createWarden({ database: 'postgres://nobody@127.0.0.1:1/none', logger: silent, databaseOptions: { connectTimeoutMs } })).toThrow(InvalidOptionError);
  });

  describe.runIf(DRIVER_KINDS.includes('postgres'))('at the largest allowed value', () => {
    let warden: Warden | undefined;
    afterEach(() => warden?.close());

    it('connects', async () => {
      warden = createWarden({ database: PG_URL, schema: `t_${randomBytes(8).toString('hex')}`, logger: silent, retention: false, databaseOptions: { connectTimeoutMs: MAX_TIMER_MS } });
      // The schema does not exist, so nothing is created: reading the migration status needs only a connection.
      await expect(warden.migrationStatus()).resolves.toMatchObject({ applied: [] });
    });
  });
});

describe('withTimeout', () => {
  it('waits for a promise with a timeout longer than one timer holds, instead of timing out at once', async () => {
    const answer = new Promise<string>((resolve) => setTimeout(() => resolve('answered'), 20));
    await expect(withTimeout(answer, 30 * 86_400_000, 'the database to answer')).resolves.toBe('answered');
  });

  it('still times out after a short timeout', async () => {
    await expect(withTimeout(new Promise(() => undefined), 10, 'the database to answer')).rejects.toThrow('Expected the database to answer within 10ms, got no answer');
  });
});

describe.each(DRIVER_KINDS)('metrics collectTimeout past one timer (%s)', (kind) => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('serves the database gauges with collectTimeout "30d" (it timed every scrape out at once)', async () => {
    const tdb = cleanup.add(await createTestDatabase(kind), (t) => t.cleanup());
    const job = defineJob({ name: 'j', handler: () => undefined });
    const warden = cleanup.add(makeWarden(tdb, { jobs: [job], retention: false, metrics: { cache: 0, collectTimeout: '30d' } }), (w) => w.close());
    await warden.enqueue(job, {});
    const samples = await scrape(warden.metrics!.registry);
    expect(total(samples, 'warden_queue_depth', { queue: 'default', state: 'queued' })).toBe(1);
    expect(total(samples, 'warden_metrics_collect_errors_total')).toBe(0);
  });
});

describe('HealthServer closeGraceMs', () => {
  it.each([MAX_TIMER_MS + 1, 2 ** 31, 365 * 86_400_000])('is refused at %d ms (setTimeout would cut connections after 1 ms)', (closeGraceMs) => {
    expect(() => new HealthServer({ port: 0, closeGraceMs })).toThrow(InvalidOptionError);
    expect(() => new HealthServer({ port: 0, closeGraceMs })).toThrow(`Expected closeGraceMs to be a whole number of milliseconds from 0 to ${MAX_TIMER_MS}`);
  });

  it('is accepted at the largest value a timer holds', () => {
    expect(() => new HealthServer({ port: 0, closeGraceMs: MAX_TIMER_MS })).not.toThrow();
  });
});
