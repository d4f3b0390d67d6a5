/**
 * Alerts of the PostgreSQL driver (`Driver.alert*`): each operation is one statement from `postgres-alert-sql.ts`,
 * on the pool or on the caller's transaction (`tx`).
 * @module
 */
import {
  runningJobListBounds, type AlertDeadJob, type AlertDeadJobListParams, type AlertListParams, type AlertOpenParams, type AlertResolveParams,
  type AlertRow, type AlertRule, type AlertRunningJob, type AlertRunningJobListParams, type AlertSeverity, type AlertState,
} from '../alert-params.js';
import { jobListBounds } from '../job-params.js';
import { integerInRange } from '../../validation/integer-in-range.js';
import type { Run } from './postgres-insert.js';
import type { PostgresAlertStatements } from './postgres-alert-sql.js';
import { runOn } from './postgres-steps.js';

/** What the alert operations run on. */
export interface PostgresAlertContext {
  /** Runs one statement on any pooled connection. */
  run: Run;
  sql: PostgresAlertStatements;
  /** What `tx` must be, for `InvalidTransactionError`. */
  transactionHandle: string;
}

/** An `alerts` row as `pg` returns it. */
interface PgAlertRecord {
  key: string;
  rule: string;
  state: string;
  severity: string;
  summary: string;
  details: Record<string, unknown>;
  episode: number;
  opened_at: Date;
  resolved_at: Date | null;
  updated_at: Date;
  opened_by: string;
  resolved_by: string | null;
  notices: number;
}

function toAlertRow(r: PgAlertRecord): AlertRow {
  return {
    key: r.key,
    rule: r.rule as AlertRule,
    state: r.state as AlertState,
    severity: r.severity as AlertSeverity,
    summary: r.summary,
    details: r.details,
    episode: Number(r.episode),
    openedAt: r.opened_at,
    resolvedAt: r.resolved_at,
    updatedAt: r.updated_at,
    openedBy: r.opened_by,
    resolvedBy: r.resolved_by,
    notices: Number(r.notices),
  };
}

/**
 * Opens the alert unless it is open (or was resolved after `since`); the row when this call opened it.
 * @throws InvalidTransactionError when `tx` is not a pg client.
 */
export async function alertOpen(ctx: PostgresAlertContext, params: AlertOpenParams): Promise<AlertRow | null> {
  const run = runOn(ctx, params.tx);
  const values = [params.key, params.rule, params.severity, params.summary, params.detailsJson, params.instance, params.since, params.now];
  const { rows } = await run<PgAlertRecord>(ctx.sql.alertOpen, values);
  return rows[0] ? toAlertRow(rows[0]) : null;
}

/**
 * Resolves the alert if it is open (and was opened by `since`); the row when this call resolved it.
 * @throws InvalidTransactionError when `tx` is not a pg client.
 */
export async function alertResolve(ctx: PostgresAlertContext, params: AlertResolveParams): Promise<AlertRow | null> {
  const run = runOn(ctx, params.tx);
  const { rows } = await run<PgAlertRecord>(ctx.sql.alertResolve, [params.key, params.detailsJson, params.instance, params.since, params.now]);
  return rows[0] ? toAlertRow(rows[0]) : null;
}

/** Alerts, most recently changed first. @throws InvalidOptionError for a bad limit. */
export async function alertList(ctx: PostgresAlertContext, params: AlertListParams): Promise<AlertRow[]> {
  const limit = params.limit ?? 100;
  integerInRange('limit', limit, 10_000);
  const { rows } = await ctx.run<PgAlertRecord>(ctx.sql.alertList, [params.state ?? null, params.rule ?? null, limit]);
  return rows.map(toAlertRow);
}

/** The alert of `key`, open or resolved; null when there is none. */
export async function alertGet(ctx: PostgresAlertContext, params: { key: string }): Promise<AlertRow | null> {
  const { rows } = await ctx.run<PgAlertRecord>(ctx.sql.alertGet, [params.key]);
  return rows[0] ? toAlertRow(rows[0]) : null;
}

/**
 * A page of the dead jobs, newest id first, each with whether its dead-letter alert exists.
 * @throws InvalidOptionError for a `limit` that is not a whole number or a `beforeId` that is not a job id.
 */
export async function alertDeadJobList(ctx: PostgresAlertContext, params: AlertDeadJobListParams): Promise<AlertDeadJob[]> {
  const { limit, beforeId } = jobListBounds(params);
  const { rows } = await ctx.run<{ id: string; name: string; attempt: number; alerted: boolean }>(ctx.sql.alertDeadJobList, [beforeId, limit]);
  return rows.map((r) => ({ id: String(r.id), name: r.name, attempt: Number(r.attempt), alerted: r.alerted }));
}

/**
 * Running attempts started at or before `startedBefore`, oldest start first, after `after` when given.
 * @throws InvalidOptionError for a `limit` that is not a whole number or an `after` that is not a time and job id.
 */
export async function alertRunningJobList(ctx: PostgresAlertContext, params: AlertRunningJobListParams): Promise<AlertRunningJob[]> {
  const { limit, after } = runningJobListBounds(params);
  const values = [params.startedBefore, after?.startedAt ?? null, after?.id ?? null, limit];
  const { rows } = await ctx.run<{ id: string; name: string; queue: string; schedule_name: string | null; attempt: number; started_at: Date; lease_worker: string | null }>(
    ctx.sql.alertRunningJobList, values,
  );
  return rows.map((r) => ({
    id: String(r.id), name: r.name, queue: r.queue, scheduleName: r.schedule_name, attempt: Number(r.attempt), startedAt: r.started_at, leaseWorker: r.lease_worker,
  }));
}
