import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type CliDatabase, cli, cliJson, expectOneLineError, JOBS, migratedDatabase } from './cli-helpers.js';

const EMAIL = JSON.stringify({ to: 'a@example.com', template: 'welcome' });

let db: CliDatabase;
beforeEach(async () => {
  delete process.env.WARDEN_JOBS;
  db = await migratedDatabase('sqlite');
});
afterEach(async () => {
  delete process.env.WARDEN_JOBS;
  await db.cleanup();
});

async function listJobs(): Promise<any[]> {
  return cliJson(['jobs', 'list', ...db.args]);
}

describe('warden enqueue', () => {
  it('enqueues a valid payload, which then appears in jobs list --json', async () => {
    const result = await cli(['enqueue', 'send-email', EMAIL, '--jobs', JOBS, ...db.args]);
    expect(result.err).toBe('');
    expect(result.code).toBe(0);
    const id = /^enqueued job (\d+)\n$/.exec(result.out)?.[1];
    expect(id).toBeDefined();

    const jobs = await listJobs();
    expect(jobs).toHaveLength(1);
    expect(jobs[0]).toMatchObject({ id, name: 'send-email', queue: 'email', state: 'queued', payload: { to: 'a@example.com', template: 'welcome' }, attempt: 0 });
    expect(jobs[0].runAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  });

  it('prints {id, duplicate, job} with --json and reports a duplicate key', async () => {
    const first = await cliJson(['enqueue', 'send-email', EMAIL, '--jobs', JOBS, '--key', 'welcome:1', ...db.args]);
    expect(first).toMatchObject({ duplicate: false, job: { id: first.id, key: 'welcome:1', state: 'queued' } });
    expect(typeof first.job.createdAt).toBe('string');

    const again = await cli(['enqueue', 'send-email', EMAIL, '--jobs', JOBS, '--key', 'welcome:1', ...db.args]);
    expect(again).toEqual({ code: 0, out: `duplicate of job ${first.id}\n`, err: '' });
    expect(await listJobs()).toHaveLength(1);
  });

  it('applies --delay, --priority and --queue', async () => {
    const before = Date.now();
    const { job } = await cliJson(['enqueue', 'send-email', EMAIL, '--jobs', JOBS, '--delay', '5m', '--priority', '-5', '--queue', 'bulk', ...db.args]);
    expect(job).toMatchObject({ queue: 'bulk', priority: -5 });
    expect(new Date(job.runAt).getTime()).toBeGreaterThan(before + 4 * 60_000);
  });

  it('takes the jobs module from WARDEN_JOBS', async () => {
    process.env.WARDEN_JOBS = JOBS;
    const result = await cli(['enqueue', 'send-email', EMAIL, ...db.args]);
    expect(result.code).toBe(0);
    expect(result.out).toMatch(/^enqueued job \d+\n$/);
  });

  it('accepts a module with export default [...]', async () => {
    const module = fileURLToPath(new URL('./fixtures/default-jobs.ts', import.meta.url));
    const result = await cli(['enqueue', 'ping', '{}', '--jobs', module, ...db.args]);
    expect(result.code).toBe(0);
  });

  it('rejects an invalid payload in one line naming the issue, and writes nothing', async () => {
    const result = await cli(['enqueue', 'send-email', JSON.stringify({ to: 'not-an-email', template: 'welcome' }), '--jobs', JOBS, ...db.args]);
    expectOneLineError(result, 1, /Expected a payload for job "send-email" that satisfies its schema, got 1 issue\(s\): to: /);
    expect(await listJobs()).toEqual([]);
  });

  it('rejects an unknown job, listing the known ones', async () => {
    expectOneLineError(await cli(['enqueue', 'send-sms', '{}', '--jobs', JOBS, ...db.args]), 1, /Expected a registered job name \(.*send-email.*\), got "send-sms"/);
    expect(await listJobs()).toEqual([]);
  });

  it.each([
    ['{"to": }', /Expected the payload to be JSON, got unexpected "}" where a value was expected at position 7 \(line 1, column 8\)/],
    ['{"to": "a"', /Expected the payload to be JSON, got end of input where "," or "}" was expected at position 10/],
    ["{'to': 1}", /got unexpected "'" where a property name in double quotes was expected at position 1/],
    ['', /got end of input where a value was expected at position 0/],
  ])('rejects bad JSON %j naming the position', async (json, message) => {
    expectOneLineError(await cli(['enqueue', 'send-email', json, '--jobs', JOBS, ...db.args]), 1, message);
  });

  it.each([
    [['--key', 'a\u0001b'], /Expected key to be a string of 1-255 characters without control characters, got "a\\u0001b"/],
    [['--queue', 'a;drop'], /Expected queue to match .*, got "a;drop"/],
    [['--delay', '5 fortnights'], /Expected delay to be a duration such as "30s"/],
    [['--delay', '-5m'], /Expected delay to be a duration/],
    [['--priority', 'high'], /Expected --priority to be a whole number, got "high"/],
    [['--priority', '9999999'], /Expected priority to be an integer from -1000000 to 1000000/],
  ])('rejects invalid option %j in one line and writes nothing', async (options, message) => {
    expectOneLineError(await cli(['enqueue', 'send-email', EMAIL, '--jobs', JOBS, ...options, ...db.args]), 1, message);
    expect(await listJobs()).toEqual([]);
  });

  it('requires the job definitions', async () => {
    expectOneLineError(await cli(['enqueue', 'send-email', EMAIL, ...db.args]), 1, /^warden: Expected --jobs <module> \(or WARDEN_JOBS\) so the payload can be validated, got none\n$/);
  });

  it('reports a missing jobs module in one line', async () => {
    expectOneLineError(await cli(['enqueue', 'send-email', EMAIL, '--jobs', 'test/cli/fixtures/missing.ts', ...db.args]), 1, /Expected --jobs to name a jobs module file, got "test\/cli\/fixtures\/missing.ts" \(no such file/);
  });

  it('reports a module without jobs in one line', async () => {
    const module = fileURLToPath(new URL('./fixtures/no-jobs.ts', import.meta.url));
    expectOneLineError(await cli(['enqueue', 'send-email', EMAIL, '--jobs', module, ...db.args]), 1, /Expected the jobs module .*no-jobs\.ts to export job definitions .*got none/);
  });
});
