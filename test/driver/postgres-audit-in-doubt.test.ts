/**
 * docs/audit.md: "A lost acknowledgement does not write a batch twice", when the retry is lost too. On PostgreSQL a
 * statement whose connection dropped while it waited on a lock goes on running on the server, and commits once it
 * gets the lock: an attempt reported unconfirmed can land after a later attempt at the same entries was lost.
 *
 * The first attempt, B1 (three `job.created` entries), is an optimistic write waiting on the chain's head row (or on
 * the blocks table) when its connection is cut: `AuditAppendUnconfirmedError`. Its retry (the first entry alone,
 * naming B1) is cut too, and only then does B1 commit. The chain must hold each entry once.
 *
 * - Waiting on the head row (a reviewer's reproduction): the retry takes the locked way, so it waits for the head
 *   row behind B1 without having sealed anything; B1 goes first, and the next retry finds it.
 * - Waiting on the blocks table (held `EXCLUSIVE` by a test session): the retry gets the head row first, seals B2 at
 *   B1's seq and waits to insert it. Its connection cut, it is rolled back; B1 commits. The trail must still name B1,
 *   not just B2, the last one it sealed.
 *
 * Real server, real driver, a TCP relay to cut connections, locks held by a test session, and waits on
 * pg_stat_activity and the head row (no sleeps).
 * @module
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createWarden } from '../../src/client/warden.js';
import { AuditAppendUnconfirmedError } from '../../src/errors.js';
import { defineJob } from '../../src/job/define-job.js';
import { settleTrail } from '../audit/settle-trail.js';
import { expectIntactChain, readChain } from '../conformance/audit.js';
import { openPgClient } from '../conformance/helpers.js';
import { silent, T0, TestClock, within } from '../runtime/helpers.js';
import { RelayedDatabase } from '../support/pg-relay.js';

/** Sessions of the test's schema waiting on a lock with `table` in their statement. */
async function waitersOnLock(schema: string, table: string): Promise<number> {
  const client = await openPgClient();
  try {
    const { rows } = await client.query<{ n: string }>(`SELECT count(*) AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE $1`, [`%${schema}%${table}%`]);
    return Number(rows[0]!.n);
  } finally {
    await client.end();
  }
}

/** Resolves once `check` holds, polling; `step` runs between polls (e.g. moving fake time past a backoff). */
async function until(what: string, check: () => boolean | Promise<boolean>, step: () => unknown = () => undefined): Promise<void> {
  await within((async () => {
    while (!(await check())) {
      await step();
      await new Promise((resolve) => setImmediate(resolve));
    }
  })(), what);
}

describe('PostgreSQL audit trail: an unconfirmed batch that commits after its retry was lost', () => {
  const db = new RelayedDatabase();
  beforeEach(() => db.open());
  afterEach(() => db.close());

  it.each([
    ['the head row', `SELECT 1 FROM %s.audit_heads WHERE chain = 'default' FOR UPDATE`, 'audit_heads'],
    ['the blocks table', 'LOCK TABLE %s.audit_blocks IN EXCLUSIVE MODE', 'audit_blocks'],
  ])('writes each entry once when the first attempt waited on %s', async (what, lock, table) => {
    const job = defineJob({ name: 'noop', handler: () => {} });
    const { tdb, relay } = db;
    const schema = tdb.schema!;
    const clock = new TestClock(T0);
    const warden = db.track(createWarden({ database: await db.driver(), logger: silent, clock, jobs: [job], audit: true }));
    const errors: unknown[] = [];
    warden.on('error', (e) => {
      if (e.context === 'audit trail append') errors.push(e.error);
    });
    // The chain's head row exists: the next append takes the optimistic way.
    await warden.enqueue(job, { i: 0 });
    await warden.audit.flush();

    const admin = await openPgClient();
    let retry: unknown;
    try {
      await admin.query('BEGIN');
      await admin.query(lock.replace('%s', `"${schema}"`));
      // B1: three entries, sealed at seq 2 and waiting; its connection is cut.
      await warden.enqueueMany([1, 2, 3].map((i) => ({ job, payload: { i } })));
      await until('B1 to wait', async () => (await waitersOnLock(schema, table)) >= 1);
      relay.down();
      relay.up();
      await until('B1 to be reported unconfirmed', () => errors.length >= 1);
      expect(errors[0]).toBeInstanceOf(AuditAppendUnconfirmedError);
      expect((errors[0] as AuditAppendUnconfirmedError).firstSeq).toBe(2);
      // Its retry waits too (behind B1 for the head row; or, holding the head row, to insert B2), and is cut.
      await until('the retry to wait behind B1', async () => (await waitersOnLock(schema, table)) >= 2, () => clock.advance(1_000));
      const before = errors.length;
      relay.down();
      await until('the retry to fail', () => errors.length > before);
      retry = errors[before];
      await admin.query('COMMIT');
      // B1 commits on the server (a retry cut while holding the head row is rolled back first).
      await until('B1 to commit', async () => (await tdb.driver.auditHead({ chain: 'default' }))?.seq === 4 && (await waitersOnLock(schema, table)) === 0);
    } finally {
      await admin.end();
    }
    relay.up();
    await settleTrail(warden, clock);
    const chain = await readChain(tdb.driver, 'default');
    expect(chain.map((e) => `${e.action}:${e.subjectId}`)).toEqual(['job.created:1', 'job.created:2', 'job.created:3', 'job.created:4']);
    expectIntactChain(chain);
    // Waiting for the head row, the retry had sealed nothing; holding it, it had sealed B2 at B1's seq.
    if (table === 'audit_heads') expect(retry, what).not.toBeInstanceOf(AuditAppendUnconfirmedError);
    else expect((retry as AuditAppendUnconfirmedError).firstSeq, what).toBe(2);
  });
});
