/**
 * Scenario 27 for the values that are free text: quotes, `;`, `%`, `_`, `--`, backslashes, emoji (surrogate pairs and
 * ZWJ sequences), right-to-left text, combining marks and 200+ characters are stored and read back verbatim, on both
 * drivers, through Warden's API and straight from the tables:
 * - dedup keys (and keys differing only in LIKE wildcards, escapes or Unicode normalization stay different keys);
 * - lock holders, up to their limit of 200 characters (lock *names* are validated: see below);
 * - operator `actor` and `reason` on `jobs.cancel` / `jobs.retry` / `queues.pause` and in their audit entries (the
 *   hash chain still verifies);
 * - the `actor` and `reason` of a hand resolve of an alert (and an alert key);
 * - a schedule's payload, enqueued by `schedules.trigger`, as stored and as its handler receives it, and the trigger's
 *   actor on its tick row and audit entry.
 * Names checked by src/validation/names.ts (job, queue, schedule and lock names, keys) carrying the same text are
 * refused with `InvalidNameError` before any driver call, and nothing is written.
 * @module
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createWarden, type Warden } from '../../src/client/warden.js';
import type { WardenOptions } from '../../src/client/warden-options.js';
import type { Driver } from '../../src/driver/driver.js';
import { InvalidNameError } from '../../src/errors.js';
import type { WardenEventMap } from '../../src/events/event-map.js';
import { defineJob } from '../../src/job/define-job.js';
import { defineSchedule } from '../../src/schedule/define-schedule.js';
import { type Oracle, openOracle } from '../process/db-oracle.js';
import { Cleanup } from '../support/cleanup.js';
import { createTestDatabase, DRIVER_KINDS, type TestDatabase } from '../support/test-databases.js';
import { makeWarden, silent } from './helpers.js';

/** One sample of each kind of text that breaks naive quoting, matching or encoding. */
const SAMPLES = {
  quotes: `it's "quoted" \`ticked\``,
  statements: 'x; DROP TABLE jobs; --',
  comment: '-- not a comment /* nor this */',
  wildcards: '100% _of_ it %s %d',
  backslashes: 'C:\\path\\to \\n \\0 \\\\',
  emoji: 'ship 🚀 family 👩‍👩‍👧‍👦 flag 🇺🇦',
  rtl: 'مرحبا بالعالم \u200fשלום עולם',
  combining: 'e\u0301 n\u0303 Z\u0351\u0353\u0361a',
} as const;
/** Everything above in one string of 200+ characters (and, for keys, at most 255 UTF-16 units, no pair cut). */
const LONG = Array.from(Object.values(SAMPLES).join(' | ').repeat(2)).slice(0, 230).join('');
/** Free text with line breaks and tabs too: operator reasons are text, not names. */
const REASON = `${LONG}\n\tsecond line: ${SAMPLES.quotes}`;
const ACTOR = `ops:${SAMPLES.rtl} ${SAMPLES.emoji} ${SAMPLES.quotes}`;
/** The longest lock holder allowed: {@link LONG} cut to 200 UTF-16 units, without cutting a surrogate pair. */
const HOLDER = LONG.slice(0, LONG.slice(0, 200).isWellFormed() ? 200 : 199);
const TEXTS = [...Object.values(SAMPLES), LONG];

describe.each(DRIVER_KINDS)('free text stored and read back verbatim (%s)', (kind) => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  const task = defineJob({ name: 'task', handler: () => undefined });

  async function setUp(options: Parameters<typeof makeWarden>[1] = {}): Promise<{ tdb: TestDatabase; oracle: Oracle; w: Warden }> {
    const tdb = cleanup.add(await createTestDatabase(kind), (t) => t.cleanup());
    const oracle = cleanup.add(await openOracle(tdb), (o) => o.close());
    const w = cleanup.add(makeWarden(tdb, { retention: false, ...options }), (w) => w.close());
    return { tdb, oracle, w };
  }

  it('dedup keys: stored, returned and deduplicated as given; keys differing in wildcards, escapes or normalization stay apart', async () => {
    const { oracle, w } = await setUp({ jobs: [task] });
    expect(LONG.length).toBeGreaterThanOrEqual(200);
    expect(LONG.length).toBeLessThanOrEqual(255);
    expect(LONG.isWellFormed()).toBe(true);
    // Pairs a LIKE, an escape or a normalization would merge.
    const lookalikes = ['a%c', 'abc', 'a_c', 'a\\%c', 'a\\\\%c', 'caf\u00e9', 'cafe\u0301', 'x ', 'x', 'X'];
    const keys = [...TEXTS, ...lookalikes];
    const ids = new Map<string, string>();
    for (const key of keys) {
      const result = await w.enqueue(task, { key }, { key });
      expect(result.duplicate, `key ${JSON.stringify(key)}`).toBe(false);
      expect(result.job.key).toBe(key);
      ids.set(key, result.id);
    }
    expect(new Set(ids.values()).size).toBe(keys.length);
    for (const key of keys) {
      const id = ids.get(key)!;
      // Read back through Warden and straight from both tables.
      expect((await w.jobs.get(id))!.key).toBe(key);
      const [row] = await oracle.all<{ key: string }>('SELECT key FROM {jobs} WHERE id = $1', [id]);
      expect(row!.key).toBe(key);
      const holders = await oracle.all<{ job_id: unknown }>('SELECT job_id FROM {job_keys} WHERE key = $1', [key]);
      expect(holders.map((h) => String(h.job_id))).toEqual([id]);
      // The same key again is a duplicate of that job and no other.
      const again = await w.enqueue(task, { again: true }, { key });
      expect({ id: again.id, duplicate: again.duplicate }).toEqual({ id, duplicate: true });
    }
    expect(await oracle.number('SELECT count(*) FROM {jobs}')).toBe(keys.length);
  });

  it('operator actor and reason on jobs.cancel, jobs.retry and queues.pause: in events and audit entries as given, the chain verifies', async () => {
    const fails = defineJob({ name: 'fails', retry: { maxAttempts: 1 }, handler: () => { throw new Error(`boom ${SAMPLES.quotes}`); } });
    const { w } = await setUp({ jobs: [task, fails], audit: true });
    const actions: WardenEventMap['job:operator-action'][] = [];
    w.on('job:operator-action', (e) => actions.push(e));

    const { id: cancelId } = await w.enqueue(task, {});
    const { id: deadId } = await w.enqueue(fails, {});
    await w.drain();
    // The task was drained too; enqueue one more to cancel.
    const { id: toCancel } = await w.enqueue(task, { second: true });
    expect((await w.jobs.get(deadId))!.state).toBe('dead');
    expect((await w.jobs.get(cancelId))!.state).toBe('completed');

    const cancelled = await w.jobs.cancel(toCancel, { actor: ACTOR, reason: REASON });
    expect(cancelled.state).toBe('cancelled');
    const retried = await w.jobs.retry(deadId, { actor: ACTOR, reason: LONG });
    expect(retried.state).toBe('queued');
    await w.queues.pause('default', { actor: SAMPLES.statements, reason: SAMPLES.backslashes });

    expect(actions.map((a) => [a.action, a.actor, a.reason])).toEqual([
      ['cancel', ACTOR, REASON],
      ['retry', ACTOR, LONG],
    ]);
    const entries = [];
    for await (const entry of w.audit.entries()) entries.push(entry);
    const operator = entries.filter((e) => (e.data as { operator?: boolean } | null)?.operator === true);
    expect(operator.map((e) => ({ action: e.action, subjectId: e.subjectId, actor: e.actor, reason: e.reason }))).toEqual([
      { action: 'job.cancelled', subjectId: toCancel, actor: ACTOR, reason: REASON },
      { action: 'job.retried', subjectId: deadId, actor: ACTOR, reason: LONG },
      { action: 'queue.paused', subjectId: 'default', actor: SAMPLES.statements, reason: SAMPLES.backslashes },
    ]);
    expect(await w.audit.verify()).toMatchObject({ ok: true });
  });

  it('lock holders are stored as given; lock names with that text are refused with InvalidNameError before any SQL', async () => {
    const { tdb, w } = await setUp();
    const lease = await w.locks.acquire('tenant-42:reports/nightly.v2_final', { ttl: '10s', holder: HOLDER });
    expect(lease).not.toBeNull();
    const [row] = await w.locks.list();
    expect(row).toMatchObject({ name: 'tenant-42:reports/nightly.v2_final', holder: HOLDER, token: 1 });
    await lease!.release();
    // A name of the longest allowed length, every allowed punctuation mark in it, round-trips too.
    const longest = `a${'._:/-Z9'.repeat(19)}`.slice(0, 128);
    const other = await w.locks.acquire(longest, { ttl: '10s', holder: ACTOR });
    expect((await w.locks.list()).find((l) => l.name === longest)).toMatchObject({ holder: ACTOR });
    await other!.release();

    const { driver, calls, reset } = countingDriver(tdb.newDriver());
    const guarded = cleanup.add(makeWardenOn(driver), (g) => g.close());
    reset();
    for (const name of [...TEXTS, 'a'.repeat(129), '']) {
      for (const call of [
        () => guarded.locks.acquire(name, { ttl: '10s' }),
        () => guarded.locks.check(name, 1),
        () => guarded.locks.assertFence(name, 1),
      ]) {
        const error = await refusal(call);
        expect(error, `lock name ${JSON.stringify(name)}`).toBeInstanceOf(InvalidNameError);
        expect((error as InvalidNameError).field).toBe('lock name');
      }
    }
    expect(calls()).toEqual([]);
    expect((await w.locks.list()).map((l) => l.name).sort()).toEqual([longest, 'tenant-42:reports/nightly.v2_final'].sort());
  });

  it('an alert resolved by hand keeps its actor and reason (and its key) as given', async () => {
    const { tdb, w } = await setUp();
    const key = `queue-lag:${LONG.slice(0, 100)}`;
    await tdb.driver.alertOpen({ key, rule: 'queue-lag', severity: 'warning', summary: SAMPLES.rtl, detailsJson: JSON.stringify({ note: SAMPLES.quotes }), instance: 'i1', since: null, now: null });
    const resolved = await w.alerts.resolve(key, { actor: ACTOR, reason: REASON });
    expect(resolved).toMatchObject({ key, state: 'resolved', summary: SAMPLES.rtl, details: { note: SAMPLES.quotes, actor: ACTOR, reason: REASON } });
    const [listed] = await w.alerts.list({});
    expect(listed).toMatchObject({ key, state: 'resolved', details: { actor: ACTOR, reason: REASON } });
  });

  it('a schedule payload enqueued by schedules.trigger is stored, listed and handed to its handler as given', async () => {
    const received: unknown[] = [];
    const echo = defineJob({ name: 'echo', handler: (payload: unknown) => void received.push(payload) });
    const payload = { text: LONG, samples: SAMPLES, nested: { [SAMPLES.quotes]: [SAMPLES.emoji, SAMPLES.combining] } };
    const schedule = defineSchedule({ name: 'free-text', every: '1h', job: echo, payload: () => payload });
    const { oracle, w } = await setUp({ jobs: [echo], schedules: [schedule], audit: true });

    const { jobId } = await w.schedules.trigger('free-text', { actor: ACTOR, reason: REASON });
    expect((await w.jobs.get(jobId))!.payload).toEqual(payload);
    const [stored] = await oracle.all<{ payload: unknown }>('SELECT payload FROM {jobs} WHERE id = $1', [jobId]);
    expect(typeof stored!.payload === 'string' ? JSON.parse(stored!.payload) : stored!.payload).toEqual(payload);
    const [tick] = await w.schedules.ticks('free-text');
    expect(tick).toMatchObject({ kind: 'triggered', outcome: 'fired', actor: ACTOR, jobId });

    await w.drain();
    expect(received).toEqual([payload]);
    const entries = [];
    for await (const entry of w.audit.entries()) entries.push(entry);
    expect(entries.filter((e) => e.action === 'schedule.triggered').map((e) => [e.actor, e.reason])).toEqual([[ACTOR, REASON]]);
    expect(await w.audit.verify()).toMatchObject({ ok: true });
  });

  it('names validated by names.ts with that text are refused with InvalidNameError before any driver call; nothing is written', async () => {
    const { tdb, oracle } = await setUp();
    const echo = defineJob({ name: 'echo', handler: () => undefined });
    const schedule = defineSchedule({ name: 'valid-schedule', every: '1h', job: echo });
    const { driver, calls, reset } = countingDriver(tdb.newDriver());
    const w = cleanup.add(makeWardenOn(driver, { jobs: [echo], schedules: [schedule] }), (g) => g.close());
    reset();
    const refused: [string, unknown][] = [];
    const names = [...TEXTS, 'a'.repeat(65), 'UPPER', 'ünï'];
    for (const name of names) {
      const cases: [string, () => unknown][] = [
        ['job name', () => defineJob({ name, handler: () => undefined })],
        ['queue', () => defineJob({ name: 'ok', queue: name, handler: () => undefined })],
        ['schedule name', () => defineSchedule({ name, every: '1h', job: echo })],
        ['queue', () => w.enqueue(echo, {}, { queue: name })],
        ['queue', () => w.queues.pause(name, { actor: ACTOR })],
        ['queue', () => w.queues.resume(name)],
        ['queue', () => w.jobs.list({ queue: name })],
        ['job name', () => w.jobs.list({ name })],
        ['schedule name', () => w.schedules.trigger(name, { actor: ACTOR })],
        ['schedule name', () => w.schedules.pause(name)],
        ['schedule name', () => w.schedules.get(name)],
        ['schedule name', () => w.schedules.ticks(name)],
      ];
      for (const [field, call] of cases) {
        const error = await refusal(call);
        refused.push([field, name]);
        expect(error, `${field} ${JSON.stringify(name)}`).toBeInstanceOf(InvalidNameError);
        expect((error as InvalidNameError).field).toBe(field);
      }
    }
    // Keys are free text, but not control characters or more than 255 UTF-16 units.
    for (const key of [`${SAMPLES.statements}\n`, `tab\there`, `nul\u0000`, 'k'.repeat(256), `${LONG}${'x'.repeat(26)}`]) {
      const error = await refusal(() => w.enqueue(echo, {}, { key }));
      expect(error, `key ${JSON.stringify(key)}`).toBeInstanceOf(InvalidNameError);
      expect((error as InvalidNameError).field).toBe('key');
    }
    // Not one driver call was made for any of them: refused before any SQL.
    expect(calls()).toEqual([]);
    expect(refused.length).toBeGreaterThan(100);
    for (const table of ['jobs', 'job_keys', 'queues', 'schedules', 'schedule_ticks', 'locks']) {
      expect(await oracle.number(`SELECT count(*) FROM {${table}}`), `rows in ${table}`).toBe(0);
    }
  });
});

/** Runs `call` (which may throw or reject) and returns what it threw; fails when it succeeded. */
async function refusal(call: () => unknown): Promise<unknown> {
  try {
    await call();
  } catch (error) {
    return error;
  }
  expect.fail('expected a refusal, got success');
}

/** `driver` with every method call recorded by name; `calls()` lists those since the last `reset()`. */
function countingDriver(driver: Driver): { driver: Driver; calls: () => string[]; reset: () => void } {
  let seen: string[] = [];
  const counted = new Proxy(driver, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target) as unknown;
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        seen.push(String(prop));
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { driver: counted, calls: () => [...seen], reset: () => (seen = []) };
}

/** A Warden on an already open driver (not closed with it), with a silent logger and no background services. */
function makeWardenOn(driver: Driver, options: Pick<WardenOptions, 'jobs' | 'schedules'> = {}): Warden {
  return createWarden({ ...options, database: driver, logger: silent, retention: false });
}
