/**
 * Lease locks of the PostgreSQL driver (`Driver.lock*`): each operation is one statement from
 * `postgres-lock-sql.ts`. Fencing tokens are `bigint` in SQL and returned as numbers (one per grant, so far below
 * 2^53).
 * @module
 */
import { InvalidTransactionError } from '../../errors.js';
import type { LockAcquireParams, LockCheckParams, LockCheckResult, LockGrant, LockRenewParams, LockRow } from '../lock-params.js';
import type { Run } from './postgres-insert.js';
import type { PostgresLockStatements } from './postgres-lock-sql.js';
import { toLockRow, type PgLockRecord } from './postgres-rows.js';
import { isPgClient } from './postgres-transaction.js';

/** What the lock operations run on. */
export interface PostgresLockContext {
  /** Runs one statement on any pooled connection. */
  run: Run;
  sql: PostgresLockStatements;
  /** What `tx` must be, for {@link InvalidTransactionError}. */
  transactionHandle: string;
}

/** A token that cannot be sent as `bigint` can never match: tokens start at 1. */
const NO_TOKEN = -1;

/** The token as a `bigint` parameter; anything but a safe integer becomes {@link NO_TOKEN}. */
function tokenParam(token: number): number {
  return Number.isSafeInteger(token) ? token : NO_TOKEN;
}

type GrantRecord = { token: string; expires_at: Date };

function toGrant(rows: GrantRecord[]): LockGrant | null {
  const row = rows[0];
  return row ? { token: Number(row.token), expiresAt: row.expires_at } : null;
}

/**
 * Grants the lock if it is new, released or expired, or again to the call that holds it (`grantId` and holder; token
 * + 1); null while someone else holds it.
 */
export async function lockAcquire(ctx: PostgresLockContext, params: LockAcquireParams): Promise<LockGrant | null> {
  const { rows } = await ctx.run<GrantRecord>(ctx.sql.lockAcquire, [params.name, params.holder, params.ttlMs, params.now, params.grantId ?? null]);
  return toGrant(rows);
}

/** Extends an unexpired lease held with `token`; null when it was lost. */
export async function lockRenew(ctx: PostgresLockContext, params: LockRenewParams): Promise<LockGrant | null> {
  const { rows } = await ctx.run<GrantRecord>(ctx.sql.lockRenew, [params.name, tokenParam(params.token), params.ttlMs, params.now]);
  return toGrant(rows);
}

/** Frees the lock if `token` holds it; whether it did. */
export async function lockRelease(ctx: PostgresLockContext, params: { name: string; token: number }): Promise<boolean> {
  const { rowCount } = await ctx.run(ctx.sql.lockRelease, [params.name, tokenParam(params.token)]);
  return (rowCount ?? 0) > 0;
}

/**
 * Whether `token` is the live holder, and the newest token. With `tx` (a pg client with an open transaction) the
 * check runs on it with `FOR SHARE`, so no competing grant can commit before that transaction ends.
 * @throws InvalidTransactionError when `tx` is not a pg client.
 */
export async function lockCheck(ctx: PostgresLockContext, params: LockCheckParams): Promise<LockCheckResult> {
  const { tx } = params;
  const values = [params.name, tokenParam(params.token), params.now];
  let rows: { token: string; held: boolean | null }[];
  if (tx !== undefined) {
    if (!isPgClient(tx)) throw new InvalidTransactionError(ctx.transactionHandle, tx);
    ({ rows } = await tx.query<{ token: string; held: boolean | null }>(ctx.sql.lockCheckForShare, values));
  } else {
    ({ rows } = await ctx.run<{ token: string; held: boolean | null }>(ctx.sql.lockCheck, values));
  }
  const row = rows[0];
  return row ? { held: row.held === true, currentToken: Number(row.token) } : { held: false, currentToken: null };
}

/** Every lock row, by name. */
export async function lockList(ctx: PostgresLockContext): Promise<LockRow[]> {
  const { rows } = await ctx.run<PgLockRecord>(ctx.sql.lockList);
  return rows.map(toLockRow);
}
