/**
 * Lease locks in one process, on both drivers, with Warden's own `FakeClock` wherever time matters: fencing
 * tokens, refusal while held, `wait`, renewal, loss of a lease whose renewal is refused, release (also of a lease
 * lost while a renewal was in flight, and one whose release fails), `withLock` (also when releasing fails),
 * `check`/`assertFence` (also inside the application's own transaction, and tokens that are not whole numbers) and
 * `list()`.
 *
 * Several Warden instances on the same database stand in for several processes; each has its own clock, so one
 * instance can be "later" than another (its `now`, passed to SQL, is past the other's lease expiry) without the
 * other's renewal timers firing.
 */
import Database from 'better-sqlite3';
import { hostname } from 'node:os';
import pg from 'pg';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { FakeClock } from '../../src/clock/fake-clock.js';
import type { Driver } from '../../src/driver/driver.js';
import type { SqliteDriver } from '../../src/driver/sqlite/sqlite-driver.js';
import { createWarden, FenceError, InvalidDurationError, InvalidNameError, InvalidOptionError, InvalidTransactionError, type Lease, LockLostError, type Warden, type WardenEventMap } from '../../src/index.js';
import { sqliteFilename } from '../process/db-oracle.js';
import { deferred } from '../runtime/helpers.js';
import { overrideDriver, type DriverOverrides } from '../support/override-driver.js';
import { createTestDatabase, DRIVER_KINDS, PG_URL, type TestDatabase } from '../support/test-databases.js';

/** The start of fake time (far from the real clock, so nothing here can lean on database time by accident). */
const T0 = Date.UTC(2040, 0, 1, 0, 0, 0, 0);
const LOCK = 'reports/nightly';
const silent = pino({ level: 'silent' });

let tdb: TestDatabase | undefined;
const wardens: Warden[] = [];
const cleanups: (() => Promise<unknown> | unknown)[] = [];

afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await Promise.resolve(fn()).catch(() => undefined);
  await Promise.allSettled(wardens.splice(0).map((w) => w.close()));
  await tdb?.cleanup();
  tdb = undefined;
});

interface Instance {
  warden: Warden;
  clock: FakeClock;
  driver: Driver;
  events: { [K in 'lock:acquired' | 'lock:lost' | 'lock:released' | 'error']: WardenEventMap[K][] };
}

/**
 * A Warden on the test database with its own fake clock starting at `start`. `ownDriver` gives it separate
 * connections (another driver instance on the same file/schema), as another process would have; `overrides`
 * replace some of its driver's methods (to fail or hold back a call), the rest reaching the database as usual.
 */
function instance(start = T0, ownDriver = true, overrides: DriverOverrides = {}): Instance {
  const clock = new FakeClock(start);
  const driver = overrideDriver(ownDriver ? tdb!.newDriver() : tdb!.driver, overrides);
  const warden = createWarden({ database: driver, clock, logger: silent });
  wardens.push(warden);
  const events: Instance['events'] = { 'lock:acquired': [], 'lock:lost': [], 'lock:released': [], error: [] };
  warden.on('lock:acquired', (e) => events['lock:acquired'].push(e));
  warden.on('lock:lost', (e) => events['lock:lost'].push(e));
  warden.on('lock:released', (e) => events['lock:released'].push(e));
  warden.on('error', (e) => events.error.push(e));
  return { warden, clock, driver, events };
}

/** Polls `cond` (real time, every 2 ms) until it holds; a bounded wait for asynchronous database work. */
async function waitFor(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() >= deadline) throw new Error(`Expected ${what} within ${timeoutMs} ms, it did not happen`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

/** A promise's settlement, observable without awaiting it. */
function track<T>(promise: Promise<T>): { promise: Promise<T>; readonly settled: boolean } {
  let settled = false;
  const tracked = promise.finally(() => {
    settled = true;
  });
  return {
    promise: tracked,
    get settled() {
      return settled;
    },
  };
}

/**
 * Moves `clock` forward by `total` ms in steps of `step` ms. After each step, waits until every lease still held
 * has re-armed its renewal timer (a renewal that fired is a real database round trip, and the next one is only
 * scheduled once it has returned), so renewals run at the fake times they are due.
 */
async function advanceRenewing(clock: FakeClock, total: number, step: number, leases: Lease[]): Promise<void> {
  for (let moved = 0; moved < total; moved += step) {
    await clock.advance(Math.min(step, total - moved));
    // A held lease has two timers: its next renewal and its deadline (given up unless a renewal moves it).
    await waitFor('every held lease to re-arm its renewal timer', () => clock.pendingTimers === 2 * leases.filter((l) => l.held).length);
  }
}

/** Every release fails while `failing.on`, as on a connection that was lost. */
function failingRelease(failing: { on: boolean }): DriverOverrides {
  const lost = () => Object.assign(new Error('Connection terminated unexpectedly'), { code: 'ECONNRESET' });
  return { lockRelease: (release) => (params) => (failing.on ? Promise.reject(lost()) : release(params)) };
}

/** The error a promise rejects with (fails the test when it resolves). */
async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('Expected the promise to reject, it resolved');
}

describe.each(DRIVER_KINDS)('lease locks (%s)', (kind) => {
  it('grants tokens 1, 2, 3… across acquire/release and expiry takeovers, and refuses while held', async () => {
    tdb = await createTestDatabase(kind);
    const a = instance();
    const b = instance();

    const l1 = await a.warden.locks.acquire(LOCK, { ttl: '10s', holder: 'a' });
    expect(l1).not.toBeNull();
    expect(l1!.token).toBe(1);
    expect(l1!.name).toBe(LOCK);
    expect(l1!.held).toBe(true);
    expect(l1!.signal.aborted).toBe(false);
    expect(l1!.expiresAt.getTime()).toBe(T0 + 10_000);
    expect(a.events['lock:acquired']).toEqual([{ name: LOCK, token: 1, holder: 'a' }]);

    // Held: refused to another instance, and to the holder's own instance too (not re-entrant).
    expect(await b.warden.locks.acquire(LOCK, { ttl: '10s', holder: 'b' })).toBeNull();
    expect(await a.warden.locks.acquire(LOCK, { ttl: '10s', holder: 'a2' })).toBeNull();
    // A refused acquire does not use up a token.
    expect((await a.warden.locks.list()).map((r) => r.token)).toEqual([1]);

    await l1!.release();
    expect(a.events['lock:released']).toEqual([{ name: LOCK, token: 1 }]);
    const l2 = await b.warden.locks.acquire(LOCK, { ttl: '10s', holder: 'b' });
    expect(l2!.token).toBe(2);
    await l2!.release();
    const l3 = await a.warden.locks.acquire(LOCK, { ttl: '10s', holder: 'a' });
    expect(l3!.token).toBe(3);
    await l3!.release();

    // Expiry takeover: a 1 s lease never renewed (a's clock stands still). At b's T0 + 999 ms it is still held;
    // at T0 + 1000 ms (expires_at <= now) it is b's, with the next token.
    const l4 = await a.warden.locks.acquire(LOCK, { ttl: '1s', holder: 'a' });
    expect(l4!.token).toBe(4);
    await b.clock.advance(999);
    expect(await b.warden.locks.acquire(LOCK, { ttl: '1s', holder: 'b' })).toBeNull();
    await b.clock.advance(1);
    const l5 = await b.warden.locks.acquire(LOCK, { ttl: '1s', holder: 'b' });
    expect(l5!.token).toBe(5);
    expect(l5!.expiresAt.getTime()).toBe(T0 + 2_000);

    // A stale holder's release frees nothing and emits nothing: the lock stays b's.
    await l4!.release();
    expect(l4!.signal.aborted).toBe(true);
    expect(a.events['lock:released'].map((e) => e.token)).toEqual([1, 3]);
    expect(await a.warden.locks.list()).toEqual([
      { name: LOCK, token: 5, holder: 'b', acquiredAt: new Date(T0 + 1_000), expiresAt: new Date(T0 + 2_000) },
    ]);

    // A second takeover, by a third instance after b's lease expired too.
    const c = instance(T0 + 2_000);
    const l6 = await c.warden.locks.acquire(LOCK, { ttl: '1s', holder: 'c' });
    expect(l6!.token).toBe(6);
    await l6!.release();
    const l7 = await c.warden.locks.acquire(LOCK, { ttl: '1s' });
    expect(l7!.token).toBe(7);
    // The default holder is "<host>/<pid>".
    expect(c.events['lock:acquired'].map((e) => [e.token, e.holder])).toEqual([[6, 'c'], [7, `${hostname()}/${process.pid}`]]);
    await l7!.release();
    expect((await c.warden.locks.list()).map((r) => [r.token, r.holder])).toEqual([[7, null]]);
    for (const inst of [a, b, c]) expect(inst.events.error).toEqual([]);
  });

  it('rejects bad names and TTLs below 50 ms before touching the database', async () => {
    tdb = await createTestDatabase(kind);
    const a = instance();
    expect(await rejection(a.warden.locks.acquire('bad name', { ttl: '1s' }))).toBeInstanceOf(InvalidNameError);
    expect(await rejection(a.warden.locks.acquire(LOCK, { ttl: 49 }))).toBeInstanceOf(InvalidDurationError);
    expect(await rejection(a.warden.locks.acquire(LOCK, { ttl: '0ms' }))).toBeInstanceOf(InvalidDurationError);
    expect(await a.warden.locks.list()).toEqual([]);
    const ok = await a.warden.locks.acquire(LOCK, { ttl: 50 });
    expect(ok!.token).toBe(1);
    await ok!.release();
  });

  it('with `wait`, retries until the holder releases (and gives up with null when the wait runs out)', async () => {
    tdb = await createTestDatabase(kind);
    const a = instance();
    const b = instance();
    const held = await a.warden.locks.acquire(LOCK, { ttl: '30s', holder: 'a' });
    expect(held!.token).toBe(1);

    // Runs out: b keeps trying (backoff sleeps on b's clock) and returns null once 100 ms have passed.
    const short = track(b.warden.locks.acquire(LOCK, { ttl: '30s', wait: 100, holder: 'b' }));
    for (let i = 0; i < 20 && !short.settled; i++) {
      await waitFor('b to retry or give up', () => short.settled || b.clock.pendingTimers === 1);
      if (!short.settled) await b.clock.advance(50);
    }
    await waitFor('b to give up', () => short.settled);
    expect(await short.promise).toBeNull();
    expect(b.clock.now()).toBeGreaterThanOrEqual(T0 + 100);

    // Waits: every retry while a holds the lock is refused; after a releases, the next retry gets token 2.
    const long = track(b.warden.locks.acquire(LOCK, { ttl: '30s', wait: '20s', holder: 'b' }));
    let refusedRetries = 0;
    for (; refusedRetries < 5; refusedRetries++) {
      await waitFor('b to be sleeping before its next retry', () => b.clock.pendingTimers === 1);
      expect(long.settled).toBe(false);
      await b.clock.advance(1_000);
    }
    await waitFor('b to be sleeping before its next retry', () => b.clock.pendingTimers === 1);
    expect(long.settled).toBe(false);
    let released = false;
    await held!.release();
    released = true;
    let grantedAfterRelease: boolean | null = null;
    void long.promise.then(() => {
      grantedAfterRelease = released;
    });
    await b.clock.advance(1_000);
    const lease = await long.promise;
    expect(lease!.token).toBe(2);
    expect(grantedAfterRelease).toBe(true);
    expect((await b.warden.locks.list()).map((r) => [r.token, r.holder])).toEqual([[2, 'b']]);
    await lease!.release();
  });

  it('renewal keeps the lease across several TTLs', async () => {
    tdb = await createTestDatabase(kind);
    const a = instance();
    const b = instance();
    const ttl = 900;
    const lease = await a.warden.locks.acquire(LOCK, { ttl, holder: 'a' });
    expect(lease!.token).toBe(1);
    // Its renewal, and its deadline.
    expect(a.clock.pendingTimers).toBe(2);

    // Five TTLs in 250 ms steps (renewal is due every 300 ms).
    await advanceRenewing(a.clock, 5 * ttl, 250, [lease!]);
    expect(a.clock.now()).toBe(T0 + 4_500);
    expect(lease!.held).toBe(true);
    expect(lease!.signal.aborted).toBe(false);
    expect(a.events['lock:lost']).toEqual([]);
    expect(a.events.error).toEqual([]);
    // The last renewal ran at most a third of a TTL ago, so the lease runs past now.
    expect(lease!.expiresAt.getTime()).toBeGreaterThan(T0 + 4_500);
    expect(lease!.expiresAt.getTime()).toBeLessThanOrEqual(T0 + 4_500 + ttl);
    const [row] = await a.warden.locks.list();
    expect(row).toEqual({ name: LOCK, token: 1, holder: 'a', acquiredAt: new Date(T0), expiresAt: lease!.expiresAt });

    // At the same (fake) time, another instance is refused, and the fence still passes.
    await b.clock.set(T0 + 4_500);
    expect(await b.warden.locks.acquire(LOCK, { ttl, holder: 'b' })).toBeNull();
    await b.warden.locks.assertFence(LOCK, 1);
    expect(await b.warden.locks.check(LOCK, 1)).toEqual({ held: true, currentToken: 1 });

    await lease!.release();
    expect(a.clock.pendingTimers).toBe(0);
    expect(lease!.signal.aborted).toBe(true);
    expect(lease!.signal.reason).toBeInstanceOf(LockLostError);
    expect((await a.warden.locks.list())[0]).toMatchObject({ token: 1, holder: null, expiresAt: null });
  });

  it('a holder whose renewal is refused (taken over after expiry) aborts its signal with LockLostError and emits lock:lost', async () => {
    tdb = await createTestDatabase(kind);
    const a = instance();
    const b = instance();
    const ttl = 900;
    const lost = await a.warden.locks.acquire(LOCK, { ttl, holder: 'a' });
    expect(lost!.token).toBe(1);

    // a's renewals have not run (its clock stands still, like a paused process); by b's clock the lease expired.
    await b.clock.advance(ttl + 1);
    const taker = await b.warden.locks.acquire(LOCK, { ttl: '30s', holder: 'b' });
    expect(taker!.token).toBe(2);
    expect(lost!.held).toBe(true);

    // a's renewal timer fires; the database refuses the renewal of token 1.
    await a.clock.advance(ttl / 3);
    await waitFor("a's signal to abort", () => lost!.signal.aborted);
    expect(lost!.held).toBe(false);
    const reason = lost!.signal.reason as LockLostError;
    expect(reason).toBeInstanceOf(LockLostError);
    expect(reason).toMatchObject({ code: 'LOCK_LOST', lockName: LOCK, token: 1 });
    expect(a.events['lock:lost']).toEqual([{ name: LOCK, token: 1, reason: expect.stringContaining('renewal refused') }]);
    expect(a.clock.pendingTimers).toBe(0);
    expect(a.events.error).toEqual([]);

    // The stale token is fenced off; releasing it is a no-op that leaves b's lease alone.
    const fenced = await rejection(a.warden.locks.assertFence(LOCK, 1));
    expect(fenced).toBeInstanceOf(FenceError);
    expect(fenced).toMatchObject({ code: 'FENCED', lockName: LOCK, token: 1, currentToken: 2 });
    await lost!.release();
    expect(a.events['lock:released']).toEqual([]);
    expect(await a.warden.locks.list()).toEqual([{ name: LOCK, token: 2, holder: 'b', acquiredAt: new Date(T0 + ttl + 1), expiresAt: new Date(T0 + ttl + 1 + 30_000) }]);
    await taker!.release();

    // Refused without a takeover too: a renewal that only runs after the lease expired (the process was stalled).
    const stalled = await a.warden.locks.acquire(LOCK, { ttl, holder: 'a' });
    expect(stalled!.token).toBe(3);
    await a.clock.set(a.clock.now() + 2 * ttl);
    await waitFor("the stalled lease's signal to abort", () => stalled!.signal.aborted);
    expect(stalled!.signal.reason).toBeInstanceOf(LockLostError);
    expect(a.events['lock:lost'].map((e) => e.token)).toEqual([1, 3]);
    expect((await a.warden.locks.list())[0]).toMatchObject({ token: 3, holder: 'a' });
  });

  for (const failure of ['fails', 'never answers'] as const) {
    it(`a holder whose renewal ${failure} gives the lease up at its deadline, before another holder can be granted it`, async () => {
      tdb = await createTestDatabase(kind);
      const clock = new FakeClock(T0);
      const real = tdb.newDriver();
      let failing = false;
      // The holder's renewals fail (a connection error) or hang (a pool waiting on a dead connection) once set.
      const driver = overrideDriver(real, {
        lockRenew: (renew) => (params) => {
          if (!failing) return renew(params);
          return failure === 'fails' ? Promise.reject(new Error('connection reset')) : new Promise(() => {});
        },
      });
      const a = createWarden({ database: driver, clock, logger: silent });
      wardens.push(a);
      const lost: WardenEventMap['lock:lost'][] = [];
      a.on('lock:lost', (e) => lost.push(e));
      a.on('error', () => {});
      // Renewals are due every 333 ms: the third (at 999) is not the deadline (1,000), the fourth comes after it.
      const ttl = 1_000;
      const lease = (await a.locks.acquire(LOCK, { ttl, holder: 'a' }))!;
      failing = true;

      // Renewals at 333, 666 and 999 fail or hang; just before the deadline the lease still counts as held.
      await clock.advance(333);
      await clock.advance(333);
      await clock.advance(ttl - 666 - 1);
      expect(lease.held).toBe(true);
      await clock.advance(1);
      await waitFor('the lease to be given up', () => !lease.held);
      expect(lease.signal.reason).toBeInstanceOf(LockLostError);
      expect(lost).toEqual([{ name: LOCK, token: 1, reason: 'no confirmed renewal before the lease could expire' }]);

      // Only now, at the expiry, can another process be granted it.
      const b = instance(T0 + ttl);
      const taker = await b.warden.locks.acquire(LOCK, { ttl, holder: 'b' });
      expect(taker!.token).toBe(2);
      await taker!.release();
      await lease.release();
      expect(clock.pendingTimers).toBe(0);
    });
  }

  it('a lease given up at its deadline while a renewal was in flight is freed by release(), though that renewal landed late', async () => {
    tdb = await createTestDatabase(kind);
    const ttl = 1_000;
    let holdBack = false;
    const gate = deferred();
    const late: Promise<unknown>[] = [];
    // Once `holdBack` is set, renewals reach the database only when the gate opens (a pool slow to hand out a
    // connection): the statement still carries the `now` of when it was asked for.
    const a = instance(T0, true, {
      lockRenew: (renew) => (params) => {
        if (!holdBack) return renew(params);
        const landing = gate.promise.then(() => renew(params));
        late.push(landing);
        return landing;
      },
    });
    const lease = (await a.warden.locks.acquire(LOCK, { ttl, holder: 'a' }))!;
    expect(lease.token).toBe(1);
    holdBack = true;

    // The renewal due at T0 + 333 is asked for and does not answer; at T0 + ttl the lease is given up.
    await a.clock.advance(333);
    expect(late).toHaveLength(1);
    await a.clock.advance(ttl - 333);
    expect(lease.held).toBe(false);
    expect(lease.signal.reason).toBeInstanceOf(LockLostError);
    expect(a.events['lock:lost']).toEqual([{ name: LOCK, token: 1, reason: 'no confirmed renewal before the lease could expire' }]);

    // Then the renewal lands: the database extends the lease to T0 + 333 + ttl, for a holder that gave it up.
    gate.resolve();
    expect(await late[0]).toEqual({ token: 1, expiresAt: new Date(T0 + 333 + ttl) });
    expect(lease.held).toBe(false);
    const b = instance(T0 + ttl);
    expect(await b.warden.locks.list()).toEqual([
      { name: LOCK, token: 1, holder: 'a', acquiredAt: new Date(T0), expiresAt: new Date(T0 + 333 + ttl) },
    ]);

    // The holder's release frees it in the database at once, by its token: another process is granted it at the
    // lost lease's deadline, not only once the late renewal runs out.
    await lease.release();
    const taker = await b.warden.locks.acquire(LOCK, { ttl, holder: 'b' });
    expect(taker, "a grant at the lost lease's deadline").not.toBeNull();
    expect(taker!.token).toBe(2);
    expect(a.events['lock:released']).toEqual([{ name: LOCK, token: 1 }]);
    // Releasing the lost lease again touches nothing: the lock stays b's.
    await lease.release();
    expect((await b.warden.locks.list())[0]).toMatchObject({ token: 2, holder: 'b' });
    await taker!.release();
    expect(a.events.error).toEqual([]);
  });

  it('releasing a lost lease whose database release fails reports an error event and resolves', async () => {
    tdb = await createTestDatabase(kind);
    const ttl = 1_000;
    const failing = { on: false };
    const a = instance(T0, true, failingRelease(failing));
    const lease = (await a.warden.locks.acquire(LOCK, { ttl, holder: 'a' }))!;
    // Stalled past its TTL (the renewal then refused): lost.
    await a.clock.set(T0 + 2 * ttl);
    await waitFor('the lease to be lost', () => !lease.held);
    expect(a.events['lock:lost'].map((e) => e.token)).toEqual([1]);

    // The caller already knows the lease is gone (its signal aborted): a failed courtesy release is not thrown.
    failing.on = true;
    await lease.release();
    expect(a.events.error.map((e) => e.context)).toEqual([`releasing lock ${LOCK}, lost before its release`]);
    expect(a.events['lock:released']).toEqual([]);
  });

  it('release frees the lock; a released or disposed lease has an aborted signal', async () => {
    tdb = await createTestDatabase(kind);
    const a = instance();
    const b = instance();
    const lease = await a.warden.locks.acquire(LOCK, { ttl: '5s', holder: 'a' });
    let abortedWith: unknown = null;
    lease!.signal.addEventListener('abort', () => {
      abortedWith = lease!.signal.reason;
    });
    await Promise.all([lease!.release(), lease!.release()]);
    await lease!.release();
    expect(abortedWith).toBeInstanceOf(LockLostError);
    expect(lease!.held).toBe(false);
    expect(a.events['lock:released']).toEqual([{ name: LOCK, token: 1 }]);
    expect(a.events['lock:lost']).toEqual([]);
    expect(await a.warden.locks.list()).toEqual([{ name: LOCK, token: 1, holder: null, acquiredAt: new Date(T0), expiresAt: null }]);
    expect(await a.warden.locks.check(LOCK, 1)).toEqual({ held: false, currentToken: 1 });
    // Free at once, long before the 5 s TTL.
    const next = await b.warden.locks.acquire(LOCK, { ttl: '5s', holder: 'b' });
    expect(next!.token).toBe(2);

    // Symbol.asyncDispose releases too (`await using`).
    await next![Symbol.asyncDispose]();
    expect(next!.signal.aborted).toBe(true);
    let inside: number | null = null;
    {
      await using scoped = await a.warden.locks.acquire(LOCK, { ttl: '5s', holder: 'a' });
      inside = scoped!.token;
      expect((await a.warden.locks.list())[0]!.holder).toBe('a');
    }
    expect(inside).toBe(3);
    expect((await a.warden.locks.list())[0]).toMatchObject({ token: 3, holder: null, expiresAt: null });
    expect(a.events['lock:released'].map((e) => e.token)).toEqual([1, 3]);
  });

  it('withLock returns the function result, or null (without calling it) while held, and always releases', async () => {
    tdb = await createTestDatabase(kind);
    const a = instance();
    const b = instance();
    const result = await a.warden.locks.withLock(LOCK, { ttl: '5s', holder: 'a' }, async (lease) => {
      expect(lease.held).toBe(true);
      expect(await b.warden.locks.acquire(LOCK, { ttl: '5s' })).toBeNull();
      expect(await b.warden.locks.withLock(LOCK, { ttl: '5s' }, async () => 'never')).toBeNull();
      return { token: lease.token };
    });
    expect(result).toEqual({ token: 1 });
    expect((await a.warden.locks.list())[0]).toMatchObject({ token: 1, holder: null });

    const held = await b.warden.locks.acquire(LOCK, { ttl: '5s', holder: 'b' });
    expect(held!.token).toBe(2);
    let called = false;
    expect(await a.warden.locks.withLock(LOCK, { ttl: '5s' }, async () => {
      called = true;
      return 1;
    })).toBeNull();
    expect(called).toBe(false);
    await held!.release();

    // A throwing function: the error propagates and the lock is released anyway.
    let seen: Lease | null = null;
    const error = await rejection(a.warden.locks.withLock(LOCK, { ttl: '5s', holder: 'a' }, async (lease) => {
      seen = lease;
      throw new Error('boom');
    }));
    expect((error as Error).message).toBe('boom');
    expect(seen!.token).toBe(3);
    expect(seen!.signal.aborted).toBe(true);
    expect((await a.warden.locks.list())[0]).toMatchObject({ token: 3, holder: null });
    expect(a.events['lock:released'].map((e) => e.token)).toEqual([1, 3]);
  });

  it('withLock returns the result of a critical section that completed, though releasing the lock failed', async () => {
    tdb = await createTestDatabase(kind);
    const ttl = 1_000;
    const a = instance(T0, true, failingRelease({ on: true }));
    let ran = false;
    const result = await a.warden.locks.withLock(LOCK, { ttl, holder: 'a' }, async () => {
      ran = true;
      return 'report sent';
    });
    expect(ran).toBe(true);
    expect(result).toBe('report sent');
    // The failed release is reported, naming the lock; nothing claims it was released.
    expect(a.events.error).toHaveLength(1);
    expect(a.events.error[0]!.context).toBe(`releasing lock ${LOCK} after withLock`);
    expect((a.events.error[0]!.error as Error).message).toBe('Connection terminated unexpectedly');
    expect(a.events['lock:released']).toEqual([]);

    // The lock is still held in the database, and frees itself at its TTL.
    expect(await instance(T0 + ttl - 1).warden.locks.acquire(LOCK, { ttl, holder: 'b' })).toBeNull();
    const taker = await instance(T0 + ttl).warden.locks.acquire(LOCK, { ttl, holder: 'c' });
    expect(taker!.token).toBe(2);
    await taker!.release();
  });

  it("withLock rethrows the critical section's own error, though releasing the lock failed", async () => {
    tdb = await createTestDatabase(kind);
    const a = instance(T0, true, failingRelease({ on: true }));
    const own = new Error('upstream refused the report');
    const error = await rejection(a.warden.locks.withLock(LOCK, { ttl: '10s', holder: 'a' }, async () => {
      throw own;
    }));
    expect(error).toBe(own);
    expect(a.events.error.map((e) => e.context)).toEqual([`releasing lock ${LOCK} after withLock`]);
  });

  it('assertFence passes for the live token and throws FenceError for an older token, after expiry and after release', async () => {
    tdb = await createTestDatabase(kind);
    const a = instance();
    const ttl = 1_000;
    // Never granted: no current token.
    expect(await rejection(a.warden.locks.assertFence(LOCK, 1))).toMatchObject({ name: 'FenceError', token: 1, currentToken: null });
    expect(await a.warden.locks.check(LOCK, 1)).toEqual({ held: false, currentToken: null });

    const lease = await a.warden.locks.acquire(LOCK, { ttl, holder: 'a' });
    await a.warden.locks.assertFence(LOCK, lease!.token);
    expect(await a.warden.locks.check(LOCK, 1)).toEqual({ held: true, currentToken: 1 });
    const e = await rejection(a.warden.locks.assertFence(LOCK, 2));
    expect(e).toBeInstanceOf(FenceError);
    expect(e).toMatchObject({ lockName: LOCK, token: 2, currentToken: 1 });
    // No grant has 0, a negative or a fractional token: an input error, not a fence verdict.
    for (const wrong of [0, -1, 1.5]) {
      expect(await rejection(a.warden.locks.assertFence(LOCK, wrong)), `token ${wrong}`).toBeInstanceOf(InvalidOptionError);
    }

    // After expiry (another instance's clock, so a's lease does not renew): 1 ms before, it still passes.
    const before = instance(T0 + ttl - 1);
    await before.warden.locks.assertFence(LOCK, 1);
    const after = instance(T0 + ttl);
    const expired = await rejection(after.warden.locks.assertFence(LOCK, 1));
    expect(expired).toBeInstanceOf(FenceError);
    expect(expired).toMatchObject({ token: 1, currentToken: 1 });
    expect(await after.warden.locks.check(LOCK, 1)).toEqual({ held: false, currentToken: 1 });

    // Taken over: the old token fails everywhere (even on the old holder's own clock), the new one passes.
    const taker = await after.warden.locks.acquire(LOCK, { ttl, holder: 'after' });
    expect(taker!.token).toBe(2);
    expect(await rejection(a.warden.locks.assertFence(LOCK, 1))).toMatchObject({ name: 'FenceError', token: 1, currentToken: 2 });
    await after.warden.locks.assertFence(LOCK, 2);

    // Released: not even the newest token passes.
    await taker!.release();
    expect(await rejection(after.warden.locks.assertFence(LOCK, 2))).toMatchObject({ name: 'FenceError', token: 2, currentToken: 2 });
  });

  it('check and assertFence refuse a token that is not a positive whole number, the text of the live one too, before any SQL', async () => {
    tdb = await createTestDatabase(kind);
    const a = instance();
    const lease = await a.warden.locks.acquire(LOCK, { ttl: '10s', holder: 'a' });
    expect(lease!.token).toBe(1);
    let checks = 0;
    const counted = createWarden({
      database: overrideDriver(tdb.newDriver(), {
        lockCheck: (real) => (params) => {
          checks++;
          return real(params);
        },
      }),
      clock: a.clock,
      logger: silent,
    });
    wardens.push(counted);

    // The text '1' is what `pg` reads back from a bigint column: refused on every driver, saying how to pass it.
    const bad: [unknown, string][] = [
      ['1', 'Expected token to be a positive whole number, as a number (pass Number(token)), got "1" (string, length 1)'],
      [1n, 'Expected token to be a positive whole number, as a number (pass Number(token)), got 1n (bigint)'],
      [0, 'Expected token to be a positive whole number, got 0 (number)'],
      [-1, 'Expected token to be a positive whole number, got -1 (number)'],
      [1.5, 'Expected token to be a positive whole number, got 1.5 (number)'],
      [Number.NaN, 'Expected token to be a positive whole number, got NaN (number)'],
      [2 ** 53, `Expected token to be a positive whole number, got ${2 ** 53} (number)`],
      [null, 'Expected token to be a positive whole number, got null'],
      ['one', 'Expected token to be a positive whole number, got "one" (string, length 3)'],
    ];
    for (const [token, message] of bad) {
      for (const call of [() => counted.locks.check(LOCK, token as number), () => counted.locks.assertFence(LOCK, token as number)]) {
        const error = await rejection(call());
        expect(error, `token ${String(token)}`).toBeInstanceOf(InvalidOptionError);
        expect(error, `token ${String(token)}`).toMatchObject({ code: 'INVALID_OPTION', field: 'token', value: token, message });
      }
    }
    expect(checks).toBe(0);

    // The live token as a number (the text passed through Number) verifies on every driver.
    expect(await counted.locks.check(LOCK, Number('1'))).toEqual({ held: true, currentToken: 1 });
    await counted.locks.assertFence(LOCK, lease!.token);
    expect(checks).toBe(2);
    await lease!.release();
  });

  it('list() shows every lock with holder, token and expiry, by name', async () => {
    tdb = await createTestDatabase(kind);
    const a = instance();
    const z = await a.warden.locks.acquire('z-lock', { ttl: '7s', holder: 'holder-z' });
    const m1 = await a.warden.locks.acquire('m:lock/1', { ttl: '3s', holder: 'holder-m' });
    await m1!.release();
    await a.clock.advance(10);
    const m2 = await a.warden.locks.acquire('m:lock/1', { ttl: '3s', holder: 'holder-m2' });
    const b = await a.warden.locks.acquire('b.lock', { ttl: 60_000, holder: 'holder-b' });
    await b!.release();
    expect(await a.warden.locks.list()).toEqual([
      { name: 'b.lock', token: 1, holder: null, acquiredAt: new Date(T0 + 10), expiresAt: null },
      { name: 'm:lock/1', token: 2, holder: 'holder-m2', acquiredAt: new Date(T0 + 10), expiresAt: new Date(T0 + 3_010) },
      { name: 'z-lock', token: 1, holder: 'holder-z', acquiredAt: new Date(T0), expiresAt: new Date(T0 + 7_000) },
    ]);
    expect(m2!.expiresAt).toEqual(new Date(T0 + 3_010));
    expect(z!.expiresAt).toEqual(new Date(T0 + 7_000));
    await z!.release();
    await m2!.release();
  });

  // docs/guarantees.md: a fenced write "commits only if `token` was the live grant at the check".
  it("with the application's transaction, expiry is judged when the check runs, not when the transaction began", async () => {
    tdb = await createTestDatabase(kind);
    const ttl = 1_000;
    // The holder's fake clock starts at the database's time and stands still: its lease is never renewed and
    // expires `ttl` after the grant, in database time.
    const holder = instance((await tdb.driver.dbNow()).getTime());
    // The checker uses the system clock, so `now` in SQL is the database's own clock.
    const checker = createWarden({ database: tdb.driver, logger: silent });
    wardens.push(checker);
    const lease = await holder.warden.locks.acquire(LOCK, { ttl, holder: 'holder' });
    const expiresAt = lease!.expiresAt.getTime();

    let tx: unknown;
    let commit: () => Promise<unknown>;
    if (kind === 'sqlite') {
      const app = new Database(sqliteFilename(tdb.url), { timeout: 5_000 });
      cleanups.push(() => app.close());
      app.exec('BEGIN IMMEDIATE');
      tx = app;
      commit = async () => app.exec('COMMIT');
    } else {
      const client = new pg.Client({ connectionString: PG_URL });
      client.on('error', () => undefined);
      await client.connect();
      cleanups.push(() => client.end());
      await client.query('BEGIN');
      tx = client;
      commit = () => client.query('COMMIT');
    }
    // The transaction began while the lease was live (the check passes) …
    await checker.locks.assertFence(LOCK, lease!.token, { tx });
    // … and is still open once the database clock is past the expiry.
    await waitFor('the database clock to pass the lease expiry', async () => (await tdb!.driver.dbNow()).getTime() > expiresAt + 50);
    expect(await checker.locks.check(LOCK, lease!.token)).toEqual({ held: false, currentToken: 1 });
    const inTx = await checker.locks.check(LOCK, lease!.token, { tx }).catch((error: unknown) => error);
    await commit();
    expect(inTx, 'check inside the transaction after the lease expired').toEqual({ held: false, currentToken: 1 });
  });

  if (kind === 'sqlite') {
    it("check/assertFence inside the application's SQLite transaction (a second connection in BEGIN IMMEDIATE)", async () => {
      tdb = await createTestDatabase(kind);
      const a = instance();
      const ttl = 1_000;
      const app = new Database(sqliteFilename(tdb.url), { timeout: 5_000 });
      cleanups.push(() => app.close());
      app.exec('CREATE TABLE fenced (resource TEXT PRIMARY KEY, token INTEGER NOT NULL, writer TEXT NOT NULL)');
      app.exec("INSERT INTO fenced VALUES ('r', 0, 'nobody')");
      const write = app.prepare("UPDATE fenced SET token = ?, writer = ? WHERE resource = 'r' AND token < ?");

      // Outside a transaction the handle is refused.
      expect(await rejection(a.warden.locks.check(LOCK, 1, { tx: app }))).toBeInstanceOf(InvalidTransactionError);

      const lease = await a.warden.locks.acquire(LOCK, { ttl, holder: 'a' });
      app.exec('BEGIN IMMEDIATE');
      await a.warden.locks.assertFence(LOCK, lease!.token, { tx: app });
      expect(await a.warden.locks.check(LOCK, lease!.token, { tx: app })).toEqual({ held: true, currentToken: 1 });
      expect(write.run(1, 'a', 1).changes).toBe(1);

      // Another instance, by whose clock the lease has expired, cannot be granted it while the application's
      // write transaction is open: its acquire is retried on SQLITE_BUSY until the COMMIT.
      const b = instance(T0 + ttl + 500);
      const bDriver = b.driver as SqliteDriver;
      let committed = false;
      let grantedAfterCommit: boolean | null = null;
      const taking = track(b.warden.locks.acquire(LOCK, { ttl, holder: 'b' }).then((l) => {
        grantedAfterCommit = committed;
        return l;
      }));
      await waitFor("b's acquire to be held back by the application's transaction", () => bDriver.busyRetries >= 3 || taking.settled);
      expect(taking.settled).toBe(false);
      committed = true;
      app.exec('COMMIT');
      const taker = await taking.promise;
      expect(taker!.token).toBe(2);
      expect(grantedAfterCommit).toBe(true);
      expect(app.prepare("SELECT token, writer FROM fenced WHERE resource = 'r'").get()).toEqual({ token: 1, writer: 'a' });

      // Now the stale holder's fenced write is refused inside its transaction and rolled back.
      app.exec('BEGIN IMMEDIATE');
      const stale = await rejection(a.warden.locks.assertFence(LOCK, lease!.token, { tx: app }));
      expect(stale).toBeInstanceOf(FenceError);
      expect(stale).toMatchObject({ token: 1, currentToken: 2 });
      app.exec('ROLLBACK');
      app.exec('BEGIN IMMEDIATE');
      await b.warden.locks.assertFence(LOCK, 2, { tx: app });
      expect(write.run(2, 'b', 2).changes).toBe(1);
      app.exec('COMMIT');
      expect(app.prepare("SELECT token, writer FROM fenced WHERE resource = 'r'").get()).toEqual({ token: 2, writer: 'b' });
      await taker!.release();
    });
  }

  if (kind === 'postgres') {
    it("assertFence in the application's pg transaction holds off a competing acquire of the expired lock until COMMIT", async () => {
      tdb = await createTestDatabase(kind);
      const schema = tdb.schema!;
      const a = instance();
      const ttl = 1_000;
      const client = new pg.Client({ connectionString: PG_URL });
      client.on('error', () => undefined);
      await client.connect();
      cleanups.push(() => client.end());
      const observer = new pg.Client({ connectionString: PG_URL });
      observer.on('error', () => undefined);
      await observer.connect();
      cleanups.push(() => observer.end());
      await client.query(`CREATE TABLE "${schema}".fenced (resource text PRIMARY KEY, token bigint NOT NULL, writer text NOT NULL)`);
      await client.query(`INSERT INTO "${schema}".fenced VALUES ('r', 0, 'nobody')`);
      const write = `UPDATE "${schema}".fenced SET token = $1, writer = $2 WHERE resource = 'r' AND token < $1`;

      // A pool is not a transaction.
      const pool = new pg.Pool({ connectionString: PG_URL, max: 1 });
      cleanups.push(() => pool.end());
      expect(await rejection(a.warden.locks.check(LOCK, 1, { tx: pool }))).toBeInstanceOf(InvalidTransactionError);

      const lease = await a.warden.locks.acquire(LOCK, { ttl, holder: 'a' });
      await client.query('BEGIN');
      await a.warden.locks.assertFence(LOCK, lease!.token, { tx: client });
      expect((await client.query(write, [1, 'a'])).rowCount).toBe(1);

      // By b's clock the lease expired, but the row is held FOR SHARE by the open transaction: b's grant waits.
      const b = instance(T0 + ttl + 500);
      let committed = false;
      let grantedAfterCommit: boolean | null = null;
      const taking = track(b.warden.locks.acquire(LOCK, { ttl, holder: 'b' }).then((l) => {
        grantedAfterCommit = committed;
        return l;
      }));
      await waitFor("b's acquire to wait on the lock row", async () => {
        const { rows } = await observer.query(
          `SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND state = 'active' AND query LIKE $1`,
          [`%"${schema}".locks%`],
        );
        return rows[0].n >= 1 || taking.settled;
      });
      expect(taking.settled).toBe(false);
      // Shared: another fence check of the same lock is not blocked by it.
      expect(await a.warden.locks.check(LOCK, 1)).toEqual({ held: true, currentToken: 1 });
      expect(taking.settled).toBe(false);
      committed = true;
      await client.query('COMMIT');
      const taker = await taking.promise;
      expect(taker!.token).toBe(2);
      expect(grantedAfterCommit).toBe(true);
      expect((await observer.query(`SELECT token::int, writer FROM "${schema}".fenced`)).rows).toEqual([{ token: 1, writer: 'a' }]);

      // The stale holder is fenced off inside its next transaction; the new holder writes.
      await client.query('BEGIN');
      const stale = await rejection(a.warden.locks.assertFence(LOCK, 1, { tx: client }));
      expect(stale).toBeInstanceOf(FenceError);
      expect(stale).toMatchObject({ token: 1, currentToken: 2 });
      await client.query('ROLLBACK');
      await client.query('BEGIN');
      await b.warden.locks.assertFence(LOCK, 2, { tx: client });
      expect((await client.query(write, [2, 'b'])).rowCount).toBe(1);
      await client.query('COMMIT');
      expect((await observer.query(`SELECT token::int, writer FROM "${schema}".fenced`)).rows).toEqual([{ token: 2, writer: 'b' }]);
      await taker!.release();
      await lease!.release();
    });
  }
});
