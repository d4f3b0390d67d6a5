import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { createWarden } from '../../src/index.js';
import { type CliDatabase, cli, cliJson, expectOneLineError, JOBS, migratedDatabase } from './cli-helpers.js';
import { alwaysFails, sendEmail, slow } from './fixtures/jobs.js';

const EMAIL = JSON.stringify({ to: 'a@example.com', template: 'welcome' });

let db: CliDatabase;
afterEach(async () => {
  await db.cleanup();
});

async function enqueue(job: string, payload: string, ...options: string[]): Promise<string> {
  const result = await cliJson(['enqueue', job, payload, '--jobs', JOBS, ...options, ...db.args]);
  return result.id as string;
}

/** Runs every due job once through the library, as a worker would. */
async function drain(): Promise<void> {
  const warden = createWarden({ database: db.url, schema: db.kind === 'postgres' ? db.args[3] : undefined, jobs: [sendEmail, alwaysFails, slow], logger: pino({ level: 'silent' }) });
  try {
    await warden.drain({ queues: ['default', 'email'] });
  } finally {
    await warden.close();
  }
}

describe.each(['sqlite', 'postgres'] as const)('warden jobs (%s)', (kind) => {
  it('lists, shows, retries a dead job, cancels and discards', async () => {
    db = await migratedDatabase(kind);
    const email = await enqueue('send-email', EMAIL);
    const failing = await enqueue('always-fails', '{}');
    await drain();

    const text = await cli(['jobs', 'list', ...db.args]);
    expect(text.code).toBe(0);
    const lines = text.out.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^ID +NAME +QUEUE +STATE +ATTEMPT +RUN AT +PROGRESS +LAST ERROR$/);
    expect(lines[1]).toMatch(new RegExp(`^${failing} +always-fails +default +dead +1/1 +\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\dZ +Error: boom: this job always fails$`));
    expect(lines[2]).toMatch(new RegExp(`^${email} +send-email +email +completed +1/10 `));

    const dead = await cliJson(['jobs', 'list', '--state', 'dead', ...db.args]);
    expect(dead.map((j: any) => j.id)).toEqual([failing]);
    const page = await cliJson(['jobs', 'list', '--limit', '1', '--before', failing, ...db.args]);
    expect(page.map((j: any) => j.id)).toEqual([email]);
    expect(await cliJson(['jobs', 'list', '--name', 'send-email', '--queue', 'default', ...db.args])).toEqual([]);

    const shown = await cliJson(['jobs', 'show', failing, ...db.args]);
    expect(shown.job).toMatchObject({ id: failing, state: 'dead', lastError: { name: 'Error', message: 'boom: this job always fails' } });
    expect(shown.attempts).toHaveLength(1);
    expect(shown.attempts[0]).toMatchObject({ jobId: failing, attempt: 1, outcome: 'failed' });
    expect(typeof shown.attempts[0].finishedAt).toBe('string');

    const showText = await cli(['jobs', 'show', failing, ...db.args]);
    expect(showText.out).toMatch(/^state: +dead$/m);
    expect(showText.out).toMatch(/^ {2}1 +failed +\S+ +\d{4}-/m);

    const retried = await cli(['jobs', 'retry', failing, ...db.args]);
    expect(retried).toEqual({ code: 0, out: `retried job ${failing} (now queued)\n`, err: '' });

    const cancelled = await cli(['jobs', 'cancel', failing, ...db.args]);
    expect(cancelled).toEqual({ code: 0, out: `cancelled job ${failing} (now cancelled)\n`, err: '' });
    expect((await cliJson(['jobs', 'show', failing, ...db.args])).job.state).toBe('cancelled');

    const discarded = await cliJson(['jobs', 'discard', failing, ...db.args]);
    expect(discarded).toMatchObject({ id: failing, state: 'cancelled' });
    expectOneLineError(await cli(['jobs', 'show', failing, ...db.args]), 1, /Expected an existing job id, got "\d+"/);
  });
});

describe('warden jobs errors (sqlite)', () => {
  it('shows a missing id as one line', async () => {
    db = await migratedDatabase('sqlite');
    expectOneLineError(await cli(['jobs', 'show', '999', ...db.args]), 1, /^warden: Expected an existing job id, got "999" \(string, length 3\)\n$/);
    expectOneLineError(await cli(['jobs', 'show', 'abc', ...db.args]), 1, /Expected an existing job id, got "abc"/);
    expectOneLineError(await cli(['jobs', 'cancel', '999', ...db.args]), 1, /Expected an existing job id/);
  });

  it('refuses to retry a queued job with a JobStateError line', async () => {
    db = await migratedDatabase('sqlite');
    const id = await enqueue('send-email', EMAIL);
    expectOneLineError(await cli(['jobs', 'retry', id, ...db.args]), 1, new RegExp(`^warden: Expected job ${id} to be dead or retrying to retry it, got queued\\n$`));
  });

  it('refuses to cancel a completed job', async () => {
    db = await migratedDatabase('sqlite');
    const id = await enqueue('send-email', EMAIL);
    await drain();
    expectOneLineError(await cli(['jobs', 'cancel', id, ...db.args]), 1, /to cancel it, got completed/);
  });

  it.each([
    [['--state', 'lost'], 1, /Expected state to be one of queued, retrying, running, completed, dead, cancelled, got "lost"/],
    [['--queue', 'a;drop'], 1, /Expected queue to match/],
    [['--name', 'Bad Name'], 1, /Expected job name to match/],
    [['--limit', '0'], 1, /Expected --limit to be a whole number from 1 to 1000, got "0"/],
    [['--limit', 'ten'], 1, /Expected --limit to be a whole number, got "ten"/],
    [['--before', 'x'], 1, /Expected --before to be a job id/],
  ] as const)('rejects jobs list %j in one line', async (options, code, message) => {
    db = await migratedDatabase('sqlite');
    expectOneLineError(await cli(['jobs', 'list', ...options, ...db.args]), code, message);
  });
});
