/**
 * `verifyAuditChain` on a chain whose stored block was edited so that an entry claims the seq of an earlier one:
 * the break says so, rather than blaming pruning. Real SQLite file; the block is edited with a connection of its own.
 * @module
 */
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { verifyAuditChain } from '../../src/audit/audit-verify.js';
import { SqliteDriver } from '../../src/driver/sqlite/sqlite-driver.js';
import { auditInput } from '../conformance/audit.js';

describe('audit verify: an entry whose seq was edited to an earlier one', () => {
  let dir: string;
  let filename: string;
  let driver: SqliteDriver;
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'warden-verify-'));
    filename = join(dir, 'w.db');
    driver = new SqliteDriver({ filename });
    await driver.migrate();
    // One block: seqs 1 to 8.
    await driver.auditAppend({ chain: 'default', entries: Array.from({ length: 8 }, (_, i) => auditInput({ subjectId: String(i + 1) })), now: new Date(1_000) });
  });
  afterEach(async () => {
    await driver.close();
    rmSync(dir, { recursive: true, force: true });
  });

  function editSeq(from: number, to: number): void {
    const db = new Database(filename);
    try {
      const block = db.prepare(`SELECT first_seq, entries FROM audit_blocks WHERE chain = 'default'`).get() as { first_seq: number; entries: string };
      const rows = JSON.parse(block.entries) as unknown[][];
      for (const row of rows) if (row[0] === from) row[0] = to;
      db.prepare(`UPDATE audit_blocks SET entries = ? WHERE chain = 'default' AND first_seq = ?`).run(JSON.stringify(rows), block.first_seq);
    } finally {
      db.close();
    }
  }

  it('the untouched chain verifies', async () => {
    expect((await verifyAuditChain(driver, { chain: 'default' })).ok).toBe(true);
  });

  for (const [from, to] of [[6, 5], [6, 2]] as const) {
    it(`entry ${from} claiming seq ${to} is reported as a second entry with that seq, not as a pruning leftover`, async () => {
      editSeq(from, to);
      for (const pageSize of [3, 100]) {
        const result = await verifyAuditChain(driver, { chain: 'default', pageSize });
        expect(result.ok).toBe(false);
        expect(result.break).toMatchObject({ seq: to, kind: 'unexpected-entry', message: `a second entry claims seq ${to}: an entry's seq was edited or an entry was copied` });
      }
    });
  }
});
