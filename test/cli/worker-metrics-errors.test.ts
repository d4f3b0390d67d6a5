/**
 * `warden worker --metrics-port`: a port the health server cannot listen on fails the command in one line naming
 * host, port and cause, before any job is claimed; and only failures while opening and checking the database are
 * reported as the database's (an unresolvable `--metrics-host` used to read "Expected a reachable database at
 * sqlite:…, got ENOTFOUND").
 * @module
 */
import { createServer, type Server } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CliError } from '../../src/cli/cli-error.js';
import { withWarden } from '../../src/cli/open-warden.js';
import { type CliDatabase, cli, expectOneLineError, JOBS, migratedDatabase } from './cli-helpers.js';

let db: CliDatabase | undefined;
beforeEach(() => {
  delete process.env.WARDEN_JOBS;
});
afterEach(async () => {
  await db?.cleanup();
  db = undefined;
});

describe('warden worker --metrics-port listen errors', () => {
  it('reports a metrics port in use in one line (EADDRINUSE, host and port), and claims nothing', async () => {
    db = await migratedDatabase('sqlite');
    const blocker: Server = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as AddressInfo).port;
    try {
      const result = await cli(['worker', '--jobs', JOBS, '--metrics-port', String(port), '--metrics-host', '127.0.0.1', ...db.args]);
      expectOneLineError(result, 1, new RegExp(`^warden: Expected the health server to listen on port ${port} of 127\\.0\\.0\\.1, got EADDRINUSE \\(the port is already in use\\)\\n$`));
      expect(result.err).not.toMatch(/unexpected error/);
    } finally {
      await new Promise<void>((resolve) => blocker.close(() => resolve()));
    }
  });

  it('reports an unresolvable --metrics-host as the health server\'s, not the database\'s', async () => {
    db = await migratedDatabase('sqlite');
    const result = await cli(['worker', '--jobs', JOBS, '--metrics-port', '0', '--metrics-host', 'no-such-host.invalid', ...db.args]);
    expectOneLineError(result, 1, /^warden: Expected the health server to listen on port 0 of no-such-host\.invalid, got (ENOTFOUND|EAI_AGAIN) /);
    expect(result.err).not.toMatch(/reachable database/);
  });
});

describe('withWarden: which errors are the database\'s', () => {
  it('passes an error the command throws on as it is, even one with a network code', async () => {
    db = await migratedDatabase('sqlite');
    const thrown = Object.assign(new Error('getaddrinfo ENOTFOUND metrics.example'), { code: 'ENOTFOUND' });
    const error = await withWarden({ database: db.url, schema: 'warden' }, {}, async () => {
      throw thrown;
    }).then(() => null, (e: unknown) => e);
    expect(error).toBe(thrown);
  });

  it('still reports a database unreachable while opening as the database\'s, for migrate too (URL redacted)', async () => {
    const error = await withWarden({ database: 'postgres://postgres:hunter2@127.0.0.1:1/test', schema: 'warden' }, { requireMigrated: false }, async () => 'ran').then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(CliError);
    expect((error as Error).message).toMatch(/^Expected a reachable database at postgres:\/\/postgres:\*\*\*@127\.0\.0\.1:1\/test, got ECONNREFUSED/);
    const result = await cli(['migrate', '--database', 'postgres://postgres:hunter2@127.0.0.1:1/test']);
    expectOneLineError(result, 1, /^warden: Expected a reachable database at postgres:\/\/postgres:\*\*\*@127\.0\.0\.1:1\/test, got ECONNREFUSED/);
  });
});
