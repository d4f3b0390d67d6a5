/**
 * Lease locks measure their local deadlines on elapsed time, not on the wall clock alone. A wall clock stepped back
 * (an NTP step, a resumed VM) while a renewal was in flight used to stretch the lease's deadline by the step: with
 * renewals failing, it stayed `held`, its signal not aborted, for an hour after the database let it expire and
 * another process was granted token 2; `acquire({ wait: '500ms' })` waited about an hour.
 *
 * `FakeClock.set()` backwards steps the wall time only, as a real step does; its timers and `monotonicNow()` run on,
 * as Node's timers and `performance.now()` do. Each test also with a clock of the application's own that has no
 * `monotonicNow()`. Both drivers.
 * @module
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Clock } from '../../src/clock/clock.js';
import { FakeClock } from '../../src/clock/fake-clock.js';
import { createWarden, LockLostError, type Warden, type WardenEventMap } from '../../src/index.js';
import { silent, T0, waitFor, within } from '../runtime/helpers.js';
import { overrideDriver } from '../support/override-driver.js';
import { createTestDatabase, DRIVER_KINDS, type TestDatabase } from '../support/test-databases.js';

const HOUR = 3_600_000;
const LOCK = 'reports/nightly';

let tdb: TestDatabase | undefined;
const wardens: Warden[] = [];
afterEach(async () => {
  await Promise.allSettled(wardens.splice(0).map((w) => w.close()));
  await tdb?.cleanup();
  tdb = undefined;
});

/** A Warden on the test database with its own connections (another process) and its own fake clock. */
function wardenAt(clock: Clock, overrides: Parameters<typeof overrideDriver>[1] = {}): Warden {
  const warden = createWarden({ database: overrideDriver(tdb!.newDriver(), overrides), clock, logger: silent });
  wardens.push(warden);
  return warden;
}

/**
 * The clock a test drives, and the one its Warden is given: the same `FakeClock`, or (`withoutMonotonic`) a clock of
 * the application's own over it that has no `monotonicNow()`, which Warden measures on `now()`.
 */
function clocks(withoutMonotonic: boolean): { clock: FakeClock; given: Clock } {
  const clock = new FakeClock(T0);
  if (!withoutMonotonic) return { clock, given: clock };
  return { clock, given: { now: () => clock.now(), sqlNow: () => clock.sqlNow(), sleep: (ms, signal) => clock.sleep(ms, signal), setTimer: (ms, fn) => clock.setTimer(ms, fn) } };
}

/** Each test with `FakeClock`, and with a clock without `monotonicNow()`. */
const CLOCKS = [['a FakeClock', false], ['a clock without monotonicNow', true]] as const;

describe.each(DRIVER_KINDS)('lease locks and a wall clock stepped back (%s)', (kind) => {
  // Without monotonicNow() a step back counts as no time passing: the deadline comes late by as long as the renewal
  // took, which takes no fake time here.
  it.each(CLOCKS)('a lease is given up one TTL after its last confirmed renewal request, though the wall clock stepped back an hour during it (%s)', async (_what, withoutMonotonic) => {
    tdb = await createTestDatabase(kind);
    const { clock, given } = clocks(withoutMonotonic);
    let renewals = 0;
    const a = wardenAt(given, {
      lockRenew: (renew) => async (params) => {
        renewals++;
        // From the second renewal on, the database is unreachable for this process.
        if (renewals > 1) throw Object.assign(new Error('Connection terminated unexpectedly'), { code: 'ECONNRESET' });
        const grant = await renew(params);
        await clock.set(clock.now() - HOUR); // NTP steps the wall clock back while the reply is on its way
        return grant;
      },
    });
    const lost: WardenEventMap['lock:lost'][] = [];
    a.on('lock:lost', (e) => lost.push(e));
    a.on('error', () => {});
    const ttl = 1_000;
    const lease = (await a.locks.acquire(LOCK, { ttl, holder: 'a' }))!;
    expect(lease.token).toBe(1);

    // The renewal due at +333 is confirmed: the database now lets the lease expire at +333 + ttl.
    await clock.advance(333);
    await within(waitFor(() => lease.expiresAt.getTime() === T0 + 333 + ttl), 'the first renewal to be confirmed');
    expect(clock.now()).toBe(T0 + 333 - HOUR);

    // The renewals at +666, +999 and +1332 fail; until one TTL after +333 the lease still counts as held.
    await clock.advance(ttl - 1);
    expect(renewals).toBe(4);
    expect(lease.held).toBe(true);
    await clock.advance(1);
    expect({ held: lease.held, aborted: lease.signal.aborted }).toEqual({ held: false, aborted: true });
    expect(lease.signal.reason).toBeInstanceOf(LockLostError);
    expect(lost).toEqual([{ name: LOCK, token: 1, reason: 'no confirmed renewal before the lease could expire' }]);

    // Only at that moment may another process be granted it.
    const b = wardenAt(new FakeClock(T0 + 333 + ttl));
    const taker = await b.locks.acquire(LOCK, { ttl: '10s', holder: 'b' });
    expect(taker!.token).toBe(2);
    await taker!.release();
  });

  // Without monotonicNow() the pauses acquire slept still end its wait.
  it.each(CLOCKS)('acquire gives up once `wait` has elapsed, though the wall clock stepped back an hour while it waited (%s)', async (_what, withoutMonotonic) => {
    tdb = await createTestDatabase(kind);
    const held = await wardenAt(new FakeClock(T0)).locks.acquire(LOCK, { ttl: '60s', holder: 'b' });
    expect(held!.token).toBe(1);
    const { clock, given } = clocks(withoutMonotonic);
    let outcome: { lease: unknown } | null = null;
    void wardenAt(given).locks.acquire(LOCK, { ttl: '10s', wait: '500ms', holder: 'a' }).then((lease) => (outcome = { lease }));
    const sleeping = () => outcome !== null || clock.pendingTimers === 1;
    await within(waitFor(sleeping), 'the first try to be refused');
    await clock.set(T0 - HOUR); // NTP steps the wall clock back while acquire waits

    // Tries at +25, +75, +175, +375 and +500 (the backoff doubles from 25 ms, cut to what is left of the wait).
    for (let waited = 0; waited < 475; waited += 25) {
      await clock.advance(25);
      await within(waitFor(sleeping), `acquire to sleep again at +${waited + 25}`);
    }
    expect(outcome).toBeNull();
    await clock.advance(25);
    await within(waitFor(sleeping), 'acquire to try at +500');
    expect(outcome).toEqual({ lease: null });
    expect(clock.monotonicNow() - T0).toBe(500);
  });
});
