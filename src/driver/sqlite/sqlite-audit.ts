/**
 * The audit trail of the SQLite driver (`Driver.audit*`): appends sealed inside one `BEGIN IMMEDIATE` (the
 * file's write lock serializes every append of every chain, across processes), reads paged by seq. SQL in
 * `sqlite-audit-sql.ts`; the chain's hashing in `src/audit/audit-hash.ts`.
 * @module
 */
import { GENESIS_HASH, sealBatch } from '../../audit/audit-hash.js';
import { checkAuditListLimit, type AuditAppendParams, type AuditEntry, type AuditHead, type AuditListParams, type AuditPruneParams, type AuditSubjectKind } from '../audit-params.js';
import { toMs, type SqliteContext } from './sqlite-exec.js';
import * as SQL from './sqlite-audit-sql.js';
import { int, type DbInt } from './sqlite-rows.js';

/** Larger than any ms timestamp: the `@until` of an unbounded list. */
const NO_UNTIL = Number.MAX_SAFE_INTEGER;

interface AuditHeadDbRow {
  chain: string;
  seq: DbInt;
  hash: string;
  at: DbInt | null;
  pruned_seq: DbInt;
  pruned_hash: string;
}

interface AuditEntryDbRow {
  chain: string;
  seq: DbInt;
  at: DbInt;
  actor: string;
  action: string;
  subject_kind: string;
  subject_id: string;
  job_name: string | null;
  queue: string | null;
  before_state: string | null;
  after_state: string | null;
  reason: string | null;
  data: string | null;
  prev_hash: string;
  hash: string;
}

function toHead(r: AuditHeadDbRow): AuditHead {
  return { chain: r.chain, seq: int(r.seq), hash: r.hash, at: r.at === null ? null : new Date(int(r.at)), prunedSeq: int(r.pruned_seq), prunedHash: r.pruned_hash };
}

function toEntry(r: AuditEntryDbRow): AuditEntry {
  return {
    chain: r.chain,
    seq: int(r.seq),
    at: new Date(int(r.at)),
    actor: r.actor,
    action: r.action,
    subjectKind: r.subject_kind as AuditSubjectKind,
    subjectId: r.subject_id,
    jobName: r.job_name,
    queue: r.queue,
    before: r.before_state,
    after: r.after_state,
    reason: r.reason,
    // Parsed from the stored text: a row edited to invalid JSON must still reach verify (as a hash mismatch).
    data: r.data === null ? null : parseData(r.data),
    prevHash: r.prev_hash,
    hash: r.hash,
  };
}

function parseData(text: string): Record<string, unknown> {
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch {
    return { unparsable: text };
  }
}

/**
 * Seals and inserts `entries` after the chain's head, all at one time (`now` or the database clock, never before
 * the head's time), and moves the head, in one write transaction.
 */
export async function auditAppend(ctx: SqliteContext, params: AuditAppendParams): Promise<AuditEntry[]> {
  const nowParam = toMs(params.now, 'now');
  if (params.entries.length === 0) return [];
  return ctx.write(() => {
    const row = ctx.stmt(SQL.AUDIT_HEAD_GET).get({ chain: params.chain }) as AuditHeadDbRow | undefined;
    const head = row ? toHead(row) : { seq: 0, hash: GENESIS_HASH, at: null };
    // Read after BEGIN IMMEDIATE took the lock: a later seq never gets an earlier time.
    const at = int((ctx.stmt(SQL.AUDIT_APPEND_TIME).get({ now: nowParam, lastAt: head.at?.getTime() ?? null }) as { at: DbInt }).at);
    const { entries: sealed, dataJson } = sealBatch(params.chain, head, new Date(at), params.entries);
    // Every entry of a batch has the chain and time of the batch; the rest goes in as one JSON array.
    const rows = sealed.map((e, i) => [e.seq, e.actor, e.action, e.subjectKind, e.subjectId, e.jobName, e.queue, e.before, e.after, e.reason, dataJson[i], e.prevHash, e.hash]);
    ctx.stmt(SQL.AUDIT_ENTRIES_INSERT).run({ chain: params.chain, at, entries: JSON.stringify(rows) });
    const last = sealed[sealed.length - 1]!;
    ctx.stmt(SQL.AUDIT_HEAD_SET).run({ chain: params.chain, seq: last.seq, hash: last.hash, at: last.at.getTime() });
    return sealed;
  });
}

/** A page of the chain in seq order. @throws InvalidOptionError for a limit outside 1..10,000. */
export async function auditList(ctx: SqliteContext, params: AuditListParams): Promise<AuditEntry[]> {
  const limit = checkAuditListLimit(params.limit);
  const bind = {
    chain: params.chain,
    afterSeq: Math.trunc(params.afterSeq ?? 0),
    since: params.since === undefined ? 0 : toMs(params.since, 'since'),
    until: params.until === undefined ? NO_UNTIL : toMs(params.until, 'until'),
    limit,
  };
  const rows = await ctx.read(() => ctx.stmt(SQL.AUDIT_LIST).all(bind) as AuditEntryDbRow[]);
  return rows.map(toEntry);
}

/** The chain's head row; null for a chain never appended to. */
export async function auditHead(ctx: SqliteContext, params: { chain: string }): Promise<AuditHead | null> {
  const row = await ctx.read(() => ctx.stmt(SQL.AUDIT_HEAD_GET).get({ chain: params.chain }) as AuditHeadDbRow | undefined);
  return row ? toHead(row) : null;
}

/** Deletes the entries older than `before` and records the last one's seq and hash in the head; how many went. */
export async function auditPrune(ctx: SqliteContext, params: AuditPruneParams): Promise<number> {
  const before = toMs(params.before, 'before');
  return ctx.write(() => {
    const last = ctx.stmt(SQL.AUDIT_PRUNE_LAST).get({ chain: params.chain, before }) as { seq: DbInt; hash: string } | undefined;
    if (!last) return 0;
    const deleted = ctx.stmt(SQL.AUDIT_PRUNE_DELETE).run({ chain: params.chain, seq: last.seq }).changes;
    ctx.stmt(SQL.AUDIT_HEAD_PRUNED).run({ chain: params.chain, seq: last.seq, hash: last.hash });
    return deleted;
  });
}
