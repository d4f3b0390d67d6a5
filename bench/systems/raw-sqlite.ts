/**
 * The SQLite ceiling: the same minimal row work as the PostgreSQL ceiling, on a WAL file with
 * `synchronous=NORMAL` (Warden's default). A claim is one `UPDATE … RETURNING` (atomic under SQLite's single
 * writer); a batch's completions are one `BEGIN IMMEDIATE` transaction of lease-guarded updates.
 * @module
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import Database from 'better-sqlite3';
import type { BenchSettings } from '../settings.js';
import type { BenchPayload, BenchSystem, Producer, RunningWorker, StoreTarget, WorkerSpec } from './system.js';

const SCHEMA = `
CREATE TABLE jobs (
  id           INTEGER PRIMARY KEY AUTOINCREMENT,
  queue        TEXT NOT NULL,
  payload      TEXT NOT NULL,
  state        TEXT NOT NULL DEFAULT 'queued',
  run_at       INTEGER NOT NULL,
  lease_token  INTEGER NOT NULL DEFAULT 0,
  lease_until  INTEGER,
  finished_at  INTEGER
);
CREATE INDEX jobs_claim_idx ON jobs (queue, run_at, id) WHERE state = 'queued';`;

function open(target: StoreTarget): Database.Database {
  const db = new Database(target.url.slice('sqlite:'.length));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('busy_timeout = 5000');
  return db;
}

/** Bare SQL on SQLite: the ceiling Warden-SQLite is compared against. */
export function rawSqliteSystem(settings: BenchSettings): BenchSystem {
  return {
    name: 'raw-sqlite',
    label: 'raw SQL ceiling (SQLite)',
    describe: `bare SQL through better-sqlite3, WAL, \`synchronous=NORMAL\`: bulk insert of each chunk in one transaction; claims of ${settings.rawBatch} rows per \`UPDATE … RETURNING\`, each batch completed in one transaction of lease-guarded updates; single enqueue is one \`INSERT\`.`,
    workloads: ['W1', 'W2', 'W4'],
    notApplicable: { W3: 'no wake-up mechanism: the ceiling measures row work, not latency', W5: 'not measured', W6: 'no audit trail' },
    async prepare() {
      const url = `sqlite:${join(await mkdtemp(join(tmpdir(), 'raw-bench-')), 'bench.db')}`;
      const target: StoreTarget = { system: 'raw-sqlite', url, prefix: '', queue: 'bench', options: { batch: settings.rawBatch } };
      const db = open(target);
      db.exec(SCHEMA);
      db.close();
      return target;
    },
    async destroy(target) {
      await rm(join(target.url.slice('sqlite:'.length), '..'), { recursive: true, force: true });
    },
    async producer(target): Promise<Producer> {
      const db = open(target);
      const insert = db.prepare('INSERT INTO jobs (queue, payload, run_at) VALUES (?, ?, ?)');
      const bulk = db.transaction((payloads: BenchPayload[]) => {
        const at = Date.now();
        for (const p of payloads) insert.run(target.queue, JSON.stringify(p), at);
      });
      const count = db.prepare(`SELECT count(*) AS n FROM jobs WHERE state <> 'completed'`);
      return {
        enqueueBulk: async (payloads) => void bulk.immediate(payloads),
        enqueueOne: async (payload) => void insert.run(target.queue, JSON.stringify(payload), Date.now()),
        remaining: async () => (count.get() as { n: number }).n,
        close: async () => void db.close(),
      };
    },
    async startWorker(target, spec: WorkerSpec): Promise<RunningWorker> {
      const db = open(target);
      const claim = db.prepare(`
        UPDATE jobs SET state = 'running', lease_token = lease_token + 1, lease_until = ?
        WHERE id IN (SELECT id FROM jobs WHERE queue = ? AND state = 'queued' AND run_at <= ? ORDER BY run_at, id LIMIT ?)
        RETURNING id, lease_token, payload`);
      const finish = db.prepare(`UPDATE jobs SET state = 'completed', finished_at = ?, lease_until = NULL WHERE id = ? AND lease_token = ? AND state = 'running'`);
      const complete = db.transaction((rows: { id: number; lease_token: number }[], at: number) => {
        for (const r of rows) finish.run(at, r.id, r.lease_token);
      });
      const batch = Number(target.options.batch);
      let stopping = false;
      const loop = (async () => {
        while (!stopping) {
          const at = Date.now();
          const rows = claim.all(at + 30_000, target.queue, at, batch) as { id: number; lease_token: number; payload: string }[];
          if (rows.length === 0) {
            await new Promise((resolve) => setTimeout(resolve, 10));
            continue;
          }
          for (const row of rows) spec.onJob(JSON.parse(row.payload) as BenchPayload);
          complete.immediate(rows, Date.now());
          // better-sqlite3 is synchronous: yield so IPC and timers in the child keep running.
          await yieldToEventLoop();
        }
      })();
      return {
        stop: async () => {
          stopping = true;
          await loop;
          db.close();
        },
      };
    },
  };
}
