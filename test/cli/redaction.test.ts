/**
 * The CLI never shows a job's sensitive values, also when they are carried by a dedup key made from the payload
 * (docs/guarantees.md, "Sensitive fields never shown").
 * @module
 */
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createWarden } from '../../src/client/warden.js';
import { cli, sqliteDatabase } from './cli-helpers.js';
import { signupFail } from './fixtures/secret-jobs.js';

const JOBS = fileURLToPath(new URL('./fixtures/secret-jobs.ts', import.meta.url));
const EMAIL = 'alice.secret@example.com';
const PASSWORD = 'hunter2-very-secret';

describe('CLI output and sensitive values in a dedup key', () => {
  let db: Awaited<ReturnType<typeof sqliteDatabase>>;
  beforeEach(async () => {
    db = await sqliteDatabase();
    expect((await cli([...db.args, 'migrate'])).code).toBe(0);
  });
  afterEach(async () => {
    await db.cleanup();
  });

  it('enqueue --json, jobs show (text and --json), jobs list --json and jobs cancel --json cut the secret out of the key', async () => {
    const enqueued = await cli([...db.args, 'enqueue', 'signup', JSON.stringify({ email: EMAIL, password: PASSWORD }), '--jobs', JOBS, '--json']);
    expect(enqueued.code).toBe(0);
    const id = JSON.parse(enqueued.out).id as string;
    const outputs = {
      enqueueJson: enqueued.out,
      showText: (await cli([...db.args, 'jobs', 'show', id, '--jobs', JOBS])).out,
      showJson: (await cli([...db.args, 'jobs', 'show', id, '--jobs', JOBS, '--json'])).out,
      listJson: (await cli([...db.args, 'jobs', 'list', '--jobs', JOBS, '--json'])).out,
      cancelJson: (await cli([...db.args, 'jobs', 'cancel', id, '--jobs', JOBS, '--json'])).out,
    };
    const leaks = Object.entries(outputs).filter(([, out]) => out.includes(EMAIL) || out.includes(PASSWORD)).map(([where]) => where);
    expect(leaks).toEqual([]);
    // The key is still shown, with the secret cut out of it.
    expect(JSON.parse(outputs.showJson).job.key).toMatch(/^signup:\S+$/);
    expect(outputs.showText).toMatch(/key: +signup:/);
  });

  it("jobs retry's key conflict names the other job, not the key", async () => {
    const warden = createWarden({ database: db.url, jobs: [signupFail], logger: pino({ level: 'silent' }) });
    const dead = await warden.enqueue(signupFail, { email: EMAIL, password: PASSWORD });
    await warden.drain();
    expect((await warden.jobs.get(dead.id))?.state).toBe('dead');
    const active = await warden.enqueue(signupFail, { email: EMAIL, password: PASSWORD }, { delay: '1h' });
    await warden.close();
    const retried = await cli([...db.args, 'jobs', 'retry', dead.id, '--jobs', JOBS]);
    expect(retried.code).toBe(1);
    expect(retried.err).toContain(`got job ${active.id}`);
    expect(retried.err).not.toContain(EMAIL);
  });
});
