/**
 * A child for `test/driver/sqlite-write-group-full.test.ts`, started under an RLIMIT_FSIZE (`ulimit -f`) so it
 * cannot grow a file past a few MiB: a disk that is full for a large write and not for small ones. It calls three
 * enqueues in one turn of the event loop (one write group): a small one, one whose payload cannot be written, and
 * a small one; then, once that group has settled, a small one in a group of its own. Each call's outcome is one
 * `result` line (`{ label, ok, code, message, transient }`), then `done`.
 * @module
 */
import { SqliteDriver } from '../../../src/driver/sqlite/sqlite-driver.js';
import { makeInsert } from '../../support/test-databases.js';
import { type BaseConfig, readConfig, reportCrashes, send } from '../../process/children/child-common.js';

interface Config extends BaseConfig {
  /** The SQLite file (already migrated). */
  filename: string;
  /** The size of the payload that cannot be written. */
  bigBytes: number;
}

reportCrashes();
const config = readConfig<Config>();
const driver = new SqliteDriver({ filename: config.filename });
const enqueue = (name: string, payloadJson = '{}') => driver.jobInsertMany({ jobs: [makeInsert({ name, payloadJson })], now: null });

async function report(label: string, call: Promise<unknown>): Promise<void> {
  try {
    await call;
    send({ type: 'result', label, ok: true });
  } catch (error) {
    const code = (error as { code?: unknown }).code ?? null;
    send({ type: 'result', label, ok: false, code, message: String(error), transient: driver.isTransientError(error) });
  }
}

// Opened first, so the three calls below are taken into one group.
await driver.dbNow();
const group = {
  first: enqueue('first'),
  big: enqueue('big', JSON.stringify({ blob: 'x'.repeat(config.bigBytes) })),
  last: enqueue('last'),
};
for (const [label, call] of Object.entries(group)) await report(label, call);
await report('after', enqueue('after'));
await driver.close();
send({ type: 'done' });
