/**
 * Queue pause (persisted, honoured by every instance), claim order by priority, delayed jobs under a fake
 * clock, and deduplication keys under concurrent enqueue.
 * @module
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { Warden } from '../../src/client/warden.js';
import { defineJob } from '../../src/job/define-job.js';
import { createTestDatabase, DRIVER_KINDS, type TestDatabase } from '../support/test-databases.js';
import { IDLE_TIMERS, makeWarden, type MakeWardenOptions, T0, TestClock, within } from './helpers.js';

describe.each(DRIVER_KINDS)('queues and dedup (%s)', (kind) => {
  let tdb: TestDatabase;
  let clock: TestClock;
  let wardens: Warden[];
  let ran: { job: string; tag: string }[];

  const payload = z.object({ tag: z.string() });
  const email = defineJob({ name: 'send-email', queue: 'email', schema: payload, handler: (p) => void ran.push({ job: 'send-email', tag: p.tag }) });
  const report = defineJob({ name: 'build-report', queue: 'reports', schema: payload, handler: (p) => void ran.push({ job: 'build-report', tag: p.tag }) });
  const task = defineJob({ name: 'task', schema: payload, handler: (p) => void ran.push({ job: 'task', tag: p.tag }) });
  const jobs = [email, report, task];

  beforeEach(async () => {
    ran = [];
    wardens = [];
    tdb = await createTestDatabase(kind);
    clock = new TestClock(T0);
  });

  afterEach(async () => {
    for (const w of wardens) await w.close();
    await tdb?.cleanup();
  });

  /** A new instance with its own connections, as another process would have. */
  function open(options: MakeWardenOptions = {}): Warden {
    const w = makeWarden(tdb, { jobs, clock, ...options });
    wardens.push(w);
    return w;
  }

  describe('pause', () => {
    it("a pause made through one instance is honoured by another instance's drain; resume lets it run", async () => {
      const a = open();
      const b = open();
      await a.queues.pause('email', { actor: 'ops' });
      const emailJobs = await Promise.all(['e1', 'e2'].map((tag) => b.enqueue(email, { tag })));
      await b.enqueue(report, { tag: 'r1' });
      await b.enqueue(task, { tag: 't1' });

      // B learns of the pause only from the database.
      const listed = await b.queues.list();
      expect(listed.find((q) => q.queue === 'email')).toMatchObject({ paused: true, counts: { queued: 2 } });

      expect(await b.drain()).toEqual({ attempts: 2 });
      expect(ran.map((r) => r.tag).sort()).toEqual(['r1', 't1']);
      for (const { id } of emailJobs) expect(await tdb.driver.jobGet({ id })).toMatchObject({ state: 'queued', attempt: 0 });
      expect(await b.drain({ queues: ['email'] })).toEqual({ attempts: 0 });

      await a.queues.resume('email');
      expect((await b.queues.list()).find((q) => q.queue === 'email')!.paused).toBe(false);
      expect(await b.drain()).toEqual({ attempts: 2 });
      expect(ran.map((r) => r.tag).sort()).toEqual(['e1', 'e2', 'r1', 't1']);
      for (const { id } of emailJobs) expect(await tdb.driver.jobGet({ id })).toMatchObject({ state: 'completed', attempt: 1 });
    });

    it("another instance's started worker runs other queues but not the paused one, until resumed", async () => {
      const a = open();
      const b = open();
      await a.queues.pause('email');
      await b.start({ pollInterval: '100ms' });
      await clock.waitForTimers(IDLE_TIMERS, 'B to be idle');

      const other = b.events.next('job:completed', (e) => e.job.name === 'build-report');
      const { id: emailId } = await b.enqueue(email, { tag: 'e1' });
      await b.enqueue(report, { tag: 'r1' });
      await within(other, 'the report job to complete');
      // Many polls later the paused queue's job is still waiting.
      await clock.step(2_000, 100, IDLE_TIMERS);
      expect(ran.map((r) => r.tag)).toEqual(['r1']);
      expect(await tdb.driver.jobGet({ id: emailId })).toMatchObject({ state: 'queued', attempt: 0 });

      // A resumes; B is not told, but its next poll reads the resumed state from the database.
      const emailDone = b.events.next('job:completed', (e) => e.job.id === emailId);
      await a.queues.resume('email');
      await clock.step(100, 100, IDLE_TIMERS);
      await within(emailDone, 'the email job to complete after resume');
      expect(ran.map((r) => r.tag)).toEqual(['r1', 'e1']);
    });
  });

  it('runs lower priority numbers first, then in enqueue order', async () => {
    const w = open();
    const priorities: [string, number][] = [
      ['p5', 5],
      ['p-3a', -3],
      ['p0', 0],
      ['p10', 10],
      ['p-3b', -3],
      ['default', 0],
    ];
    for (const [tag, priority] of priorities) {
      if (tag === 'default') await w.enqueue(task, { tag });
      else await w.enqueue(task, { tag }, { priority });
    }
    expect(await w.drain({ concurrency: 1 })).toEqual({ attempts: 6 });
    expect(ran.map((r) => r.tag)).toEqual(['p-3a', 'p-3b', 'p0', 'default', 'p5', 'p10']);
  });

  it('a job definition’s priority applies unless enqueue overrides it', async () => {
    const urgent = defineJob({ name: 'urgent', priority: -10, schema: payload, handler: (p) => void ran.push({ job: 'urgent', tag: p.tag }) });
    const w = open({ jobs: [task, urgent] });
    await w.enqueue(task, { tag: 'plain' });
    await w.enqueue(urgent, { tag: 'urgent-demoted' }, { priority: 100 });
    await w.enqueue(urgent, { tag: 'urgent' });
    expect(await w.drain({ concurrency: 1 })).toEqual({ attempts: 3 });
    expect(ran.map((r) => r.tag)).toEqual(['urgent', 'plain', 'urgent-demoted']);
  });

  it('a delayed job is not run before it is due, and runs once the clock reaches it', async () => {
    const w = open();
    const delayed = await w.enqueue(task, { tag: 'delayed' }, { delay: '10s' });
    const scheduled = await w.enqueue(task, { tag: 'scheduled' }, { runAt: new Date(T0 + 60_000), delay: '1s' });
    const now = await w.enqueue(task, { tag: 'now' }, { priority: 5 });
    expect(delayed.job.runAt.getTime()).toBe(T0 + 10_000);
    // runAt overrides delay.
    expect(scheduled.job.runAt.getTime()).toBe(T0 + 60_000);
    expect(now.job.runAt.getTime()).toBe(T0);

    // A due job runs although a higher-priority job is delayed.
    expect(await w.drain()).toEqual({ attempts: 1 });
    expect(ran.map((r) => r.tag)).toEqual(['now']);

    await clock.advance(9_999);
    expect(await w.drain()).toEqual({ attempts: 0 });
    expect(await tdb.driver.jobGet({ id: delayed.id })).toMatchObject({ state: 'queued', attempt: 0 });
    await clock.advance(1);
    expect(await w.drain()).toEqual({ attempts: 1 });
    expect(ran.map((r) => r.tag)).toEqual(['now', 'delayed']);

    await clock.advance(49_999);
    expect(await w.drain()).toEqual({ attempts: 0 });
    await clock.advance(1);
    expect(await w.drain()).toEqual({ attempts: 1 });
    expect(ran.map((r) => r.tag)).toEqual(['now', 'delayed', 'scheduled']);
  });

  it('a started worker runs a delayed job at its due time, not before', async () => {
    const w = open();
    await w.start({ pollInterval: '100ms' });
    await clock.waitForTimers(IDLE_TIMERS, 'the worker to be idle');
    const { id } = await w.enqueue(task, { tag: 'later' }, { delay: '3s' });
    const done = w.events.next('job:completed', (e) => e.job.id === id);
    await clock.step(2_900, 100, IDLE_TIMERS);
    expect(ran).toEqual([]);
    expect(await tdb.driver.jobGet({ id })).toMatchObject({ state: 'queued' });
    await clock.step(100, 100, IDLE_TIMERS);
    await within(done, 'the delayed job to complete');
    expect(ran.map((r) => r.tag)).toEqual(['later']);
    expect((await w.jobs.attempts(id))[0]!.startedAt!.getTime()).toBe(T0 + 3_000);
  });

  describe('deduplication keys', () => {
    it('50 concurrent enqueues with one key make exactly one job; all share its id; 49 are duplicates', async () => {
      const w = open();
      const results = await Promise.all(Array.from({ length: 50 }, (_, i) => w.enqueue(task, { tag: `t${i}` }, { key: 'order-42' })));
      const ids = new Set(results.map((r) => r.id));
      expect(ids.size).toBe(1);
      expect(results.filter((r) => !r.duplicate)).toHaveLength(1);
      expect(results.filter((r) => r.duplicate)).toHaveLength(49);
      const stored = await tdb.driver.jobList({ limit: 1000 });
      expect(stored).toHaveLength(1);
      expect(stored[0]!.id).toBe([...ids][0]);
      expect(stored[0]!.key).toBe('order-42');
      // The stored payload is the winner's.
      const winner = results.find((r) => !r.duplicate)!;
      expect(stored[0]!.payload).toEqual(winner.job.payload);
      for (const r of results) expect(r.job.id).toBe(winner.id);
    });

    it('50 concurrent enqueues with one key from two instances still make one job', async () => {
      const a = open();
      const b = open();
      const results = await Promise.all(Array.from({ length: 50 }, (_, i) => (i % 2 ? a : b).enqueue(task, { tag: `t${i}` }, { key: 'shared' })));
      expect(new Set(results.map((r) => r.id)).size).toBe(1);
      expect(results.filter((r) => !r.duplicate)).toHaveLength(1);
      expect(await tdb.driver.jobList({ limit: 1000 })).toHaveLength(1);
    });

    it('a key is held while the job waits or retries, and is reusable once it completed', async () => {
      let fail = true;
      const flaky = defineJob({
        name: 'flaky',
        retry: { maxAttempts: 3, backoff: { base: '1s', jitter: 'none' } },
        handler: () => {
          if (fail) throw new Error('not yet');
        },
      });
      const w = open({ jobs: [flaky] });
      const first = await w.enqueue(flaky, {}, { key: 'k' });
      expect(first.duplicate).toBe(false);
      expect(await w.enqueue(flaky, {}, { key: 'k' })).toMatchObject({ id: first.id, duplicate: true });

      expect(await w.drain()).toEqual({ attempts: 1 });
      expect((await w.jobs.get(first.id))!.state).toBe('retrying');
      expect(await w.enqueue(flaky, {}, { key: 'k' })).toMatchObject({ id: first.id, duplicate: true });

      fail = false;
      await clock.advance(1_000);
      expect(await w.drain()).toEqual({ attempts: 1 });
      expect((await w.jobs.get(first.id))!.state).toBe('completed');

      const again = await w.enqueue(flaky, {}, { key: 'k' });
      expect(again.duplicate).toBe(false);
      expect(again.id).not.toBe(first.id);
      expect(again.job.state).toBe('queued');
      const stored = await tdb.driver.jobList({ limit: 1000 });
      expect(stored.map((j) => [j.id, j.state]).sort()).toEqual(
        [
          [first.id, 'completed'],
          [again.id, 'queued'],
        ].sort(),
      );
    });

    it('enqueueMany with repeated keys inserts the first and returns it for the rest', async () => {
      const w = open();
      const results = await w.enqueueMany([
        { job: task, payload: { tag: 'a1' }, options: { key: 'a' } },
        { job: task, payload: { tag: 'b1' }, options: { key: 'b' } },
        { job: task, payload: { tag: 'a2' }, options: { key: 'a' } },
        { job: task, payload: { tag: 'none' } },
      ]);
      expect(results.map((r) => r.duplicate)).toEqual([false, false, true, false]);
      expect(results[2]!.id).toBe(results[0]!.id);
      expect(results[2]!.job.payload).toEqual({ tag: 'a1' });
      expect(await tdb.driver.jobList({ limit: 1000 })).toHaveLength(3);
    });
  });
});
