/**
 * `/metrics`, `/livez` and `/readyz` over real HTTP, served by the standalone health server and by the handler
 * mounted in an application's own server. Readiness is decided against real databases: 503 while the worker
 * drains or after it stopped, 503 when the driver is closed, 200 again after a restart.
 * @module
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Warden } from '../../src/client/warden.js';
import { InvalidOptionError, WardenError } from '../../src/errors.js';
import { TypedEmitter } from '../../src/events/typed-emitter.js';
import { defineJob } from '../../src/job/define-job.js';
import { HealthServer, startHealthServer } from '../../src/observe/health-server.js';
import { createHttpEndpoints } from '../../src/observe/http-endpoints.js';
import { attachMetrics } from '../../src/observe/metrics.js';
import { createReadinessCheck, type ReadinessCheck } from '../../src/observe/readiness-check.js';
import { withTimeout } from '../../src/observe/with-timeout.js';
import { deferred, makeWarden, within } from '../runtime/helpers.js';
import { createTestDatabase, DRIVER_KINDS, type TestDatabase } from '../support/test-databases.js';
import { promtoolCheck } from './helpers.js';

/** A GET (or other method) over real HTTP; the body as text. */
async function get(url: string, method = 'GET'): Promise<{ status: number; type: string | null; body: string }> {
  const res = await fetch(url, { method });
  return { status: res.status, type: res.headers.get('content-type'), body: await res.text() };
}

describe.each(DRIVER_KINDS)('health endpoints (%s)', (kind) => {
  let tdb: TestDatabase;
  let warden: Warden | undefined;
  let server: HealthServer | undefined;
  let readiness: ReadinessCheck | undefined;
  /** Lets a blocked handler return, so closing never waits on it. */
  let release = deferred();

  beforeEach(async () => {
    tdb = await createTestDatabase(kind);
    release = deferred();
  });

  afterEach(async () => {
    release.resolve();
    await server?.stop();
    server = undefined;
    readiness?.detach();
    await warden?.close();
    warden = undefined;
    await tdb?.cleanup();
  });

  it('serves /livez, /readyz and /metrics on a free port, and /readyz is 503 while draining and after stopping', async () => {
    const started = deferred();
    const slow = defineJob({
      name: 'slow-job',
      handler: async () => {
        started.resolve();
        await release.promise;
      },
    });
    const w = (warden = makeWarden(tdb, { jobs: [slow] }));
    const metrics = attachMetrics({ events: w.events, driver: w.driver, cache: 0 });
    readiness = createReadinessCheck({ driver: w.driver, events: w.events });
    server = await startHealthServer({ port: 0, host: '127.0.0.1', registry: metrics.registry, ready: readiness.check });
    const base = `http://127.0.0.1:${server.port}`;
    expect(server.port).toBeGreaterThan(0);

    expect(await get(`${base}/livez`)).toMatchObject({ status: 200, body: 'ok\n' });
    // No worker yet (a producer): ready whenever the database answers.
    expect(JSON.parse((await get(`${base}/readyz`)).body)).toEqual({ ready: true, reason: null, database: 'reachable', worker: 'not-started', migrations: 'current' });

    await w.start({ pollInterval: '50ms', grace: '30s' });
    await w.enqueue(slow, {});
    await within(started.promise, 'the slow job to start');
    const ready = await get(`${base}/readyz`);
    expect(ready.status).toBe(200);
    expect(ready.type).toBe('application/json; charset=utf-8');
    expect(JSON.parse(ready.body)).toMatchObject({ ready: true, worker: 'running' });

    const metricsResponse = await get(`${base}/metrics`);
    expect(metricsResponse.status).toBe(200);
    expect(metricsResponse.type).toBe(metrics.registry.contentType);
    expect(metricsResponse.body).toContain('warden_jobs_enqueued_total{job="slow-job",queue="default"} 1');
    expect(metricsResponse.body).toContain('warden_queue_depth{queue="default",state="running"} 1');
    expect(promtoolCheck(metricsResponse.body)).toEqual({ status: 0, output: '' });

    const draining = w.events.next('worker:draining');
    const stopping = w.stop();
    await within(draining, 'worker:draining');
    const whileDraining = await get(`${base}/readyz`);
    expect(whileDraining.status).toBe(503);
    expect(JSON.parse(whileDraining.body)).toEqual({ ready: false, reason: 'worker draining: shutting down', database: null, worker: 'draining', migrations: 'current' });
    // Alive all the same: a draining process must not be restarted.
    expect((await get(`${base}/livez`)).status).toBe(200);

    release.resolve();
    await within(stopping, 'the worker to stop');
    expect(JSON.parse((await get(`${base}/readyz`)).body)).toMatchObject({ ready: false, reason: 'worker stopped', worker: 'stopped' });
    await w.start({ pollInterval: '50ms' });
    expect(await get(`${base}/readyz`)).toMatchObject({ status: 200 });
    metrics.detach();
  });

  it('/readyz is 503 with the reason when the database is unreachable', async () => {
    const driver = tdb.newDriver();
    readiness = createReadinessCheck({ driver, events: new TypedEmitter(), timeout: '1s' });
    server = await startHealthServer({ port: 0, host: '127.0.0.1', ready: readiness.check });
    const url = `http://127.0.0.1:${server.port}/readyz`;
    expect((await get(url)).status).toBe(200);

    await driver.close();
    const res = await get(url);
    expect(res.status).toBe(503);
    const body = JSON.parse(res.body);
    expect(body).toMatchObject({ ready: false, database: 'unreachable', worker: 'not-started' });
    expect(body.reason).toMatch(/^database unreachable: /);
    expect((await get(`http://127.0.0.1:${server.port}/livez`)).status).toBe(200);
  });
});

describe('health endpoints', () => {
  const servers: { close(): unknown }[] = [];
  afterEach(async () => {
    for (const s of servers.splice(0)) await s.close();
  });

  it('mounts in an existing server: its own routes go to next, and a rejecting ready() is a 503', async () => {
    const registry = new Registry();
    const endpoints = createHttpEndpoints({ registry, ready: () => Promise.reject(new Error('boom')), paths: { metrics: '/internal/metrics' } });
    const app: Server = createServer((req, res) => endpoints(req, res, () => res.end('app')));
    servers.push({ close: () => new Promise((resolve) => app.close(resolve)) });
    await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
    const base = `http://127.0.0.1:${(app.address() as AddressInfo).port}`;

    expect(await get(`${base}/orders?x=1`)).toMatchObject({ status: 200, body: 'app' });
    expect(await get(`${base}/metrics`)).toMatchObject({ status: 200, body: 'app' });
    expect(await get(`${base}/internal/metrics?debug=1`)).toMatchObject({ status: 200, type: registry.contentType });
    expect(await get(`${base}/readyz`)).toMatchObject({ status: 503, body: '{"ready":false,"reason":"readiness check failed: boom"}\n' });
    expect(await get(`${base}/livez`, 'POST')).toMatchObject({ status: 405 });
    expect(await get(`${base}/livez`, 'HEAD')).toMatchObject({ status: 200, body: '' });
  });

  it('without next, other paths are 404; without a registry, /metrics is not served; ready() may answer a boolean', async () => {
    let isReady = false;
    const server = await startHealthServer({ port: 0, host: '127.0.0.1', ready: () => isReady });
    servers.push({ close: () => server.stop() });
    const base = `http://127.0.0.1:${server.port}`;
    expect((await get(`${base}/metrics`)).status).toBe(404);
    expect((await get(`${base}/nope`)).status).toBe(404);
    expect(await get(`${base}/readyz`)).toMatchObject({ status: 503, body: '{"ready":false,"reason":"not ready"}\n' });
    isReady = true;
    expect(await get(`${base}/readyz`)).toMatchObject({ status: 200, body: '{"ready":true,"reason":null}\n' });
  });

  it('follows the service lifecycle: stop before start and twice, start twice, restart, listen errors', async () => {
    const server = new HealthServer({ port: 0, host: '127.0.0.1' });
    await server.stop();
    expect(server.port).toBeNull();
    await Promise.all([server.start(), server.start()]);
    const port = server.port!;
    expect(server.running).toBe(true);
    // Keep-alive connections must not hold stop() open.
    expect((await get(`http://127.0.0.1:${port}/livez`)).status).toBe(200);
    await Promise.all([server.stop(), server.stop()]);
    expect(server.running).toBe(false);
    await expect(fetch(`http://127.0.0.1:${port}/livez`)).rejects.toThrow();

    await server.start();
    servers.push({ close: () => server.stop() });
    const taken = new HealthServer({ port: server.port!, host: '127.0.0.1' });
    await expect(taken.start()).rejects.toMatchObject({ code: 'EADDRINUSE' });
    expect(taken.running).toBe(false);
    await taken.stop();
  });

  it('rejects bad options with InvalidOptionError', () => {
    expect(() => new HealthServer({ port: -1 })).toThrow(InvalidOptionError);
    expect(() => new HealthServer({ port: 70000 })).toThrow(InvalidOptionError);
    expect(() => new HealthServer({ port: 1.5 })).toThrow(InvalidOptionError);
    expect(() => new HealthServer({ port: 0, host: '' })).toThrow(InvalidOptionError);
    expect(() => createHttpEndpoints({ paths: { livez: 'livez' } })).toThrow(InvalidOptionError);
    expect(() => createHttpEndpoints({ ready: true as never })).toThrow(InvalidOptionError);
    expect(() => createReadinessCheck({ driver: undefined as never, events: new TypedEmitter() })).toThrow(InvalidOptionError);
  });

  it('withTimeout rejects with a TIMEOUT WardenError when the answer does not come in time', async () => {
    const never = new Promise<never>(() => {});
    await expect(withTimeout(never, 20, 'the database to answer dbNow()')).rejects.toThrow(WardenError);
    await expect(withTimeout(never, 20, 'x')).rejects.toMatchObject({ code: 'TIMEOUT' });
    await expect(withTimeout(Promise.resolve(7), 20, 'x')).resolves.toBe(7);
  });
});
