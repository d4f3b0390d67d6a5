/**
 * Alerts of the SQLite driver (`Driver.alert*`): each operation is one statement from `sqlite-alert-sql.ts`, run
 * through the driver's `write` (`BEGIN IMMEDIATE`) or `read`, or on the caller's transaction (`tx`).
 * @module
 */
import type { AlertListParams, AlertOpenParams, AlertResolveParams, AlertRow, AlertRule, AlertSeverity, AlertState } from '../alert-params.js';
import { integerInRange } from '../../validation/integer-in-range.js';
import { toMs, type SqliteContext } from './sqlite-exec.js';
import * as SQL from './sqlite-alert-sql.js';
import { int, type DbInt } from './sqlite-rows.js';

/** An `alerts` row exactly as stored. */
interface AlertDbRow {
  key: string;
  rule: string;
  state: string;
  severity: string;
  summary: string;
  details: string;
  episode: DbInt;
  opened_at: DbInt;
  resolved_at: DbInt | null;
  updated_at: DbInt;
  opened_by: string;
  resolved_by: string | null;
  notices: DbInt;
}

function toAlertRow(r: AlertDbRow): AlertRow {
  return {
    key: r.key,
    rule: r.rule as AlertRule,
    state: r.state as AlertState,
    severity: r.severity as AlertSeverity,
    summary: r.summary,
    details: JSON.parse(r.details) as Record<string, unknown>,
    episode: int(r.episode),
    openedAt: new Date(int(r.opened_at)),
    resolvedAt: r.resolved_at === null ? null : new Date(int(r.resolved_at)),
    updatedAt: new Date(int(r.updated_at)),
    openedBy: r.opened_by,
    resolvedBy: r.resolved_by,
    notices: int(r.notices),
  };
}

/** Runs one statement returning at most one row: on the caller's transaction when `tx` is given, else in its own. */
async function writeOne(ctx: SqliteContext, sql: string, bind: Record<string, unknown>, tx: unknown): Promise<AlertRow | null> {
  const row = tx !== undefined
    ? (ctx.txPrepare(tx)(sql).get(bind) as AlertDbRow | undefined)
    : await ctx.write(() => ctx.stmt(sql).get(bind) as AlertDbRow | undefined);
  return row ? toAlertRow(row) : null;
}

/**
 * Opens the alert unless it is open (or was resolved after `since`); the row when this call opened it.
 * @throws InvalidTransactionError when `tx` is not a better-sqlite3 Database inside a transaction.
 */
export function alertOpen(ctx: SqliteContext, params: AlertOpenParams): Promise<AlertRow | null> {
  const bind = {
    key: params.key, rule: params.rule, severity: params.severity, summary: params.summary, details: params.detailsJson,
    instance: params.instance, since: toMs(params.since, 'since'), now: toMs(params.now, 'now'),
  };
  return writeOne(ctx, SQL.ALERT_OPEN, bind, params.tx);
}

/**
 * Resolves the alert if it is open (and was opened by `since`); the row when this call resolved it.
 * @throws InvalidTransactionError when `tx` is not a better-sqlite3 Database inside a transaction.
 */
export function alertResolve(ctx: SqliteContext, params: AlertResolveParams): Promise<AlertRow | null> {
  const bind = { key: params.key, details: params.detailsJson, instance: params.instance, since: toMs(params.since, 'since'), now: toMs(params.now, 'now') };
  return writeOne(ctx, SQL.ALERT_RESOLVE, bind, params.tx);
}

/** Alerts, most recently changed first. @throws InvalidOptionError for a bad limit. */
export async function alertList(ctx: SqliteContext, params: AlertListParams): Promise<AlertRow[]> {
  const limit = params.limit ?? 100;
  integerInRange('limit', limit, 10_000);
  const bind = { state: params.state ?? null, rule: params.rule ?? null, limit };
  const rows = await ctx.read(() => ctx.stmt(SQL.ALERT_LIST).all(bind) as AlertDbRow[]);
  return rows.map(toAlertRow);
}
