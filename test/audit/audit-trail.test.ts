/**
 * The audit trail as recorded by a Warden (`createWarden({ audit })`): which transitions each job type's level
 * records, operator actions written before the call returns, redaction of sensitive values, appends from several
 * instances forming one chain, flush on close, the export formats re-verified by an independent
 * implementation of docs/audit.md's algorithm; and a trail that cannot write: a full backlog drops new entries (each
 * drop an `error` event, and the next barrier fails), an entry the database refuses for good is given up on after
 * its retries (the operator action waiting for it fails with `AuditWriteError`, later entries are written), and an
 * operator action waits no longer than `flushTimeout`. The refusal is real: a constraint (PostgreSQL) or trigger
 * (SQLite) on the entries table that rejects one subject; the test waits on `error` events, never on sleeps.
 * @module
 */
import { createHash } from 'node:crypto';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Warden } from '../../src/client/warden.js';
import type { AuditEntry } from '../../src/driver/audit-params.js';
import { AuditWriteError } from '../../src/errors.js';
import { defineJob, type AuditLevel } from '../../src/job/define-job.js';
import { defineSchedule } from '../../src/schedule/define-schedule.js';
import { createTestDatabase, DRIVER_KINDS, PG_URL, type TestDatabase } from '../support/test-databases.js';
import { makeWarden, type MakeWardenOptions, T0, TestClock, within } from '../runtime/helpers.js';

const SECRET = '4111111111111111';

/** docs/audit.md's canonical JSON, written again from the text: sorted keys, no whitespace. */
function canon(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canon).join(',')}]`;
  const record = value as Record<string, unknown>;
  return `{${Object.keys(record).sort().map((k) => `${JSON.stringify(k)}:${canon(record[k])}`).join(',')}}`;
}

/** docs/audit.md's verification of a JSON Lines export: each line's hash over the previous hash and its body. */
function verifyJsonl(text: string): number {
  let prev = '0'.repeat(64);
  let seq = 0;
  for (const line of text.split('\n').filter((l) => l !== '')) {
    const { hash, prevHash, ...body } = JSON.parse(line) as Record<string, unknown>;
    expect(prevHash, `prevHash of line ${seq + 1}`).toBe(prev);
    expect(body.seq).toBe(++seq);
    expect(createHash('sha256').update(`${prevHash as string}${canon(body)}`).digest('hex'), `hash of seq ${seq}`).toBe(hash);
    prev = hash as string;
  }
  return seq;
}

async function chainOf(warden: Warden): Promise<AuditEntry[]> {
  const out: AuditEntry[] = [];
  for await (const e of warden.audit.entries()) out.push(e);
  return out;
}

async function text(chunks: AsyncIterable<string>): Promise<string> {
  let out = '';
  for await (const chunk of chunks) out += chunk;
  return out;
}

describe.each(DRIVER_KINDS)('audit trail (%s)', (kind) => {
  let tdb: TestDatabase;
  let clock: TestClock;
  const opened: Warden[] = [];

  beforeEach(async () => {
    tdb = await createTestDatabase(kind);
    clock = new TestClock(T0);
  });
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((w) => w.close()));
    await tdb.cleanup();
  });

  function open(options: MakeWardenOptions = {}): Warden {
    const warden = makeWarden(tdb, { clock, audit: { actor: 'system:test' }, ...options });
    opened.push(warden);
    return warden;
  }

  /** Jobs at each level: one that succeeds, one that fails both of its 2 attempts. */
  function jobsAt(level: AuditLevel) {
    return {
      ok: defineJob({ name: `ok-${level}`, audit: level, handler: async () => undefined }),
      bad: defineJob({ name: `bad-${level}`, audit: level, retry: { maxAttempts: 2 }, handler: async () => { throw new Error('nope'); } }),
    };
  }

  it.each([
    ['all', ['job.created', 'job.started', 'job.completed', 'job.created', 'job.started', 'job.failed', 'job.retried', 'job.started', 'job.dead']],
    ['failures', ['job.failed', 'job.retried', 'job.dead']],
    ['none', ['job.retried']],
  ] as const)('records what level "%s" asks for', async (level, expected) => {
    const { ok, bad } = jobsAt(level);
    const w = open({ jobs: [ok, bad] });
    await w.enqueue(ok, {});
    await w.drain();
    const { id } = await w.enqueue(bad, {});
    await w.drain(); // attempt 1 fails; the retry waits on the (fake) backoff
    expect((await w.jobs.get(id))?.state).toBe('retrying');
    await w.jobs.retry(id, { actor: 'cli:alice', reason: 'INC-7' });
    await w.drain(); // attempt 2 fails: dead
    await w.audit.flush();
    const entries = await chainOf(w);
    expect(entries.map((e) => e.action)).toEqual(expected);
    const failed = entries.find((e) => e.action === 'job.failed')!;
    if (level !== 'none') {
      expect(failed).toMatchObject({ actor: 'system:test', subjectKind: 'job', subjectId: id, jobName: `bad-${level}`, queue: 'default', before: 'running', after: 'retrying' });
      expect(failed.data).toMatchObject({ attempt: 1, outcome: 'failed', error: { name: 'Error', message: 'nope' } });
      expect(entries.find((e) => e.action === 'job.dead')).toMatchObject({ before: 'running', after: 'dead', data: { attempt: 2 } });
    }
    expect(entries.find((e) => e.action === 'job.retried')).toMatchObject({ actor: 'cli:alice', reason: 'INC-7', before: 'retrying', after: 'queued', data: { operator: true } });
    // Fake time, stamped as the database time of each append.
    expect(entries.every((e) => e.at.getTime() >= T0)).toBe(true);
    expect((await w.audit.verify()).ok).toBe(true);
  });

  it('overrides every level with audit.level, and records nothing when not enabled', async () => {
    const { ok } = jobsAt('all');
    const quiet = open({ jobs: [ok], audit: { level: 'none' } });
    const { id } = await quiet.enqueue(ok, {});
    await quiet.drain();
    const off = open({ jobs: [ok], audit: false });
    await off.enqueue(ok, {});
    await off.drain();
    await off.jobs.discard(id);
    expect(off.audit.recording).toBe(false);
    await quiet.jobs.discard((await off.jobs.list({ name: 'ok-all' }))[0]!.id, { actor: 'bob' });
    expect((await chainOf(quiet)).map((e) => [e.action, e.actor])).toEqual([['job.discarded', 'bob']]);
  });

  it('writes operator actions on jobs, queues and schedules before the call returns', async () => {
    const job = defineJob({ name: 'report', audit: 'none', handler: async () => undefined });
    const nightly = defineSchedule({ name: 'nightly', cron: '0 3 * * *', job });
    const w = open({ schedules: [nightly] });
    await w.schedules.sync();
    const latest = async () => (await tdb.driver.auditList({ chain: 'default', afterSeq: (await tdb.driver.auditHead({ chain: 'default' }))!.seq - 1, limit: 1 }))[0];

    await w.queues.pause('default', { actor: 'cli:alice', reason: 'maintenance' });
    expect(await latest()).toMatchObject({ action: 'queue.paused', subjectKind: 'queue', subjectId: 'default', actor: 'cli:alice', reason: 'maintenance', after: 'paused' });
    await w.queues.resume('default', { actor: 'cli:alice' });
    expect(await latest()).toMatchObject({ action: 'queue.resumed', after: 'active', reason: null });
    await w.schedules.pause('nightly', { actor: 'cli:bob', reason: 'holiday' });
    expect(await latest()).toMatchObject({ action: 'schedule.paused', subjectKind: 'schedule', subjectId: 'nightly', jobName: 'report', actor: 'cli:bob', reason: 'holiday', after: 'paused' });
    await w.schedules.resume('nightly', { actor: 'cli:bob' });
    expect(await latest()).toMatchObject({ action: 'schedule.resumed', after: 'active' });
    const { jobId } = await w.schedules.trigger('nightly', { actor: 'cli:carol', reason: 'rerun' });
    // The trigger and its run are operator actions, recorded although the job's level is "none".
    const tail = (await chainOf(w)).slice(-2);
    expect(tail.map((e) => [e.action, e.actor])).toEqual([['schedule.triggered', 'cli:carol'], ['schedule.fired', 'cli:carol']]);
    expect(tail[1]!.data).toMatchObject({ jobId, late: false });
    const { id } = await w.enqueue('report', {});
    await w.jobs.cancel(id, { actor: 'cli:dave', reason: 'duplicate' });
    expect(await latest()).toMatchObject({ action: 'job.cancelled', subjectId: id, jobName: 'report', before: 'queued', after: 'cancelled', actor: 'cli:dave', reason: 'duplicate' });
    await w.jobs.discard(id, { actor: 'cli:dave' });
    expect(await latest()).toMatchObject({ action: 'job.discarded', before: 'cancelled', after: null });
  });

  it('keeps sensitive values out of the trail, even when an error message quotes one', async () => {
    const charge = defineJob({
      name: 'charge',
      sensitive: ['card'],
      retry: { maxAttempts: 1 },
      handler: async (payload: { card: string }) => {
        throw new Error(`card ${payload.card} declined`);
      },
    });
    const w = open({ jobs: [charge] });
    await w.enqueue(charge, { card: SECRET, amount: 5 });
    await w.drain();
    await w.audit.flush();
    const entries = await chainOf(w);
    expect(entries.find((e) => e.action === 'job.dead')?.data).toMatchObject({ error: { name: 'Error', message: 'card [redacted] declined' } });
    const everything = (await text(w.audit.export({ format: 'jsonl' }))) + (await text(w.audit.export({ format: 'csv' })));
    expect(everything).toContain('card [redacted] declined');
    expect(everything).not.toContain(SECRET);
  });

  it('forms one valid chain from several instances appending at once', async () => {
    const job = defineJob({ name: 'ping', handler: async () => undefined });
    const wardens = [open({ jobs: [job], clock: undefined }), open({ jobs: [job], clock: undefined }), open({ jobs: [job], clock: undefined })];
    const rounds = 4;
    const perRound = 25;
    await Promise.all(wardens.flatMap((w) => Array.from({ length: rounds }, () => w.enqueueMany(Array.from({ length: perRound }, () => ({ job, payload: {} }))))));
    await Promise.all(wardens.map((w) => w.audit.flush()));
    const result = await wardens[0]!.audit.verify({ pageSize: 37 });
    expect(result).toMatchObject({ ok: true, checked: wardens.length * rounds * perRound, break: null });
    const entries = await chainOf(wardens[1]!);
    expect(new Set(entries.map((e) => e.subjectId)).size).toBe(entries.length);
    expect(verifyJsonl(await text(wardens[2]!.audit.export()))).toBe(entries.length);
  });

  it('flushes queued entries on close', async () => {
    const job = defineJob({ name: 'ping', handler: async () => undefined });
    const w = makeWarden(tdb, { jobs: [job], clock, audit: { maxBatch: 7 } });
    await w.enqueueMany(Array.from({ length: 100 }, () => ({ job, payload: {} })));
    await w.close();
    expect((await tdb.driver.auditHead({ chain: 'default' }))?.seq).toBe(100);
  });

  it('exports JSON Lines that re-verify independently, and CSV with one quoted row per entry', async () => {
    const job = defineJob({ name: 'ping', handler: async () => undefined });
    const w = open({ jobs: [job] });
    await w.enqueue(job, {});
    await w.drain();
    await w.queues.pause('default', { actor: 'cli:alice', reason: 'says "hi", then\nleaves' });
    const jsonl = await text(w.audit.export({ format: 'jsonl' }));
    expect(verifyJsonl(jsonl)).toBe(4);
    const first = JSON.parse(jsonl.split('\n')[0]!) as Record<string, unknown>;
    expect(Object.keys(first)).toEqual(['action', 'actor', 'after', 'at', 'before', 'chain', 'data', 'hash', 'jobName', 'prevHash', 'queue', 'reason', 'seq', 'subjectId', 'subjectKind']);
    expect(first.at).toBe(new Date(T0).toISOString());

    const csv = await text(w.audit.export({ format: 'csv' }));
    const lines = csv.split('\r\n');
    expect(lines[0]).toBe('seq,at,chain,actor,action,subject_kind,subject_id,job_name,queue,before,after,reason,data,prev_hash,hash');
    expect(lines[1]).toMatch(/^1,2040-01-01T00:00:00\.000Z,default,system:test,job\.created,job,\d+,ping,default,,queued,,"\{""runAt"":""2040-01-01T00:00:00\.000Z""\}",0{64},[0-9a-f]{64}$/);
    expect(csv).toContain('queue.paused,queue,default,,default,,paused,"says ""hi"", then\nleaves","{""operator"":true}"');
    expect(lines.at(-1)).toBe('');

    // Time bounds select by database time.
    const none = await text(w.audit.export({ format: 'jsonl', until: new Date(T0) }));
    expect(none).toBe('');
    expect((await text(w.audit.export({ format: 'jsonl', since: new Date(T0) }))).split('\n').length - 1).toBe(4);
  });

  /** Makes the database refuse (for good, not transiently) every stored block with an entry that names `poison`. */
  async function refusePoison(): Promise<void> {
    if (kind === 'sqlite') {
      const db = new Database(tdb.url.slice('sqlite:'.length));
      try {
        db.exec(`CREATE TRIGGER refuse_poison BEFORE INSERT ON audit_blocks WHEN NEW.entries LIKE '%"poison"%' BEGIN SELECT RAISE(ABORT, 'refused'); END`);
      } finally {
        db.close();
      }
      return;
    }
    const client = new pg.Client({ connectionString: PG_URL });
    await client.connect();
    try {
      await client.query(`ALTER TABLE ${tdb.schema}.audit_blocks ADD CONSTRAINT refuse_poison CHECK (entries NOT LIKE '%"poison"%') NOT VALID`);
    } finally {
      await client.end();
    }
  }

  /** The `error` events of `w`, and a way to wait until there are `n` of them. */
  function errorsOf(w: Warden) {
    const seen: { error: unknown; context: string }[] = [];
    let wake: (() => void) | null = null;
    w.on('error', (e) => {
      seen.push(e);
      wake?.();
    });
    return {
      seen,
      async count(n: number): Promise<void> {
        while (seen.length < n) await within(new Promise<void>((resolve) => (wake = resolve)), `${n} error events (have ${seen.length})`);
      },
    };
  }

  it('drops entries past maxPending, reports each drop, fails the next barrier, and records again after', async () => {
    const job = defineJob({ name: 'ping', audit: 'all', handler: async () => undefined });
    const w = open({ jobs: [job], audit: { actor: 'system:test', maxPending: 2 } });
    const errors = errorsOf(w);
    // Five job.created entries queued in one synchronous burst: two fit, three are dropped.
    await w.enqueueMany(Array.from({ length: 5 }, (_, i) => ({ job, payload: { i } })));
    const drops = errors.seen.filter((e) => e.context === 'audit trail');
    expect(drops).toHaveLength(3);
    expect(drops[0]!.error).toBeInstanceOf(AuditWriteError);
    expect((drops[0]!.error as Error).message).toMatch(/full backlog \(2 entries waiting\); dropped job\.created of job \d+/);
    await expect(w.audit.flush()).rejects.toThrow(/full backlog/);

    // The two queued entries are written (read back from the database, no sleep); after them the next entry is
    // queued again, and an operator action waits for it as usual.
    await within((async () => {
      while ((await tdb.driver.auditHead({ chain: 'default' }))?.seq !== 2) await new Promise((resolve) => setImmediate(resolve));
    })(), 'the two queued entries to be written');
    await w.queues.pause('default', { actor: 'cli:alice' });
    expect((await chainOf(w)).map((e) => e.action)).toEqual(['job.created', 'job.created', 'queue.paused']);
    await expect(w.audit.flush()).resolves.toBeUndefined();
    expect((await w.audit.verify()).ok).toBe(true);
  });

  it('gives up on an entry the database refuses for good: its operator action fails, the entries after it are written', async () => {
    await refusePoison();
    const w = open({ audit: { actor: 'system:test' } });
    const errors = errorsOf(w);
    const refused = w.queues.pause('poison', { actor: 'cli:alice' }).then(() => null, (error: unknown) => error);
    // Three tries, 100 ms and 200 ms of backoff between them, then the entry is given up on.
    await errors.count(1);
    await clock.advance(100);
    await errors.count(2);
    await clock.advance(200);
    const error = await within(refused, 'the refused operator action to fail');
    expect(error).toBeInstanceOf(AuditWriteError);
    expect((error as Error).message).toMatch(/^Expected .*1 entry given up on: .*refuse/);
    expect(errors.seen.map((e) => e.context)).toEqual(['audit trail append', 'audit trail append', 'audit trail append', 'audit trail']);

    await w.queues.pause('fine', { actor: 'cli:bob' });
    const entries = await chainOf(w);
    expect(entries.map((e) => [e.action, e.subjectId])).toEqual([['queue.paused', 'fine']]);
    expect((await w.audit.verify()).ok).toBe(true);
  });

  it('fails an operator action whose entry is not written within flushTimeout, and keeps the entry queued', async () => {
    await refusePoison();
    const w = open({ audit: { actor: 'system:test', flushTimeout: '100ms' } });
    const errors = errorsOf(w);
    const waiting = w.queues.pause('poison', { actor: 'cli:alice' }).then(() => null, (error: unknown) => error);
    await errors.count(1);
    await clock.advance(100);
    const error = await within(waiting, 'the operator action to time out');
    expect(error).toBeInstanceOf(AuditWriteError);
    expect((error as Error).message).toMatch(/no write within 100ms; the entries stay queued/);
    // Still retried after the timeout, then given up on; nothing waits for it any more.
    await errors.count(2);
    await clock.advance(200);
    await errors.count(4);
    expect(errors.seen[3]!.context).toBe('audit trail');
    await w.queues.pause('fine', { actor: 'cli:bob' });
    expect((await chainOf(w)).map((e) => e.subjectId)).toEqual(['fine']);
  });
});
