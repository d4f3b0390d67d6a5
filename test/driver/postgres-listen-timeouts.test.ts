/**
 * The LISTEN connection against a server that does not answer, or that drops it at once (PostgreSQL driver).
 * - It used to be opened without the driver's `connectTimeoutMs`: against a server (or proxy) that accepts the TCP
 *   connection and never answers, `listen()` (and so `warden.start()`) never settled, although every pooled
 *   connection fails after `connectTimeoutMs`; and a reconnect attempt that met such a server never ended and
 *   scheduled no other, so the worker never listened again once the server answered.
 * - Its back-off started again from 100 ms after every successful reconnect: a server that drops the connection
 *   as soon as it is listening was reconnected to several times a second for ever.
 * The listener's back-off runs on real timers (infrastructure, like the SQLite wake-up watch), so these tests wait
 * in real time, bounded by `within`; everything else waits on callbacks.
 * @module
 */
import net from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createWarden } from '../../src/client/warden.js';
import { createDriver } from '../../src/driver/create-driver.js';
import type { Driver } from '../../src/driver/driver.js';
import { defineJob } from '../../src/job/define-job.js';
import { createTestDatabase, DRIVER_KINDS, makeInsert, PG_URL, type TestDatabase } from '../support/test-databases.js';
import { deferred, silent, within } from '../runtime/helpers.js';

/**
 * A TCP proxy to the test server. While `blackhole` is set it accepts new connections and never answers them; with
 * `silentAfterStartup` it relays a new connection's start-up, then nothing from its first statement on; with
 * `dropAfterMs` it cuts each new connection that long after accepting it. `accepted` counts the connections.
 */
class Proxy {
  blackhole = false;
  silentAfterStartup = false;
  dropAfterMs: number | null = null;
  accepted = 0;
  readonly #sockets = new Set<net.Socket>();
  readonly #server = net.createServer((client) => {
    this.accepted++;
    this.#track(client);
    client.on('error', () => client.destroy());
    if (this.blackhole) return;
    const server = new URL(PG_URL);
    const upstream = this.#track(net.connect({ host: server.hostname, port: Number(server.port || 5432) }));
    let silent = false;
    const hangs = this.silentAfterStartup;
    client.on('data', (chunk: Buffer) => {
      // A statement ('Q' simple query, 'P' parse): from here on the server seems to hang.
      if (hangs && (chunk[0] === 0x51 || chunk[0] === 0x50)) silent = true;
      if (!silent) upstream.write(chunk);
    });
    upstream.pipe(client);
    const close = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('close', close);
    upstream.on('error', close).on('close', close);
    if (this.dropAfterMs !== null) setTimeout(close, this.dropAfterMs);
  });

  #track(socket: net.Socket): net.Socket {
    this.#sockets.add(socket);
    socket.on('close', () => this.#sockets.delete(socket));
    return socket;
  }

  async listen(): Promise<string> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    const url = new URL(PG_URL);
    url.hostname = '127.0.0.1';
    url.port = String((this.#server.address() as net.AddressInfo).port);
    return url.toString();
  }

  /** Cuts every connection through the proxy now. */
  cutAll(): void {
    for (const socket of this.#sockets) socket.destroy();
  }

  async close(): Promise<void> {
    this.cutAll();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

/** What a listener was told, as it was told it. */
function listenerCalls() {
  const reconnected = deferred();
  const timedOut = deferred<Error>();
  const woke = deferred<string>();
  const errors: unknown[] = [];
  return {
    reconnected, timedOut, woke, errors,
    params: {
      onWake: (queue?: string) => woke.resolve(queue ?? ''),
      onReconnect: () => reconnected.resolve(),
      onError: (error: unknown) => {
        errors.push(error);
        if (error instanceof Error && /timeout/i.test(error.message)) timedOut.resolve(error);
      },
    },
  };
}

describe.skipIf(!DRIVER_KINDS.includes('postgres'))('the LISTEN connection against a server that does not answer (postgres)', () => {
  let tdb: TestDatabase;
  let proxy: Proxy;
  const closers: { close(): Promise<void> }[] = [];
  beforeEach(async () => {
    tdb = await createTestDatabase('postgres');
    proxy = new Proxy();
  });
  afterEach(async () => {
    await proxy.close();
    await Promise.allSettled(closers.splice(0).reverse().map((c) => c.close()));
    await tdb.cleanup();
  });

  it('fails listen() after connectTimeoutMs, as the pools fail their connects', async () => {
    proxy.blackhole = true;
    const driver: Driver = createDriver({ url: await proxy.listen(), schema: tdb.schema, connectTimeoutMs: 300 });
    closers.push(driver);
    await expect(within(driver.jobGet({ id: '1' }), 'a pooled statement to fail', 5_000)).rejects.toThrow(/timeout/i);
    const listening = driver.listen!(listenerCalls().params);
    listening.then((unlisten) => unlisten(), () => undefined);
    await expect(within(listening, 'listen() to settle', 5_000)).rejects.toThrow(/timeout/i);
  });

  it('fails listen() after connectTimeoutMs when the server answers the connect but not the LISTEN', async () => {
    proxy.silentAfterStartup = true;
    const driver: Driver = createDriver({ url: await proxy.listen(), schema: tdb.schema, connectTimeoutMs: 300 });
    closers.push(driver);
    const listening = driver.listen!(listenerCalls().params);
    listening.then((unlisten) => unlisten(), () => undefined);
    await expect(within(listening, 'listen() to settle', 5_000)).rejects.toThrow(/timeout/i);
  });

  it('rejects warden.start() after connectTimeoutMs', async () => {
    proxy.blackhole = true;
    const driver = createDriver({ url: await proxy.listen(), schema: tdb.schema, connectTimeoutMs: 300 });
    closers.push(driver);
    const warden = createWarden({ database: driver, logger: silent, jobs: [defineJob({ name: 'work', handler: () => {} })] });
    closers.push(warden);
    const starting = warden.start();
    starting.catch(() => undefined);
    await expect(within(starting, 'warden.start() to settle', 5_000)).rejects.toThrow(/timeout/i);
  });

  it('ends a reconnect attempt the server does not answer, tries again, and listens once it answers', async () => {
    const driver = createDriver({ url: await proxy.listen(), schema: tdb.schema, connectTimeoutMs: 300, handoff: false });
    closers.push(driver);
    const calls = listenerCalls();
    const unlisten = await driver.listen!(calls.params);
    closers.push({ close: unlisten });
    // The connection is lost while the server does not answer new ones: the next attempt times out.
    proxy.blackhole = true;
    proxy.cutAll();
    await within(calls.timedOut.promise, 'a reconnect attempt to time out', 10_000);
    proxy.blackhole = false;
    // The back-off is at most 5 s: the next attempt listens again well within 10 s.
    await within(calls.reconnected.promise, 'the listener to reconnect once the server answers', 10_000);
    await tdb.driver.jobInsertMany({ jobs: [makeInsert({ queue: 'q1' })], now: null });
    expect(await within(calls.woke.promise, 'a wake-up on the new connection')).toBe('q1');
  });

  it('backs off further each time the server drops the connection as soon as it is listening', async () => {
    const driver = createDriver({ url: await proxy.listen(), schema: tdb.schema, handoff: false });
    closers.push(driver);
    const calls = listenerCalls();
    const unlisten = await driver.listen!(calls.params);
    closers.push({ close: unlisten });
    // From now on every connection is cut 100 ms after it is made, long enough to connect and LISTEN.
    proxy.dropAfterMs = 100;
    const before = proxy.accepted;
    proxy.cutAll();
    await within(calls.reconnected.promise, 'a first reconnect', 5_000);
    // Reconnecting 100 ms after every drop: 12 or more connections in 3 s (17 measured). Backing off 100, 200,
    // 400, 800 ms, … after each drop: 6 or fewer (4–5 measured).
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    const attempts = proxy.accepted - before;
    expect(attempts).toBeGreaterThanOrEqual(2);
    expect(attempts).toBeLessThanOrEqual(8);
  });
});
