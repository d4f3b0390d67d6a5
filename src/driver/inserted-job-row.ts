/**
 * The row of a job a driver has just inserted, built from the insert itself.
 * @module
 */
import type { JobRow } from '../job/job-record.js';
import type { JobInsert } from './driver.js';

/** What only the database decides about a new job: its id, and its due and creation times (its clock's `now`). */
export interface InsertedJobFields {
  id: string;
  runAt: Date;
  createdAt: Date;
}

/**
 * The {@link JobRow} a fresh insert of `insert` reads back, without reading it back: every other column is either
 * written from the insert or starts at its schema default (never claimed, no lease, no error, no checkpoint).
 * Reading the whole row back with `RETURNING` and parsing its 26 columns was most of an enqueue's cost beyond the
 * insert itself (PostgreSQL: a bulk insert of 1,000 jobs 26,000–29,000 → 38,000–41,000 jobs a second; SQLite
 * turns an insert's read-back into `lastInsertRowid`). The conformance suite compares this row with the stored
 * one (`jobGet`) for every kind of insert, so a migration that changes a default cannot drift from it unnoticed.
 * Only for a job inserted now: a deduplicated insert returns its holder as stored.
 */
export function insertedJobRow(insert: JobInsert, fields: InsertedJobFields): JobRow {
  return {
    id: fields.id,
    name: insert.name,
    queue: insert.queue,
    payload: JSON.parse(insert.payloadJson) as unknown,
    state: 'queued',
    priority: insert.priority,
    runAt: fields.runAt,
    attempt: 0,
    maxAttempts: insert.maxAttempts,
    lostCount: 0,
    leaseToken: 0,
    leaseWorker: null,
    leaseExpiresAt: null,
    startedAt: null,
    key: insert.key,
    lastError: null,
    createdAt: fields.createdAt,
    // Written from the same `now` as created_at.
    updatedAt: new Date(fields.createdAt.getTime()),
    finishedAt: null,
    scheduleName: insert.scheduleName ?? null,
    tickAt: insert.tickAt ? new Date(insert.tickAt.getTime()) : null,
    checkpoint: null,
    progress: null,
    checkpointAt: null,
    // A copy: the row must not share an object with the caller's insert.
    traceContext: insert.traceContext ? { ...insert.traceContext } : null,
  };
}
