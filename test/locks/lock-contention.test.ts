/**
 * Lease locks under real contention: 5 processes contend for one lock 2,000 times in total. After about one
 * grant in ten the holder freezes its event loop for twice the TTL (a stop-the-world pause: no renewal can run),
 * so its lease expires and another process takes the lock over. Every holder then makes one fenced write in one
 * application transaction (`assertFence` + UPDATE + an append to an `accepted` log).
 *
 * What must hold: tokens are unique, strictly increasing per process and gap-free overall; the `accepted` log is
 * strictly increasing in commit order; a write that passed the fence always found the resource at an older token;
 * and no paused holder — its lease expired, and was taken over — ever got a write through, while its signal was
 * aborted with LockLostError by the time it resumed.
 */
import { afterAll, describe, type ExpectStatic, it } from 'vitest';
import { type Child, type ChildMessage, errorEvents, killAllChildren, killChild, spawnChild, waitForExit, waitForMessage } from '../process/child-process.js';
import { type Oracle, openOracle } from '../process/db-oracle.js';
import { createTestDatabase, DRIVER_KINDS, type DriverKind, type TestDatabase } from '../support/test-databases.js';

const CONTENDERS = 5;
const ATTEMPTS_EACH = 400;
const TTL_MS = 200;
const WAIT_MS = 300;
const PAUSE_MS = 2 * TTL_MS;
const PAUSE_RATE = 0.1;
const LOCK = 'contended/resource';
/** The contender script, relative to test/process/children/ (where `spawnChild` looks). */
const SCRIPT = '../../locks/children/contender.ts';

afterAll(async () => {
  await killAllChildren();
});

interface Grant {
  writer: string;
  grantedAt: number;
  releasedAt: number;
  writeMs: number;
  i: number;
  token: number;
  paused: boolean;
  writeFirst?: boolean;
  heldAtWrite: boolean;
  abortedAfterPause?: boolean;
  abortReason?: string | null;
  fencePassed?: boolean;
  updated?: boolean;
  fenceCurrentToken?: number | null;
  writeError?: unknown;
}

// The drivers run side by side: most of the time goes to pauses (idle), not to CPU.
describe.concurrent('lock contention across processes', () => {
  for (const kind of DRIVER_KINDS) {
    it(`(${kind}) ${CONTENDERS} processes × ${ATTEMPTS_EACH} acquisitions with pauses past the TTL: fenced writes stay ordered`, async ({ expect }) => {
      const children: Child[] = [];
      let tdb: TestDatabase | undefined;
      let oracle: Oracle | undefined;
      try {
        tdb = await createTestDatabase(kind);
        oracle = await openOracle(tdb);
        await contend(kind, tdb, oracle, children, expect);
      } finally {
        await Promise.allSettled(children.map((c) => killChild(c)));
        await oracle?.close();
        await tdb?.cleanup();
      }
    }, 150_000);
  }
});

async function contend(kind: DriverKind, tdb: TestDatabase, oracle: Oracle, children: Child[], expect: ExpectStatic): Promise<void> {
  const started = Date.now();
  if (kind === 'sqlite') {
    await oracle.exec(`
      CREATE TABLE fenced (resource TEXT PRIMARY KEY, token INTEGER NOT NULL, writer TEXT NOT NULL);
      CREATE TABLE accepted (seq INTEGER PRIMARY KEY AUTOINCREMENT, token INTEGER NOT NULL, writer TEXT NOT NULL, updated INTEGER NOT NULL);`);
  } else {
    await oracle.exec('CREATE TABLE {fenced} (resource text PRIMARY KEY, token bigint NOT NULL, writer text NOT NULL)');
    await oracle.exec('CREATE TABLE {accepted} (seq bigserial PRIMARY KEY, token bigint NOT NULL, writer text NOT NULL, updated int NOT NULL)');
  }
  await oracle.exec("INSERT INTO {fenced} (resource, token, writer) VALUES ('r', 0, 'nobody')");

  // PostgreSQL contenders commit with synchronous_commit=off: durability across a server crash is not under test,
  // and it takes the disk's fsync (three per grant) off the lock's critical path. Row locks, visibility and
  // commit order are unchanged.
  const url = kind === 'postgres' ? `${tdb.url}${tdb.url.includes('?') ? '&' : '?'}options=-c%20synchronous_commit%3Doff` : tdb.url;
  for (let n = 0; n < CONTENDERS; n++) {
    children.push(spawnChild(`${kind}/c${n}`, SCRIPT, {
      url, schema: tdb.schema, name: `c${n}`, kind, lock: LOCK, attempts: ATTEMPTS_EACH,
      ttlMs: TTL_MS, waitMs: WAIT_MS, pauseMs: PAUSE_MS, pauseRate: PAUSE_RATE, seed: 1000 + n,
    }));
  }
  await Promise.all(children.map((c) => waitForMessage(c, (m) => m.type === 'ready', 60_000)));
  const ready = Date.now();
  for (const c of children) c.signal('SIGUSR1');
  const done = await Promise.all(children.map((c) => waitForMessage(c, (m) => m.type === 'done', 120_000)));
  const finished = Date.now();
  for (const c of children) {
    expect(await waitForExit(c, 15_000), c.describe()).toEqual({ code: 0, signal: null });
    expect(errorEvents(c), c.describe()).toEqual([]);
    expect(c.ofType('crash'), c.describe()).toEqual([]);
  }

  const byChild = new Map<string, Grant[]>();
  // Keyed by the contender's own name (`c0`…), which is what it writes as `writer`.
  children.forEach((c, n) => byChild.set(`c${n}`, c.ofType('grant').map((m: ChildMessage) => ({ ...(m as unknown as Grant), writer: `c${n}` }))));
  const grants = [...byChild.values()].flat();
  const misses = done.reduce((sum, d) => sum + (d.misses as number), 0);
  expect(grants.length + misses, 'every attempt either granted or refused').toBe(CONTENDERS * ATTEMPTS_EACH);
  for (const d of done) expect((d.grants as number) + (d.misses as number)).toBe(ATTEMPTS_EACH);

  // No write failed for any reason other than the fence.
  expect(grants.filter((g) => g.writeError !== undefined)).toEqual([]);

  // Tokens: strictly increasing in each process's grant order, unique overall, 1..N with no gap.
  for (const [name, list] of byChild) {
    const tokens = list.map((g) => g.token);
    const ascending = tokens.every((t, k) => k === 0 || t > tokens[k - 1]!);
    expect(ascending, `tokens of ${name} in grant order: ${tokens.join(',')}`).toBe(true);
  }
  const tokens = grants.map((g) => g.token).sort((x, y) => x - y);
  expect(new Set(tokens).size, 'duplicate tokens').toBe(tokens.length);
  expect(tokens[tokens.length - 1]).toBe(grants.length);
  expect(tokens[0]).toBe(1);
  const [lockRow] = await oracle.all<{ token: unknown; holder: unknown }>('SELECT token, holder FROM {locks} WHERE name = $1', [LOCK]);
  expect(Number(lockRow!.token)).toBe(grants.length);
  // Released by its last holder, paused or not: a lease lost in a pause is still released in the database, under
  // its token (which nobody took over, it being the last), so the row is freed either way.
  expect(lockRow!.holder).toBeNull();

  // The accepted log, in commit order: strictly increasing tokens, none shared, each a fence pass reported by
  // the process that held that token, and every fence pass found the resource at an older token.
  const log = (await oracle.all<{ token: unknown; writer: string; updated: unknown }>('SELECT token, writer, updated FROM {accepted} ORDER BY seq'))
    .map((r) => ({ token: Number(r.token), writer: r.writer, updated: Number(r.updated) }));
  const outOfOrder = log.filter((r, k) => k > 0 && r.token <= log[k - 1]!.token);
  expect(outOfOrder, 'accepted writes not above every earlier accepted token').toEqual([]);
  expect(new Set(log.map((r) => r.token)).size).toBe(log.length);
  expect(log.filter((r) => r.updated !== 1), 'fence passed but the resource already had a newer token').toEqual([]);
  const passed = grants.filter((g) => g.fencePassed === true);
  expect(log.map((r) => `${r.token}:${r.writer}`).sort()).toEqual(passed.map((g) => `${g.token}:${g.writer}`).sort());
  const [resource] = await oracle.all<{ token: unknown; writer: string }>("SELECT token, writer FROM {fenced} WHERE resource = 'r'");
  expect({ token: Number(resource!.token), writer: resource!.writer }).toEqual({ token: log[log.length - 1]!.token, writer: log[log.length - 1]!.writer });

  // Paused holders: the lease expired during the pause, so the fence refused the write, and the signal was
  // aborted (renewal refused) by the time the process resumed. A newer token existed for every one of them
  // but possibly the very last grant.
  const paused = grants.filter((g) => g.paused);
  const takenOver = paused.filter((g) => g.token < grants.length);
  expect(paused.filter((g) => g.fencePassed !== false), 'paused holders whose write got through').toEqual([]);
  expect(takenOver.filter((g) => g.fenceCurrentToken === null || g.fenceCurrentToken! < g.token)).toEqual([]);
  expect(paused.filter((g) => g.abortedAfterPause !== true || g.abortReason !== 'LockLostError'), 'paused holders whose signal was not aborted').toEqual([]);
  // Those that wrote straight after the pause still believed they held the lock: only the fence stopped them.
  const writeFirst = paused.filter((g) => g.writeFirst === true);
  expect(writeFirst.filter((g) => !g.heldAtWrite), 'write-first holders that had already seen the loss').toEqual([]);
  expect(writeFirst.length, 'paused holders that wrote before their renewal ran').toBeGreaterThan(0);
  expect(paused.length - writeFirst.length, 'paused holders that wrote after their signal aborted').toBeGreaterThan(0);
  const lostEvents = done.reduce((sum, d) => sum + (d.lostEvents as number), 0);
  expect(lostEvents).toBeGreaterThanOrEqual(paused.length);

  // The run really exercised what it claims to (not assertions of Warden's behaviour, but of the test's).
  expect(paused.length, 'paused grants').toBeGreaterThanOrEqual(Math.floor(grants.length * PAUSE_RATE * 0.5));
  expect(takenOver.filter((g) => (g.fenceCurrentToken ?? 0) > g.token).length, 'paused holders seen taken over').toBeGreaterThan(0);
  const live = grants.filter((g) => !g.paused);
  expect(passed.length, 'fenced writes of holders that did not pause').toBeGreaterThanOrEqual(Math.floor(live.length * 0.5));
  expect(grants.length).toBeGreaterThanOrEqual(CONTENDERS * ATTEMPTS_EACH * 0.5);
  const writers = new Set(log.map((r) => r.writer));
  expect(writers.size, 'processes that wrote').toBe(CONTENDERS);

  console.log(JSON.stringify({
    kind, grants: grants.length, misses, paused: paused.length, pausedWriteFirst: writeFirst.length, pausedTakenOverSeen: takenOver.filter((g) => (g.fenceCurrentToken ?? 0) > g.token).length,
    fencePassed: passed.length, liveFenceRefused: live.filter((g) => g.fencePassed === false).length,
    perProcess: Object.fromEntries([...byChild].map(([n, l]) => [n, l.length])),
    avgWriteMs: Math.round(live.reduce((sum, g) => sum + g.writeMs, 0) / Math.max(1, live.length)),
    startupMs: ready - started, runMs: finished - ready,
  }));
}
