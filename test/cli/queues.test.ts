import { afterEach, describe, expect, it } from 'vitest';
import { type CliDatabase, cli, cliJson, expectOneLineError, JOBS, migratedDatabase } from './cli-helpers.js';

const EMAIL = JSON.stringify({ to: 'a@example.com', template: 'welcome' });

let db: CliDatabase;
afterEach(async () => {
  await db.cleanup();
});

async function enqueue(job: string, payload: string, ...options: string[]): Promise<string> {
  return (await cliJson(['enqueue', job, payload, '--jobs', JOBS, ...options, ...db.args])).id as string;
}

describe.each(['sqlite', 'postgres'] as const)('warden queues and stats (%s)', (kind) => {
  it('pauses and resumes a queue, reflected in queues list --json', async () => {
    db = await migratedDatabase(kind);
    await enqueue('send-email', EMAIL);

    expect(await cli(['queues', 'pause', 'email', ...db.args])).toEqual({ code: 0, out: 'paused queue email\n', err: '' });
    let queues = await cliJson(['queues', 'list', ...db.args]);
    expect(queues).toEqual([expect.objectContaining({ queue: 'email', paused: true, counts: expect.objectContaining({ queued: 1 }) })]);

    expect(await cliJson(['queues', 'resume', 'email', ...db.args])).toEqual({ queue: 'email', paused: false });
    queues = await cliJson(['queues', 'list', ...db.args]);
    expect(queues).toEqual([expect.objectContaining({ queue: 'email', paused: false })]);

    const text = await cli(['queues', 'list', ...db.args]);
    expect(text.out.split('\n')[0]).toMatch(/^QUEUE +PAUSED +QUEUED +RETRYING +RUNNING +COMPLETED +DEAD +CANCELLED +LAG$/);
    expect(text.out.split('\n')[1]).toMatch(/^email +no +1 +0 +0 +0 +0 +0 +\S+$/);
  });

  it('prints totals by state and per queue with stats --json', async () => {
    db = await migratedDatabase(kind);
    await enqueue('send-email', EMAIL);
    await enqueue('send-email', EMAIL, '--delay', '1h');
    const cancelled = await enqueue('always-fails', '{}');
    await cli(['jobs', 'cancel', cancelled, ...db.args]);

    const stats = await cliJson(['stats', ...db.args]);
    expect(stats.totals).toEqual({ queued: 2, retrying: 0, running: 0, completed: 0, dead: 0, cancelled: 1 });
    const byQueue = Object.fromEntries(stats.queues.map((q: any) => [q.queue, q.counts]));
    expect(byQueue.email).toMatchObject({ queued: 2 });
    expect(byQueue.default).toMatchObject({ cancelled: 1 });

    const text = await cli(['stats', ...db.args]);
    expect(text.code).toBe(0);
    expect(text.out).toMatch(/^QUEUED +RETRYING +RUNNING +COMPLETED +DEAD +CANCELLED +TOTAL\n2 +0 +0 +0 +0 +1 +3\n/);
  });
});

describe('warden queues errors', () => {
  it('rejects an invalid queue name in one line', async () => {
    db = await migratedDatabase('sqlite');
    expectOneLineError(await cli(['queues', 'pause', 'a;drop', ...db.args]), 1, /Expected queue to match .*, got "a;drop"/);
    expectOneLineError(await cli(['queues', 'resume', 'A', ...db.args]), 1, /Expected queue to match/);
  });

  it('reports an empty database', async () => {
    db = await migratedDatabase('sqlite');
    expect(await cli(['queues', 'list', ...db.args])).toEqual({ code: 0, out: 'no queues\n', err: '' });
    expect(await cliJson(['queues', 'list', ...db.args])).toEqual([]);
  });
});
