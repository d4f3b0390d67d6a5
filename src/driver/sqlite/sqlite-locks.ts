/**
 * Lease locks of the SQLite driver (`Driver.lock*`): each operation is one statement from `sqlite-lock-sql.ts`,
 * run through the driver's `write` (`BEGIN IMMEDIATE`) or `read`.
 * @module
 */
import type { LockAcquireParams, LockCheckParams, LockCheckResult, LockGrant, LockRenewParams, LockRow } from '../lock-params.js';
import { toMs, type SqliteContext } from './sqlite-exec.js';
import * as SQL from './sqlite-lock-sql.js';
import {
  toLockCheckResult, toLockGrant, toLockRow, type LockCheckDbRow, type LockDbRow, type LockGrantDbRow,
} from './sqlite-rows.js';

/** What the lock operations run on: the driver's connection, transactions and `tx` handles. */
export type SqliteLockContext = SqliteContext;

/** A token no grant has: tokens start at 1. */
const NO_TOKEN = -1;

/**
 * The token as bound to SQL; anything but a safe integer becomes {@link NO_TOKEN}, as in the PostgreSQL driver.
 * Without this, the `token` column's integer affinity would match the text `'1'` (and a bigint 1n) to token 1.
 */
function tokenParam(token: number): number {
  return Number.isSafeInteger(token) ? token : NO_TOKEN;
}

/**
 * Grants the lock if it is new, released or expired, or again to the call that holds it (`grantId` and holder; token
 * + 1); null while someone else holds it.
 */
export async function lockAcquire(ctx: SqliteLockContext, params: LockAcquireParams): Promise<LockGrant | null> {
  const bind = { name: params.name, holder: params.holder, ttlMs: Math.trunc(params.ttlMs), now: toMs(params.now, 'now'), grantId: params.grantId ?? null };
  const row = await ctx.write(() => ctx.stmt(SQL.LOCK_ACQUIRE).get(bind) as LockGrantDbRow | undefined);
  return row ? toLockGrant(row) : null;
}

/** Extends an unexpired lease held with `token`; null when it was lost. */
export async function lockRenew(ctx: SqliteLockContext, params: LockRenewParams): Promise<LockGrant | null> {
  const bind = { name: params.name, token: tokenParam(params.token), ttlMs: Math.trunc(params.ttlMs), now: toMs(params.now, 'now') };
  const row = await ctx.write(() => ctx.stmt(SQL.LOCK_RENEW).get(bind) as LockGrantDbRow | undefined);
  return row ? toLockGrant(row) : null;
}

/** Frees the lock if `token` holds it; whether it did. */
export async function lockRelease(ctx: SqliteLockContext, params: { name: string; token: number }): Promise<boolean> {
  const bind = { name: params.name, token: tokenParam(params.token) };
  return ctx.write(() => ctx.stmt(SQL.LOCK_RELEASE).run(bind).changes > 0);
}

/**
 * Whether `token` is the live holder, and the newest token. With `tx`, runs on the application's connection
 * inside its transaction (no busy retry, as for `jobInsertMany`); nothing more is needed: that transaction's write
 * lock already excludes every other writer.
 * @throws InvalidTransactionError when `tx` is not a better-sqlite3 Database inside a transaction.
 */
export async function lockCheck(ctx: SqliteLockContext, params: LockCheckParams): Promise<LockCheckResult> {
  const { tx } = params;
  const bind = { name: params.name, token: tokenParam(params.token), now: toMs(params.now, 'now') };
  if (tx !== undefined) {
    return toLockCheckResult(ctx.txPrepare(tx)(SQL.LOCK_CHECK).get(bind) as LockCheckDbRow | undefined);
  }
  return toLockCheckResult(await ctx.read(() => ctx.stmt(SQL.LOCK_CHECK).get(bind) as LockCheckDbRow | undefined));
}

/** Every lock row, by name. */
export async function lockList(ctx: SqliteLockContext): Promise<LockRow[]> {
  const rows = await ctx.read(() => ctx.stmt(SQL.LOCK_LIST).all() as LockDbRow[]);
  return rows.map(toLockRow);
}
