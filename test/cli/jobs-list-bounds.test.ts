/**
 * `warden jobs list --before <id> --limit <n>`: a bad cursor or limit is one line naming the flag and the accepted
 * range, on both databases; a cursor out of the job id range is no exception (it used to list from the newest job on
 * PostgreSQL and fail with a RangeError on SQLite).
 * @module
 */
import { afterEach, describe, expect, it } from 'vitest';
import { type CliDatabase, cli, cliJson, expectOneLineError, JOBS, migratedDatabase } from './cli-helpers.js';

let db: CliDatabase;
afterEach(async () => {
  await db?.cleanup();
});

describe.each(['sqlite', 'postgres'] as const)('warden jobs list bounds (%s)', (kind) => {
  it('pages with --before and --limit', async () => {
    db = await migratedDatabase(kind);
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await cliJson(['enqueue', 'send-email', JSON.stringify({ to: `${i}@example.com`, template: 'welcome' }), '--jobs', JOBS, ...db.args])).id as string);
    const first = await cliJson<{ id: string }[]>(['jobs', 'list', '--limit', '2', ...db.args]);
    expect(first.map((j) => j.id)).toEqual([ids[2], ids[1]]);
    const second = await cliJson<{ id: string }[]>(['jobs', 'list', '--limit', '2', '--before', first[1]!.id, ...db.args]);
    expect(second.map((j) => j.id)).toEqual([ids[0]]);
    const text = await cli(['jobs', 'list', '--limit', '2', ...db.args]);
    expect(text.out).toContain(`(2 shown; next page: --before ${ids[1]})`);
  });

  it.each([
    [['--before', '9223372036854775808'], /^warden: Expected --before to be a job id \(a decimal string of a whole number from 1 to 9223372036854775807, without leading zeros\), got "9223372036854775808"/],
    [['--before', '9999999999999999999'], /Expected --before to be a job id .*, got "9999999999999999999"/],
    [['--before', '0'], /Expected --before to be a job id/],
    [['--before', '007'], /Expected --before to be a job id/],
    [['--before', '-1'], /Expected --before to be a job id/],
    [['--limit', '1001'], /Expected --limit to be a whole number from 1 to 1000, got "1001"/],
    [['--limit', '-1'], /Expected --limit to be a whole number from 1 to 1000, got "-1"/],
    [['--limit', '2.5'], /Expected --limit to be a whole number, got "2.5"/],
    [['--limit', 'Infinity'], /Expected --limit to be a whole number, got "Infinity"/],
  ] as const)('rejects %j in one line', async (options, message) => {
    db = await migratedDatabase(kind);
    expectOneLineError(await cli(['jobs', 'list', ...options, ...db.args]), 1, message);
  });
});
