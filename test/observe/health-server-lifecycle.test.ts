/**
 * The standalone health server's lifecycle, interleaved as Warden's own `start()`/`stop()` are: a start called
 * while a stop is in progress waits for it and then listens afresh (unless another stop came after it), a stop
 * called during a start closes what that start binds, and stopping twice or before starting is safe. Its listen
 * errors are `HealthServerListenError`s naming host, port and cause. Real sockets on 127.0.0.1.
 * @module
 */
import { createServer, type Server } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { HealthServerListenError, WardenError } from '../../src/errors.js';
import { HealthServer } from '../../src/observe/health-server.js';

const servers: HealthServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.stop()));
});

function healthServer(): HealthServer {
  const server = new HealthServer({ port: 0, host: '127.0.0.1' });
  servers.push(server);
  return server;
}

/** The status of GET /livez on `port`, or the error's name when nothing answers there. */
async function livez(port: number): Promise<number | string> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/livez`);
    await res.text();
    return res.status;
  } catch (error) {
    return (error as Error).name;
  }
}

describe('HealthServer lifecycle', () => {
  it('a start() called while a stop() is in progress waits for it, then listens afresh', async () => {
    const server = healthServer();
    await server.start();
    const stopping = server.stop();
    const starting = server.start();
    await Promise.all([stopping, starting]);
    expect(server.running).toBe(true);
    expect(await livez(server.port!)).toBe(200);
  });

  it('a start() called during a stop() starts nothing when another stop() follows it', async () => {
    const server = healthServer();
    await server.start();
    const first = server.stop();
    const starting = server.start();
    const second = server.stop();
    await Promise.all([first, starting, second]);
    expect(server.running).toBe(false);
    // Nothing was left half-started: a later start listens as usual.
    await server.start();
    expect(await livez(server.port!)).toBe(200);
  });

  it('a stop() called during a start() closes what that start binds; a start() after it listens again', async () => {
    const server = healthServer();
    const starting = server.start();
    const stopping = server.stop();
    const restarting = server.start();
    await Promise.all([starting, stopping]);
    await restarting;
    expect(server.running).toBe(true);
    await server.stop();
    expect(server.running).toBe(false);
  });

  it('stop() twice resolves both only once closed; stop() before start() does nothing', async () => {
    const server = healthServer();
    await server.stop();
    await Promise.all([server.stop(), server.stop()]);
    expect(server.running).toBe(false);

    await server.start();
    const port = server.port!;
    const first = server.stop();
    const second = server.stop();
    await second;
    // The second stop waited for the close the first one runs: nothing answers any more.
    expect(server.running).toBe(false);
    expect(await livez(port)).toBe('TypeError');
    await first;
  });

  it('shares one start between calls while no stop intervened', async () => {
    const server = healthServer();
    const a = server.start();
    const b = server.start();
    expect(b).toBe(a);
    await a;
    const port = server.port;
    await server.start();
    expect(server.port).toBe(port);
  });
});

describe('HealthServer listen errors', () => {
  it('a taken port is a HealthServerListenError naming host, port and EADDRINUSE; start() may be retried', async () => {
    const blocker: Server = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as AddressInfo).port;
    try {
      const server = new HealthServer({ port, host: '127.0.0.1' });
      servers.push(server);
      const error = await server.start().then(() => null, (e: unknown) => e);
      expect(error).toBeInstanceOf(HealthServerListenError);
      expect(error).toBeInstanceOf(WardenError);
      expect(error).toMatchObject({ code: 'EADDRINUSE', host: '127.0.0.1', port, cause: expect.objectContaining({ code: 'EADDRINUSE' }) });
      expect((error as Error).message).toBe(`Expected the health server to listen on port ${port} of 127.0.0.1, got EADDRINUSE (the port is already in use)`);
      expect(server.running).toBe(false);
    } finally {
      await new Promise<void>((resolve) => blocker.close(() => resolve()));
    }
    // The port is free again: the same server starts now.
    const retry = servers.at(-1)!;
    await retry.start();
    expect(retry.port).toBe(port);
  });

  it('a host that does not resolve is a HealthServerListenError naming the host', async () => {
    const server = new HealthServer({ port: 0, host: 'no-such-host.invalid' });
    servers.push(server);
    const error = await server.start().then(() => null, (e: unknown) => e);
    expect(error).toBeInstanceOf(HealthServerListenError);
    expect(error).toMatchObject({ host: 'no-such-host.invalid', port: 0, code: expect.stringMatching(/^(ENOTFOUND|EAI_AGAIN)$/) });
    expect((error as Error).message).toMatch(/^Expected the health server to listen on port 0 of no-such-host\.invalid, got (ENOTFOUND|EAI_AGAIN) \(the host name/);
  });

  it('names all interfaces when no host is given, and falls back to the system message for other codes', () => {
    const error = new HealthServerListenError(null, 9464, Object.assign(new Error('listen EWHATEVER: odd'), { code: 'EWHATEVER' }));
    expect(error.message).toBe('Expected the health server to listen on port 9464 of all interfaces, got EWHATEVER (listen EWHATEVER: odd)');
    expect(new HealthServerListenError('::1', 1, 'no code')).toMatchObject({ code: 'LISTEN_FAILED', host: '::1', port: 1 });
  });
});
