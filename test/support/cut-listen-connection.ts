/**
 * Ends a worker's PostgreSQL LISTEN connection from the server side, as a network cut would: the connection holding
 * the worker's hand-off advisory lock, found through `pg_locks`. The worker then reconnects and hands back what it
 * did not receive.
 * @module
 */
import { expect } from 'vitest';
import { handoffLockKey } from '../../src/driver/postgres/postgres-handoff.js';
import { openPgClient } from '../conformance/helpers.js';

/** Terminates the backend holding `workerId`'s hand-off lock in `schema`; expects exactly one. */
export async function cutListenConnection(schema: string, workerId: string): Promise<void> {
  const key = BigInt(handoffLockKey(schema, workerId));
  const admin = await openPgClient();
  try {
    const { rows } = await admin.query<{ ok: boolean }>(
      `SELECT pg_terminate_backend(pid) AS ok FROM pg_locks WHERE locktype = 'advisory' AND granted
         AND classid::bigint = $1 AND objid::bigint = $2`,
      [Number(BigInt.asUintN(64, key) >> 32n), Number(BigInt.asUintN(32, key))],
    );
    expect(rows).toEqual([{ ok: true }]);
  } finally {
    await admin.end();
  }
}
