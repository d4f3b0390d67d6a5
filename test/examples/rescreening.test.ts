/**
 * The re-screening example (examples/rescreening), end to end on each driver, in an isolated database: a fake
 * screening service that fails and hangs now and then, the schedule triggered once, a worker in this process —
 * or in child processes, one SIGKILLed mid-run. Checked against the database directly, not only against the
 * example's own summary: exactly one result row per customer that was due, and the service never screened a
 * customer twice.
 * @module
 */
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { generateCustomers, seededRandom } from '../../examples/rescreening/app-db.js';
import { DEFAULT_OPTIONS, type RescreeningOptions } from '../../examples/rescreening/config.js';
import { runRescreeningDemo } from '../../examples/rescreening/run-demo.js';
import { createTestDatabase, DRIVER_KINDS, type DriverKind, type TestDatabase } from '../support/test-databases.js';

const CUSTOMERS = 1_200;

/** Smaller and flakier than the demo, so it is quick and every failure path is taken. */
function testOptions(tdb: TestDatabase, crash: boolean): RescreeningOptions {
  return {
    ...DEFAULT_OPTIONS,
    databaseUrl: tdb.url,
    schema: tdb.schema ?? DEFAULT_OPTIONS.schema,
    // createTestDatabase made (and migrated) a fresh database: the example must not delete it.
    reset: false,
    customers: CUSTOMERS,
    // 4 chunks, so the crash demo has room to kill the worker between the first checkpoint and the last.
    chunkSize: 250,
    failureRate: 0.1,
    timeoutRate: 0.03,
    // Hung calls still time out (the service hangs for three times this); a shorter timeout also failed answers
    // that were merely slow while the whole suite loaded both cores (250 ms: pages failed attempt after attempt).
    requestTimeoutMs: 1_000,
    crash,
    deadlineMs: 60_000,
    logLevel: 'error',
  };
}

/** The ids of the customers the example seeds as due: by construction the same whatever the seeding time. */
function expectedDueIds(options: RescreeningOptions): number[] {
  const now = new Date();
  return generateCustomers(options.customers, options.dueShare, seededRandom(options.seed), now)
    .filter((c) => c.nextScreeningAt <= now)
    .map((c) => c.id);
}

/** Reads the run's result rows and what is still due, straight from the database. */
async function readBack(kind: DriverKind, tdb: TestDatabase, runId: string, asOf: Date): Promise<{ customerIds: number[]; stillDue: number; runRows: number }> {
  if (kind === 'sqlite') {
    const db = new Database(tdb.url.slice('sqlite:'.length), { readonly: true });
    try {
      const rows = db.prepare('SELECT customer_id AS id FROM app_screening_results WHERE run_id = ? ORDER BY customer_id').all(runId) as { id: number }[];
      const { n } = db.prepare('SELECT count(*) AS n FROM app_customers WHERE next_screening_at <= ?').get(asOf.toISOString()) as { n: number };
      const { runs } = db.prepare('SELECT count(*) AS runs FROM app_screening_runs WHERE run_id = ?').get(runId) as { runs: number };
      return { customerIds: rows.map((r) => r.id), stillDue: n, runRows: runs };
    } finally {
      db.close();
    }
  }
  const client = new pg.Client({ connectionString: tdb.url });
  await client.connect();
  try {
    const s = `"${tdb.schema}"`;
    const rows = await client.query<{ id: string }>(`SELECT customer_id AS id FROM ${s}.app_screening_results WHERE run_id = $1 ORDER BY customer_id`, [runId]);
    const due = await client.query<{ n: string }>(`SELECT count(*) AS n FROM ${s}.app_customers WHERE next_screening_at <= $1`, [asOf]);
    const runs = await client.query<{ n: string }>(`SELECT count(*) AS n FROM ${s}.app_screening_runs WHERE run_id = $1`, [runId]);
    return { customerIds: rows.rows.map((r) => Number(r.id)), stillDue: Number(due.rows[0]!.n), runRows: Number(runs.rows[0]!.n) };
  } finally {
    await client.end();
  }
}

describe.each(DRIVER_KINDS)('examples/rescreening on %s', (kind) => {
  let tdb: TestDatabase | undefined;
  afterEach(async () => {
    await tdb?.cleanup();
    tdb = undefined;
  });

  for (const crash of [false, true]) {
    const title = crash
      ? 'resumes from its checkpoint after the worker process is SIGKILLed, still one result per due customer'
      : 'writes exactly one result per due customer, and the service screens each of them once';
    it(title, async () => {
      tdb = await createTestDatabase(kind);
      const options = testOptions(tdb, crash);
      const lines: string[] = [];
      const summary = await runRescreeningDemo(options, (line) => lines.push(line));
      // The example's own expectations first (its summary names what failed), then independent checks.
      expect(summary.failures, lines.join('\n')).toEqual([]);

      const due = expectedDueIds(options);
      expect(summary.due).toBe(due.length);
      const back = await readBack(kind, tdb, summary.runId, summary.asOf);
      expect(back.customerIds).toEqual(due); // sorted: exactly the due customers, each once
      expect(back.stillDue).toBe(0);
      expect(back.runRows).toBe(1);
      expect(summary.job?.state).toBe('completed');
      expect(summary.job?.progress).toEqual({ done: due.length, total: due.length });

      // The service: one screening (and one key) per due customer, however many calls the failures caused.
      const service = summary.service;
      expect(service.screenings).toBe(due.length);
      expect(service.distinctKeys).toBe(due.length);
      expect(service.customersScreenedTwice).toBe(0);
      expect(service.calls).toBe(service.screenings + service.unavailable + service.replays + service.rejected);
      expect(service.rejected).toBe(0);
      // The failure paths were taken: 503s retried, and hung requests answered from the key store on retry.
      expect(service.unavailable).toBeGreaterThan(0);
      expect(service.hung).toBeGreaterThan(0);
      expect(service.replays).toBeGreaterThan(0);

      if (crash) {
        expect(summary.crashes).toBe(1);
        expect(summary.attempts.map((a) => a.outcome)).toContain('lost');
        expect(summary.attempts.at(-1)?.outcome).toBe('completed');
      }
    }, 60_000);
  }
});
