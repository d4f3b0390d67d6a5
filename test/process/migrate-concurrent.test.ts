/**
 * Scenario 32: three processes run `warden migrate` on a fresh database at the same moment (each waits for a
 * signal, sent to all three at once, before running the CLI). Each migration must be applied exactly once (one
 * process applies it, the others find it applied: PostgreSQL's advisory lock, SQLite's write lock), every process
 * must exit 0 knowing the full list, the ledger must hold each migration once, and `warden doctor` must then report
 * no pending migration.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { MigrateResult } from '../../src/driver/driver.js';
import { POSTGRES_MIGRATIONS } from '../../src/driver/postgres/postgres-migrations.js';
import { SQLITE_MIGRATIONS } from '../../src/driver/sqlite/sqlite-migrations.js';
import { cli } from '../cli/cli-helpers.js';
import { Cleanup } from '../support/cleanup.js';
import { createTestDatabase, DRIVER_KINDS } from '../support/test-databases.js';
import { killAllChildren, spawnChild, waitForExit, waitForMessage } from './child-process.js';
import { openOracle } from './db-oracle.js';

const PROCESSES = 3;

const cleanup = new Cleanup();
afterEach(async () => {
  await killAllChildren();
  await cleanup.run();
});

describe.each(DRIVER_KINDS)(`${PROCESSES} processes migrating a fresh database at once (%s)`, (kind) => {
  it('applies each migration exactly once, all exit 0, and doctor finds nothing pending', async () => {
    const names = (kind === 'sqlite' ? SQLITE_MIGRATIONS : POSTGRES_MIGRATIONS).map((m) => m.name);
    // Not migrated, and not opened: the SQLite file does not exist yet, nor the PostgreSQL schema.
    const tdb = cleanup.add(await createTestDatabase(kind, { migrate: false }), (t) => t.cleanup());
    const database = ['--database', tdb.url, ...(tdb.schema === undefined ? [] : ['--schema', tdb.schema])];

    const children = Array.from({ length: PROCESSES }, (_, n) => spawnChild(`M${n + 1}`, 'cli-on-signal.ts', { url: tdb.url, schema: tdb.schema, name: `M${n + 1}`, args: ['migrate', '--json', ...database] }));
    await Promise.all(children.map((c) => waitForMessage(c, (m) => m.type === 'ready', 60_000)));
    for (const c of children) c.signal('SIGUSR2');
    const results = await Promise.all(children.map((c) => waitForMessage(c, (m) => m.type === 'result', 30_000)));
    const exits = await Promise.all(children.map((c) => waitForExit(c, 15_000)));
    const first = Math.min(...results.map((r) => r.startedAt as number));
    console.info(`[migrate-concurrent ${kind}] ${results.map((r) => `${r.name}: ${(r.startedAt - first).toFixed(0)}–${(r.endedAt - first).toFixed(0)} ms, applied ${JSON.parse(r.out || '{"applied":[]}').applied.length}`).join('; ')}`);

    // The scenario happened: runs overlapped (all three do, measured, even on a loaded host; asked of two, so that a
    // child the host was slow to wake cannot fail the test).
    const starts = results.map((r) => r.startedAt as number).sort((x, y) => x - y);
    expect(starts[1], 'a second run started before the first run ended').toBeLessThan(Math.min(...results.map((r) => r.endedAt as number)));

    expect(results.map((r) => ({ code: r.code, err: r.err }))).toEqual(children.map(() => ({ code: 0, err: '' })));
    expect(exits).toEqual(children.map(() => ({ code: 0, signal: null })));
    const outputs = results.map((r) => JSON.parse(r.out) as MigrateResult);
    // Between them the three applied every migration, none twice; each ended knowing the whole list.
    expect(outputs.flatMap((o) => o.applied).sort()).toEqual([...names].sort());
    expect(outputs.map((o) => o.current)).toEqual(children.map(() => names));

    // The ledger: one row per migration, no other.
    const oracle = cleanup.add(await openOracle(tdb), (o) => o.close());
    const ledger = await oracle.all<{ name: string; n: number | string }>('SELECT name, count(*) AS n FROM {migrations} GROUP BY name ORDER BY name');
    expect(ledger.map((r) => [r.name, Number(r.n)])).toEqual(names.map((n) => [n, 1]));
    expect(await oracle.number('SELECT count(*) FROM {migrations}')).toBe(names.length);

    const doctor = await cli(['doctor', '--json', ...database]);
    expect(doctor.err).toBe('');
    const report = JSON.parse(doctor.out) as { ok: boolean; findings: { id: string; severity: string }[] };
    expect(report.findings.filter((f) => f.id.startsWith('migrations.'))).toEqual([]);
    expect(report.findings.filter((f) => f.severity === 'error')).toEqual([]);
    expect([doctor.code, report.ok]).toEqual([0, true]);
  });
});
