/**
 * `warden doctor` through the CLI on both drivers: the bad fixture app exits 1 with its definition findings (text
 * grouped by severity, and `--json`), a good one exits 0 with no finding, and an unmigrated database exits 1 with
 * `migrations.pending`. The live-state findings are covered through the API in test/doctor/doctor.test.ts.
 * @module
 */
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { createWarden } from '../../src/index.js';
import * as good from '../doctor/fixtures/good-app.js';
import { type CliDatabase, cli, migratedDatabase, postgresDatabase, sqliteDatabase } from './cli-helpers.js';

const BAD = fileURLToPath(new URL('../doctor/fixtures/bad-app.ts', import.meta.url));
const GOOD = fileURLToPath(new URL('../doctor/fixtures/good-app.ts', import.meta.url));

let db: CliDatabase | undefined;
afterEach(async () => {
  await db?.cleanup();
  db = undefined;
});

describe.each(['sqlite', 'postgres'] as const)('warden doctor (%s)', (kind) => {
  it('exits 1 on the bad fixture app, 0 on the good one, and 1 before migrations', async () => {
    const database = (db = await migratedDatabase(kind));

    const json = await cli(['doctor', '--jobs', BAD, '--json', ...database.args]);
    expect(json.err).toBe('');
    expect(json.code).toBe(1);
    const result = JSON.parse(json.out) as { ok: boolean; findings: { id: string; severity: string; subject: string }[] };
    expect(result.ok).toBe(false);
    // The CLI cannot see the application's audit option: an empty trail counts as off.
    expect(result.findings.map((f) => `${f.severity} ${f.id} ${f.subject}`).sort()).toEqual([
      'error alerts.no-sink alerts', 'error job.side-effects-unguarded charge-card', 'error schedule.no-expect hourly-flaky',
      'info audit.off charge-card', 'info audit.off flaky',
      'warning job.no-timeout charge-card', 'warning job.retry-unbounded charge-card', 'warning schedule.overlap-implicit hourly-flaky',
    ]);

    const text = await cli(['doctor', '--jobs', BAD, ...database.args]);
    expect(text.code).toBe(1);
    expect(text.err).toBe('');
    const lines = text.out.trimEnd().split('\n');
    expect(lines[0]).toBe('ERROR (3)');
    expect(text.out).toMatch(/\n {2}job\.side-effects-unguarded {2}charge-card: Expected job "charge-card" \(sideEffects: true\) to have a dedup key, memoized steps or a transaction, got none\n {6}fix: /);
    expect(lines.indexOf('WARNING (3)')).toBeGreaterThan(0);
    expect(lines.indexOf('INFO (2)')).toBeGreaterThan(lines.indexOf('WARNING (3)'));
    expect(lines.at(-1)).toBe('failed: 3 error(s), 3 warning(s), 2 info');

    // The application has run with its audit trail on: the good app has nothing to report.
    const schema = database.kind === 'postgres' ? database.args[database.args.indexOf('--schema') + 1] : undefined;
    const app = createWarden({ database: database.url, schema, logger: pino({ level: 'silent' }), audit: true, jobs: [good.sendReceipt], schedules: [good.nightly], alerts: good.alerts });
    try {
      await app.enqueue(good.sendReceipt, { to: 'a@example.com' });
      await app.drain();
    } finally {
      await app.close();
    }
    expect(await cli(['doctor', '--jobs', GOOD, ...database.args])).toEqual({ code: 0, out: 'ok: 0 error(s), 0 warning(s), 0 info\n', err: '' });
    expect(JSON.parse((await cli(['doctor', '--jobs', GOOD, '--json', ...database.args])).out)).toEqual({ findings: [], ok: true });

    // Live state only, without a jobs module.
    const liveOnly = await cli(['doctor', ...database.args]);
    expect(liveOnly).toEqual({ code: 0, out: 'no jobs module (--jobs or WARDEN_JOBS): only the live state was checked\n\nok: 0 error(s), 0 warning(s), 0 info\n', err: '' });
  });

  it('exits 1 with migrations.pending on an unmigrated database', async () => {
    const database = (db = kind === 'sqlite' ? await sqliteDatabase() : await postgresDatabase());
    const result = await cli(['doctor', '--jobs', GOOD, '--json', ...database.args]);
    expect(result.code).toBe(1);
    expect(JSON.parse(result.out).findings.map((f: { id: string }) => f.id)).toEqual(['migrations.pending']);
  });
});
