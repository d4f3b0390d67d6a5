/**
 * Reference scenario 2 at its stated size: 1,000 enqueues inside a transaction that rolls back and 1,000 inside one
 * that commits (interleaved, half through enqueue and half through enqueueMany), while a worker is started (its
 * claims polling) and an independent reader looks for each job while its transaction is open. Oracle: no rolled-back
 * job is ever visible or run; every committed job runs exactly once; no job is visible before its commit.
 */
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import type { Warden } from '../../src/client/warden.js';
import { defineJob } from '../../src/job/define-job.js';
import { openOracle, type Oracle } from '../process/db-oracle.js';
import { pollUntil } from '../process/child-process.js';
import { makeWarden } from './helpers.js';
import { createTestDatabase, DRIVER_KINDS, PG_URL, type TestDatabase } from '../support/test-databases.js';

const ROUNDS = 2_000;

let tdb: TestDatabase | undefined;
let oracle: Oracle | undefined;
let warden: Warden | undefined;
let close: (() => Promise<void>) | undefined;
afterEach(async () => {
  await close?.();
  await warden?.close();
  await oracle?.close();
  await tdb?.cleanup();
  close = undefined; warden = undefined; oracle = undefined; tdb = undefined;
});

describe.each(DRIVER_KINDS)('scenario 2: transactional enqueue (%s)', (kind) => {
  it(`${ROUNDS / 2} rolled back and ${ROUNDS / 2} committed, with a started worker and a reader during each transaction`, async () => {
    tdb = await createTestDatabase(kind);
    oracle = await openOracle(tdb);
    const handled: number[] = [];
    const job = defineJob({ name: 'tx-job', handler: (p: { n: number }) => void handled.push(p.n) });
    warden = makeWarden(tdb, { jobs: [job] });
    const errors: unknown[] = [];
    warden.on('error', (e) => errors.push(e));
    await warden.start({ concurrency: 8, pollInterval: '20ms' });

    let begin: () => Promise<void>, commit: () => Promise<void>, rollback: () => Promise<void>, handle: unknown;
    if (kind === 'sqlite') {
      const db = new Database(tdb.url.slice('sqlite:'.length), { timeout: 5_000 });
      handle = db;
      begin = async () => void db.exec('BEGIN IMMEDIATE');
      commit = async () => void db.exec('COMMIT');
      rollback = async () => void db.exec('ROLLBACK');
      close = async () => void db.close();
    } else {
      const client = new pg.Client({ connectionString: PG_URL });
      await client.connect();
      handle = client;
      begin = async () => void (await client.query('BEGIN'));
      commit = async () => void (await client.query('COMMIT'));
      rollback = async () => void (await client.query('ROLLBACK'));
      close = () => client.end();
    }

    const committed: number[] = [];
    const rolledBack: string[] = [];
    let seenEarly = 0;
    for (let n = 0; n < ROUNDS; n++) {
      const keep = n % 2 === 0;
      await begin();
      const id = n % 4 < 2
        ? (await warden.enqueue(job, { n }, { tx: handle })).id
        : (await warden.enqueueMany([{ job, payload: { n } }], { tx: handle }))[0]!.id;
      // The reader (Warden's own connection, and the raw oracle on PostgreSQL: SQLite's oracle would wait on the lock).
      if ((await warden.jobs.get(id)) !== null) seenEarly++;
      if (kind === 'postgres' && (await oracle.number('SELECT count(*) FROM {jobs} WHERE id = $1', [id])) !== 0) seenEarly++;
      if (keep) {
        await commit();
        committed.push(n);
      } else {
        await rollback();
        rolledBack.push(id);
      }
    }
    expect(seenEarly).toBe(0);
    await pollUntil('every committed job completed', () => oracle!.number("SELECT count(*) FROM {jobs} WHERE state = 'completed'"), (c) => c === ROUNDS / 2, { timeoutMs: 60_000, intervalMs: 100 });
    await warden.stop();
    expect(await oracle.number('SELECT count(*) FROM {jobs}')).toBe(ROUNDS / 2);
    // SQLite may reuse a rolled-back id; what matters is that no rolled-back payload exists or ran.
    const payloadNs = (await oracle.all<{ payload: unknown }>('SELECT payload FROM {jobs}')).map((r) => (typeof r.payload === 'string' ? JSON.parse(r.payload) : r.payload).n as number);
    expect(payloadNs.filter((n) => n % 2 === 1)).toEqual([]);
    expect([...handled].sort((a, b) => a - b)).toEqual(committed);
    expect(errors).toEqual([]);
  }, 300_000);
});
