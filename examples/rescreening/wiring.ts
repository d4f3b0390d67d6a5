/**
 * Opens everything one process of the example needs — the application's tables, the job and schedule, and a
 * Warden instance on the same database — the same way in the demo's main process and in its worker child.
 * @module
 */
import { rm } from 'node:fs/promises';
import pg from 'pg';
import { pino } from 'pino';
import { createWarden, type Warden } from '../../src/index.js';
import { type AppDb, checkSchema, openAppDb, sqliteFile } from './app-db.js';
import type { RescreeningOptions } from './config.js';
import { defineRescreening, type Rescreening } from './rescreen-job.js';

/** One process's view of the example. */
export interface RescreeningApp {
  warden: Warden;
  appDb: AppDb;
  rescreening: Rescreening;
  /** Closes Warden (stopping its worker gracefully) and the application's connections. */
  close(): Promise<void>;
}

/** Opens the application's tables and a Warden instance (not started) on `options.databaseUrl`. */
export async function openRescreeningApp(options: RescreeningOptions, serviceUrl: string): Promise<RescreeningApp> {
  const appDb = await openAppDb(options.databaseUrl, options.schema);
  const rescreening = defineRescreening({
    appDb,
    client: { baseUrl: serviceUrl, requestTimeoutMs: options.requestTimeoutMs, maxTries: options.maxTries },
    chunkSize: options.chunkSize,
    concurrency: options.concurrency,
    cron: options.cron,
  });
  // Warden's own logs (JSON) go to stderr, so the example's stdout stays readable.
  const logger = pino({ level: options.logLevel }, pino.destination({ dest: 2, sync: true }));
  const warden = createWarden({
    database: options.databaseUrl,
    schema: options.schema,
    schedules: [rescreening.schedule],
    logger,
  });
  return {
    warden,
    appDb,
    rescreening,
    close: async () => {
      await warden.close();
      await appDb.close();
    },
  };
}

/**
 * Deletes the SQLite file (with its WAL files) or drops the PostgreSQL schema, so a run starts fresh.
 * Returns where the example's data lives, in words.
 */
export async function resetDatabase(options: RescreeningOptions): Promise<string> {
  const file = sqliteFile(options.databaseUrl);
  if (file !== null) {
    await Promise.all(['', '-wal', '-shm', '-journal'].map((suffix) => rm(`${file}${suffix}`, { force: true })));
    return `SQLite file ${file} (deleted and recreated)`;
  }
  const schema = checkSchema(options.schema);
  const client = new pg.Client({ connectionString: options.databaseUrl });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } finally {
    await client.end();
  }
  return `PostgreSQL schema "${schema}" (dropped and recreated)`;
}

/** Where the example's data lives, in words, when it is kept. */
export function describeDatabase(options: RescreeningOptions): string {
  const file = sqliteFile(options.databaseUrl);
  return file !== null ? `SQLite file ${file}` : `PostgreSQL schema "${options.schema}"`;
}
