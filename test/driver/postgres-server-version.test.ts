/**
 * The PostgreSQL migrations need PostgreSQL 14 (migration 0013's `SET COMPRESSION`): an older server is refused
 * before anything runs, with its version named, rather than failing on a syntax error inside a migration.
 */
import { describe, expect, it } from 'vitest';
import { DatabaseConfigError } from '../../src/errors.js';
import { checkServerVersion, MIN_SERVER_VERSION_NUM } from '../../src/driver/postgres/postgres-migrate.js';

describe('PostgreSQL server version check', () => {
  it('refuses a server older than 14, naming its version', () => {
    let caught: unknown;
    try {
      checkServerVersion(130012, '13.12 (Debian 13.12-1)');
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(DatabaseConfigError);
    expect((caught as Error).message).toBe('Expected PostgreSQL 14 or later, got 13.12 (Debian 13.12-1) (server_version_num 130012)');
  });

  it('accepts 14.0 and later', () => {
    expect(MIN_SERVER_VERSION_NUM).toBe(140000);
    expect(() => checkServerVersion(140000, '14.0')).not.toThrow();
    expect(() => checkServerVersion(150020, '15.2')).not.toThrow();
  });
});
