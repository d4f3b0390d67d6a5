/**
 * A TCP relay to the test PostgreSQL server that can lose a reply: once armed, the next client message containing
 * a marker goes through, the server's answer to it is swallowed once complete (its ReadyForQuery seen, so a
 * statement outside a transaction, or a COMMIT, has committed), and that connection is cut. The client then sees a
 * lost connection for a write that was done: what a network failure between commit and reply looks like. It can
 * also hold a reply back until released: a reply that arrives late.
 * @module
 */
import net from 'node:net';
import { createDriver } from '../../src/driver/create-driver.js';
import type { Driver } from '../../src/driver/driver.js';
import { createTestDatabase, PG_URL, type TestDatabase } from './test-databases.js';

/** The ReadyForQuery message PostgreSQL sends when a statement (and, outside a transaction, its commit) is done. */
const READY_FOR_QUERY = Buffer.from([0x5a, 0, 0, 0, 5]);

/**
 * A relay to the test server. After {@link Relay.arm}, the first client message containing a marker goes through;
 * the server's reply to it is dropped once it is complete (its ReadyForQuery seen: the statement committed) and
 * that connection is cut, so the client sees a lost connection for a write that was done.
 */
export class Relay {
  readonly #server: net.Server;
  #markers: string[] = [];
  /** Set by {@link Relay.hold}: the markers of the message whose reply is held, and its release. */
  #hold: { markers: string[]; released: Promise<void> } | null = null;
  /** Connections cut so far (replies lost). */
  cut = 0;
  /** Set by {@link Relay.down}: every connection is refused, as by a database that is down. */
  #down = false;
  /** The relayed connections open now, each as its function that cuts it. */
  readonly #open = new Set<() => void>();
  /** Relays to the server of {@link PG_URL}. */
  constructor() {
    const server = new URL(PG_URL);
    const target = { host: server.hostname, port: Number(server.port || 5432) };
    this.#server = net.createServer((client) => {
      if (this.#down) return void client.destroy();
      const upstream = net.connect(target);
      let swallowing = false;
      /** The server's data held back since a held message, in order; null when passing through. */
      let held: Buffer[] | null = null;
      client.on('data', (chunk) => {
        if (this.#markers.some((m) => chunk.includes(m))) {
          this.#markers = [];
          swallowing = true;
        }
        const hold = this.#hold;
        if (hold && hold.markers.some((m) => chunk.includes(m))) {
          this.#hold = null;
          const buffer: Buffer[] = (held = []);
          void hold.released.then(() => {
            held = null;
            for (const data of buffer) client.write(data);
          });
        }
        upstream.write(chunk);
      });
      upstream.on('data', (chunk) => {
        if (held) return void held.push(chunk);
        if (!swallowing) return void client.write(chunk);
        if (!chunk.includes(READY_FOR_QUERY)) return;
        this.cut++;
        client.destroy();
        upstream.destroy();
      });
      const close = () => {
        this.#open.delete(close);
        client.destroy();
        upstream.destroy();
      };
      this.#open.add(close);
      client.on('error', close).on('close', close);
      upstream.on('error', close).on('close', close);
    });
  }

  /** Starts listening on a free local port; the URL to connect through (the test database's, via the relay). */
  async listen(): Promise<string> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    const url = new URL(PG_URL);
    url.hostname = '127.0.0.1';
    url.port = String((this.#server.address() as net.AddressInfo).port);
    return url.toString();
  }

  /** Drops the reply to the next client message containing any of `markers`, and cuts its connection. */
  arm(...markers: string[]): void {
    this.#markers = markers;
  }

  /**
   * Holds back the server's reply to the next client message containing any of `markers` (and whatever that
   * connection receives after it) until the returned function is called: a reply that is late, not lost.
   */
  hold(...markers: string[]): () => void {
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    this.#hold = { markers, released };
    return release;
  }

  /**
   * The database goes down, as in a restart: every relayed connection is cut and new ones are refused (closed at
   * once) until {@link Relay.up}.
   */
  down(): void {
    this.#down = true;
    for (const cut of [...this.#open]) cut();
  }

  /** The database is back: connections are relayed again. */
  up(): void {
    this.#down = false;
  }

  /** Stops listening once every relayed connection has closed (close the clients' pools first). */
  close(): Promise<void> {
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }
}

/**
 * A test's fresh PostgreSQL schema with a {@link Relay} to its server, and what the test opened on them: `open()` in
 * `beforeEach`, `close()` in `afterEach`, which closes what was tracked (newest first: a Warden before its driver),
 * then the relay (it waits for its connections) and the schema.
 */
export class RelayedDatabase {
  /** The relay; arm it to lose a reply. */
  relay = new Relay();
  #tdb: TestDatabase | null = null;
  #opened: { close(): Promise<void> }[] = [];

  /** The test database (the driver on it connects directly, not through the relay). */
  get tdb(): TestDatabase {
    if (!this.#tdb) throw new Error('Expected open() before the test, got none');
    return this.#tdb;
  }

  async open(): Promise<void> {
    this.#tdb = await createTestDatabase('postgres');
    this.relay = new Relay();
    this.#opened = [];
  }

  /** A driver on the schema whose connections run through the relay (`direct`: straight to the server). */
  async driver(options: { direct?: boolean } = {}): Promise<Driver> {
    const url = options.direct ? PG_URL : await this.relay.listen();
    return this.track(createDriver({ url, schema: this.tdb.schema }));
  }

  /** Closes `item` in `close()`, before everything tracked earlier. */
  track<T extends { close(): Promise<void> }>(item: T): T {
    this.#opened.push(item);
    return item;
  }

  async close(): Promise<void> {
    for (const item of this.#opened.splice(0).reverse()) await item.close();
    await this.relay.close();
    await this.#tdb?.cleanup();
    this.#tdb = null;
  }
}

