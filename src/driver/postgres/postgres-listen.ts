/**
 * The LISTEN side of cross-process wake-ups: one dedicated connection per subscription that survives
 * connection loss by reconnecting with backoff.
 * @module
 */
import pg from 'pg';
import type { JobRow } from '../../job/job-record.js';
import {
  HANDOFF_CHANNEL_SET_SQL, HANDOFF_LISTEN_SQL, HANDOFF_LOCK_SQL, HANDOFF_LOCK_TIMEOUT_RESET_SQL, HANDOFF_LOCK_TIMEOUT_SQL,
  HANDOFF_LOCK_WAIT_SQL, handoffReader, isHandoff, readHanded, type HandoffNotice,
} from './postgres-handoff.js';
import { toClaimedJobRow, type PgClaimTuple } from './postgres-rows.js';
import { listenSql } from './postgres-sql.js';

/** What {@link postgresListen} needs. */
export interface PostgresListenOptions {
  connectionString: string;
  /**
   * Bounds each step of setting the connection up, as the pools' `connectTimeoutMs` bounds their connects: the
   * connect, then each statement that makes it listen (the wait for the hand-off lock gets its 2 s on top). A server
   * that accepts the TCP connection and never answers then fails `listen()`, or the reconnect attempt, which is
   * tried again after its back-off, instead of hanging it.
   */
  connectTimeoutMs: number;
  /** The NOTIFY channel, e.g. `warden_jobs`. */
  channel: string;
  /** Called with each notification's payload (a queue name). */
  onWake: (queue: string) => void;
  /** Called after a lost connection was re-established: wake-ups sent in between were missed. */
  onReconnect: () => void;
  /** Called with every connection error or failed reconnect attempt. */
  onError: (error: unknown) => void;
  /**
   * Receive the jobs handed to `workerId`, holding its hand-off lock (`lockKey`) on this connection, so enqueues
   * hand it jobs only while it is connected and listening on its private `channel`, where each comes with its row
   * (or, too large to carry, is read with `fetchSql` on this connection).
   */
  handoff?: {
    workerId: string;
    lockKey: string;
    /** The worker's private channel (`handoffChannel`): a secret, never put in a statement's text. */
    channel: string;
    fetchSql: string;
    /** Prepare `fetchSql` under this name on the connection (`preparedStatements`); unnamed when absent. */
    fetchName?: string;
    onJob: (row: JobRow, slotsLeft: number) => void;
    /**
     * The handed job `jobId`'s row could not be read, so it is never passed to `onJob`: the read failed (the job
     * stays leased to the worker, unreceived), or found it no longer the worker's under the hand-off's lease
     * (cancelled, or handed back by the worker, meanwhile). By id: the worker counts each hand-off settled once.
     */
    onMissed: (jobId: string) => void;
  };
}

/** SQLSTATE of a lock wait that ran into `lock_timeout`. */
const LOCK_NOT_AVAILABLE = '55P03';
/** SQLSTATE of a statement the role may not run. */
const INSUFFICIENT_PRIVILEGE = '42501';

/** First reconnect delay; doubles per failed attempt. */
const BACKOFF_START_MS = 100;
/** Longest reconnect delay. */
const BACKOFF_MAX_MS = 5_000;
/**
 * How long a reconnected connection must stay up before the back-off starts again from {@link BACKOFF_START_MS}:
 * one the server drops as soon as it is listening (a session limit, a proxy, an `idle_session_timeout`) counts as a
 * failed attempt, so such a server is not reconnected to ten times a second for ever.
 */
const STABLE_MS = BACKOFF_MAX_MS;
/** The lock wait's own bound (`HANDOFF_LOCK_TIMEOUT_SQL`), added to its statement's timeout. */
const LOCK_WAIT_MS = 2_000;
/**
 * Idle time before TCP keepalive probes begin: a LISTEN connection is idle between notifications, so a server gone
 * without closing it (a machine lost, a dropped NAT mapping) is noticed only by probes, and then reconnected to.
 */
const KEEPALIVE_DELAY_MS = 10_000;

/**
 * Opens a dedicated `pg.Client` (not a pooled one: a pooled connection would be handed to other queries and
 * the pool may close it when idle), `LISTEN`s on `channel` and reports notifications. After an `error` or
 * `end` (server restart, `pg_terminate_backend`, network loss) it calls `onError`, reconnects with
 * exponential backoff and jitter, listens again and calls `onReconnect`.
 *
 * The returned promise rejects if the first connection fails, so misconfiguration surfaces to the caller, and so
 * does a server that does not answer within `connectTimeoutMs`; after that nothing ever throws or rejects
 * unhandled, and callback exceptions are contained. A reconnect attempt is bounded the same way, so a hung one
 * fails and is followed by the next.
 * @returns An idempotent unsubscribe that stops reconnecting and closes the connection, a reconnect attempt in flight
 *   included: it resolves once no connection of this subscription is left open, and every call awaits the same.
 */
export async function postgresListen(options: PostgresListenOptions): Promise<() => Promise<void>> {
  const { connectionString, connectTimeoutMs, channel, handoff } = options;
  const statement = listenSql(channel);
  const readHandoff = handoff ? handoffReader(handoff.workerId) : null;
  let stopped = false;
  /** The connection currently listening; only its loss triggers a reconnect. */
  let active: pg.Client | null = null;
  let timer: NodeJS.Timeout | null = null;
  let failures = 0;
  /** Running while a reconnected connection has not yet stayed up {@link STABLE_MS}. */
  let stabilizing: NodeJS.Timeout | null = null;
  /**
   * The connection being set up, and the reconnect attempt setting it up: `stopped` is checked only once the set-up
   * ends, which a late server may put off for `connectTimeoutMs`, so the unsubscribe cuts this client and waits for
   * the attempt rather than returning with a connection still open (keeping the process alive).
   */
  let connecting: pg.Client | null = null;
  let attempt: Promise<void> | null = null;

  // User callbacks must not be able to break the reconnect loop (or throw inside a pg event handler).
  const report = (error: unknown): void => {
    try {
      options.onError(error);
    } catch {
      // Nothing sensible left to report to.
    }
  };
  const safely = (fn: () => void): void => {
    try {
      fn();
    } catch (error) {
      report(error);
    }
  };

  /**
   * Runs one statement of the set-up, bounded (`query_timeout`): past it the statement fails, and the client, ended
   * with that statement still active, is destroyed rather than waited on.
   */
  const setUp = <R extends pg.QueryResultRow>(client: pg.Client, text: string, values?: unknown[], extraMs = 0): Promise<pg.QueryResult<R>> => {
    const config: pg.QueryConfig & { query_timeout: number } = { text, query_timeout: connectTimeoutMs + extraMs, ...(values ? { values } : {}) };
    return client.query<R>(config);
  };

  const open = async (): Promise<void> => {
    const client = new pg.Client({
      connectionString, connectionTimeoutMillis: connectTimeoutMs, keepAlive: true, keepAliveInitialDelayMillis: KEEPALIVE_DELAY_MS,
    });
    // Errors before `active === client` surface through connect()/query() rejections instead; ignoring the
    // events here keeps them from being reported twice or triggering a second reconnect.
    client.on('error', (error) => {
      if (active === client) lost(client, error);
    });
    client.on('end', () => {
      if (active === client) lost(client, new Error(`Expected the LISTEN connection on ${channel} to stay open, got it closed`));
    });
    client.on('notification', (message) => {
      // Unsubscribed: a notification already on its way is not passed on (see `receive`).
      if (stopped || typeof message.payload !== 'string') return;
      const payload = message.payload;
      if (handoff && message.channel === handoff.channel) {
        let notice: HandoffNotice | null = null;
        safely(() => {
          notice = readHanded(payload);
        });
        if (notice) receive(client, notice);
        return;
      }
      if (message.channel !== channel) return;
      if (!isHandoff(payload)) {
        safely(() => options.onWake(payload));
        return;
      }
      let notice: HandoffNotice | null = null;
      safely(() => {
        notice = readHandoff?.(payload) ?? null;
      });
      if (notice) receive(client, notice);
    });
    connecting = client;
    try {
      await client.connect();
      await setUp(client, statement);
      if (handoff) {
        // Listening on the private channel before the lock is taken: an enqueue that finds the lock held may
        // send there at once.
        if (await listenPrivately(client, handoff)) await lockHandoff(client, handoff);
      }
    } catch (error) {
      client.end().catch(() => {});
      throw error;
    } finally {
      if (connecting === client) connecting = null;
    }
    if (stopped) {
      // Unsubscribed while connecting.
      client.end().catch(() => {});
      return;
    }
    active = client;
  };

  /**
   * Passes on a job handed to this worker: the row its notification carries, or else read on the connection that
   * was told (the read needs no commit; prepared, it took ~0.1 ms less a job in an idle worker's W3). A failed
   * read leaves the job leased to the worker unseen: `onMissed` with its id (and a lost connection reconnects); so does a read
   * that finds the job no longer the worker's, which will not arrive either. Once
   * unsubscribed, neither the job nor the read's failure (closing the connection ends a read in flight with
   * "Connection terminated") is passed on: the worker unsubscribes as it stops, and then hands back every job
   * leased to it that it did not receive.
   */
  const receive = (client: pg.Client, notice: HandoffNotice): void => {
    const { workerId, fetchSql, fetchName } = handoff!;
    if (notice.job) {
      const row = notice.job;
      safely(() => handoff!.onJob(toClaimedJobRow(row, workerId, notice.leaseMs), notice.slotsLeft));
      return;
    }
    client.query<{ job: PgClaimTuple }>({ ...(fetchName ? { name: fetchName } : {}), text: fetchSql, values: [notice.jobId, workerId] }).then(
      ({ rows }) => {
        if (stopped) return;
        const row = rows[0];
        // Not found: no job to pass on, and the worker must still learn that this hand-off will not arrive.
        if (row) safely(() => handoff!.onJob(toClaimedJobRow(row.job, workerId, notice.leaseMs), notice.slotsLeft));
        else safely(() => handoff!.onMissed(notice.jobId));
      },
      (error: unknown) => {
        if (stopped) return;
        report(error);
        safely(() => handoff!.onMissed(notice.jobId));
      },
    );
  };

  /**
   * LISTENs on the worker's private channel. A role refused `plpgsql` (`DO`; granted to every role unless revoked)
   * is reported and not handed jobs on this connection: without the lock, enqueues leave its jobs to claims.
   * @returns Whether it listens.
   */
  const listenPrivately = async (client: pg.Client, { channel, workerId }: NonNullable<PostgresListenOptions['handoff']>): Promise<boolean> => {
    await setUp(client, HANDOFF_CHANNEL_SET_SQL, [channel]);
    try {
      await setUp(client, HANDOFF_LISTEN_SQL);
      return true;
    } catch (error) {
      if ((error as { code?: unknown }).code !== INSUFFICIENT_PRIVILEGE) throw error;
      // The block did not clear it: the name leaves the session's settings all the same.
      await setUp(client, HANDOFF_CHANNEL_SET_SQL, ['']);
      report(new Error(`Expected to LISTEN on the private hand-off channel of worker ${workerId} (a DO block), got it refused: jobs are not handed to this worker, it claims them`, { cause: error }));
      return false;
    }
  };

  /**
   * Takes the worker's hand-off lock on `client`, waiting up to 2 s when it is taken (an enqueue that found it
   * free during a reconnect holds it shared until its commit). Still held after that (an earlier connection of
   * this worker the server has not yet seen die): enqueues take that one for the worker's and hand off while it
   * lasts, then none until this listener reconnects; reported, not fatal to wake-ups.
   */
  const lockHandoff = async (client: pg.Client, { lockKey, workerId }: NonNullable<PostgresListenOptions['handoff']>): Promise<void> => {
    const { rows } = await setUp<{ ok: boolean }>(client, HANDOFF_LOCK_SQL, [lockKey]);
    if (rows[0]?.ok) return;
    await setUp(client, HANDOFF_LOCK_TIMEOUT_SQL);
    try {
      await setUp(client, HANDOFF_LOCK_WAIT_SQL, [lockKey], LOCK_WAIT_MS);
    } catch (error) {
      if ((error as { code?: unknown }).code !== LOCK_NOT_AVAILABLE) throw error;
      report(new Error(`Expected to take the hand-off lock of worker ${workerId} within 2 s, got it held by another session`, { cause: error }));
    } finally {
      await setUp(client, HANDOFF_LOCK_TIMEOUT_RESET_SQL);
    }
  };

  const lost = (client: pg.Client, error: unknown): void => {
    active = null;
    // Dropped before it proved stable: the back-off goes on growing.
    if (stabilizing) clearTimeout(stabilizing);
    stabilizing = null;
    report(error);
    client.end().catch(() => {});
    schedule();
  };

  const schedule = (): void => {
    if (stopped || timer) return;
    timer = setTimeout(() => {
      timer = null;
      void reconnect();
    }, backoffMs(failures++));
  };

  const reconnect = async (): Promise<void> => {
    if (stopped) return;
    const opening = open();
    attempt = opening;
    try {
      await opening;
    } catch (error) {
      if (stopped) return;
      report(error);
      schedule();
      return;
    } finally {
      if (attempt === opening) attempt = null;
    }
    if (stopped) return;
    // The back-off starts again only once this connection has stayed up (see STABLE_MS), not at once.
    stabilizing = setTimeout(() => {
      stabilizing = null;
      failures = 0;
    }, STABLE_MS);
    stabilizing.unref();
    safely(options.onReconnect);
  };

  await open();

  let unsubscribed: Promise<void> | null = null;
  const unsubscribe = async (): Promise<void> => {
    stopped = true;
    if (timer) clearTimeout(timer);
    timer = null;
    if (stabilizing) clearTimeout(stabilizing);
    stabilizing = null;
    const client = active;
    active = null;
    // A reconnect in flight: its client is cut (its set-up then fails at once) and the attempt awaited.
    const cut = connecting;
    connecting = null;
    await Promise.all([client?.end().catch(() => {}), cut?.end().catch(() => {}), attempt?.catch(() => {})]);
  };
  return () => (unsubscribed ??= unsubscribe());
}

/**
 * Delay before reconnect attempt number `failures` (0-based): 100 ms doubling up to 5 s, with "equal
 * jitter" (half fixed, half random) so many workers cut off by one server restart don't reconnect in step.
 */
function backoffMs(failures: number): number {
  const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_START_MS * 2 ** Math.min(failures, 16));
  return ceiling / 2 + Math.random() * (ceiling / 2);
}
