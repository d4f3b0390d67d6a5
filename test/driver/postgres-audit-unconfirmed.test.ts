/**
 * A PostgreSQL audit append whose reply is lost after the database committed it: the connection to the real
 * server runs through a TCP relay (`test/support/pg-relay.ts`), which, once armed, lets the client's statement
 * through, swallows the server's reply and cuts the connection. The append must report the batch unconfirmed (`AuditAppendUnconfirmedError`)
 * and a retry naming it must not write it twice, for a driver call and for the audit trail of a Warden. A prune, its
 * `audit.pruned` entry and the head are one transaction: a prune whose reply is lost is run again as it was.
 * @module
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createWarden } from '../../src/client/warden.js';
import { AuditAppendUnconfirmedError, AuditWriteError } from '../../src/errors.js';
import { defineJob } from '../../src/job/define-job.js';
import { auditInput, expectIntactChain, readChain } from '../conformance/audit.js';
import { at, openPgClient } from '../conformance/helpers.js';
import { silent, within } from '../runtime/helpers.js';
import { RelayedDatabase } from '../support/pg-relay.js';

/**
 * What a client message writing a block contains: the locked insert's text (unnamed), or the optimistic write's
 * prepared name (`warden_a1`, in its Parse the first time on a connection and in every Bind).
 */
const BLOCK_WRITE = ['audit_blocks', 'warden_a1'];

describe('PostgreSQL audit append with its reply lost', () => {
  const db = new RelayedDatabase();
  beforeEach(() => db.open());
  afterEach(() => db.close());

  it('reports a sent batch unconfirmed, and a retry naming it writes it only if it was not committed', async () => {
    const { tdb, relay } = db;
    const driver = await db.driver();
    // [chain, the client message whose reply is lost, whether the batch was committed]. A chain's first append takes
    // the locked way (BEGIN, head lock, insert, COMMIT), the later ones the optimistic way (one statement).
    const cases = [['locked-commit', ['COMMIT'], true], ['locked-insert', BLOCK_WRITE, false], ['optimistic', BLOCK_WRITE, true]] as const;
    for (const [chain, marker, committed] of cases) {
      if (chain === 'optimistic') await driver.auditAppend({ chain, entries: [auditInput({ subjectId: 'first' })], now: at(0) });
      const before = (await readChain(tdb.driver, chain)).map((e) => e.subjectId);
      relay.arm(...marker);
      const failure = await driver.auditAppend({ chain, entries: [auditInput({ subjectId: 'x' }), auditInput({ subjectId: 'y' })], now: at(1_000) }).then(() => null, (e: unknown) => e);
      expect(failure, chain).toBeInstanceOf(AuditAppendUnconfirmedError);
      const { firstSeq, lastHash } = failure as AuditAppendUnconfirmedError;
      expect(firstSeq, chain).toBe(before.length + 1);
      const stored = await readChain(tdb.driver, chain);
      expect(stored.map((e) => e.subjectId), chain).toEqual(committed ? [...before, 'x', 'y'] : before);
      if (committed) expect(lastHash, chain).toBe(stored.at(-1)!.hash);
      const retried = await driver.auditAppend({ chain, entries: [auditInput({ subjectId: 'x' }), auditInput({ subjectId: 'y' })], now: at(2_000), retryOf: [{ firstSeq, lastHash }] });
      // Committed: the batch as stored, of the first try's time; else written now.
      expect(retried.map((e) => [e.seq, e.at]), chain).toEqual([firstSeq, firstSeq + 1].map((seq) => [seq, at(committed ? 1_000 : 2_000)]));
      const after = await readChain(tdb.driver, chain);
      expect(after.map((e) => e.subjectId), chain).toEqual([...before, 'x', 'y']);
      expectIntactChain(after);
    }
    expect(relay.cut).toBe(cases.length);
  });

  it('the audit trail writes every entry once when an append\'s reply is lost', async () => {
    const job = defineJob({ name: 'noop', handler: () => {} });
    const { tdb, relay } = db;
    const warden = db.track(createWarden({ database: await db.driver(), logger: silent, jobs: [job], audit: true }));
    const errors: unknown[] = [];
    warden.on('error', (e) => errors.push(e.error));
    // The first append creates the chain's head; the lost one is a later, optimistic one.
    await warden.enqueue(job, { i: 0 });
    await warden.audit.flush();
    relay.arm(...BLOCK_WRITE);
    await warden.enqueueMany([1, 2, 3].map((i) => ({ job, payload: { i } })));
    await within(warden.audit.flush(), 'the trail to write the entries');
    expect(relay.cut).toBe(1);
    expect(errors.some((e) => e instanceof AuditAppendUnconfirmedError)).toBe(true);
    const chain = await readChain(tdb.driver, 'default');
    expect(chain.map((e) => `${e.action}:${e.subjectId}`)).toEqual(['job.created:1', 'job.created:2', 'job.created:3', 'job.created:4']);
    expectIntactChain(chain);
  });

  it('a prune whose reply is lost, run again, is in the chain once with its audit.pruned entry', async () => {
    const { tdb, relay } = db;
    const warden = db.track(createWarden({ database: await db.driver(), logger: silent }));
    // [chain, the client message of the prune's transaction whose reply is lost, whether it was committed]. The
    // prune, its entry and the head are one transaction: its COMMIT lost after it was done, or its entry's block
    // lost before. The entries are a year older than the prune's time, and its own entry is of now.
    const before = new Date('2021-01-01T00:00:00Z');
    for (const [chain, marker, committed] of [['commit', 'COMMIT', true], ['insert', 'INSERT INTO', false]] as const) {
      await tdb.driver.auditAppend({ chain, entries: [auditInput({ subjectId: '1' }), auditInput({ subjectId: '2' })], now: new Date('2020-01-01T00:00:00Z') });
      relay.arm(marker);
      await expect(warden.audit.prune({ chain, before, actor: 'ops' }), chain).rejects.toThrow();
      expect((await readChain(tdb.driver, chain)).map((e) => e.action), chain).toEqual(committed ? ['audit.pruned'] : ['job.completed', 'job.completed']);
      // Run again as it was: a prune that committed left nothing older to delete; one that did not is done now.
      expect(await warden.audit.prune({ chain, before, actor: 'ops' }), chain).toBe(committed ? 0 : 2);
      const entries = await readChain(tdb.driver, chain);
      expect(entries.map((e) => `${e.action}:${e.actor}:${(e.data as { deleted: number }).deleted}`), chain).toEqual(['audit.pruned:ops:2']);
      expect(await warden.audit.verify({ chain }), chain).toMatchObject({ ok: true });
    }
    expect(relay.cut).toBe(2);
  });

  it('gives up on an entry the database refuses for good, though each refusal came after the batch was sent', async () => {
    const job = defineJob({ name: 'noop', handler: () => {} });
    const { tdb } = db;
    const s = `"${tdb.schema}"`;
    // Any block holding an entry about job 2 is refused (SQLSTATE P0001, not transient): the batch is rolled back.
    await tdb.driver.auditAppend({ chain: 'default', entries: [auditInput({ subjectId: 'head' })], now: null });
    const admin = await openPgClient();
    try {
      await admin.query(`CREATE FUNCTION ${s}.refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
        IF NEW.entries LIKE '%"job","2",%' THEN RAISE EXCEPTION 'refused'; END IF; RETURN NEW; END $$`);
      await admin.query(`CREATE TRIGGER refuse BEFORE INSERT ON ${s}.audit_blocks FOR EACH ROW EXECUTE FUNCTION ${s}.refuse()`);
    } finally {
      await admin.end();
    }
    const warden = db.track(createWarden({ database: await db.driver({ direct: true }), logger: silent, jobs: [job], audit: true }));
    const errors: { error: unknown; context: string }[] = [];
    warden.on('error', (e) => errors.push(e));
    const ids = (await warden.enqueueMany([1, 2, 3].map((i) => ({ job, payload: { i } })))).map((r) => r.id);
    expect(ids).toEqual(['1', '2', '3']);
    // The refused entry is given up on (not retried for ever as "maybe written"); the others are written.
    await within(warden.audit.flush(), 'the trail to settle every entry');
    expect(errors.filter((e) => e.error instanceof AuditWriteError).map((e) => (e.error as Error).message)).toEqual([expect.stringMatching(/1 entry given up on: .*refused/)]);
    expect(errors.filter((e) => e.error instanceof AuditAppendUnconfirmedError).length).toBeGreaterThanOrEqual(3);
    const chain = await readChain(tdb.driver, 'default');
    expect(chain.map((e) => e.subjectId)).toEqual(['head', ids[0], ids[2]]);
    expectIntactChain(chain);
  });
});

