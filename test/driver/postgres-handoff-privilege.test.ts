/**
 * Hand-off for a role refused `plpgsql` (PostgreSQL): its worker cannot LISTEN on its private channel without
 * writing the name in a statement's text, so it says so and is handed nothing: its jobs are queued, its queue
 * woken, and it claims them. Needs a role of its own and a database of its own (the refusal is per database),
 * migrated by the administrator (migrations run `DO` blocks too).
 * @module
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresDriver } from '../../src/driver/postgres/postgres-driver.js';
import { HandoffListener } from '../support/handoff-listener.js';
import { makeInsert, PG_URL } from '../support/test-databases.js';

describe('PostgreSQL hand-off for a role refused plpgsql', () => {
  const name = `warden_np_${randomBytes(6).toString('hex')}`;
  let admin: pg.Client;
  let driver: PostgresDriver;

  beforeAll(async () => {
    admin = new pg.Client({ connectionString: PG_URL });
    await admin.connect();
    await admin.query(`CREATE ROLE ${name} LOGIN`);
    await admin.query(`CREATE DATABASE ${name} OWNER ${name}`);
    const url = new URL(PG_URL);
    url.pathname = `/${name}`;
    // Migrated by the administrator (migrations use plpgsql too), then run by the role as a worker would be.
    const migrator = new PostgresDriver({ connectionString: url.toString(), schema: 'warden' });
    try {
      await migrator.migrate();
    } finally {
      await migrator.close();
    }
    const superuser = new pg.Client({ connectionString: url.toString() });
    await superuser.connect();
    try {
      await superuser.query(`GRANT USAGE ON SCHEMA warden TO ${name}`);
      await superuser.query(`GRANT ALL ON ALL TABLES IN SCHEMA warden TO ${name}`);
      await superuser.query(`GRANT ALL ON ALL SEQUENCES IN SCHEMA warden TO ${name}`);
      await superuser.query('REVOKE USAGE ON LANGUAGE plpgsql FROM PUBLIC');
    } finally {
      await superuser.end();
    }
    url.username = name;
    driver = new PostgresDriver({ connectionString: url.toString(), schema: 'warden' });
  });
  afterAll(async () => {
    await driver?.close();
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.query(`DROP ROLE IF EXISTS ${name}`);
    await admin.end();
  });

  it('reports that it cannot listen privately, and its jobs are queued and its queue woken instead', async () => {
    const worker = await HandoffListener.open(driver, 'w1');
    try {
      expect(worker.errors).toHaveLength(1);
      expect(String(worker.errors[0])).toMatch(/Expected to LISTEN on the private hand-off channel of worker w1 \(a DO block\), got it refused/);
      expect((worker.errors[0] as Error).cause).toMatchObject({ code: '42501' });
      const claimed = await driver.jobClaim({ queues: ['default'], limit: 10, workerId: 'w1', leaseMs: 30_000, now: null, handoff: { slots: 2, expiresInMs: 60_000, received: 0 } });
      expect(claimed).toEqual([]);
      const [result] = await driver.jobInsertMany({ jobs: [makeInsert()], now: null });
      expect(result!.job.state).toBe('queued');
      await worker.until(() => worker.wakes.length === 1);
      expect(worker.wakes).toEqual(['default']);
      expect(worker.jobs).toEqual([]);
    } finally {
      await worker.stop();
    }
  });
});
