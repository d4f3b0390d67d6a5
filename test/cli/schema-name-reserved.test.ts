/**
 * PostgreSQL reserves the schema prefix `pg_` for system schemas (CREATE SCHEMA fails with SQLSTATE 42939), so the
 * schema-name check refuses it up front with `InvalidNameError`, before any connection, instead of `migrate`
 * failing with the raw database error. Names that merely resemble it stay valid.
 * @module
 */
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { createWarden } from '../../src/client/warden.js';
import { InvalidNameError } from '../../src/errors.js';
import { PostgresDriver } from '../../src/driver/postgres/postgres-driver.js';
import { SCHEMA_PATTERN, validateSchemaName } from '../../src/validation/names.js';
import { cli, expectOneLineError, PG_URL } from './cli-helpers.js';

const RESERVED = `pg_warden_${process.pid}`;

async function schemaExists(name: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  try {
    const result = await client.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [name]);
    return result.rowCount === 1;
  } finally {
    await client.end();
  }
}

describe('a schema name with the reserved pg_ prefix', () => {
  it('is refused by the driver, createWarden and validateSchemaName with InvalidNameError naming the prefix', () => {
    expect(() => new PostgresDriver({ connectionString: PG_URL, schema: RESERVED })).toThrow(InvalidNameError);
    expect(() => createWarden({ database: PG_URL, schema: RESERVED })).toThrow(InvalidNameError);
    expect(() => validateSchemaName('pg_x')).toThrow(`Expected schema to match ${SCHEMA_PATTERN} (the prefix "pg_" is reserved for PostgreSQL's system schemas), got "pg_x"`);
    // Only the prefix itself is reserved.
    for (const name of ['pg', 'pgx', 'pg1_warden', '_pg_', 'warden_pg_']) expect(validateSchemaName(name)).toBe(name);
  });

  it('fails `warden migrate` in one line before connecting, and creates nothing', async () => {
    const result = await cli(['migrate', '--database', PG_URL, '--schema', RESERVED]);
    expectOneLineError(result, 1, /^warden: Expected schema to match .* \(the prefix "pg_" is reserved for PostgreSQL's system schemas\), got "pg_warden_\d+"/);
    expect(result.err).not.toMatch(/SQLSTATE|unacceptable schema name/);
    expect(await schemaExists(RESERVED)).toBe(false);
  });
});
