/**
 * `warden.audit.prune()` writes its `audit.pruned` entry in the transaction that deletes the entries, on both
 * drivers: when that entry cannot be written the prune is rolled back with it (nothing deleted, the chain intact), and
 * the operator's retry prunes and records. Before, the deletion committed first and a failed append left a prune
 * recorded nowhere, which `verify` cannot see (docs/audit.md: "a prefix deleted and the head row's pruned_seq and
 * pruned_hash set to match"), and a retry deleted nothing and so recorded nothing. The failure is the database's own:
 * a trigger refuses the block holding the `audit.pruned` entry.
 * @module
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Warden } from '../../src/client/warden.js';
import { auditInput, readChain } from '../conformance/audit.js';
import { openPgClient, rawQuery } from '../conformance/helpers.js';
import { makeWarden } from '../schedule/helpers.js';
import { createTestDatabase, DRIVER_KINDS, type TestDatabase } from '../support/test-databases.js';

/** Makes the database refuse any audit block holding an `audit.pruned` entry, until {@link allowPruned}. */
async function refusePruned(tdb: TestDatabase): Promise<void> {
  if (tdb.kind === 'sqlite') {
    await rawQuery(tdb, `CREATE TRIGGER refuse_pruned BEFORE INSERT ON audit_blocks WHEN NEW.entries LIKE '%audit.pruned%'
      BEGIN SELECT RAISE(ABORT, 'audit.pruned refused (test)'); END`);
    return;
  }
  const s = `"${tdb.schema}"`;
  const admin = await openPgClient();
  try {
    await admin.query(`CREATE FUNCTION ${s}.refuse_pruned() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
      IF NEW.entries LIKE '%audit.pruned%' THEN RAISE EXCEPTION 'audit.pruned refused (test)'; END IF; RETURN NEW; END $$`);
    await admin.query(`CREATE TRIGGER refuse_pruned BEFORE INSERT ON ${s}.audit_blocks FOR EACH ROW EXECUTE FUNCTION ${s}.refuse_pruned()`);
  } finally {
    await admin.end();
  }
}

async function allowPruned(tdb: TestDatabase): Promise<void> {
  await rawQuery(tdb, tdb.kind === 'sqlite' ? 'DROP TRIGGER refuse_pruned' : `DROP TRIGGER refuse_pruned ON "${tdb.schema}".audit_blocks`);
}

describe.each(DRIVER_KINDS)('audit prune whose audit.pruned entry cannot be written (%s)', (kind) => {
  let tdb: TestDatabase;
  let warden: Warden | undefined;
  beforeEach(async () => {
    tdb = await createTestDatabase(kind);
  });
  afterEach(async () => {
    await warden?.close();
    await tdb?.cleanup();
  });

  it('deletes nothing, and the retry prunes and records it', async () => {
    await tdb.driver.auditAppend({ chain: 'default', now: new Date('2020-01-01T00:00:00Z'), entries: [auditInput({ subjectId: '1' }), auditInput({ subjectId: '2' })] });
    await tdb.driver.auditAppend({ chain: 'default', now: new Date('2020-02-01T00:00:00Z'), entries: [auditInput({ subjectId: '3' })] });
    const stored = await readChain(tdb.driver, 'default');
    warden = makeWarden(tdb);
    const before = new Date('2021-01-01T00:00:00Z');

    await refusePruned(tdb);
    await expect(warden.audit.prune({ before, actor: 'alice', reason: 'retention' })).rejects.toThrow(/audit\.pruned refused/);
    // Rolled back with its entry: everything is still there, and nothing reads as pruned.
    expect(await readChain(tdb.driver, 'default')).toEqual(stored);
    expect(await warden.audit.head()).toMatchObject({ seq: 3, prunedSeq: 0 });
    expect(await warden.audit.verify()).toMatchObject({ ok: true });

    // The operator retries the failed call.
    await allowPruned(tdb);
    expect(await warden.audit.prune({ before, actor: 'alice', reason: 'retention' })).toBe(3);
    const chain = await readChain(tdb.driver, 'default');
    expect(chain).toHaveLength(1);
    expect(chain[0]).toMatchObject({
      seq: 4, action: 'audit.pruned', actor: 'alice', reason: 'retention', subjectKind: 'chain', subjectId: 'default', prevHash: stored[2]!.hash,
      data: { operator: true, before: before.toISOString(), deleted: 3, prunedSeq: 3, prunedHash: stored[2]!.hash },
    });
    expect(await warden.audit.head()).toMatchObject({ seq: 4, prunedSeq: 3, prunedHash: stored[2]!.hash });
    expect(await warden.audit.verify()).toMatchObject({ ok: true });
    // Run once more, it finds nothing older to delete, and records nothing.
    expect(await warden.audit.prune({ before, actor: 'alice' })).toBe(0);
    expect(await readChain(tdb.driver, 'default')).toEqual(chain);
  });
});
