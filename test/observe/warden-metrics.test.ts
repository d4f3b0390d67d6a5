/**
 * Metrics and health wired into Warden: `createWarden({ metrics })`, `warden.httpHandler()` mounted in a server of
 * the application's, schedule runs counted as enqueues and credited to their schedule from the job's own
 * `scheduleName`, yielded attempts in the duration histogram, and `warden worker --metrics-port`.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { workerCommand } from '../../src/cli/commands/worker.js';
import { createWarden, type Warden } from '../../src/client/warden.js';
import type { WardenOptions } from '../../src/client/warden-options.js';
import { defineJob } from '../../src/job/define-job.js';
import { defineSchedule } from '../../src/schedule/define-schedule.js';
import { type CliDatabase, JOBS, migratedDatabase, waitFor } from '../cli/cli-helpers.js';
import { silent } from '../runtime/helpers.js';
import { createTestDatabase, DRIVER_KINDS, type TestDatabase } from '../support/test-databases.js';
import { promtoolCheck, scrape, total } from './helpers.js';

const work = defineJob({ name: 'work', handler: () => {} });
const nightly = defineSchedule({ name: 'nightly', cron: '0 3 * * *', job: work });

async function get(port: number, path: string): Promise<{ status: number; body: string }> {
  const response = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: response.status, body: await response.text() };
}

describe.each(DRIVER_KINDS)('metrics and health wired into Warden (%s)', (kind) => {
  let tdb: TestDatabase;
  let warden: Warden | undefined;
  let server: Server | undefined;
  beforeEach(async () => {
    tdb = await createTestDatabase(kind);
  });
  afterEach(async () => {
    await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
    server = undefined;
    await warden?.close();
    warden = undefined;
    await tdb.cleanup();
  });

  function make(options: Partial<WardenOptions> = {}): Warden {
    warden = createWarden({ database: tdb.url, schema: tdb.schema, logger: silent, jobs: [work], retention: false, ...options });
    return warden;
  }
  async function serve(w: Warden): Promise<number> {
    server = createServer(w.httpHandler());
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    return (server.address() as AddressInfo).port;
  }

  it('serves /metrics, /livez and /readyz from httpHandler(), and /readyz turns 503 once the worker stops', async () => {
    const w = make({ metrics: true, schedules: [nightly] });
    await w.migrate();
    const port = await serve(w);
    await w.enqueue(work, {});
    await w.runSchedulerOnce(); // syncs the schedule; its next tick is hours away
    await w.schedules.trigger('nightly');
    await w.drain();

    const metrics = await get(port, '/metrics');
    expect(metrics.status).toBe(200);
    const samples = await scrape(w.metrics!.registry);
    // The trigger's run counts as an enqueue, and its completion as the schedule's success, from the job itself.
    expect(total(samples, 'warden_jobs_enqueued_total')).toBe(2);
    expect(total(samples, 'warden_jobs_completed_total')).toBe(2);
    expect(total(samples, 'warden_schedule_runs_total', { schedule: 'nightly' })).toBe(1);
    expect(total(samples, 'warden_schedule_last_success_timestamp_seconds', { schedule: 'nightly' })).toBeGreaterThan(0);
    expect(promtoolCheck(metrics.body)).toEqual({ status: 0, output: '' });
    expect(await get(port, '/livez')).toEqual({ status: 200, body: 'ok\n' });
    expect(JSON.parse((await get(port, '/readyz')).body)).toMatchObject({ ready: true, database: 'reachable', worker: 'not-started' });

    await w.start({ scheduler: false });
    expect((await get(port, '/readyz')).status).toBe(200);
    await w.stop();
    const stopped = await get(port, '/readyz');
    expect([stopped.status, JSON.parse(stopped.body).worker]).toEqual([503, 'stopped']);
  });

  it("registers in the application's registry with its prefix, and detaches on close", async () => {
    const registry = new Registry();
    const w = make({ metrics: { registry, prefix: 'app_warden_' } });
    await w.enqueue(work, {});
    expect(w.metrics!.registry).toBe(registry);
    expect(total(await scrape(registry), 'app_warden_jobs_enqueued_total')).toBe(1);
    w.events.emit('job:yielded', { job: { id: '1', name: 'work', queue: 'default' }, attempt: 1, reason: 'max-runtime', done: 10, durationMs: 1500 });
    expect(total(await scrape(registry), 'app_warden_job_attempt_duration_seconds_count', { outcome: 'yielded' })).toBe(1);
    await w.close();
    expect(registry.getSingleMetric('app_warden_jobs_enqueued_total')).toBeUndefined();
  });

  it('serves health without metrics when the metrics option is off', async () => {
    const w = make();
    expect(w.metrics).toBeNull();
    const port = await serve(w);
    expect((await get(port, '/metrics')).status).toBe(404);
    expect((await get(port, '/livez')).status).toBe(200);
  });
});

describe.each(DRIVER_KINDS)('warden worker --metrics-port (%s)', (kind) => {
  let db: CliDatabase | undefined;
  afterEach(async () => {
    await db?.cleanup();
    db = undefined;
  });

  it('serves /metrics, /livez and /readyz while the worker runs, and stops serving when it stops', async () => {
    db = await migratedDatabase(kind);
    let out = '';
    let err = '';
    const controller = new AbortController();
    const schema = db.args.includes('--schema') ? db.args[db.args.indexOf('--schema') + 1]! : 'warden';
    const running = workerCommand(
      { database: db.url, schema, jobs: JOBS, pollInterval: '50ms', metricsPort: '0', metricsHost: '127.0.0.1', signal: controller.signal, handleSignals: false },
      { out: (t) => void (out += t), err: (t) => void (err += t) },
    );
    const port = Number((await waitFor('the metrics port', async () => /on port (\d+) of 127\.0\.0\.1/.exec(err)?.[1])));
    await waitFor('the started line', async () => (out.includes('started') ? true : undefined));
    const metrics = await get(port, '/metrics');
    expect(metrics.status).toBe(200);
    expect(metrics.body).toContain('# TYPE warden_jobs_enqueued_total counter');
    expect(promtoolCheck(metrics.body)).toEqual({ status: 0, output: '' });
    expect((await get(port, '/livez')).status).toBe(200);
    expect(JSON.parse((await get(port, '/readyz')).body)).toMatchObject({ ready: true, worker: 'running' });
    controller.abort();
    expect(await running).toBe(0);
    await expect(fetch(`http://127.0.0.1:${port}/livez`)).rejects.toThrow();
  });

  it('refuses --metrics-host without --metrics-port', async () => {
    db = await migratedDatabase(kind);
    await expect(workerCommand({ database: db.url, schema: 'warden', jobs: JOBS, metricsHost: '127.0.0.1', handleSignals: false }, { out: () => {}, err: () => {} })).rejects.toThrow(/--metrics-port/);
  });
});
