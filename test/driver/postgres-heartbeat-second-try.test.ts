/**
 * The PostgreSQL heartbeat's second try (`jobHeartbeatWaitSql`, a transaction of its own waiting at most
 * `lock_timeout` for the rows the first statement skipped). Those rows are, by design, the ones an application
 * transaction (`ctx.transaction`, a transactional step) holds locked, and such transactions may hold every
 * connection of the main pool (its default size equals the default concurrency): the try runs on the worker's own
 * connections, and a try that fails anyway leaves those leases skipped while the first statement's result (renewed,
 * stale) is reported. It ran on the main pool, waited `connectTimeoutMs` for a connection and then failed the whole
 * heartbeat, so a stale lease went unreported and its attempt was not aborted.
 * @module
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PostgresDriver } from '../../src/driver/postgres/postgres-driver.js';
import { at, claim, insertJobs, leaseOf } from '../conformance/helpers.js';
import { createTestDatabase, PG_URL, type TestDatabase } from '../support/test-databases.js';
import { deferred } from '../runtime/helpers.js';

const LEASE = 30_000;

describe('the PostgreSQL heartbeat, its second try', () => {
  let tdb: TestDatabase;
  let driver: PostgresDriver;
  beforeEach(async () => {
    tdb = await createTestDatabase('postgres');
    driver = new PostgresDriver({ connectionString: PG_URL, schema: tdb.schema!, poolSize: 1, connectTimeoutMs: 1_500 });
  });
  afterEach(async () => {
    await driver.close();
    await tdb.cleanup();
  });

  it('reports a lease locked by an application transaction as skipped, and the others as usual, while that transaction holds the whole main pool', async () => {
    const [a, b, c] = await insertJobs(driver, [{ name: 'a' }, { name: 'b' }, { name: 'c' }]);
    const leased = await claim(driver, { limit: 3, leaseMs: LEASE });
    expect(leased.map((r) => r.id).sort()).toEqual([a!.id, b!.id, c!.id].sort());
    const lease = (id: string) => leaseOf(leased.find((r) => r.id === id)!);
    // The attempt of `a` inside ctx.transaction: a transactional checkpoint holds its row; the app transaction
    // holds the (only) main-pool connection meanwhile, as 10 such attempts hold the default pool of 10.
    const release = deferred();
    const locked = deferred();
    const app = driver.transaction(async (tx) => {
      expect(await driver.jobCheckpoint({ ...lease(a!.id), checkpointJson: '{}', progressDone: 1, progressTotal: null, now: at(0), tx })).toBe('applied');
      locked.resolve();
      await release.promise;
    });
    await locked.promise;
    // `c` stale for real (a token it does not hold).
    const beat = driver.jobHeartbeat({
      leases: [lease(a!.id), lease(b!.id), { id: c!.id, leaseToken: lease(c!.id).leaseToken + 7 }],
      leaseMs: LEASE, now: at(1_000),
    });
    let outcome: unknown;
    try {
      outcome = await beat;
    } catch (error) {
      outcome = { rejected: String(error) };
    } finally {
      release.resolve();
      await app;
    }
    // Expected (the documented contract): a lease still locked is neither applied nor stale; b renewed; c stale.
    expect(outcome).toEqual({ applied: [b!.id], stale: [c!.id] });
  });

  it('reports the locked lease skipped beat after beat, its connections kept, and renews it once the transaction ended', async () => {
    const big = new PostgresDriver({ connectionString: PG_URL, schema: tdb.schema!, poolSize: 2, connectTimeoutMs: 1_500 });
    try {
      const [a, b] = await insertJobs(big, [{ name: 'a' }, { name: 'b' }]);
      const leased = await claim(big, { limit: 2, leaseMs: LEASE });
      const lease = (id: string) => leaseOf(leased.find((r) => r.id === id)!);
      const release = deferred();
      const locked = deferred();
      const app = big.transaction(async (tx) => {
        await big.jobCheckpoint({ ...lease(a!.id), checkpointJson: '{}', progressDone: 1, progressTotal: null, now: at(0), tx });
        locked.resolve();
        await release.promise;
      });
      await locked.promise;
      for (let i = 0; i < 3; i++) {
        expect(await big.jobHeartbeat({ leases: [lease(a!.id), lease(b!.id)], leaseMs: LEASE, now: at(1_000 + i) })).toEqual({ applied: [b!.id], stale: [] });
      }
      release.resolve();
      await app;
      expect(await big.jobHeartbeat({ leases: [lease(a!.id), lease(b!.id)], leaseMs: LEASE, now: at(2_000) })).toEqual({ applied: [a!.id, b!.id], stale: [] });
    } finally {
      await big.close();
    }
  });
});
