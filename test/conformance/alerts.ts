/**
 * Conformance: alerts — `alertOpen` (insert, dedup while open, a new episode after resolve, the `since` guard,
 * inside a transaction, and concurrent openers on separate connections: exactly one gets the row), `alertResolve`
 * (once, details kept or replaced, the `since` guard) and `alertList` (filters, order). Every call gets an explicit
 * `now`.
 * @module
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AlertOpenParams, AlertRow } from '../../src/driver/alert-params.js';
import type { Driver } from '../../src/driver/driver.js';
import { createTestDatabase, type DriverKind, type TestDatabase } from '../support/test-databases.js';
import { at } from './helpers.js';

const KEY = 'queue-lag:default';

/** Declares the alert conformance tests for one driver kind. */
export function exerciseAlerts(kind: DriverKind): void {
  describe('alerts', () => {
    let tdb: TestDatabase;
    beforeEach(async () => {
      tdb = await createTestDatabase(kind);
    });
    afterEach(async () => {
      await tdb.cleanup();
    });

    function open(now: Date, overrides: Partial<AlertOpenParams> = {}, driver: Driver = tdb.driver): Promise<AlertRow | null> {
      return driver.alertOpen({
        key: KEY, rule: 'queue-lag', severity: 'warning', summary: 'queue default is 6m behind', detailsJson: JSON.stringify({ lagMs: 360_000 }),
        instance: 'i1', since: null, now, ...overrides,
      });
    }

    function resolve(now: Date, overrides: Partial<Parameters<Driver['alertResolve']>[0]> = {}): Promise<AlertRow | null> {
      return tdb.driver.alertResolve({ key: KEY, detailsJson: null, instance: 'i2', since: null, now, ...overrides });
    }

    it('opens a new key once: the row comes back to the opener only, and a second open changes nothing', async () => {
      const row = await open(at(1_000));
      expect(row).toEqual({
        key: KEY, rule: 'queue-lag', state: 'open', severity: 'warning', summary: 'queue default is 6m behind', details: { lagMs: 360_000 },
        episode: 1, openedAt: at(1_000), resolvedAt: null, updatedAt: at(1_000), openedBy: 'i1', resolvedBy: null, notices: 1,
      } satisfies AlertRow);
      expect(await open(at(2_000), { instance: 'i3', detailsJson: '{"lagMs":1}' })).toBeNull();
      expect(await tdb.driver.alertList({})).toEqual([row]);
    });

    it('resolves an open alert once, keeping the details unless new ones are given', async () => {
      await open(at(0));
      const resolved = await resolve(at(5_000));
      expect(resolved).toMatchObject({ state: 'resolved', resolvedAt: at(5_000), updatedAt: at(5_000), resolvedBy: 'i2', details: { lagMs: 360_000 }, notices: 2, openedAt: at(0) });
      expect(await resolve(at(6_000))).toBeNull();
      expect(await tdb.driver.alertResolve({ key: 'no-such-key', detailsJson: null, instance: 'i2', since: null, now: at(0) })).toBeNull();
      await open(at(7_000));
      expect(await resolve(at(8_000), { detailsJson: '{"lagMs":0}' })).toMatchObject({ details: { lagMs: 0 } });
    });

    it('opens a resolved key again as the next episode, with new times and opener', async () => {
      await open(at(0));
      await resolve(at(1_000));
      const again = await open(at(2_000), { instance: 'i9', summary: 'again', detailsJson: '{"lagMs":420000}' });
      expect(again).toEqual({
        key: KEY, rule: 'queue-lag', state: 'open', severity: 'warning', summary: 'again', details: { lagMs: 420_000 },
        episode: 2, openedAt: at(2_000), resolvedAt: null, updatedAt: at(2_000), openedBy: 'i9', resolvedBy: null, notices: 3,
      } satisfies AlertRow);
    });

    it('since: a key resolved after the observation began is not opened again; one opened after it is not resolved', async () => {
      await open(at(0));
      await resolve(at(10_000));
      expect(await open(at(12_000), { since: at(9_999) })).toBeNull();
      expect(await open(at(12_000), { since: at(10_000) })).toMatchObject({ episode: 2, openedAt: at(12_000) });
      expect(await resolve(at(13_000), { since: at(11_999) })).toBeNull();
      expect(await resolve(at(13_000), { since: at(12_000) })).toMatchObject({ state: 'resolved', resolvedAt: at(13_000) });
    });

    it('lists by state and rule, most recently changed first', async () => {
      await open(at(1_000), { key: 'missed-run:a', rule: 'missed-run', severity: 'critical' });
      await open(at(2_000), { key: 'missed-run:b', rule: 'missed-run', severity: 'critical' });
      await open(at(3_000));
      await tdb.driver.alertResolve({ key: 'missed-run:a', detailsJson: null, instance: 'i1', since: null, now: at(4_000) });
      expect((await tdb.driver.alertList({})).map((a) => a.key)).toEqual(['missed-run:a', KEY, 'missed-run:b']);
      expect((await tdb.driver.alertList({ state: 'open' })).map((a) => a.key)).toEqual([KEY, 'missed-run:b']);
      expect((await tdb.driver.alertList({ state: 'open', rule: 'missed-run' })).map((a) => a.key)).toEqual(['missed-run:b']);
      expect((await tdb.driver.alertList({ state: 'resolved' })).map((a) => a.key)).toEqual(['missed-run:a']);
      expect((await tdb.driver.alertList({ limit: 1 })).map((a) => a.key)).toEqual(['missed-run:a']);
    });

    it('opens inside a transaction: rolled back with it, committed with it', async () => {
      await expect(tdb.driver.transaction(async (tx) => {
        expect(await open(at(0), { tx })).toMatchObject({ key: KEY });
        throw new Error('roll back');
      })).rejects.toThrow('roll back');
      expect(await tdb.driver.alertList({})).toEqual([]);
      const row = await tdb.driver.transaction((tx) => open(at(0), { tx }));
      expect(row).toMatchObject({ key: KEY, episode: 1 });
      const resolved = await tdb.driver.transaction((tx) => tdb.driver.alertResolve({ key: KEY, detailsJson: null, instance: 'i1', since: null, now: at(1), tx }));
      expect(resolved).toMatchObject({ state: 'resolved' });
    });

    it('gives the row to exactly one of several instances opening the same key at once, and resolving it', async () => {
      const drivers = [tdb.newDriver(), tdb.newDriver(), tdb.newDriver(), tdb.newDriver()];
      const opened = await Promise.all(drivers.map((d, i) => open(at(0), { instance: `i${i}` }, d)));
      expect(opened.filter((r) => r !== null)).toHaveLength(1);
      const resolved = await Promise.all(drivers.map((d, i) => d.alertResolve({ key: KEY, detailsJson: null, instance: `i${i}`, since: null, now: at(1) })));
      expect(resolved.filter((r) => r !== null)).toHaveLength(1);
      const reopened = await Promise.all(drivers.map((d, i) => open(at(2), { instance: `i${i}` }, d)));
      expect(reopened.filter((r) => r !== null).map((r) => r!.episode)).toEqual([2]);
    });
  });
}
