/**
 * `warden.alerts.resolve(key)` finds the alert by its key, on both drivers. Before, it looked for it among the
 * 10,000 most recently changed open alerts: with more open (a dead-letter storm, one alert per dead job), an older
 * one was reported "not open" (null) and stayed open, and the operator could not close it. It resolves only the
 * episode it read: one opened again meanwhile is left open.
 * @module
 */
import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../src/clock/fake-clock.js';
import { createWarden, type Warden } from '../../src/client/warden.js';
import { rawQuery, rawTime, tableRef } from '../conformance/helpers.js';
import { silent, T0 } from '../schedule/helpers.js';
import { alertTestBed } from '../support/alert-rules.js';
import { overrideDriver } from '../support/override-driver.js';
import { DRIVER_KINDS } from '../support/test-databases.js';

describe.each(DRIVER_KINDS)('alerts.resolve by key (%s)', (kind) => {
  const bed = alertTestBed(kind);

  function open(key: string, now: Date) {
    return bed.tdb.driver.alertOpen({ key, rule: 'dead-letter', severity: 'critical', summary: key, detailsJson: '{"jobId":"1"}', instance: 'test', since: null, now });
  }

  it('resolves an open alert older than the 10,000 most recently changed', async () => {
    const warden = bed.warden({ alerts: {} });
    expect(await open('dead-letter:old:1', new Date(T0))).not.toBeNull();
    // 10,000 newer ones, in one statement.
    const numbers = kind === 'postgres' ? 'SELECT generate_series(0, 9999) AS n' : 'WITH RECURSIVE s(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM s WHERE n < 9999) SELECT n FROM s';
    await rawQuery(bed.tdb, `INSERT INTO ${tableRef(bed.tdb, 'alerts')} (key, rule, state, severity, summary, details, episode, opened_at, updated_at, opened_by, notices)
      SELECT 'dead-letter:' || n || ':1', 'dead-letter', 'open', 'critical', 'dead', '{}', 1, ?, ?, 'test', 1 FROM (${numbers}) AS numbers`, [rawTime(bed.tdb, new Date(T0 + 1_000)), rawTime(bed.tdb, new Date(T0 + 1_000))]);
    expect((await bed.tdb.driver.alertList({ state: 'open', limit: 10_000 })).some((a) => a.key === 'dead-letter:old:1')).toBe(false);

    const resolved = await warden.alerts.resolve('dead-letter:old:1', { actor: 'alice', reason: 'handled' });
    expect(resolved).toMatchObject({ key: 'dead-letter:old:1', state: 'resolved', details: { jobId: '1', resolution: 'resolved by an operator', actor: 'alice', reason: 'handled' } });
    expect(await bed.tdb.driver.alertGet({ key: 'dead-letter:old:1' })).toMatchObject({ state: 'resolved' });
    // Not open any more, or never opened: null.
    expect(await warden.alerts.resolve('dead-letter:old:1')).toBeNull();
    expect(await warden.alerts.resolve('dead-letter:never:1')).toBeNull();
    // Opened at the database's time, which PostgreSQL keeps to the microsecond.
    await bed.tdb.driver.alertOpen({ key: 'queue-lag:q', rule: 'queue-lag', severity: 'warning', summary: 'lag', detailsJson: '{}', instance: 'test', since: null, now: null });
    expect(await warden.alerts.resolve('queue-lag:q')).toMatchObject({ state: 'resolved' });
  });

  it('leaves an episode opened after it read the alert open', async () => {
    await open('dead-letter:7:1', new Date(T0));
    const driver = bed.closeAfter(overrideDriver(bed.tdb.newDriver(), {
      alertGet: (real) => async (params) => {
        const read = await real(params);
        // Meanwhile another instance resolves it and it opens again, as the next episode.
        await bed.tdb.driver.alertResolve({ key: params.key, detailsJson: null, instance: 'other', since: null, now: new Date(T0 + 1_000) });
        await open(params.key, new Date(T0 + 2_000));
        return read;
      },
    }), (d) => d.close());
    const warden: Warden = bed.closeAfter(createWarden({ database: driver, logger: silent, clock: new FakeClock(T0 + 3_000), alerts: {} }), (w) => w.close());
    expect(await warden.alerts.resolve('dead-letter:7:1')).toBeNull();
    expect(await bed.tdb.driver.alertGet({ key: 'dead-letter:7:1' })).toMatchObject({ state: 'open', episode: 2 });
  });
});
