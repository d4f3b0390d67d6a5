/**
 * The audit trail of the PostgreSQL driver (`Driver.audit*`). An append is one transaction: lock the chain's head
 * row (created on first use), seal the batch onto it in JavaScript (`src/audit/audit-hash.ts`), insert the batch
 * and move the head in one statement. Appends of one chain from any number of processes and hosts therefore queue
 * on that row lock and form one chain. SQL in `postgres-audit-sql.ts`.
 * @module
 */
import type pg from 'pg';
import { jsonString, sealBatch } from '../../audit/audit-hash.js';
import {
  checkAuditListLimit, type AuditAppendParams, type AuditEntry, type AuditHead, type AuditListParams, type AuditPruneParams, type AuditSubjectKind,
} from '../audit-params.js';
import type { Run } from './postgres-insert.js';
import type { PostgresAuditStatements } from './postgres-audit-sql.js';
import { withTransaction } from './postgres-transaction.js';

/** What the audit operations run on. */
export interface PostgresAuditContext {
  pool: pg.Pool;
  /** Runs one statement on any pooled connection. */
  run: Run;
  sql: PostgresAuditStatements;
}

interface PgAuditHeadRecord {
  chain: string;
  seq: string;
  hash: string;
  at: Date | null;
  pruned_seq: string;
  pruned_hash: string;
}

interface PgAuditEntryRecord {
  chain: string;
  seq: string;
  at: Date;
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

function toHead(r: PgAuditHeadRecord): AuditHead {
  return { chain: r.chain, seq: Number(r.seq), hash: r.hash, at: r.at, prunedSeq: Number(r.pruned_seq), prunedHash: r.pruned_hash };
}

function toEntry(r: PgAuditEntryRecord): AuditEntry {
  return {
    chain: r.chain,
    seq: Number(r.seq),
    at: r.at,
    actor: r.actor,
    action: r.action,
    subjectKind: r.subject_kind as AuditSubjectKind,
    subjectId: r.subject_id,
    jobName: r.job_name,
    queue: r.queue,
    before: r.before_state,
    after: r.after_state,
    reason: r.reason,
    data: r.data === null ? null : (JSON.parse(r.data) as Record<string, unknown>),
    prevHash: r.prev_hash,
    hash: r.hash,
  };
}

/**
 * The sealed batch as the JSON array of rows `auditAppendSql` reads, written directly: strings through
 * `jsonString` (exactly `JSON.stringify`), `data` as the canonical JSON it was hashed from.
 */
function rowsJson(sealed: readonly AuditEntry[], dataJson: readonly (string | null)[]): string {
  const s = jsonString;
  const rows = sealed.map((e, i) =>
    `[${e.seq},${s(e.actor)},${s(e.action)},${s(e.subjectKind)},${s(e.subjectId)},${s(e.jobName)},${s(e.queue)},${s(e.before)},${s(e.after)},${s(e.reason)},${dataJson[i] ?? 'null'},${s(e.prevHash)},${s(e.hash)}]`);
  return `[${rows.join(',')}]`;
}

/** Seals and inserts `entries` after the chain's head in one transaction holding the head row's lock. */
export async function auditAppend(ctx: PostgresAuditContext, params: AuditAppendParams): Promise<AuditEntry[]> {
  if (params.entries.length === 0) return [];
  return withTransaction(ctx.pool, async (run) => {
    const { rows } = await run<{ seq: string; hash: string; append_at: Date }>(ctx.sql.headLock, [params.chain, params.now]);
    const head = rows[0]!;
    const { entries: sealed, dataJson } = sealBatch(params.chain, { seq: Number(head.seq), hash: head.hash }, head.append_at, params.entries);
    const last = sealed[sealed.length - 1]!;
    await run(ctx.sql.append, [params.chain, last.at, rowsJson(sealed, dataJson), last.seq, last.hash]);
    return sealed;
  });
}

/** A page of the chain in seq order. @throws InvalidOptionError for a limit outside 1..10,000. */
export async function auditList(ctx: PostgresAuditContext, params: AuditListParams): Promise<AuditEntry[]> {
  const limit = checkAuditListLimit(params.limit);
  const { rows } = await ctx.run<PgAuditEntryRecord>(ctx.sql.list, [params.chain, Math.trunc(params.afterSeq ?? 0), params.since ?? null, params.until ?? null, limit]);
  return rows.map(toEntry);
}

/** The chain's head row; null for a chain never appended to. */
export async function auditHead(ctx: PostgresAuditContext, params: { chain: string }): Promise<AuditHead | null> {
  const { rows } = await ctx.run<PgAuditHeadRecord>(ctx.sql.headGet, [params.chain]);
  return rows[0] ? toHead(rows[0]) : null;
}

/** Deletes the entries older than `before` under the head row's lock, recording the last one as pruned. */
export async function auditPrune(ctx: PostgresAuditContext, params: AuditPruneParams): Promise<number> {
  return withTransaction(ctx.pool, async (run) => {
    const locked = await run(ctx.sql.headLockExisting, [params.chain]);
    if (locked.rowCount === 0) return 0;
    const { rows } = await run<{ deleted: string }>(ctx.sql.prune, [params.chain, params.before]);
    return Number(rows[0]?.deleted ?? 0);
  });
}
