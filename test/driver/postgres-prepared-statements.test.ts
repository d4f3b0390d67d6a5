/**
 * The PostgreSQL driver's prepared hot statements (`preparedStatements`, default on): they are prepared once per
 * connection, keep working when another process's migration adds a column to `jobs` (fixed column lists), can be
 * turned off for poolers, and a bad value is refused before any connection. Attempts of discarded and pruned jobs
 * go with them now that migration 0008 dropped the foreign key. The worker's statements (claim, endings, heartbeat)
 * run on a second pool whose sessions use generic plans. An ending that waits on a row another transaction is
 * changing re-checks its guard on the committed version (stale after a rescue, applied after a heartbeat).
 * @module
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { pino } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createWarden } from '../../src/client/warden.js';
import { defineJob } from '../../src/job/define-job.js';
import { createDriver } from '../../src/driver/create-driver.js';
import type { Driver } from '../../src/driver/driver.js';
import { WorkerPool } from '../../src/driver/postgres/postgres-worker-pool.js';
import { InvalidOptionError } from '../../src/errors.js';
import { makeInsert, PG_URL } from '../support/test-databases.js';
import { openPgClient, untilWaitingOnLock } from '../conformance/helpers.js';

const opened: { driver: Driver; schema: string }[] = [];

function open(options: { preparedStatements?: boolean } = {}): { driver: Driver; schema: string } {
  const schema = `t_${randomBytes(8).toString('hex')}`;
  // One connection, so `pg_prepared_statements` (per session) shows what the driver's statements prepared.
  const entry = { driver: createDriver({ url: PG_URL, schema, poolSize: 1, ...options }), schema };
  opened.push(entry);
  return entry;
}

async function raw<R extends pg.QueryResultRow>(text: string): Promise<R[]> {
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  try {
    return (await client.query<R>(text)).rows;
  } finally {
    await client.end();
  }
}

afterEach(async () => {
  for (const { driver, schema } of opened.splice(0)) {
    await driver.close();
    await raw(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  }
});

/**
 * Runs `ending` while another connection holds `change` uncommitted, and commits that change only once the ending
 * waits on its row lock; returns what the ending returned.
 */
async function endWhileChanging<T>(schema: string, change: string, ending: () => Promise<T>): Promise<T> {
  const other = await openPgClient();
  try {
    await other.query('BEGIN');
    await other.query(change);
    const pending = ending();
    await untilWaitingOnLock(schema);
    await other.query('COMMIT');
    return await pending;
  } finally {
    await other.end();
  }
}

/** The two kinds of ending batch: completions only (the shorter statement) and one with a failure (the general one). */
const BATCH_KINDS = [
  { batch: 'of completions only', outcome: 'completed' as const, state: 'completed' as const },
  { batch: 'with a failure', outcome: 'failed' as const, state: 'retrying' as const },
];

/** Claims and completes every due job through `driver`; returns how many. */
async function runAll(driver: Driver): Promise<number> {
  const rows = await driver.jobClaim({ queues: ['default'], limit: 100, workerId: 'w', leaseMs: 30_000, now: null });
  await driver.jobHeartbeat({ leases: rows.map((r) => ({ id: r.id, leaseToken: r.leaseToken })), leaseMs: 30_000, now: null });
  const result = await driver.jobFinishMany({
    items: rows.map((r) => ({ id: r.id, leaseToken: r.leaseToken, outcome: 'completed' as const, state: 'completed' as const, retryDelayMs: 0, error: null })),
    now: null,
  });
  expect(result.stale).toEqual([]);
  return result.applied.length;
}

/**
 * The statements prepared on the driver's only connection (`pg_prepared_statements` is per session). The driver
 * has no raw-query method; its transaction handle is a client of the same one-connection pool.
 */
async function preparedOn(driver: Driver): Promise<string[]> {
  return (await plansOn(driver, '%')).map((r) => r.name);
}

/** {@link preparedOn} with how often each statement was planned generically and custom, for names `LIKE pattern`. */
async function plansOn(driver: Driver, pattern: string): Promise<{ name: string; generic_plans: string; custom_plans: string }[]> {
  return driver.transaction(async (tx) => (await (tx as pg.PoolClient).query<{ name: string; generic_plans: string; custom_plans: string }>(
    'SELECT name, generic_plans, custom_plans FROM pg_prepared_statements WHERE name LIKE $1 ORDER BY name', [pattern],
  )).rows);
}

/**
 * Runs `fn` on a new session whose prepared statements plan generically (`SET plan_cache_mode`), with `plan` giving
 * the plan text of a statement (`EXPLAIN`); closes the session afterwards.
 */
async function onGenericSession(fn: (client: pg.Client, plan: (statement: string) => Promise<string>) => Promise<void>): Promise<void> {
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  try {
    await client.query('SET plan_cache_mode = force_generic_plan');
    await fn(client, async (statement) => (await client.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${statement}`)).rows.map((r) => r['QUERY PLAN']).join('\n'));
  } finally {
    await client.end();
  }
}

describe('PostgreSQL prepared statements', () => {
  it('prepares both unkeyed enqueues once per connection, runs the worker statements elsewhere, and they keep working', async () => {
    const { driver } = open();
    await driver.migrate();
    await driver.jobInsertMany({ jobs: [makeInsert(), makeInsert()], now: null });
    expect(await runAll(driver)).toBe(2);
    await driver.jobInsertMany({ jobs: [makeInsert()], now: null });
    expect(await runAll(driver)).toBe(1);
    // The claim (warden_0), endings (warden_1, warden_5) and heartbeat (warden_2) ran on the worker pool's connection.
    expect(await preparedOn(driver)).toEqual(['warden_3', 'warden_4']);
  });

  it('plans prepared statements generically on a worker-pool connection, from its first execution', async () => {
    const errors: unknown[] = [];
    const pool = new WorkerPool({ connectionString: PG_URL, poolSize: 10, connectTimeoutMs: 5_000, report: (e) => errors.push(e) });
    try {
      expect(pool.max).toBe(3);
      // One connection open at a time, so every statement below runs on the same session.
      expect((await pool.query<{ plan_cache_mode: string }>({ text: 'SHOW plan_cache_mode' })).rows[0]!.plan_cache_mode).toBe('force_generic_plan');
      await pool.query({ name: 'probe', text: 'SELECT $1::int + 1 AS n', values: [1] });
      const { rows } = await pool.query<{ generic_plans: string; custom_plans: string }>({
        text: `SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE name = 'probe'`,
      });
      // A main-pool session plans its first five executions as custom plans.
      expect(rows).toEqual([{ generic_plans: '1', custom_plans: '0' }]);
      // A failed statement discards its connection; the next one is set up again.
      await expect(pool.query({ text: 'SELECT 1/0' })).rejects.toThrow(/division by zero/);
      expect((await pool.query<{ plan_cache_mode: string }>({ text: 'SHOW plan_cache_mode' })).rows[0]!.plan_cache_mode).toBe('force_generic_plan');
    } finally {
      await pool.end();
    }
    expect(errors).toEqual([]);
  });

  it('reports a setting the server refuses and runs the statement anyway, on custom plans', async () => {
    const errors: unknown[] = [];
    const pool = new WorkerPool({
      connectionString: PG_URL, poolSize: 1, connectTimeoutMs: 5_000, report: (e) => errors.push(e), setupSql: 'SET plan_cache_mode = nonsense',
    });
    try {
      expect((await pool.query<{ plan_cache_mode: string }>({ text: 'SHOW plan_cache_mode' })).rows[0]!.plan_cache_mode).toBe('auto');
      expect((await pool.query<{ one: number }>({ text: 'SELECT 1 AS one' })).rows).toEqual([{ one: 1 }]);
    } finally {
      await pool.end();
    }
    // Once per connection, not once per statement.
    expect(errors).toHaveLength(1);
    expect(String(errors[0])).toMatch(/plan_cache_mode/);
  });

  it('plans a keyed transaction generically and hands its connection back unchanged; a refused setting is reported once', async () => {
    const { buildPostgresStatements } = await import('../../src/driver/postgres/postgres-statements.js');
    const { buildPostgresKeyStatements } = await import('../../src/driver/postgres/postgres-keys-sql.js');
    const { PostgresConnection } = await import('../../src/driver/postgres/postgres-connection.js');
    const { buildPostgresAuditStatements } = await import('../../src/driver/postgres/postgres-audit-sql.js');
    const mode = async (run: (text: string) => Promise<pg.QueryResult>) => (await run('SHOW plan_cache_mode')).rows[0]!.plan_cache_mode as string;
    const cases = [
      { setting: undefined, inside: 'force_generic_plan', reported: 0 },
      // PostgreSQL before 12, or a proxy refusing it: the enqueue must still go through, on custom plans.
      { setting: 'SET LOCAL plan_cache_mode = nonsense', inside: 'auto', reported: 1 },
    ];
    for (const { setting, inside, reported } of cases) {
      const errors: unknown[] = [];
      const conn = new PostgresConnection({
        connectionString: PG_URL, poolSize: 1, connectTimeoutMs: 5_000, preparedStatements: true, sql: buildPostgresStatements('warden'),
        keySql: buildPostgresKeyStatements('warden'), auditSql: buildPostgresAuditStatements('warden'), onError: (e) => errors.push(e), ...(setting ? { genericPlansSql: setting } : {}),
      });
      try {
        for (let i = 0; i < 2; i++) {
          expect(await conn.genericTransaction((run) => mode(run))).toBe(inside);
          // One connection: the same session, back to its own setting after the transaction.
          expect(await mode(conn.run)).toBe('auto');
        }
        // An error of the caller's own statements is theirs, not a refused setting.
        await expect(conn.genericTransaction((run) => run('SELECT 1/0'))).rejects.toThrow(/division by zero/);
      } finally {
        await conn.end();
      }
      expect(errors).toHaveLength(reported);
      if (reported) expect(String(errors[0])).toMatch(/plan_cache_mode/);
    }
  });

  it('opens and sets up a connection ahead of the first statement (warm), which that statement then uses', async () => {
    const errors: unknown[] = [];
    // Its own set-up text, so its session is recognisable among every other test's.
    const setupSql = `SET plan_cache_mode = force_generic_plan -- warm ${randomBytes(4).toString('hex')}`;
    const pool = new WorkerPool({ connectionString: PG_URL, poolSize: 1, connectTimeoutMs: 5_000, report: (e) => errors.push(e), setupSql });
    const admin = await openPgClient();
    try {
      await pool.warm();
      const warmed = await admin.query<{ pid: number }>("SELECT pid FROM pg_stat_activity WHERE query = $1 AND state = 'idle'", [setupSql]);
      expect(warmed.rows).toHaveLength(1);
      // The statement runs on the warmed connection, not set up again.
      const { rows } = await pool.query<{ pid: number; plan_cache_mode: string }>({ text: 'SELECT pg_backend_pid() AS pid, current_setting($1) AS plan_cache_mode', values: ['plan_cache_mode'] });
      expect(rows).toEqual([{ pid: warmed.rows[0]!.pid, plan_cache_mode: 'force_generic_plan' }]);
    } finally {
      await admin.end();
      await pool.end();
    }
    expect(errors).toEqual([]);
    // Unreachable: the warm-up resolves quietly, and the statement is the one that fails.
    const unreachable = new WorkerPool({ connectionString: 'postgres://postgres@127.0.0.1:1/test', poolSize: 1, connectTimeoutMs: 2_000, report: () => {} });
    try {
      await expect(unreachable.warm()).resolves.toBeUndefined();
      await expect(unreachable.query({ text: 'SELECT 1' })).rejects.toThrow(/ECONNREFUSED/);
    } finally {
      await unreachable.end();
    }
  });

  it("a starting worker warms its worker pool while its listener connects, and claims through it", async () => {
    const { driver } = open();
    await driver.migrate();
    const warm = vi.spyOn(driver, 'workerConnectionsWarm');
    const listen = vi.spyOn(driver, 'listen');
    const warden = createWarden({ database: driver, logger: pino({ level: 'silent' }), jobs: [defineJob({ name: 'noop', handler: () => {} })] });
    try {
      await warden.start();
      expect(warm).toHaveBeenCalledTimes(1);
      // Begun before the listener was asked for (not after it connected).
      expect(warm.mock.invocationCallOrder[0]!).toBeLessThan(listen.mock.invocationCallOrder[0]!);
      const completed = new Promise<void>((resolve) => warden.on('job:completed', () => resolve()));
      await warden.enqueue('noop', {});
      await completed;
    } finally {
      await warden.close();
    }
  });

  it('takes at most poolSize connections for the worker pool', async () => {
    const pool = new WorkerPool({ connectionString: PG_URL, poolSize: 1, connectTimeoutMs: 5_000, report: () => {} });
    expect(pool.max).toBe(1);
    await pool.end();
  });

  it.each(BATCH_KINDS)('re-checks an ending $batch against the newest row when another transaction changed the job while it waited', async ({ outcome, state }) => {
    const { driver, schema } = open();
    await driver.migrate();
    await driver.jobInsertMany({ jobs: Array.from({ length: 3 }, () => makeInsert()), now: null });
    const [a, b, c] = await driver.jobClaim({ queues: ['default'], limit: 3, workerId: 'w', leaseMs: 30_000, now: null });
    // A rescue of b committed while the ending waited on b: b is stale, and no attempt of it is written.
    const rescued = await endWhileChanging(schema, `UPDATE "${schema}".jobs SET state = 'retrying', lease_worker = NULL, lease_expires_at = NULL WHERE id = ${b!.id}`, () => driver.jobFinishMany({
      items: [a!, b!, c!].map((r, k) => ({ id: r.id, leaseToken: r.leaseToken, outcome: k === 2 ? outcome : 'completed' as const, state: k === 2 ? state : 'completed' as const, retryDelayMs: 0, error: null })),
      now: null,
    }));
    expect(rescued).toEqual({ applied: [a!.id, c!.id], stale: [b!.id] });
    expect((await driver.jobGet({ id: b!.id }))?.state).toBe('retrying');
    expect(await driver.jobAttemptList({ id: b!.id })).toEqual([]);
    // The ending of c wrote its attempt from the row as it was claimed.
    expect(await driver.jobAttemptList({ id: c!.id })).toMatchObject([{ attempt: 1, leaseToken: c!.leaseToken, workerId: 'w', startedAt: c!.startedAt, outcome }]);
    expect((await driver.jobGet({ id: c!.id }))?.state).toBe(state);
    expect((await driver.jobGet({ id: a!.id }))?.state).toBe('completed');
    expect(await driver.jobAttemptList({ id: a!.id })).toMatchObject([{ attempt: 1, leaseToken: a!.leaseToken, workerId: 'w', outcome: 'completed' }]);
  });

  it.each(BATCH_KINDS)('applies an ending $batch that waited on a heartbeat of the same lease', async ({ outcome, state }) => {
    const { driver, schema } = open();
    await driver.migrate();
    await driver.jobInsertMany({ jobs: [makeInsert(), makeInsert()], now: null });
    const [row, second] = await driver.jobClaim({ queues: ['default'], limit: 2, workerId: 'w', leaseMs: 30_000, now: null });
    const ended = await endWhileChanging(schema, `UPDATE "${schema}".jobs SET lease_expires_at = now() + interval '1 hour' WHERE id = ${row!.id}`, () => driver.jobFinishMany({
      items: [
        { id: row!.id, leaseToken: row!.leaseToken, outcome: 'completed', state: 'completed', retryDelayMs: 0, error: null },
        { id: second!.id, leaseToken: second!.leaseToken, outcome, state, retryDelayMs: 0, error: null },
      ],
      now: null,
    }));
    expect(ended).toEqual({ applied: [row!.id, second!.id], stale: [] });
    expect((await driver.jobGet({ id: second!.id }))?.state).toBe(state);
    expect(await driver.jobAttemptList({ id: row!.id })).toMatchObject([{ attempt: 1, workerId: 'w', outcome: 'completed' }]);
  });

  it('ends and heartbeats leases by primary-key lookups in the generic plans, even when statistics saw no running job', async () => {
    const { driver, schema } = open();
    await driver.migrate();
    await driver.jobInsertMany({ jobs: Array.from({ length: 5_000 }, () => makeInsert()), now: null });
    // Statistics that saw only finished jobs, as after a busy day with everything drained and analyzed.
    await raw(`UPDATE "${schema}".jobs SET state = 'completed', finished_at = now()`);
    await raw(`VACUUM ANALYZE "${schema}".jobs`);
    await driver.jobInsertMany({ jobs: Array.from({ length: 300 }, () => makeInsert()), now: null });
    const rows = await driver.jobClaim({ queues: ['default'], limit: 300, workerId: 'w', leaseMs: 30_000, now: null });
    expect(rows).toHaveLength(300);
    const ids = `'{${rows.map((r) => r.id).join(',')}}'::bigint[]`;
    const tokens = `'{${rows.map((r) => r.leaseToken).join(',')}}'::bigint[]`;
    const texts = (value: string) => `'{${rows.map(() => value).join(',')}}'::text[]`;
    const { buildPostgresStatements } = await import('../../src/driver/postgres/postgres-statements.js');
    const sql = buildPostgresStatements(schema);
    await onGenericSession(async (client, plan) => {
      await client.query(`PREPARE fin(bigint[], bigint[], text[], text[], float8[], text[], timestamptz, bool[]) AS ${sql.jobFinishMany}`);
      await client.query(`PREPARE beat(bigint[], bigint[], integer, timestamptz) AS ${sql.jobHeartbeat}`);
      await client.query(`PREPARE done(bigint[], bigint[], timestamptz) AS ${sql.jobCompleteMany}`);
      const finish = await plan(`EXECUTE fin(${ids}, ${tokens}, ${texts('completed')}, ${texts('completed')}, '{${rows.map(() => 0).join(',')}}'::float8[], ${texts('NULL')}, NULL, '{${rows.map(() => 'false').join(',')}}'::bool[])`);
      const beat = await plan(`EXECUTE beat(${ids}, ${tokens}, 30000, NULL)`);
      const done = await plan(`EXECUTE done(${ids}, ${tokens}, NULL)`);
      // Walking jobs_lease_idx once per item (the plain-join plan) was quadratic: 181 ms for 500 items, 1M rows.
      for (const text of [finish, beat, done]) expect(text).not.toContain('jobs_lease_idx');
      // The heartbeat locks each row found by its primary key; the ending has no lock step: its update walks `g`
      // (in id order) and looks each job up by its primary key, the guard a filter on that row.
      expect(beat).toMatch(/LockRows[\s\S]*Index Scan using jobs_pkey/);
      expect(finish).not.toContain('LockRows');
      expect(finish).toMatch(/Update on jobs[\s\S]*Nested Loop[\s\S]*CTE Scan on g[\s\S]*Index Scan using jobs_pkey/);
      // The completion statement walks its input sorted by id the same way.
      expect(done).not.toContain('LockRows');
      expect(done).toMatch(/Update on jobs[\s\S]*Nested Loop[\s\S]*Sort Key: i(_\d+)?\.id[\s\S]*Index Scan using jobs_pkey/);
      // Planned for the actual arrays (a main-pool session's first executions, `preparedStatements: false`, an
      // application's transaction), the same shapes: with a plain equality the planner hash-joined the batch
      // against a sequential scan of every job (locking them in heap order, not id order).
      await client.query('SET plan_cache_mode = force_custom_plan');
      const customPlans = [
        await plan(`EXECUTE fin(${ids}, ${tokens}, ${texts('completed')}, ${texts('completed')}, '{${rows.map(() => 0).join(',')}}'::float8[], ${texts('NULL')}, NULL, '{${rows.map(() => 'false').join(',')}}'::bool[])`),
        await plan(`EXECUTE beat(${ids}, ${tokens}, 30000, NULL)`),
        await plan(`EXECUTE done(${ids}, ${tokens}, NULL)`),
      ];
      for (const text of customPlans) {
        expect(text).not.toMatch(/Hash Join|Merge Join|Seq Scan on jobs|jobs_lease_idx/);
        expect(text).toMatch(/Nested Loop[\s\S]*Index Scan using jobs_pkey/);
      }
    });
    // And the statements still do their job on those rows.
    expect((await driver.jobHeartbeat({ leases: rows.map((r) => ({ id: r.id, leaseToken: r.leaseToken })), leaseMs: 30_000, now: null })).applied).toHaveLength(300);
    const ended = await driver.jobFinishMany({
      items: rows.map((r) => ({ id: r.id, leaseToken: r.leaseToken, outcome: 'completed' as const, state: 'completed' as const, retryDelayMs: 0, error: null })),
      now: null,
    });
    expect(ended).toEqual({ applied: rows.map((r) => r.id), stale: [] });
  });

  it('keeps working when a migration adds a column to jobs after the statements were prepared', async () => {
    const { driver, schema } = open();
    await driver.migrate();
    await driver.jobInsertMany({ jobs: [makeInsert()], now: null });
    await driver.jobInsertMany({ jobs: [makeInsert({ key: 'a' })], now: null });
    expect(await runAll(driver)).toBe(2);
    // Another process upgrading: with RETURNING * this would fail with "cached plan must not change result type".
    await raw(`ALTER TABLE "${schema}".jobs ADD COLUMN added_later integer`);
    await driver.jobInsertMany({ jobs: [makeInsert()], now: null });
    // Keyed: the fast path's read (a duplicate), the lock and the insert round (a new key) all ran prepared before.
    await driver.jobInsertMany({ jobs: [makeInsert({ key: 'b' })], now: null });
    const [duplicate] = await driver.jobInsertMany({ jobs: [makeInsert({ key: 'b' })], now: null });
    expect(duplicate).toMatchObject({ duplicate: true });
    expect(await runAll(driver)).toBe(2);
  });

  it('prepares the keyed insert and plans it generically, finding keys and holders by index even when planned on empty tables', async () => {
    const { driver, schema } = open();
    await driver.migrate();
    // The first keyed inserts plan the statements while both tables are nearly empty (a generic plan is kept until
    // statistics change), as in an application that starts on a fresh database and then grows.
    await driver.jobInsertMany({ jobs: [makeInsert({ key: 'first' })], now: null });
    await driver.jobInsertMany({ jobs: [makeInsert({ key: 'first' }), makeInsert({ key: 'second' })], now: null });
    await driver.jobInsertMany({ jobs: [makeInsert({ key: 'first' })], now: null });
    const prepared = await plansOn(driver, 'warden_k%');
    // warden_k0 the fast path's read (twice, on custom plans: it runs outside any transaction), warden_k1 the key
    // lock and warden_k2 the insert round (once each: the first two batches had a key without a duplicate holder).
    expect(prepared).toEqual([
      { name: 'warden_k0', generic_plans: '0', custom_plans: '3' },
      { name: 'warden_k1', generic_plans: '2', custom_plans: '0' },
      { name: 'warden_k2', generic_plans: '2', custom_plans: '0' },
    ]);
    const { buildPostgresKeyStatements } = await import('../../src/driver/postgres/postgres-keys-sql.js');
    const sql = buildPostgresKeyStatements(schema);
    await onGenericSession(async (client, explain) => {
      await client.query(`PREPARE round AS ${sql.jobInsertRound}`);
      await client.query(`PREPARE dups AS ${sql.keyDuplicates}`);
      const round = () => explain(`EXECUTE round('{test-job}', '{default}', '{"{}"}', '{0}', '{0}', '{NULL}', '{3}', '{k1}', '{NULL}', '{NULL}', NULL, '{NULL}', '{"queued,retrying,running"}', '{false}', 'ch', '{NULL}')`);
      const dups = () => explain(`EXECUTE dups('{k1}', '{NULL}', '{"queued,retrying,running"}', NULL)`);
      // Planned on the tables as they are (a few rows), then used on thousands: still lookups by key and by id.
      const before = [await round(), await dups()];
      await driver.jobInsertMany({ jobs: Array.from({ length: 5_000 }, (_, i) => makeInsert({ key: `k${i}` })), now: null });
      for (const text of [...before, await round(), await dups()]) {
        expect(text).not.toMatch(/Hash Join|Merge Join|Seq Scan on (jobs|job_keys)/);
        expect(text).toMatch(/Index Scan using job_keys_pkey[\s\S]*Index Scan using jobs_pkey/);
      }
    });
  });

  it('prepares the optimistic audit append (head read, conditional write), which keeps chaining', async () => {
    const { driver } = open();
    await driver.migrate();
    const entry = { actor: 'api', action: 'job.completed', subjectKind: 'job' as const, subjectId: '1', jobName: null, queue: null, before: null, after: null, reason: null, data: null };
    // The first append of a chain is the locked way (not prepared); the next ones are optimistic.
    for (let i = 0; i < 3; i++) await driver.auditAppend({ chain: 'default', entries: [entry, entry], now: null });
    expect(await plansOn(driver, 'warden_a%')).toEqual([
      { name: 'warden_a0', generic_plans: '0', custom_plans: '3' },
      { name: 'warden_a1', generic_plans: '0', custom_plans: '2' },
    ]);
    expect((await driver.auditHead({ chain: 'default' }))?.seq).toBe(6);
  });

  it('prepares nothing with preparedStatements: false', async () => {
    const { driver } = open({ preparedStatements: false });
    await driver.migrate();
    await driver.jobInsertMany({ jobs: [makeInsert()], now: null });
    await driver.jobInsertMany({ jobs: [makeInsert({ key: 'a' })], now: null });
    await driver.transaction((tx) => driver.jobInsertMany({ jobs: [makeInsert({ key: 'b' })], now: null, tx }));
    expect(await runAll(driver)).toBe(3);
    const entry = { actor: 'api', action: 'job.completed', subjectKind: 'job' as const, subjectId: '1', jobName: null, queue: null, before: null, after: null, reason: null, data: null };
    for (let i = 0; i < 2; i++) await driver.auditAppend({ chain: 'default', entries: [entry], now: null });
    expect(await preparedOn(driver)).toEqual([]);
  });

  it("plans a keyed insert in the caller's transaction generically, then gives the transaction its own setting back", async () => {
    const { driver } = open();
    await driver.migrate();
    const show = async (tx: unknown) => (await (tx as pg.PoolClient).query<{ plan_cache_mode: string }>('SHOW plan_cache_mode')).rows[0]!.plan_cache_mode;
    for (const own of [null, 'force_custom_plan']) {
      const after = await driver.transaction(async (tx) => {
        if (own) await (tx as pg.PoolClient).query(`SET LOCAL plan_cache_mode = ${own}`);
        const [first] = await driver.jobInsertMany({ jobs: [makeInsert({ key: `k-${own}` })], now: null, tx });
        const [again] = await driver.jobInsertMany({ jobs: [makeInsert({ key: `k-${own}` })], now: null, tx });
        expect([first!.duplicate, again!.duplicate, again!.job.id]).toEqual([false, true, first!.job.id]);
        return show(tx);
      });
      expect(after).toBe(own ?? 'auto');
    }
    // Pool of one: the same session ran both transactions. Lock and round, twice in each of the two.
    expect((await plansOn(driver, 'warden_k%')).filter((r) => r.name !== 'warden_k0')).toEqual([
      { name: 'warden_k1', generic_plans: '4', custom_plans: '0' },
      { name: 'warden_k2', generic_plans: '4', custom_plans: '0' },
    ]);
    // A statement that fails aborts the caller's transaction: its error is the one reported, and the rollback
    // puts the setting back.
    await expect(driver.transaction((tx) => driver.jobInsertMany({ jobs: [makeInsert({ key: 'bad', payloadJson: '{' })], now: null, tx })))
      .rejects.toThrow(/json/i);
    expect(await driver.transaction(show)).toBe('auto');
  });

  it('refuses a preparedStatements that is not a boolean, before connecting', () => {
    expect(() => createDriver({ url: PG_URL, schema: 'warden', preparedStatements: 'yes' as unknown as boolean })).toThrow(InvalidOptionError);
  });

  it('discarding and pruning a job delete its attempts too (no foreign key since migration 0008)', async () => {
    const { driver, schema } = open();
    await driver.migrate();
    const [a, b] = await driver.jobInsertMany({ jobs: [makeInsert(), makeInsert()], now: null });
    expect(await runAll(driver)).toBe(2);
    const constraints = await raw<{ conname: string }>(
      `SELECT conname FROM pg_constraint WHERE conrelid = '"${schema}".job_attempts'::regclass AND contype = 'f'`,
    );
    expect(constraints).toEqual([]);
    await driver.jobDiscard({ id: a!.job.id });
    const pruned = await driver.jobPrune({ state: 'completed', olderThanMs: 0, limit: 10, now: new Date(Date.now() + 60_000) });
    expect(pruned).toBe(1);
    expect(await raw(`SELECT job_id FROM "${schema}".job_attempts WHERE job_id IN (${a!.job.id}, ${b!.job.id})`)).toEqual([]);
  });
});
