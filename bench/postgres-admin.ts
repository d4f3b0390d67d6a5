/**
 * A fresh PostgreSQL database per repetition, so every system starts from empty tables, empty statistics and
 * no bloat left by the previous system. Databases are named `bench_*` and dropped afterwards.
 * @module
 */
import pg from 'pg';

/** The URL of database `name` on the same server as `baseUrl`. */
export function databaseUrl(baseUrl: string, name: string): string {
  const url = new URL(baseUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

async function admin<T>(baseUrl: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: baseUrl });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

function checkName(name: string): string {
  if (!/^bench_[a-z0-9_]{1,50}$/.test(name)) throw new Error(`Expected a bench_* database name, got "${name}"`);
  return name;
}

/** Creates database `name` (dropping a leftover of the same name first) and returns its URL. */
export async function createDatabase(baseUrl: string, name: string): Promise<string> {
  await admin(baseUrl, async (client) => {
    await client.query(`DROP DATABASE IF EXISTS ${checkName(name)} WITH (FORCE)`);
    await client.query(`CREATE DATABASE ${checkName(name)}`);
  });
  return databaseUrl(baseUrl, name);
}

/** Drops the database behind `url`, disconnecting whatever is still connected (a killed child's pool). */
export async function dropDatabase(baseUrl: string, url: string): Promise<void> {
  const name = checkName(new URL(url).pathname.slice(1));
  await admin(baseUrl, (client) => client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
}

/** The server's version string, e.g. "15.20 (Debian 15.20-0+deb12u1)". */
export function serverVersion(baseUrl: string): Promise<string> {
  return admin(baseUrl, async (client) => (await client.query('SHOW server_version')).rows[0].server_version as string);
}

/** Runs one query on a short-lived connection to `url`. */
export function queryOnce<R extends pg.QueryResultRow = any>(url: string, sql: string, params: unknown[] = []): Promise<pg.QueryResult<R>> {
  return admin(url, (client) => client.query<R>(sql, params));
}
