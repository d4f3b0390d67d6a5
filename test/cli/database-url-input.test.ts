/**
 * The CLI's database URL: its passwords are never printed, a malformed PostgreSQL URL is a typed one-line error, and
 * an empty `--database` / `WARDEN_DATABASE_URL` is refused rather than replaced by `sqlite:./warden.db`
 * (docs/configuration.md, "Environment variables").
 * @module
 */
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createDriver } from '../../src/driver/create-driver.js';
import { redactUrl } from '../../src/driver/redact-url.js';
import { DatabaseConfigError } from '../../src/errors.js';
import { cli, expectOneLineError } from './cli-helpers.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

/** Runs the test in a fresh empty working directory, where a default `sqlite:./warden.db` would be created. */
function inEmptyDirectory(): string {
  const dir = mkdtempSync(join(tmpdir(), 'warden-cli-cwd-'));
  const cwd = process.cwd();
  process.chdir(dir);
  cleanups.push(() => {
    process.chdir(cwd);
    rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

/** Sets (or, with undefined, unsets) WARDEN_DATABASE_URL for one test. */
function setDatabaseEnv(value: string | undefined): void {
  const saved = process.env.WARDEN_DATABASE_URL;
  if (value === undefined) delete process.env.WARDEN_DATABASE_URL;
  else process.env.WARDEN_DATABASE_URL = value;
  cleanups.push(() => {
    if (saved === undefined) delete process.env.WARDEN_DATABASE_URL;
    else process.env.WARDEN_DATABASE_URL = saved;
  });
}

describe('database URL passwords are never printed', () => {
  it('hides a password given as a ?password= query parameter (pg reads it)', async () => {
    const result = await cli(['stats', '--database', 'postgres://someone@127.0.0.1:1/test?password=topsecret']);
    expectOneLineError(result, 1, /Expected a reachable database at postgres:\/\/someone@127\.0\.0\.1:1\/test\?password=\*\*\*, got ECONNREFUSED/);
    expect(result.err).not.toContain('topsecret');
  });

  it('hides the whole of a password that contains ":"', async () => {
    const result = await cli(['stats', '--database', 'postgres://someone:top:secret@127.0.0.1:1/test']);
    expectOneLineError(result, 1, /Expected a reachable database at postgres:\/\/someone:\*\*\*@127\.0\.0\.1:1\/test, got ECONNREFUSED/);
    expect(result.err).not.toMatch(/top|secret/);
  });

  it('redactUrl: userinfo and password parameters hidden; an unparseable URL shows only its scheme', () => {
    expect(redactUrl('postgres://u:p:q@h:5432/db?sslpassword=s&application_name=a')).toBe('postgres://u:***@h:5432/db?sslpassword=***&application_name=a');
    expect(redactUrl('postgres://u:secret@h:notaport/db')).toBe('postgres://<unparseable url>');
    // No "//": the parser sees no userinfo, so which part is secret cannot be told.
    expect(redactUrl('user:secret@h/db')).toBe('user:<unparseable url>');
    expect(redactUrl('sqlite:./warden.db')).toBe('sqlite:./warden.db');
  });

  it('createDriver names an unsupported URL with its passwords hidden', () => {
    expect(() => createDriver({ url: 'mysql://root:top:secret@localhost/db?password=x' })).toThrow(/got "mysql:\/\/root:\*\*\*@localhost\/db\?password=\*\*\*"$/);
  });
});

describe('a malformed PostgreSQL URL', () => {
  it('is a one-line DatabaseConfigError naming the redacted URL, not "unexpected error: TypeError"', async () => {
    const result = await cli(['stats', '--database', 'postgres://someone:secret@127.0.0.1:notaport/test']);
    expectOneLineError(result, 1, /^warden: Expected a PostgreSQL URL such as "postgres:\/\/user@host:5432\/db", got "postgres:\/\/<unparseable url>"/);
    expect(result.err).not.toContain('secret');
    expect(() => createDriver({ url: 'postgresql://u@127.0.0.1:notaport/test' })).toThrow(DatabaseConfigError);
  });

  it('still accepts the URLs pg accepts that the URL parser alone would not (empty host, a space)', async () => {
    for (const url of ['postgres://u:p@/test', 'postgres://u@127.0.0.1:1/my db']) {
      const driver = createDriver({ url });
      await driver.close();
    }
  });
});

describe('an empty database URL is refused, not replaced by sqlite:./warden.db', () => {
  it('`migrate --database ""` fails in one line and creates no ./warden.db', async () => {
    const dir = inEmptyDirectory();
    const result = await cli(['migrate', '--database', '']);
    expectOneLineError(result, 1, /^warden: Expected a database URL such as "sqlite:\.\/warden\.db" or "postgres:\/\/host\/db", got ""/);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('WARDEN_DATABASE_URL="" fails in one line and creates nothing', async () => {
    const dir = inEmptyDirectory();
    setDatabaseEnv('');
    expectOneLineError(await cli(['migrate']), 1, /Expected a database URL/);
    expectOneLineError(await cli(['stats']), 1, /Expected a database URL/);
    expect(existsSync(join(dir, 'warden.db'))).toBe(false);
  });

  it('with neither set, the default sqlite:./warden.db is still used', async () => {
    const dir = inEmptyDirectory();
    setDatabaseEnv(undefined);
    const result = await cli(['migrate']);
    expect(result.code).toBe(0);
    expect(existsSync(join(dir, 'warden.db'))).toBe(true);
  });
});
