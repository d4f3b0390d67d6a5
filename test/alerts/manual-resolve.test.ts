/**
 * `warden.alerts.resolve(key)` finds the alert by its key, on both drivers. Before, it looked for it among the
 * 10,000 most recently changed open alerts: with more open (a dead-letter storm, one alert per dead job), an older
 * one was reported "not open" (null) and stayed open, and the operator could not close it. It resolves only the
 * episode it read: one opened again meanwhile is left open.
 * @module
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FakeClock } from '../../src/clock/fake-clock.js';
import { createWarden, type Warden } from '../../src/client/warden.js';
import type { Driver } from '../../src/driver/driver.js';
import { rawQuery, rawTime, tableRef } from '../conformance/helpers.js';
import { makeWarden, silent, T0 } from '../schedule/helpers.js';
import { overrideDriver } from '../support/override-driver.js';
import { createTestDatabase, DRIVER_KINDS, type TestDatabase } from '../support/test-databases.js';

describe.each(DRIVER_KINDS)('alerts.resolve by key (%s)', (kind) => {
  let tdb: TestDatabase;
  let warden: Warden | undefined;
  let driver: Driver | undefined;
  beforeEach(async () => {
    tdb = await createTestDatabase(kind);
  });
  afterEach(async () => {
    await warden?.close();
    await driver?.close();
    await tdb?.cleanup();
  });

  function open(key: string, now: Date) {
    return tdb.driver.alertOpen({ key, rule: 'dead-letter', severity: 'critical', summary: key, detailsJson: '{"jobId":"1"}', instance: 'test', since: null, now });
  }

  it('resolves an open alert older than the 10,000 most recently changed', async () => {
    warden = makeWarden(tdb, { clock: new FakeClock(T0), alerts: {} });
    expect(await open('dead-letter:old:1', new Date(T0))).not.toBeNull();
    // 10,000 newer ones, in one statement.
    const numbers = kind === 'postgres' ? 'SELECT generate_series(0, 9999) AS n' : 'WITH RECURSIVE s(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM s WHERE n < 9999) SELECT n FROM s';
    await rawQuery(tdb, `INSERT INTO ${tableRef(tdb, 'alerts')} (key, rule, state, severity, summary, details, episode, opened_at, updated_at, opened_by, notices)
      SELECT 'dead-letter:' || n || ':1', 'dead-letter', 'open', 'critical', 'dead', '{}', 1, ?, ?, 'test', 1 FROM (${numbers}) AS numbers`, [rawTime(tdb, new Date(T0 + 1_000)), rawTime(tdb, new Date(T0 + 1_000))]);
    expect((await tdb.driver.alertList({ state: 'open', limit: 10_000 })).some((a) => a.key === 'dead-letter:old:1')).toBe(false);

    const resolved = await warden.alerts.resolve('dead-letter:old:1', { actor: 'alice', reason: 'handled' });
    expect(resolved).toMatchObject({ key: 'dead-letter:old:1', state: 'resolved', details: { jobId: '1', resolution: 'resolved by an operator', actor: 'alice', reason: 'handled' } });
    expect(await tdb.driver.alertGet({ key: 'dead-letter:old:1' })).toMatchObject({ state: 'resolved' });
    // Not open any more, or never opened: null.
    expect(await warden.alerts.resolve('dead-letter:old:1')).toBeNull();
    expect(await warden.alerts.resolve('dead-letter:never:1')).toBeNull();
    // Opened at the database's time, which PostgreSQL keeps to the microsecond.
    await tdb.driver.alertOpen({ key: 'queue-lag:q', rule: 'queue-lag', severity: 'warning', summary: 'lag', detailsJson: '{}', instance: 'test', since: null, now: null });
    expect(await warden.alerts.resolve('queue-lag:q')).toMatchObject({ state: 'resolved' });
  });

  it('leaves an episode opened after it read the alert open', async () => {
    await open('dead-letter:7:1', new Date(T0));
    driver = overrideDriver(tdb.newDriver(), {
      alertGet: (real) => async (params) => {
        const read = await real(params);
        // Meanwhile another instance resolves it and it opens again, as the next episode.
        await tdb.driver.alertResolve({ key: params.key, detailsJson: null, instance: 'other', since: null, now: new Date(T0 + 1_000) });
        await open(params.key, new Date(T0 + 2_000));
        return read;
      },
    });
    warden = createWarden({ database: driver, logger: silent, clock: new FakeClock(T0 + 3_000), alerts: {} });
    expect(await warden.alerts.resolve('dead-letter:7:1')).toBeNull();
    expect(await tdb.driver.alertGet({ key: 'dead-letter:7:1' })).toMatchObject({ state: 'open', episode: 2 });
  });
});
