/**
 * The PostgreSQL audit append's optimistic write (`auditAppendIfHeadSql`): when another append moves the chain's
 * head between the read of the head and the write, the write changes nothing and the batch is sealed again under
 * the head row's lock, after the other append's entries. Made deterministic by holding the head row's lock in a
 * second session while the driver's write waits on it.
 * @module
 */
import type pg from 'pg';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { sealBatch } from '../../src/audit/audit-hash.js';
import { auditInput, expectIntactChain, readChain } from '../conformance/audit.js';
import { at, openPgClient, untilWaitingOnLock } from '../conformance/helpers.js';
import { createTestDatabase, type TestDatabase } from '../support/test-databases.js';

describe('PostgreSQL audit append', () => {
  let tdb: TestDatabase;
  let client: pg.Client;
  beforeEach(async () => {
    tdb = await createTestDatabase('postgres');
    client = await openPgClient();
  });
  afterEach(async () => {
    await client.end();
    await tdb.cleanup();
  });

  it('seals a batch again after the append that got in between its read of the head and its write', async () => {
    const s = `"${tdb.schema}"`;
    // The chain's first append creates its head (the locked way).
    await tdb.driver.auditAppend({ chain: 'default', entries: [auditInput({ subjectId: 'first' })], now: at(1_000) });
    await client.query('BEGIN');
    const head = (await client.query<{ seq: string; hash: string }>(`SELECT seq, hash FROM ${s}.audit_heads WHERE chain = 'default' FOR UPDATE`)).rows[0]!;
    // The driver reads the head (no lock), seals onto seq 1, and its write waits for this session's lock.
    const pending = tdb.driver.auditAppend({ chain: 'default', entries: [auditInput({ subjectId: 'late' }), auditInput({ subjectId: 'late' })], now: at(3_000) });
    await untilWaitingOnLock(tdb.schema!);
    // Another append gets in first: its entry is sealed onto seq 1 and becomes seq 2.
    const other = sealBatch('default', { seq: Number(head.seq), hash: head.hash }, at(2_000), [auditInput({ subjectId: 'other' })]);
    const last = other.entries[0]!;
    await client.query(`INSERT INTO ${s}.audit_blocks (chain, first_seq, last_seq, at, entries) VALUES ('default', 2, 2, $1, $2)`, [last.at, other.block]);
    await client.query(`UPDATE ${s}.audit_heads SET seq = 2, hash = $1, at = $2 WHERE chain = 'default'`, [last.hash, last.at]);
    await client.query('COMMIT');

    const written = await pending;
    expect(written.map((e) => [e.seq, e.subjectId])).toEqual([[3, 'late'], [4, 'late']]);
    expect(written[0]!.prevHash).toBe(last.hash);
    const chain = await readChain(tdb.driver, 'default');
    expect(chain.map((e) => e.subjectId)).toEqual(['first', 'other', 'late', 'late']);
    expectIntactChain(chain);
    expect(await tdb.driver.auditHead({ chain: 'default' })).toMatchObject({ seq: 4, hash: written[1]!.hash, at: at(3_000) });
  });

  it('writes an uncontended batch in one statement after reading the head, without a transaction', async () => {
    await tdb.driver.auditAppend({ chain: 'default', entries: [auditInput()], now: at(1_000) });
    const sent: string[] = [];
    const pgModule = (await import('pg')).default;
    const original = pgModule.Client.prototype.query;
    pgModule.Client.prototype.query = function (this: pg.Client, config: unknown, ...rest: unknown[]) {
      const text = typeof config === 'string' ? config : (config as { text?: string })?.text;
      if (text) sent.push(text.trim().split(/\s+/)[0]!);
      return (original as (...args: unknown[]) => unknown).call(this, config, ...rest);
    } as typeof original;
    try {
      await tdb.driver.auditAppend({ chain: 'default', entries: [auditInput(), auditInput()], now: at(2_000) });
    } finally {
      pgModule.Client.prototype.query = original;
    }
    expect(sent).toEqual(['SELECT', 'WITH']);
    expectIntactChain(await readChain(tdb.driver, 'default'));
  });
});
