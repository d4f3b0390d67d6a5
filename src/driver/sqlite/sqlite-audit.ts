/**
 * The audit trail of the SQLite driver (`Driver.audit*`): appends sealed inside one `BEGIN IMMEDIATE` (the
 * file's write lock serializes every append of every chain, across processes) and stored as one block each
 * (`src/audit/audit-block.ts`), reads paged by seq. SQL in `sqlite-audit-sql.ts`; the chain's hashing in
 * `src/audit/audit-hash.ts`.
 * @module
 */
import { prunedEnd, readAuditPage, retriedBatch, type AuditBlockBatch, type AuditBlockRow } from '../../audit/audit-block.js';
import { GENESIS_HASH, sealBatch } from '../../audit/audit-hash.js';
import { readAuditBlocksAsStored } from '../../audit/audit-block.js';
import {
  checkAuditListLimit, retriedSeq, type AuditAppendParams, type AuditEntry, type AuditEntryInput, type AuditHead, type AuditListParams, type AuditPruneParams,
} from '../audit-params.js';
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

interface AuditBlockDbRow {
  first_seq: DbInt;
  at: DbInt;
  entries: string;
}

function toHead(r: AuditHeadDbRow): AuditHead {
  return { chain: r.chain, seq: int(r.seq), hash: r.hash, at: r.at === null ? null : new Date(int(r.at)), prunedSeq: int(r.pruned_seq), prunedHash: r.pruned_hash };
}

function toBlock(r: AuditBlockDbRow): AuditBlockRow {
  return { firstSeq: int(r.first_seq), at: new Date(int(r.at)), entries: r.entries };
}

/**
 * Seals `entries` after the chain's head, all at one time (`now` or the database clock, never before the head's
 * time), inserts them as one block and moves the head, in one write transaction. With `retryOf`, first looks in
 * that transaction for the one of those batches that is in the chain, and returns it as stored without writing.
 *
 * No append of this driver is left unconfirmed: the transaction runs in this process, and its COMMIT either returns
 * or fails leaving nothing that can commit later, so there is no reply to lose and `AuditAppendUnconfirmedError` is
 * never thrown. `retryOf` is honoured all the same, for the contract (a caller may name attempts in doubt however it
 * got them).
 */
export async function auditAppend(ctx: SqliteContext, params: AuditAppendParams): Promise<AuditEntry[]> {
  const nowParam = toMs(params.now, 'now');
  if (params.entries.length === 0) return [];
  const retrySeq = retriedSeq(params.retryOf);
  return ctx.write(() => {
    const head = lockedHead(ctx, params.chain);
    if (retrySeq !== null && head.seq >= retrySeq) {
      const found = ctx.stmt(SQL.AUDIT_BLOCK_AT).get({ chain: params.chain, seq: retrySeq }) as AuditBlockDbRow | undefined;
      const written = retriedBatch(params.chain, found ? toBlock(found) : undefined, params.retryOf ?? []);
      if (written) return written;
    }
    return appendSealed(ctx, params.chain, head, params.entries, nowParam);
  });
}

/** The chain's head, read inside the caller's write transaction; an empty one for a chain never appended to. */
function lockedHead(ctx: SqliteContext, chain: string): Pick<AuditHead, 'seq' | 'hash' | 'at'> {
  const row = ctx.stmt(SQL.AUDIT_HEAD_GET).get({ chain }) as AuditHeadDbRow | undefined;
  return row ? toHead(row) : { seq: 0, hash: GENESIS_HASH, at: null };
}

/**
 * Seals `entries` onto `head` and writes them as one block, moving the head. Runs inside the caller's write
 * transaction (`BEGIN IMMEDIATE`), whose lock serializes it with every other append.
 */
function appendSealed(ctx: SqliteContext, chain: string, head: Pick<AuditHead, 'seq' | 'hash' | 'at'>, entries: AuditEntryInput[], nowParam: number | null): AuditEntry[] {
  // Read after BEGIN IMMEDIATE took the lock: a later seq never gets an earlier time.
  const at = int((ctx.stmt(SQL.AUDIT_APPEND_TIME).get({ now: nowParam, lastAt: head.at?.getTime() ?? null }) as { at: DbInt }).at);
  const { entries: sealed, block } = sealBatch(chain, head, new Date(at), entries);
  const last = sealed[sealed.length - 1]!;
  ctx.stmt(SQL.AUDIT_BLOCK_INSERT).run({ chain, firstSeq: sealed[0]!.seq, lastSeq: last.seq, at, entries: block });
  ctx.stmt(SQL.AUDIT_HEAD_SET).run({ chain, seq: last.seq, hash: last.hash, at: last.at.getTime() });
  return sealed;
}

/**
 * A page of the chain in seq order; with `located`, the blocks it is read from as stored, each entry with where.
 * @throws InvalidOptionError for a limit outside 1..10,000.
 */
export async function auditList(ctx: SqliteContext, params: AuditListParams): Promise<AuditEntry[]> {
  const limit = checkAuditListLimit(params.limit);
  const bind = {
    chain: params.chain,
    afterSeq: Math.trunc(params.afterSeq ?? 0),
    since: params.since === undefined ? null : toMs(params.since, 'since'),
    until: params.until === undefined ? NO_UNTIL : toMs(params.until, 'until'),
    limit,
  };
  const fetch = async (afterSeq: number, count: number): Promise<AuditBlockBatch> => {
    const rows = await ctx.read(() => ctx.stmt(SQL.AUDIT_LIST).all({ ...bind, afterSeq, limit: count }) as (AuditBlockDbRow & { last_seq: DbInt; after_seq: DbInt })[]);
    return { blocks: rows.map((r) => ({ ...toBlock(r), lastSeq: int(r.last_seq) })), startsAfter: rows.length === 0 ? afterSeq : int(rows[0]!.after_seq) };
  };
  const read = params.located === true ? readAuditBlocksAsStored : readAuditPage;
  return read(params.chain, bind.afterSeq, limit, fetch);
}

/** The chain's head row; null for a chain never appended to. */
export async function auditHead(ctx: SqliteContext, params: { chain: string }): Promise<AuditHead | null> {
  const row = await ctx.read(() => ctx.stmt(SQL.AUDIT_HEAD_GET).get({ chain: params.chain }) as AuditHeadDbRow | undefined);
  return row ? toHead(row) : null;
}

/**
 * Deletes the blocks older than `before`, records the last entry of the last one in the head, and appends the
 * `record` entry, all in one write transaction; how many entries went.
 */
export async function auditPrune(ctx: SqliteContext, params: AuditPruneParams): Promise<number> {
  const before = toMs(params.before, 'before');
  const nowParam = toMs(params.now ?? null, 'now');
  return ctx.write(() => {
    const last = ctx.stmt(SQL.AUDIT_PRUNE_LAST).get({ chain: params.chain, before }) as (AuditBlockDbRow & { last_seq: DbInt }) | undefined;
    if (!last) return 0;
    const pruned = prunedEnd(params.chain, toBlock(last), int(last.last_seq));
    const counts = ctx.stmt(SQL.AUDIT_PRUNE_DELETE).all({ chain: params.chain, firstSeq: last.first_seq }) as { n: DbInt }[];
    ctx.stmt(SQL.AUDIT_HEAD_PRUNED).run({ chain: params.chain, seq: pruned.seq, hash: pruned.hash });
    const deleted = counts.reduce((sum, c) => sum + int(c.n), 0);
    if (params.record) {
      appendSealed(ctx, params.chain, lockedHead(ctx, params.chain), [params.record({ deleted, prunedSeq: pruned.seq, prunedHash: pruned.hash })], nowParam);
    }
    return deleted;
  });
}
