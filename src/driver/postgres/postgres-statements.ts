/**
 * Every schema-dependent statement of the PostgreSQL driver's own tables (jobs, attempts, queues, migrations), built
 * once per driver from `postgres-sql.ts`, `postgres-lease-sql.ts` and `postgres-job-admin-sql.ts`.
 * @module
 */
import { jobCancelSql, jobRetrySql, jobDiscardSql, jobGetSql, jobGetManySql, jobListSql, jobAttemptListSql, queueListSql, queueActivitySql, queueSetPausedSql } from './postgres-job-admin-sql.js';
import { jobClaimSql, jobClaimHandoffSql, jobHeartbeatSql, jobHeartbeatWaitSql, jobLeaseCheckSql, jobFinishManySql, jobCompleteManySql, jobRescueSql } from './postgres-lease-sql.js';
import { quoteIdentifier, schemaCreateSql, migrationTableCreateSql, migrationListSql, migrationRecordSql, jobInsertNotifySql, jobInsertOneNotifySql } from './postgres-sql.js';

/** Every schema-dependent statement, built once per driver (see {@link buildPostgresStatements}). */
export interface PostgresStatements {
  /** The schema, double-quoted, for `{{schema}}` in migrations. */
  quotedSchema: string;
  schemaCreate: string;
  migrationTableCreate: string;
  migrationList: string;
  migrationRecord: string;
  jobInsertNotify: string;
  jobInsertOneNotify: string;
  jobClaim: string;
  jobClaimHandoff: string;
  jobHeartbeat: string;
  /** The heartbeat's second try, waiting a moment for the locks its first skipped. */
  jobHeartbeatWait: string;
  /** The look-up of a worker's buffered leases before it starts them (held, queue paused). */
  jobLeaseCheck: string;
  jobFinishMany: string;
  jobCompleteMany: string;
  jobRescue: string;
  jobCancel: string;
  jobRetry: string;
  jobDiscard: string;
  jobGet: string;
  jobGetMany: string;
  jobList: string;
  jobAttemptList: string;
  queueList: string;
  queueActivity: string;
  queueSetPaused: string;
}

/** Builds every statement for a schema already checked by `validateSchemaName`. */
export function buildPostgresStatements(schema: string): PostgresStatements {
  const s = quoteIdentifier(schema);
  return {
    quotedSchema: s,
    schemaCreate: schemaCreateSql(s),
    migrationTableCreate: migrationTableCreateSql(s),
    migrationList: migrationListSql(s),
    migrationRecord: migrationRecordSql(s),
    jobInsertNotify: jobInsertNotifySql(s),
    jobInsertOneNotify: jobInsertOneNotifySql(s),
    jobClaim: jobClaimSql(s),
    jobClaimHandoff: jobClaimHandoffSql(s),
    jobHeartbeat: jobHeartbeatSql(s),
    jobHeartbeatWait: jobHeartbeatWaitSql(s),
    jobLeaseCheck: jobLeaseCheckSql(s),
    jobFinishMany: jobFinishManySql(s),
    jobCompleteMany: jobCompleteManySql(s),
    jobRescue: jobRescueSql(s),
    jobCancel: jobCancelSql(s),
    jobRetry: jobRetrySql(s),
    jobDiscard: jobDiscardSql(s),
    jobGet: jobGetSql(s),
    jobGetMany: jobGetManySql(s),
    jobList: jobListSql(s),
    jobAttemptList: jobAttemptListSql(s),
    queueList: queueListSql(s),
    queueActivity: queueActivitySql(s),
    queueSetPaused: queueSetPausedSql(s),
  };
}
