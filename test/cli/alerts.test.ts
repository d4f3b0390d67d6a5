import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { CliError } from '../../src/cli/cli-error.js';
import { loadJobsModule } from '../../src/cli/load-jobs.js';
import { createWarden, type Warden } from '../../src/index.js';
import { type CliDatabase, cli, cliJson, expectOneLineError, migratedDatabase } from './cli-helpers.js';

let db: CliDatabase | undefined;
let warden: Warden | undefined;
afterEach(async () => {
  await warden?.close();
  warden = undefined;
  await db?.cleanup();
  db = undefined;
});

describe.each(['sqlite', 'postgres'] as const)('warden alerts (%s)', (kind) => {
  it('lists alerts (text and --json, filtered by state and rule) and resolves one by hand', async () => {
    const database = (db = await migratedDatabase(kind));
    expect(await cli(['alerts', 'list', ...database.args])).toEqual({ code: 0, out: 'no alerts\n', err: '' });
    const schema = database.kind === 'postgres' ? database.args[database.args.indexOf('--schema') + 1] : undefined;
    warden = createWarden({ database: database.url, schema, logger: pino({ level: 'silent' }) });
    await warden.driver.alertOpen({ key: 'queue-lag:default', rule: 'queue-lag', severity: 'warning', summary: 'queue default is 6m behind', detailsJson: '{"lagMs":360000}', instance: 'test', since: null, now: null });
    await warden.driver.alertOpen({ key: 'missed-run:nightly', rule: 'missed-run', severity: 'critical', summary: 'schedule nightly has no successful run', detailsJson: '{}', instance: 'test', since: null, now: null });

    const text = await cli(['alerts', 'list', ...database.args]);
    expect(text.code).toBe(0);
    const [header, ...lines] = text.out.trim().split('\n');
    expect(header).toMatch(/^STATE +SEVERITY +KEY +OPENED +RESOLVED +SUMMARY$/);
    expect(lines.sort()).toEqual([
      expect.stringMatching(/^open +critical +missed-run:nightly +\S+ \S+ +- +schedule nightly has no successful run$/),
      expect.stringMatching(/^open +warning +queue-lag:default +\S+ \S+ +- +queue default is 6m behind$/),
    ]);
    expect((await cliJson(['alerts', 'list', '--rule', 'queue-lag', ...database.args])).map((a: { key: string; details: unknown }) => [a.key, a.details])).toEqual([['queue-lag:default', { lagMs: 360000 }]]);

    expect(await cli(['alerts', 'resolve', 'queue-lag:default', '--reason', 'backlog drained', ...database.args])).toEqual({ code: 0, out: 'resolved queue-lag:default\n', err: '' });
    const [resolved] = await cliJson(['alerts', 'list', '--state', 'resolved', ...database.args]);
    expect(resolved).toMatchObject({ key: 'queue-lag:default', state: 'resolved', details: { lagMs: 360000, resolution: 'resolved by an operator', actor: expect.stringMatching(/^cli:/), reason: 'backlog drained' } });
    expect((await cliJson(['alerts', 'list', '--state', 'open', ...database.args])).map((a: { key: string }) => a.key)).toEqual(['missed-run:nightly']);

    expectOneLineError(await cli(['alerts', 'resolve', 'queue-lag:default', ...database.args]), 1, /Expected the key of an open alert, got "queue-lag:default"/);
    expectOneLineError(await cli(['alerts', 'list', '--state', 'closed', ...database.args]), 2, /Expected --state to be open or resolved, got "closed"/);
    expectOneLineError(await cli(['alerts', 'list', '--rule', 'nope', ...database.args]), 2, /Expected --rule to be one of dead-letter, /);
  });
});

describe('a jobs module\'s alerts export (warden worker)', () => {
  it('is taken as the alerts option, and must be an object', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'warden-alerts-module-'));
    try {
      const job = "export const ping = { name: 'ping', handler: () => undefined, retry: {} };";
      await writeFile(join(dir, 'good.mjs'), `${job}\nexport const alerts = { sinks: [], rules: { queueLag: { threshold: '10m' } } };\n`);
      await writeFile(join(dir, 'bad.mjs'), `${job}\nexport const alerts = ['webhook'];\n`);
      expect((await loadJobsModule(join(dir, 'good.mjs'))).alerts).toEqual({ sinks: [], rules: { queueLag: { threshold: '10m' } } });
      expect((await loadJobsModule(join(dir, 'bad.mjs')).catch((e: unknown) => e))).toBeInstanceOf(CliError);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
