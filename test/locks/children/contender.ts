/**
 * One contender of the lock-contention test. After printing `ready` it waits for SIGUSR1 (so all contenders
 * start together), then tries `attempts` times to acquire the lock. After each grant it sometimes "pauses":
 * blocks its event loop synchronously for `pauseMs` (longer than the TTL, so its renewals cannot run and the
 * lease expires). Then, pause or not, it makes one fenced write in ONE application transaction — a paused
 * holder either right away (still believing it holds the lock) or after its signal has aborted:
 *
 *   assertFence(lock, token, { tx }); UPDATE fenced SET token, writer WHERE resource = 'r' AND token < $token;
 *   INSERT INTO accepted (token, writer, updated)
 *
 * The application's transaction is a separate better-sqlite3 connection in `BEGIN IMMEDIATE` (SQLite) or a
 * pg.Pool client in `BEGIN` (PostgreSQL). Every grant is reported as one `grant` line:
 * `{ i, token, paused, writeFirst, heldAtWrite, abortedAfterPause, abortReason, fencePassed, updated,
 * fenceCurrentToken, writeError }` plus timings.
 * @module
 */
import Database from 'better-sqlite3';
import pg from 'pg';
import { pino } from 'pino';
import { createWarden, FenceError, type Lease } from '../../../src/index.js';
import { type BaseConfig, describeError, forwardEvents, readConfig, reportCrashes, send } from '../../process/children/child-common.js';

interface Config extends BaseConfig {
  kind: 'sqlite' | 'postgres';
  lock: string;
  attempts: number;
  ttlMs: number;
  waitMs: number;
  pauseMs: number;
  /** Probability that a grant is followed by a pause. */
  pauseRate: number;
  /** Seed of this contender's pause decisions (reproducible runs). */
  seed: number;
}

reportCrashes();
const config = readConfig<Config>();

/** mulberry32: a small seeded generator, so which grants pause is reproducible from the seed. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const random = seeded(config.seed);

const warden = createWarden({ database: config.url, schema: config.schema, logger: pino({ level: 'silent' }) });
forwardEvents(warden, ['error']);
let lostEvents = 0;
warden.on('lock:lost', () => {
  lostEvents++;
});

/**
 * The fenced write, in ONE application transaction: the fence check through `tx`, then the conditional UPDATE
 * of the shared resource and the append to the `accepted` log (with whether the UPDATE changed the row).
 * Resolves with whether the UPDATE changed the row; rejects with the FenceError when the fence refused it.
 */
let fencedWrite: (token: number) => Promise<boolean>;
let closeApp: () => Promise<void>;
/** Opens the application's connection before the start. */
let warmApp: () => Promise<unknown>;
if (config.kind === 'sqlite') {
  const filename = config.url.slice('sqlite:'.length).replace(/^\/\//, '');
  // The application's own connection; better-sqlite3 waits (synchronously) up to 10 s for the write lock.
  const db = new Database(filename, { timeout: 10_000 });
  // As the driver's own connection: in WAL mode, NORMAL survives process crashes without an fsync per commit.
  db.pragma('synchronous = NORMAL');
  const update = db.prepare("UPDATE fenced SET token = ?, writer = ? WHERE resource = 'r' AND token < ?");
  const append = db.prepare('INSERT INTO accepted (token, writer, updated) VALUES (?, ?, ?)');
  fencedWrite = async (token) => {
    db.exec('BEGIN IMMEDIATE');
    try {
      await warden.locks.assertFence(config.lock, token, { tx: db });
      const changed = update.run(token, config.name, token).changes;
      append.run(token, config.name, changed);
      db.exec('COMMIT');
      return changed === 1;
    } catch (error) {
      if (db.inTransaction) db.exec('ROLLBACK');
      throw error;
    }
  };
  closeApp = async () => {
    db.close();
  };
  warmApp = async () => db.prepare('SELECT count(*) FROM accepted').get();
} else {
  const s = `"${config.schema}"`;
  // One statement for both writes (a round trip less per grant); both still inside the fenced transaction.
  const write = `WITH u AS (UPDATE ${s}.fenced SET token = $1, writer = $2 WHERE resource = 'r' AND token < $1 RETURNING 1)
INSERT INTO ${s}.accepted (token, writer, updated) SELECT $1, $2, count(*) FROM u RETURNING updated`;
  const pool = new pg.Pool({ connectionString: config.url, max: 1 });
  pool.on('error', () => undefined);
  fencedWrite = async (token) => {
    const client = await pool.connect();
    let broken = false;
    try {
      await client.query('BEGIN');
      await warden.locks.assertFence(config.lock, token, { tx: client });
      const { rows } = await client.query<{ updated: number }>(write, [token, config.name]);
      await client.query('COMMIT');
      return rows[0]?.updated === 1;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {
        broken = true;
      });
      throw error;
    } finally {
      client.release(broken);
    }
  };
  closeApp = () => pool.end();
  warmApp = () => pool.query('SELECT 1');
}

// A signal listener does not keep the event loop alive; the interval does, until the start signal.
const keepAlive = setInterval(() => undefined, 60_000);
const go = new Promise<void>((resolve) => process.once('SIGUSR1', () => resolve()));
// Open both connections before the start, so the first acquisitions are not skewed by connection setup.
await warden.locks.list();
await warmApp();
send({ type: 'ready', name: config.name, pid: process.pid });
await go;
clearInterval(keepAlive);

const sleeper = new Int32Array(new SharedArrayBuffer(4));

/**
 * Records whether the lease's signal aborted after a pause: gives the overdue renewal timer its event-loop
 * turn, then waits (at most 2 s) for the refused renewal to come back.
 */
async function observeSignal(lease: Lease, report: Record<string, unknown>): Promise<void> {
  await new Promise((resolve) => setImmediate(resolve));
  await new Promise<void>((resolve) => {
    if (lease.signal.aborted) return resolve();
    const timer = setTimeout(resolve, 2_000);
    lease.signal.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve();
    }, { once: true });
  });
  report.abortedAfterPause = lease.signal.aborted;
  report.abortReason = lease.signal.aborted ? (lease.signal.reason as Error).name : null;
}
let grants = 0;
let misses = 0;
for (let i = 0; i < config.attempts; i++) {
  const asked = Date.now();
  const lease = await warden.locks.acquire(config.lock, { ttl: config.ttlMs, wait: config.waitMs, holder: config.name });
  if (!lease) {
    misses++;
    continue;
  }
  grants++;
  const grantedAt = Date.now();
  const report: Record<string, unknown> = { type: 'grant', i, token: lease.token, paused: false, waitedMs: grantedAt - asked, grantedAt };
  if (random() < config.pauseRate) {
    report.paused = true;
    // Half the pauses write first: straight after the pause, before the overdue renewal had a turn, so the
    // holder still believes it holds the lock (`lease.held`) and only the fence can stop the write.
    report.writeFirst = random() < 0.5;
    // A stop-the-world pause (GC, swap, SIGSTOP…): nothing in this process runs, renewals included.
    Atomics.wait(sleeper, 0, 0, config.pauseMs);
    if (!report.writeFirst) await observeSignal(lease, report);
  }
  report.heldAtWrite = lease.held;
  // The write goes ahead whatever the signal says: the fence, not the holder's good manners, must stop it.
  try {
    report.updated = await fencedWrite(lease.token);
    report.fencePassed = true;
    report.writeMs = Date.now() - grantedAt;
  } catch (error) {
    report.writeMs = Date.now() - grantedAt;
    if (error instanceof FenceError) {
      report.fencePassed = false;
      report.fenceCurrentToken = error.currentToken;
    } else {
      report.writeError = describeError(error);
    }
  }
  if (report.paused && report.writeFirst) await observeSignal(lease, report);
  const releasing = Date.now();
  await lease.release();
  report.releasedAt = Date.now();
  report.releaseMs = Date.now() - releasing;
  send(report as { type: string });
  // A little time outside the lock (as real work would have), so the others get their turns.
  await new Promise((resolve) => setTimeout(resolve, Math.floor(random() * 4)));
}

send({ type: 'done', name: config.name, grants, misses, lostEvents });
await warden.close();
await closeApp();
process.exit(0);
