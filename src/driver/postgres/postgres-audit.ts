/**
 * The audit trail of the PostgreSQL driver (`Driver.audit*`). An append seals the batch onto the chain's head in
 * JavaScript (`src/audit/audit-hash.ts`) and writes it as one block while moving the head, either optimistically
 * (one statement that applies only if the head is still the one sealed onto) or in a transaction holding the head
 * row's lock (a chain's first append, or after another append got in between). Appends of one chain from any number
 * of processes and hosts therefore form one chain. SQL in `postgres-audit-sql.ts`.
 * @module
 */
import type pg from 'pg';
import { prunedEnd, readAuditPage, retriedBatch, type AuditBlockBatch, type AuditBlockRow } from '../../audit/audit-block.js';
import { sealBatch } from '../../audit/audit-hash.js';
import { readAuditBlocksAsStored } from '../../audit/audit-block.js';
import { AuditAppendUnconfirmedError } from '../../errors.js';
import {
  checkAuditListLimit, retriedSeq, type AuditAppendParams, type AuditBatchRef, type AuditEntry, type AuditEntryInput, type AuditHead, type AuditListParams,
  type AuditPruneParams,
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

interface PgAuditBlockRecord {
  first_seq: string;
  at: Date;
  entries: string;
}

function toHead(r: PgAuditHeadRecord): AuditHead {
  return { chain: r.chain, seq: Number(r.seq), hash: r.hash, at: r.at, prunedSeq: Number(r.pruned_seq), prunedHash: r.pruned_hash };
}

function toBlock(r: PgAuditBlockRecord): AuditBlockRow {
  return { firstSeq: Number(r.first_seq), at: r.at, entries: r.entries };
}

/**
 * Seals `entries` after the chain's head and inserts them as one block. First optimistically, in two round trips and
 * no transaction: read the head and the time, seal, and write the block with the new head in one statement that
 * applies only if the head did not move meanwhile (`auditAppendIfHeadSql`). When it moved (another append got in
 * between) or the chain has no head yet, the batch is sealed again in a transaction holding the head row's lock.
 * The locked way alone was four round trips (BEGIN, lock, append, COMMIT) and two head row versions per append.
 *
 * A failure after the sealed batch was sent throws {@link AuditAppendUnconfirmedError}: the connection may have
 * dropped after the commit, or the statement may still be running on the server (waiting for the head row, say) and
 * commit later. A retry (`retryOf`: every such attempt still in doubt) takes the locked way, so it is decided holding
 * the head row: an earlier locked attempt has ended by then, and an optimistic one already waiting for the row went
 * first. One that reaches the row only later finds the head moved by this append and writes nothing, unless this
 * append is itself lost before it commits: then the caller names both the next time.
 */
export async function auditAppend(ctx: PostgresAuditContext, params: AuditAppendParams): Promise<AuditEntry[]> {
  if (params.entries.length === 0) return [];
  const retrySeq = retriedSeq(params.retryOf);
  if (retrySeq !== null) return lockedAppend(ctx, params, retrySeq);
  const { rows } = await ctx.run<{ seq: string; hash: string; append_at: Date }>(ctx.sql.headRead, [params.chain, params.now]);
  const head = rows[0];
  if (head) {
    const { entries: sealed, block } = sealBatch(params.chain, { seq: Number(head.seq), hash: head.hash }, head.append_at, params.entries);
    const last = sealed[sealed.length - 1]!;
    let applied: boolean;
    try {
      applied = (await ctx.run(ctx.sql.appendIfHead, [params.chain, last.at, sealed[0]!.seq, last.seq, block, last.hash, head.seq, head.hash])).rowCount === 1;
    } catch (error) {
      throw new AuditAppendUnconfirmedError(sealed[0]!.seq, last.hash, { cause: error });
    }
    if (applied) return sealed;
  }
  return lockedAppend(ctx, params, null);
}

/**
 * {@link auditAppend} in a transaction holding the head row's lock (created on the chain's first append). With
 * `retrySeq` (the first seq of the batches `params.retryOf` names), first looks under the lock for the one of them
 * that is in the chain, and returns it as stored without writing.
 */
async function lockedAppend(ctx: PostgresAuditContext, params: AuditAppendParams, retrySeq: number | null): Promise<AuditEntry[]> {
  // Set once the sealed batch is about to be sent (an object: TypeScript does not track a `let` set in a callback).
  const sent: { batch: AuditBatchRef | null } = { batch: null };
  try {
    return await withTransaction(ctx.pool, async (run) => {
      const head = await lockHead(ctx, run, params.chain, params.now);
      if (retrySeq !== null && Number(head.seq) >= retrySeq) {
        const found = await run<PgAuditBlockRecord>(ctx.sql.blockAt, [params.chain, retrySeq]);
        const written = retriedBatch(params.chain, found.rows[0] ? toBlock(found.rows[0]) : undefined, params.retryOf ?? []);
        if (written) return written;
      }
      return appendSealed(ctx, run, params.chain, head, params.entries, (batch) => {
        sent.batch = batch;
      });
    });
  } catch (error) {
    // Sent and then failed (the statement, or the COMMIT): it may have been written.
    if (sent.batch) throw new AuditAppendUnconfirmedError(sent.batch.firstSeq, sent.batch.lastHash, { cause: error });
    throw error;
  }
}

/**
 * Locks the chain's head row for the rest of the transaction `run` is in (creating it on a chain's first append), and
 * reads the head and the time of an append made now, after the lock was granted.
 */
async function lockHead(ctx: PostgresAuditContext, run: Run, chain: string, now: Date | null): Promise<{ seq: string; hash: string; append_at: Date }> {
  const { rows } = await run<{ seq: string; hash: string; append_at: Date }>(ctx.sql.headLock, [chain, now]);
  return rows[0]!;
}

/**
 * Seals `entries` onto `head` (read under its lock, with the append's time) and writes them as one block, moving the
 * head, in the transaction `run` is in. `sending` is told where the batch was sealed just before it is sent.
 */
async function appendSealed(
  ctx: PostgresAuditContext, run: Run, chain: string, head: { seq: string; hash: string; append_at: Date }, entries: AuditEntryInput[],
  sending: (batch: AuditBatchRef) => void = () => {},
): Promise<AuditEntry[]> {
  const { entries: sealed, block } = sealBatch(chain, { seq: Number(head.seq), hash: head.hash }, head.append_at, entries);
  const last = sealed[sealed.length - 1]!;
  sending({ firstSeq: sealed[0]!.seq, lastHash: last.hash });
  await run(ctx.sql.append, [chain, last.at, sealed[0]!.seq, last.seq, block, last.hash]);
  return sealed;
}

/**
 * A page of the chain in seq order; with `located`, the blocks it is read from as stored, each entry with where.
 * @throws InvalidOptionError for a limit outside 1..10,000.
 */
export async function auditList(ctx: PostgresAuditContext, params: AuditListParams): Promise<AuditEntry[]> {
  const limit = checkAuditListLimit(params.limit);
  const fetch = async (afterSeq: number, count: number): Promise<AuditBlockBatch> => {
    const { rows } = await ctx.run<PgAuditBlockRecord & { last_seq: string; after_seq: string }>(ctx.sql.list, [params.chain, afterSeq, params.since ?? null, params.until ?? null, count]);
    return { blocks: rows.map((r) => ({ ...toBlock(r), lastSeq: Number(r.last_seq) })), startsAfter: rows.length === 0 ? afterSeq : Number(rows[0]!.after_seq) };
  };
  const read = params.located === true ? readAuditBlocksAsStored : readAuditPage;
  return read(params.chain, Math.trunc(params.afterSeq ?? 0), limit, fetch);
}

/** The chain's head row; null for a chain never appended to. */
export async function auditHead(ctx: PostgresAuditContext, params: { chain: string }): Promise<AuditHead | null> {
  const { rows } = await ctx.run<PgAuditHeadRecord>(ctx.sql.headGet, [params.chain]);
  return rows[0] ? toHead(rows[0]) : null;
}

/**
 * Deletes the blocks older than `before` under the head row's lock, recording the last entry of the last one as
 * pruned, and appends the `record` entry sealed under that same lock, in one transaction; returns the number of
 * entries deleted. A failure, the COMMIT's included, is thrown as it is: run again, the prune deletes and records what
 * is still there, and one that did commit left nothing more to delete before that time.
 */
export async function auditPrune(ctx: PostgresAuditContext, params: AuditPruneParams): Promise<number> {
  return withTransaction(ctx.pool, async (run) => {
    const locked = await run(ctx.sql.headLockExisting, [params.chain]);
    if (locked.rowCount === 0) return 0;
    const found = await run<PgAuditBlockRecord & { last_seq: string }>(ctx.sql.pruneLast, [params.chain, params.before]);
    const last = found.rows[0];
    if (!last) return 0;
    const pruned = prunedEnd(params.chain, toBlock(last), Number(last.last_seq));
    const { rows } = await run<{ deleted: string }>(ctx.sql.prune, [params.chain, last.first_seq, pruned.seq, pruned.hash]);
    const deleted = Number(rows[0]?.deleted ?? 0);
    if (params.record) {
      // The lock is held already: this reads the head and, after the lock, the time.
      const head = await lockHead(ctx, run, params.chain, params.now ?? null);
      await appendSealed(ctx, run, params.chain, head, [params.record({ deleted, prunedSeq: pruned.seq, prunedHash: pruned.hash })]);
    }
    return deleted;
  });
}
