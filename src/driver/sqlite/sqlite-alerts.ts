/**
 * Alerts of the SQLite driver (`Driver.alert*`): each operation is one statement from `sqlite-alert-sql.ts`, run
 * through the driver's `write` (`BEGIN IMMEDIATE`) or `read`, or on the caller's transaction (`tx`).
 * @module
 */
import {
  runningJobListBounds, type AlertDeadJob, type AlertDeadJobListParams, type AlertListParams, type AlertOpenParams, type AlertResolveParams,
  type AlertRow, type AlertRule, type AlertRunningJob, type AlertRunningJobListParams, type AlertSeverity, type AlertState,
} from '../alert-params.js';
import { jobListBounds, MAX_JOB_ID } from '../job-params.js';
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

/** The alert of `key`, open or resolved; null when there is none. */
export async function alertGet(ctx: SqliteContext, params: { key: string }): Promise<AlertRow | null> {
  const row = await ctx.read(() => ctx.stmt(SQL.ALERT_GET).get({ key: params.key }) as AlertDbRow | undefined);
  return row ? toAlertRow(row) : null;
}

/**
 * A page of the dead jobs, newest id first, each with whether its dead-letter alert exists.
 * @throws InvalidOptionError for a `limit` that is not a whole number or a `beforeId` that is not a job id.
 */
export async function alertDeadJobList(ctx: SqliteContext, params: AlertDeadJobListParams): Promise<AlertDeadJob[]> {
  const { limit, beforeId } = jobListBounds(params);
  // Always bound, the largest id when not paging, so the index range applies.
  const bind = { beforeId: beforeId === null ? MAX_JOB_ID : BigInt(beforeId), limit };
  const rows = await ctx.read(() => ctx.stmt(SQL.ALERT_DEAD_JOB_LIST).all(bind) as { id: DbInt; name: string; attempt: DbInt; alerted: DbInt }[]);
  return rows.map((r) => ({ id: String(r.id), name: r.name, attempt: int(r.attempt), alerted: int(r.alerted) === 1 }));
}

/**
 * Running attempts started at or before `startedBefore`, oldest start first, after `after` when given.
 * @throws InvalidOptionError for a `limit` that is not a whole number or an `after` that is not a time and job id.
 */
export async function alertRunningJobList(ctx: SqliteContext, params: AlertRunningJobListParams): Promise<AlertRunningJob[]> {
  const { limit, after } = runningJobListBounds(params);
  const bind = {
    startedBefore: toMs(params.startedBefore, 'startedBefore'), afterAt: after === null ? null : toMs(after.startedAt, 'after.startedAt'),
    afterId: after === null ? null : BigInt(after.id), limit,
  };
  type Row = { id: DbInt; name: string; queue: string; schedule_name: string | null; attempt: DbInt; started_at: DbInt; lease_worker: string | null };
  const rows = await ctx.read(() => ctx.stmt(SQL.ALERT_RUNNING_JOB_LIST).all(bind) as Row[]);
  return rows.map((r) => ({
    id: String(r.id), name: r.name, queue: r.queue, scheduleName: r.schedule_name, attempt: int(r.attempt), startedAt: new Date(int(r.started_at)),
    leaseWorker: r.lease_worker,
  }));
}
