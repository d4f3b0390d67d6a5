/**
 * `warden audit verify|head|export|prune` against a real chain of 10,000 entries (appended in bulk through the
 * driver, 500 an append, so 20 stored blocks): an untouched chain verifies (exit 0); an edited entry, a deleted one,
 * two swapped ones (in one block, across two, across two pages of verify), an entry edited into another shape, a block that is no longer JSON
 * and a truncated tail are each reported at the right entry with exit 1 (each tampering undone before the next); a
 * tail truncated together with its head row only shows against an exported head.
 * @module
 */
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditEntryInput } from '../../src/driver/audit-params.js';
import { createDriver } from '../../src/driver/create-driver.js';
import type { Driver } from '../../src/driver/driver.js';
import { workerCommand } from '../../src/cli/commands/worker.js';
import { type CliDatabase, cli, cliJson, JOBS, migratedDatabase, PG_URL, waitFor } from './cli-helpers.js';

const TOTAL = 10_000;
const BATCH = 500;
const T0 = Date.UTC(2030, 0, 1);
const SECRET_FREE_ACTIONS = ['job.created', 'job.started', 'job.completed', 'job.failed', 'queue.paused'];

/** The i-th test entry: varied actions, subjects and data, a reason now and then. */
function entry(i: number): AuditEntryInput {
  return {
    actor: i % 7 === 0 ? 'cli:alice' : 'system:test',
    action: SECRET_FREE_ACTIONS[i % SECRET_FREE_ACTIONS.length]!,
    subjectKind: 'job',
    subjectId: String(1 + Math.floor(i / 3)),
    jobName: 'send-email',
    queue: 'default',
    before: i % 2 === 0 ? 'queued' : 'running',
    after: i % 2 === 0 ? 'running' : 'completed',
    reason: i % 11 === 0 ? `ticket ${i}, "urgent"` : null,
    data: { attempt: 1 + (i % 3), durationMs: i },
  };
}

/** Raw SQL on the CLI test database (`?` placeholders), for tampering the way someone with database access would. */
interface Raw {
  query(sql: string, params?: unknown[]): Promise<Record<string, unknown>[]>;
  table(name: string): string;
  close(): Promise<void>;
}

async function openRaw(db: CliDatabase): Promise<Raw> {
  if (db.kind === 'sqlite') {
    const conn = new Database(db.url.slice('sqlite:'.length));
    conn.pragma('busy_timeout = 5000');
    return {
      async query(sql, params = []) {
        const statement = conn.prepare(sql);
        if (statement.reader) return statement.all(...params) as Record<string, unknown>[];
        statement.run(...params);
        return [];
      },
      table: (name) => name,
      async close() {
        conn.close();
      },
    };
  }
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  const schema = db.args[db.args.indexOf('--schema') + 1]!;
  return {
    async query(sql, params = []) {
      let n = 0;
      return (await client.query(sql.replace(/\?/g, () => `$${++n}`), params)).rows as Record<string, unknown>[];
    },
    table: (name) => `"${schema}".${name}`,
    close: () => client.end(),
  };
}

describe.each(['sqlite', 'postgres'] as const)('warden audit (%s)', (kind) => {
  let db: CliDatabase;
  let driver: Driver;
  let raw: Raw;
  let exportedHead: string;
  const blocks = () => raw.table('audit_blocks');

  beforeAll(async () => {
    db = await migratedDatabase(kind);
    const schema = kind === 'postgres' ? db.args[db.args.indexOf('--schema') + 1] : undefined;
    driver = createDriver({ url: db.url, schema });
    for (let start = 0; start < TOTAL; start += BATCH) {
      const batch = Array.from({ length: BATCH }, (_, k) => entry(start + k));
      await driver.auditAppend({ chain: 'default', entries: batch, now: new Date(T0 + (start / BATCH) * 1_000) });
    }
    raw = await openRaw(db);
  });
  afterAll(async () => {
    await raw?.close();
    await driver?.close();
    await db?.cleanup();
  });

  /** `audit verify --json` with extra arguments: exit code and parsed result. */
  async function verify(...args: string[]): Promise<{ code: number; result: any }> {
    const run = await cli(['audit', 'verify', ...db.args, '--json', ...args]);
    expect(run.err).toBe('');
    return { code: run.code, result: JSON.parse(run.out) };
  }

  /**
   * Rewrites the stored block that holds `seq` (each append of 500 entries is one row of audit_blocks: a JSON array
   * of rows [seq, actor, action, …]) through `edit`, which gets the parsed rows and changes them in place. Returns a
   * function that puts the block back as it was.
   */
  async function tamper(seq: number, edit: (entries: unknown[][]) => void): Promise<() => Promise<void>> {
    const [block] = await raw.query(`SELECT first_seq, entries FROM ${blocks()} WHERE chain = 'default' AND first_seq <= ? ORDER BY first_seq DESC LIMIT 1`, [seq]);
    const original = block!.entries as string;
    const parsed = JSON.parse(original) as unknown[][];
    edit(parsed);
    const write = (text: string) => raw.query(`UPDATE ${blocks()} SET entries = ? WHERE chain = 'default' AND first_seq = ?`, [text, block!.first_seq]);
    await write(JSON.stringify(parsed));
    return async () => {
      await write(original);
    };
  }

  /** The index of entry `seq` in a block's parsed rows (seq is a row's first field). */
  const indexOf = (entries: unknown[][], seq: number) => entries.findIndex((row) => row[0] === seq);
  const SEQ = 0;
  const ACTOR = 1;

  it('prints the head as <seq>:<hash> and verifies the untouched chain with exit 0', async () => {
    const head = await cli(['audit', 'head', ...db.args]);
    expect(head.code).toBe(0);
    expect(head.out).toMatch(/^10000:[0-9a-f]{64}\n$/);
    exportedHead = head.out.trim();
    expect(await cliJson(['audit', 'head', ...db.args])).toMatchObject({ chain: 'default', seq: TOTAL, ref: exportedHead, prunedSeq: 0 });

    const text = await cli(['audit', 'verify', ...db.args, '--head', exportedHead]);
    expect(text).toEqual({ code: 0, err: '', out: `audit chain "default": intact, 10000 entries (seq 1-10000)\n  head: ${exportedHead}\n  contains the exported head ${exportedHead}\n` });
    expect(await verify()).toMatchObject({ code: 0, result: { ok: true, checked: TOTAL, break: null, end: { seq: TOTAL } } });
  });

  it('reports an edited entry at its seq (hash mismatch), exit 1', async () => {
    const restore = await tamper(4321, (entries) => {
      entries[indexOf(entries, 4321)]![ACTOR] = 'cli:mallory';
    });
    try {
      const { code, result } = await verify();
      expect(code).toBe(1);
      expect(result).toMatchObject({ ok: false, checked: 4320, break: { seq: 4321, kind: 'hash-mismatch' } });
      const text = await cli(['audit', 'verify', ...db.args]);
      expect(text.code).toBe(1);
      expect(text.out).toMatch(/^audit chain "default": BROKEN at entry 4321 \(hash-mismatch\)\n {2}entry 4321 was changed/);
    } finally {
      await restore();
    }
    expect((await verify()).code).toBe(0);
  });

  it('reports a deleted entry at its seq (missing), exit 1', async () => {
    const restore = await tamper(5000, (entries) => {
      entries.splice(indexOf(entries, 5000), 1);
    });
    try {
      const { code, result } = await verify();
      expect(code).toBe(1);
      expect(result).toMatchObject({ ok: false, checked: 4999, break: { seq: 5000, kind: 'missing', expected: '5000', actual: '5001' } });
    } finally {
      await restore();
    }
    expect((await verify()).code).toBe(0);
  });

  it('reports two swapped entries at the first of them (broken link; missing when they are in two pages of the walk), exit 1', async () => {
    /** Gives entries `a` and `b` each other's seq. */
    const swap = async (a: number, b: number) => {
      let sameBlock = false;
      const restoreA = await tamper(a, (entries) => {
        const j = indexOf(entries, b);
        entries[indexOf(entries, a)]![SEQ] = b;
        if (j >= 0) entries[j]![SEQ] = a;
        sameBlock = j >= 0;
      });
      const restoreB = sameBlock ? async () => {} : await tamper(b, (entries) => {
        entries[indexOf(entries, b)]![SEQ] = a;
      });
      return async () => {
        await restoreB();
        await restoreA();
      };
    };
    /** Swaps `a` and `b`, expects verify to break at `a` as `kind` after `a - 1` good entries, and swaps back. */
    const expectBreak = async (a: number, b: number, kind: string) => {
      const restore = await swap(a, b);
      try {
        const { code, result } = await verify();
        expect(code).toBe(1);
        expect(result).toMatchObject({ ok: false, checked: a - 1, break: { seq: a, kind } });
      } finally {
        await restore();
      }
    };
    // In one block (one append of 500: seq 7001-7500).
    await expectBreak(7001, 7002, 'prev-hash-mismatch');
    // 7000 ends a block and 7001 starts the next; verify reads both in one page, in seq order.
    await expectBreak(7000, 7001, 'prev-hash-mismatch');
    // 5000 and 5001 fall in two of verify's pages (5,000 entries each): 5000 is not where the walk expects it.
    await expectBreak(5000, 5001, 'missing');
    expect((await verify()).code).toBe(0);
  });

  it('reports an entry edited into another shape, and a block that is no longer JSON, at their seq, exit 1', async () => {
    let restore = await tamper(3001, (entries) => {
      entries[indexOf(entries, 3001)]![ACTOR] = 7;
    });
    try {
      const { code, result } = await verify();
      expect(code).toBe(1);
      expect(result).toMatchObject({ ok: false, checked: 3000, break: { seq: 3001, kind: 'hash-mismatch' } });
      // The export still reads the rest of the chain; the unreadable entry is shown with its text.
      const lines = (await cli(['audit', 'export', ...db.args, '--format', 'jsonl'])).out.trimEnd().split('\n').map((l) => JSON.parse(l));
      expect(lines).toHaveLength(TOTAL);
      expect(lines[3000]).toMatchObject({ seq: 3001, hash: '', data: { unparsable: expect.stringMatching(/^\[3001,7,/) } });
    } finally {
      await restore();
    }
    restore = await tamper(2001, () => {});
    await raw.query(`UPDATE ${blocks()} SET entries = 'not json' WHERE chain = 'default' AND first_seq = 2001`);
    try {
      const { code, result } = await verify();
      expect(code).toBe(1);
      expect(result).toMatchObject({ ok: false, checked: 2000, break: { seq: 2001, kind: 'prev-hash-mismatch' } });
    } finally {
      await restore();
    }
    expect((await verify()).code).toBe(0);
  });

  it('reports a truncated tail against the head row, and against an exported head when the head row was rewritten too', async () => {
    const [headRow] = await raw.query(`SELECT * FROM ${raw.table('audit_heads')} WHERE chain = 'default'`);
    const [newEnd] = await driver.auditList({ chain: 'default', afterSeq: 9989, limit: 1 });
    const restore = await tamper(9991, (entries) => {
      entries.splice(indexOf(entries, 9991));
    });
    try {
      const plain = await verify();
      expect(plain.code).toBe(1);
      expect(plain.result).toMatchObject({ ok: false, checked: 9990, break: { seq: 9991, kind: 'truncated' } });

      // Someone who also moves the head row back leaves a chain that is consistent in itself ...
      await raw.query(`UPDATE ${raw.table('audit_heads')} SET seq = ?, hash = ? WHERE chain = 'default'`, [9990, newEnd!.hash]);
      expect(await verify()).toMatchObject({ code: 0, result: { ok: true, checked: 9990 } });
      // ... which only a head exported earlier shows to be short.
      const anchored = await verify('--head', exportedHead);
      expect(anchored.code).toBe(1);
      expect(anchored.result).toMatchObject({ ok: false, break: { seq: 9991, kind: 'truncated' } });
      const text = await cli(['audit', 'verify', ...db.args, '--head', exportedHead]);
      expect(text.code).toBe(1);
      expect(text.out).toContain('BROKEN at entry 9991 (truncated)');
    } finally {
      await restore();
      await raw.query(`UPDATE ${raw.table('audit_heads')} SET seq = ?, hash = ? WHERE chain = 'default'`, [headRow!.seq, headRow!.hash]);
    }
    expect(await verify('--head', exportedHead)).toMatchObject({ code: 0, result: { ok: true, checked: TOTAL } });
  });

  it('exports JSON Lines and CSV within --since/--until', async () => {
    const since = new Date(T0 + 10_000).toISOString();
    const until = new Date(T0 + 12_000).toISOString();
    const jsonl = await cli(['audit', 'export', ...db.args, '--since', since, '--until', until, '--format', 'jsonl']);
    expect(jsonl.code).toBe(0);
    const lines = jsonl.out.trimEnd().split('\n').map((l) => JSON.parse(l) as { seq: number; at: string });
    expect(lines).toHaveLength(2 * BATCH);
    expect([lines[0]!.seq, lines.at(-1)!.seq]).toEqual([10 * BATCH + 1, 12 * BATCH]);
    expect(lines[0]!.at).toBe(since);
    const csv = await cli(['audit', 'export', ...db.args, '--since', since, '--until', until, '--format', 'csv']);
    const rows = csv.out.split('\r\n');
    expect(rows[0]).toBe('seq,at,chain,actor,action,subject_kind,subject_id,job_name,queue,before,after,reason,data,prev_hash,hash');
    // Reasons with a comma and quotes are quoted, so every row but the header and the final empty line is one entry.
    expect(rows.filter((r) => /^\d+,/.test(r))).toHaveLength(2 * BATCH);
    expect(csv.out).toMatch(/,"ticket \d+, ""urgent""",/);
    const bad = await cli(['audit', 'export', ...db.args, '--since', 'yesterday']);
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/^warden: Expected --since to be an ISO-8601 date/);
  });
});

describe('warden audit prune and operator actions', () => {
  it('records the transitions a worker makes only with --audit', async () => {
    const db = await migratedDatabase('sqlite');
    const actions = async () => (await cli(['audit', 'export', ...db.args])).out.trimEnd().split('\n').filter((l) => l !== '').map((l) => JSON.parse(l).action as string);
    const runWorker = async (audit: boolean) => {
      const controller = new AbortController();
      const running = workerCommand({ database: db.url, schema: 'warden', jobs: JOBS, queues: 'email', pollInterval: '50ms', audit, signal: controller.signal, handleSignals: false }, { out: () => {}, err: () => {} });
      expect((await cli(['enqueue', 'send-email', JSON.stringify({ to: 'a@example.com', template: 'welcome' }), '--jobs', JOBS, ...db.args])).code).toBe(0);
      await waitFor('the job to complete', async () => ((await cliJson(['jobs', 'list', '--state', 'queued', ...db.args])).length === 0 ? true : undefined));
      controller.abort();
      expect(await running).toBe(0);
    };
    try {
      await runWorker(false);
      // The CLI's enqueue records the created job; the worker without --audit records nothing.
      expect(await actions()).toEqual(['job.created']);
      await runWorker(true);
      // The enqueue's entry comes from the CLI's own instance; the worker may append its first entry before it.
      expect((await actions()).sort()).toEqual(['job.completed', 'job.created', 'job.created', 'job.started']);
      expect((await cliJson(['audit', 'verify', ...db.args])).ok).toBe(true);
    } finally {
      await db.cleanup();
    }
  });

  it('records CLI operator actions as cli:<user>, and prunes with a recorded audit.pruned entry', async () => {
    const db = await migratedDatabase('sqlite');
    try {
      expect((await cli(['queues', 'pause', 'mail', ...db.args])).code).toBe(0);
      const user = process.env.USER ?? process.env.USERNAME ?? 'unknown';
      const exported = await cli(['audit', 'export', ...db.args]);
      expect(JSON.parse(exported.out)).toMatchObject({ seq: 1, action: 'queue.paused', actor: `cli:${user}`, subjectId: 'mail' });
      const pruned = await cliJson(['audit', 'prune', ...db.args, '--before', '2999-01-01', '--reason', 'retention']);
      expect(pruned).toEqual({ chain: 'default', deleted: 1 });
      const rest = (await cli(['audit', 'export', ...db.args])).out.trimEnd().split('\n').map((l) => JSON.parse(l));
      expect(rest).toMatchObject([{ seq: 2, action: 'audit.pruned', actor: `cli:${user}`, reason: 'retention', data: { deleted: 1, prunedSeq: 1 } }]);
      const verified = await cliJson(['audit', 'verify', ...db.args]);
      expect(verified).toMatchObject({ ok: true, firstSeq: 2, checked: 1 });
    } finally {
      await db.cleanup();
    }
  });
});
