import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { createWarden, type Warden } from '../client/warden.js';
import type { WardenOptions } from '../client/warden-options.js';

/** Options for {@link createTestWarden}: everything but the database, which is a fresh SQLite file. */
export type TestWardenOptions = Omit<WardenOptions, 'database' | 'schema'>;

/** A migrated Warden on a throwaway SQLite file. */
export interface TestWarden {
  warden: Warden;
  /** The database URL, to open more instances (e.g. child processes) on the same file. */
  url: string;
  /** Closes the instance and deletes the file. */
  cleanup(): Promise<void>;
}

/**
 * Creates a Warden on a new SQLite file in a temporary directory, migrated and ready. Logging is silent
 * unless a logger is given.
 */
export async function createTestWarden(options: TestWardenOptions = {}): Promise<TestWarden> {
  const dir = await mkdtemp(join(tmpdir(), 'warden-test-'));
  const url = `sqlite:${join(dir, 'warden.db')}`;
  let warden: Warden | undefined;
  try {
    warden = createWarden({ logger: pino({ level: 'silent' }), ...options, database: url });
    await warden.migrate();
  } catch (error) {
    // Bad options or a failed migration: nothing is handed back to clean up, so nothing may be left behind.
    await warden?.close().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  const created = warden;
  return {
    url,
    warden: created,
    async cleanup() {
      await created.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
