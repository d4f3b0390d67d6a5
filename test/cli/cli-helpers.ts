/**
 * Helpers for the CLI tests: run the CLI in-process capturing its output, and fresh real databases (an SQLite
 * file per test, or a random PostgreSQL schema) that are removed afterwards.
 * @module
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { expect } from 'vitest';
import { runCli } from '../../src/cli/run-cli.js';

/** The repository root (the CLI's working directory in the process tests). */
export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** The jobs fixture, as an absolute path. */
export const JOBS = fileURLToPath(new URL('./fixtures/jobs.ts', import.meta.url));
/** The PostgreSQL the tests use. */
export const PG_URL = process.env.WARDEN_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** What one CLI run produced. */
export interface CliResult {
  code: number;
  out: string;
  err: string;
}

/** Runs `warden <args>` in-process. */
export async function cli(args: string[]): Promise<CliResult> {
  let out = '';
  let err = '';
  const code = await runCli(args, { out: (t) => void (out += t), err: (t) => void (err += t) });
  return { code, out, err };
}

/** Runs `warden <args> --json`, expects success, and parses stdout as one JSON document. */
export async function cliJson<T = any>(args: string[]): Promise<T> {
  const result = await cli([...args, '--json']);
  expect(result.err).toBe('');
  expect(result.code).toBe(0);
  return JSON.parse(result.out) as T;
}

/**
 * Asserts a failure reported as exactly one line `warden: …` on stderr, nothing on stdout, no stack trace.
 */
export function expectOneLineError(result: CliResult, code: number, message: RegExp): void {
  expect(result.out).toBe('');
  expect(result.err).toMatch(/^warden: [^\n]+\n$/);
  expect(result.err).not.toContain('    at ');
  expect(result.err).toMatch(message);
  expect(result.code).toBe(code);
}

/** A database the CLI can be pointed at: `args` are the global options selecting it. */
export interface CliDatabase {
  kind: 'sqlite' | 'postgres';
  args: string[];
  url: string;
  cleanup(): Promise<void>;
}

/** A new SQLite file in a fresh temporary directory (not created until the CLI opens it). */
export async function sqliteDatabase(): Promise<CliDatabase & { dir: string; file: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'warden-cli-'));
  const file = join(dir, 'warden.db');
  const url = `sqlite:${file}`;
  return { kind: 'sqlite', dir, file, url, args: ['--database', url], cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** A new random schema `t_cli_<hex>` in the test PostgreSQL; dropped on cleanup. */
export async function postgresDatabase(): Promise<CliDatabase & { schema: string }> {
  const schema = `t_cli_${randomBytes(6).toString('hex')}`;
  return {
    kind: 'postgres',
    schema,
    url: PG_URL,
    args: ['--database', PG_URL, '--schema', schema],
    async cleanup() {
      const client = new pg.Client({ connectionString: PG_URL });
      await client.connect();
      try {
        await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      } finally {
        await client.end();
      }
    },
  };
}

/** A fresh database of `kind`, migrated through the CLI. */
export async function migratedDatabase(kind: 'sqlite' | 'postgres'): Promise<CliDatabase> {
  const db = kind === 'sqlite' ? await sqliteDatabase() : await postgresDatabase();
  const result = await cli(['migrate', ...db.args]);
  expect(result.err).toBe('');
  expect(result.code).toBe(0);
  return db;
}

/** Polls `check` at most every `intervalMs` until it returns a value other than undefined, or fails at the deadline. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 20_000, intervalMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (true) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`Expected ${what} within ${timeoutMs}ms, got a timeout`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
