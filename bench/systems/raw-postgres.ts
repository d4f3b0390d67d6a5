/**
 * The PostgreSQL ceiling: the least row work a durable queue with leases must do, in bare SQL. Bulk insert;
 * claim a batch with `UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED LIMIT n) RETURNING` (taking a
 * new lease token); complete the batch in one `UPDATE` guarded by each row's lease token. No attempt
 * history, no retries, no wake-ups: what is left is the database's own cost per job.
 * @module
 */
import pg from 'pg';
import { createDatabase, dropDatabase } from '../postgres-admin.js';
import type { BenchSettings } from '../settings.js';
import type { BenchPayload, BenchSystem, Producer, RunningWorker, WorkerSpec } from './system.js';

const SCHEMA = `
CREATE TABLE jobs (
  id           bigserial PRIMARY KEY,
  queue        text NOT NULL,
  payload      jsonb NOT NULL,
  state        text NOT NULL DEFAULT 'queued',
  run_at       timestamptz NOT NULL DEFAULT now(),
  lease_token  bigint NOT NULL DEFAULT 0,
  lease_until  timestamptz,
  finished_at  timestamptz
);
CREATE INDEX jobs_claim_idx ON jobs (queue, run_at, id) WHERE state = 'queued';`;

const CLAIM = `
UPDATE jobs SET state = 'running', lease_token = lease_token + 1, lease_until = now() + interval '30 seconds'
WHERE id IN (SELECT id FROM jobs WHERE queue = $1 AND state = 'queued' AND run_at <= now()
             ORDER BY run_at, id LIMIT $2 FOR UPDATE SKIP LOCKED)
RETURNING id, lease_token, payload`;

const COMPLETE = `
UPDATE jobs j SET state = 'completed', finished_at = now(), lease_until = NULL
FROM unnest($1::bigint[], $2::bigint[]) AS c(id, token)
WHERE j.id = c.id AND j.lease_token = c.token AND j.state = 'running'`;

/** Bare SQL on PostgreSQL: the ceiling Warden-PostgreSQL is compared against. */
export function rawPostgresSystem(settings: BenchSettings): BenchSystem {
  return {
    name: 'raw-pg',
    label: 'raw SQL ceiling (PostgreSQL)',
    describe: `bare SQL, prepared statements: bulk \`INSERT … SELECT FROM jsonb_array_elements\`; ${settings.rawLoops} claim loops (one connection each) claiming ${settings.rawBatch} rows per \`UPDATE … FOR UPDATE SKIP LOCKED … RETURNING\` and completing them in one lease-guarded \`UPDATE\`; single enqueue is one \`INSERT\`.`,
    workloads: ['W1', 'W2', 'W4'],
    notApplicable: { W3: 'no wake-up mechanism: the ceiling measures row work, not latency', W5: 'not measured', W6: 'no audit trail' },
    async prepare(id) {
      const url = await createDatabase(settings.pgUrl, `bench_${id}`);
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      await client.query(SCHEMA).finally(() => client.end());
      return { system: 'raw-pg', url, prefix: '', queue: 'bench', options: { batch: settings.rawBatch, loops: settings.rawLoops } };
    },
    async destroy(target) {
      await dropDatabase(settings.pgUrl, target.url);
    },
    async producer(target): Promise<Producer> {
      const pool = new pg.Pool({ connectionString: target.url, max: 2 });
      return {
        enqueueBulk: async (payloads) => {
          await pool.query({ name: 'bulk', text: 'INSERT INTO jobs (queue, payload) SELECT $1, value FROM jsonb_array_elements($2::jsonb)', values: [target.queue, JSON.stringify(payloads)] });
        },
        enqueueOne: async (payload) => {
          await pool.query({ name: 'one', text: 'INSERT INTO jobs (queue, payload) VALUES ($1, $2)', values: [target.queue, payload] });
        },
        remaining: async () => Number((await pool.query(`SELECT count(*) AS n FROM jobs WHERE state <> 'completed'`)).rows[0].n),
        close: () => pool.end(),
      };
    },
    async startWorker(target, spec: WorkerSpec): Promise<RunningWorker> {
      const batch = Number(target.options.batch);
      const clients = await Promise.all(Array.from({ length: Number(target.options.loops) }, async () => {
        const client = new pg.Client({ connectionString: target.url });
        await client.connect();
        return client;
      }));
      let stopping = false;
      const loop = async (client: pg.Client) => {
        while (!stopping) {
          const { rows } = await client.query<{ id: string; lease_token: string; payload: BenchPayload }>({ name: 'claim', text: CLAIM, values: [target.queue, batch] });
          if (rows.length === 0) {
            await new Promise((resolve) => setTimeout(resolve, 10));
            continue;
          }
          for (const row of rows) spec.onJob(row.payload);
          await client.query({ name: 'complete', text: COMPLETE, values: [rows.map((r) => r.id), rows.map((r) => r.lease_token)] });
        }
      };
      const loops = clients.map(loop);
      return {
        stop: async () => {
          stopping = true;
          await Promise.all(loops);
          await Promise.all(clients.map((c) => c.end()));
        },
      };
    },
  };
}
