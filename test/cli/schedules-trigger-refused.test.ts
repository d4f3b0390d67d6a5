/**
 * `warden schedules trigger` writes nothing when the trigger is refused: a schedule not stored yet is stored by the
 * trigger itself, after its payload passed the job's schema, not by a separate sync before it.
 * @module
 */
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { type CliDatabase, cli, cliJson, migratedDatabase } from './cli-helpers.js';

const BAD_PAYLOAD = fileURLToPath(new URL('./fixtures/bad-payload-schedule.ts', import.meta.url));

let db: CliDatabase | undefined;
afterEach(async () => {
  await db?.cleanup();
  db = undefined;
});

describe.each(['sqlite', 'postgres'] as const)('schedules trigger refused (%s)', (kind) => {
  it('a schedule whose payload fails its job\'s schema is not stored, and no job or tick is written', async () => {
    db = await migratedDatabase(kind);
    const result = await cli(['schedules', 'trigger', 'bad-report', ...db.args, '--jobs', BAD_PAYLOAD]);
    expect(result.out).toBe('');
    expect(result.err).toMatch(/^warden: Expected a payload/);
    expect(result.code).toBe(1);
    expect(await cliJson<unknown[]>(['schedules', 'list', ...db.args])).toEqual([]);
    expect(await cliJson<unknown[]>(['jobs', 'list', ...db.args])).toEqual([]);
  });
});
