/**
 * Transactions for the PostgreSQL driver: our own (BEGIN/COMMIT on one pooled client) and the caller's
 * (a `pg` client passed as `tx`).
 * @module
 */
import type pg from 'pg';
import type { Run } from './postgres-insert.js';
import { BEGIN_SQL, COMMIT_SQL, ROLLBACK_SQL } from './postgres-sql.js';

/**
 * Runs `fn` inside BEGIN/COMMIT on one pooled client; ROLLBACK on error; always releases the client. A client
 * whose connection broke (or whose ROLLBACK failed) is destroyed rather than returned to the pool, so the
 * next caller never gets a dead connection or one stuck in an aborted transaction.
 */
export async function withTransaction<T>(pool: pg.Pool, fn: (run: Run) => Promise<T>): Promise<T> {
  return withClientTransaction(pool, (client) => fn((text, values) => client.query(text, values)));
}

/**
 * {@link withTransaction}, handing `fn` the pooled client itself (for `Driver.transaction`, whose callers query it
 * directly and pass it back as `tx`). Tables are always schema-qualified, so the client needs no `search_path`.
 * `begin` is the statement that opens the transaction (statements without parameters, one round trip), e.g. one
 * that also sets transaction-local settings. @default `BEGIN`
 */
export async function withClientTransaction<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>, begin: string = BEGIN_SQL): Promise<T> {
  const client = await pool.connect();
  // While a client is checked out the pool's own error listener is detached, so without this one a
  // connection error would be an uncaught 'error' event. The failing query rejects too; this only records it.
  let broken = false;
  const onClientError = (): void => {
    broken = true;
  };
  client.on('error', onClientError);
  try {
    return await transactionOn(client, () => fn(client), begin, () => {
      broken = true;
    });
  } finally {
    client.removeListener('error', onClientError);
    client.release(broken);
  }
}

/**
 * `begin`, `fn`, then COMMIT on `client`, whose owner checks it out and gives it back; when anything fails, ROLLBACK
 * and the error rethrown. A ROLLBACK that fails too (the connection is gone) calls `onRollbackFailed`: the owner
 * must then drop the client rather than reuse it.
 */
export async function transactionOn<T>(client: pg.ClientBase, fn: () => Promise<T>, begin: string, onRollbackFailed: () => void): Promise<T> {
  try {
    await client.query(begin);
    const result = await fn();
    const committed = await client.query(COMMIT_SQL);
    // PostgreSQL answers COMMIT of a transaction in which a statement failed by rolling back, without an error:
    // `fn` caught that failure and went on, but nothing it wrote was kept.
    if (committed.command === 'ROLLBACK') {
      throw new Error('Expected the transaction to commit, got it rolled back because a statement in it had failed');
    }
    return result;
  } catch (error) {
    await client.query(ROLLBACK_SQL).catch(onRollbackFailed);
    throw error;
  }
}

/**
 * Whether `tx` can carry our statements inside the caller's transaction: an object with `query` (a
 * `pg.Client` or `PoolClient`, duck-typed so a second copy of `pg` in the app still works), but not a
 * `pg.Pool`, whose queries may each run on a different connection, outside the caller's transaction; and with a
 * transaction open. Run outside one, each statement would commit on its own: a keyed insert's key lock would end
 * before its insert, so two producers of one key could both insert (SQLite refuses the same mistake through
 * `inTransaction`).
 *
 * The open transaction is read from `getTransactionStatus()` (pg 8.x, JavaScript and native clients): the status the
 * server sent with its last ReadyForQuery, `'T'` in a transaction, `'E'` in a failed one (our statements then fail as
 * the caller's would), `'I'` idle, null before the connection was ready. Free of a round trip, unlike a SAVEPOINT
 * probe. So the caller's `BEGIN` must have completed, not only been queued. A client without the method (another
 * library's look-alike) cannot be asked and is taken at its word.
 */
export function isPgClient(tx: unknown): tx is pg.ClientBase {
  if (typeof tx !== 'object' || tx === null) return false;
  const candidate = tx as { query?: unknown; totalCount?: unknown; idleCount?: unknown; getTransactionStatus?: unknown };
  if (typeof candidate.query !== 'function') return false;
  if (typeof candidate.totalCount === 'number' && typeof candidate.idleCount === 'number') return false;
  if (typeof candidate.getTransactionStatus !== 'function') return true;
  const status: unknown = (candidate as { getTransactionStatus: () => unknown }).getTransactionStatus();
  return status === 'T' || status === 'E';
}
