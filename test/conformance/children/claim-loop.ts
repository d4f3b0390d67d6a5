/**
 * A child process for the multi-process claim test (run with `node --import tsx`). It opens its own driver
 * on `WARDEN_CHILD_URL` / `WARDEN_CHILD_SCHEMA`, prints `ready`, waits for a line on stdin (so every child
 * starts claiming at the same moment), claims from queue `default` until nothing is left, and prints the
 * claimed ids as one JSON line.
 * @module
 */
import { createInterface } from 'node:readline';
import { createDriver } from '../../../src/driver/create-driver.js';

const url = process.env.WARDEN_CHILD_URL;
const schema = process.env.WARDEN_CHILD_SCHEMA || undefined;
const workerId = process.env.WARDEN_CHILD_WORKER ?? `pid-${process.pid}`;
const now = new Date(Number(process.env.WARDEN_CHILD_NOW));

const driver = createDriver({ url, schema });
const ids: string[] = [];
try {
  await driver.dbNow(); // connect before the start signal
  process.stdout.write('ready\n');
  const lines = createInterface({ input: process.stdin });
  await new Promise<void>((resolve) => lines.once('line', () => resolve()));
  lines.close();
  for (;;) {
    const got = await driver.jobClaim({ queues: ['default'], limit: 3, workerId, leaseMs: 30_000, now });
    if (got.length === 0) break;
    ids.push(...got.map((j) => j.id));
  }
} finally {
  await driver.close();
}
process.stdout.write(`${JSON.stringify(ids)}\n`);
