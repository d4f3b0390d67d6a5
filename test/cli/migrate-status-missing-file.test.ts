/**
 * `warden migrate --status` changes nothing (docs/configuration.md), so on an SQLite URL naming a file that does
 * not exist it must not create one (a mistyped path would otherwise leave an empty database behind for the next
 * command to find). It reports every migration pending, so `--check` still exits 1 as documented.
 * @module
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { SQLITE_MIGRATIONS } from '../../src/driver/sqlite/sqlite-migrations.js';
import { cli, cliJson, sqliteDatabase } from './cli-helpers.js';

const ALL = SQLITE_MIGRATIONS.map((m) => m.name);
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((c) => c()));
});

describe('warden migrate --status on a missing SQLite file', () => {
  it('--check lists every migration pending, exits 1, and creates no file', async () => {
    const db = await sqliteDatabase();
    cleanups.push(db.cleanup);
    const result = await cli(['migrate', '--status', '--check', ...db.args]);
    expect(result.code).toBe(1);
    expect(result.out).toBe(ALL.map((m) => `pending  ${m}\n`).join(''));
    expect(result.err).toBe(`no SQLite database file at ${db.file} yet: every migration is pending (\`warden migrate\` creates it)\n`);
    expect(existsSync(db.file)).toBe(false);
  });

  it('--status alone exits 0; --json prints what an empty database would; a file in a missing directory is not created either', async () => {
    const db = await sqliteDatabase();
    cleanups.push(db.cleanup);
    const status = await cli(['migrate', '--status', ...db.args]);
    expect(status.code).toBe(0);
    const json = await cli(['migrate', '--status', '--json', ...db.args]);
    expect({ code: json.code, status: JSON.parse(json.out) }).toEqual({ code: 0, status: { applied: [], pending: ALL } });
    const nested = join(db.dir, 'missing-dir', 'warden.db');
    expect((await cli(['migrate', '--status', '--check', '--database', `sqlite:${nested}`])).code).toBe(1);
    expect(existsSync(db.file)).toBe(false);
    expect(existsSync(join(db.dir, 'missing-dir'))).toBe(false);

    // The answer is the one the database gives once it exists: migrate creates it, and then nothing is pending.
    expect((await cli(['migrate', ...db.args])).code).toBe(0);
    expect(await cliJson(['migrate', '--status', '--check', ...db.args])).toEqual({ applied: ALL, pending: [] });
  });
});

describe('warden doctor on a missing SQLite file', () => {
  it('reports every migration pending, as for an empty database, says so on stderr, and creates no file', async () => {
    const db = await sqliteDatabase();
    cleanups.push(db.cleanup);
    const result = await cli(['doctor', '--json', ...db.args]);
    expect(result.code).toBe(1);
    expect(JSON.parse(result.out).findings.map((f: { id: string }) => f.id)).toEqual(['migrations.pending']);
    expect(result.err).toBe(`no SQLite database file at ${db.file} yet: checked as an empty database (\`warden migrate\` creates it)\n`);
    expect(existsSync(db.file)).toBe(false);
  });
});
