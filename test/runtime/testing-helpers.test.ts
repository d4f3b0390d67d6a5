/**
 * The `warden/testing` helpers users write their own tests with: `createTestWarden`, `expectEnqueued`,
 * `expectNotEnqueued`, `drain()` and `FakeClock`. Imported through the testing entry point, as users do.
 * @module
 */
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineJob } from '../../src/index.js';
import { createTestWarden, EnqueueAssertionError, expectEnqueued, expectNotEnqueued, FakeClock, type TestWarden } from '../../src/testing/index.js';

describe('createTestWarden', () => {
  it('gives a migrated Warden on a throwaway SQLite file, deleted by cleanup', async () => {
    let ran = 0;
    const ping = defineJob({ name: 'ping', handler: () => void ran++ });
    const t = await createTestWarden({ jobs: [ping] });
    const file = t.url.slice('sqlite:'.length);
    try {
      expect(t.url).toMatch(/^sqlite:/);
      expect(existsSync(file)).toBe(true);
      expect((await t.warden.migrationStatus()).pending).toEqual([]);
      await t.warden.enqueue(ping, {});
      expect(await t.warden.drain()).toEqual({ attempts: 1 });
      expect(ran).toBe(1);
    } finally {
      await t.cleanup();
    }
    expect(existsSync(file)).toBe(false);
  });

  it('leaves no directory behind when it fails (bad options)', async () => {
    const ping = defineJob({ name: 'ping', handler: () => {} });
    const previous = process.env.TMPDIR;
    const own = mkdtempSync(join(tmpdir(), 'warden-own-tmp-'));
    process.env.TMPDIR = own;
    try {
      await expect(createTestWarden({ jobs: [ping, ping] })).rejects.toThrow(/registered twice/);
      expect(readdirSync(own)).toEqual([]);
    } finally {
      if (previous === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = previous;
      rmSync(own, { recursive: true, force: true });
    }
  });

  it('gives each call its own database', async () => {
    const ping = defineJob({ name: 'ping', handler: () => {} });
    const a = await createTestWarden({ jobs: [ping] });
    const b = await createTestWarden({ jobs: [ping] });
    try {
      expect(a.url).not.toBe(b.url);
      await a.warden.enqueue(ping, {});
      expect(await a.warden.jobs.list()).toHaveLength(1);
      expect(await b.warden.jobs.list()).toHaveLength(0);
    } finally {
      await a.cleanup();
      await b.cleanup();
    }
  });
});

describe('expectEnqueued / expectNotEnqueued / drain', () => {
  const sendEmail = defineJob({
    name: 'send-email',
    schema: z.object({ to: z.string(), template: z.string() }),
    handler: () => {},
  });
  const other = defineJob({ name: 'other', handler: () => {} });
  let t: TestWarden;
  let clock: FakeClock;

  beforeEach(async () => {
    clock = new FakeClock(Date.UTC(2040, 0, 1));
    t = await createTestWarden({ jobs: [sendEmail, other], clock });
  });

  afterEach(async () => {
    await t.cleanup();
  });

  it('matches by partial payload, by predicate, and by count; returns the matching jobs', async () => {
    await t.warden.enqueue(sendEmail, { to: 'a@example.com', template: 'welcome' });
    await t.warden.enqueue(sendEmail, { to: 'b@example.com', template: 'welcome' });
    await t.warden.enqueue(sendEmail, { to: 'a@example.com', template: 'receipt' });
    await t.warden.enqueue(other, { to: 'a@example.com' });

    const byObject = await expectEnqueued(t.warden, sendEmail, { to: 'a@example.com' });
    expect(byObject.map((j) => j.payload).sort((x: any, y: any) => x.template.localeCompare(y.template))).toEqual([
      { to: 'a@example.com', template: 'receipt' },
      { to: 'a@example.com', template: 'welcome' },
    ]);
    expect(await expectEnqueued(t.warden, sendEmail, { to: 'a@example.com', template: 'welcome' })).toHaveLength(1);
    expect(await expectEnqueued(t.warden, 'send-email', (p: { to: string }) => p.to.startsWith('b@'))).toHaveLength(1);
    expect(await expectEnqueued(t.warden, sendEmail, { template: 'welcome' }, { count: 2 })).toHaveLength(2);
    expect(await expectEnqueued(t.warden, sendEmail)).toHaveLength(3);
    expect(await expectEnqueued(t.warden, other, undefined, { count: 1 })).toHaveLength(1);
  });

  it('fails with a message naming what was expected and what was seen', async () => {
    await t.warden.enqueue(sendEmail, { to: 'a@example.com', template: 'welcome' });

    const noMatch = await expectEnqueued(t.warden, sendEmail, { to: 'z@example.com' }).catch((e: unknown) => e);
    expect(noMatch).toBeInstanceOf(EnqueueAssertionError);
    const message = (noMatch as Error).message;
    expect(message).toContain('Expected');
    expect(message).toContain('send-email');
    expect(message).toContain('z@example.com');
    expect(message).toContain('{"to":"a@example.com","template":"welcome"}');

    const wrongCount = await expectEnqueued(t.warden, sendEmail, { template: 'welcome' }, { count: 2 }).catch((e: unknown) => e);
    expect(wrongCount).toBeInstanceOf(EnqueueAssertionError);
    expect((wrongCount as Error).message).toMatch(/Expected 2 .*got 1/);

    const predicate = await expectEnqueued(t.warden, sendEmail, () => false).catch((e: unknown) => e);
    expect((predicate as Error).message).toContain('the predicate');

    const nothing = await expectEnqueued(t.warden, other).catch((e: unknown) => e);
    expect(nothing).toBeInstanceOf(EnqueueAssertionError);
    expect((nothing as Error).message).toContain('payloads seen: none');
  });

  it('expectNotEnqueued passes when nothing matches and fails naming the match', async () => {
    await expectNotEnqueued(t.warden, sendEmail);
    await t.warden.enqueue(sendEmail, { to: 'a@example.com', template: 'welcome' });
    await expectNotEnqueued(t.warden, sendEmail, { to: 'b@example.com' });
    await expectNotEnqueued(t.warden, other);

    const error = await expectNotEnqueued(t.warden, sendEmail, { to: 'a@example.com' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(EnqueueAssertionError);
    expect((error as Error).message).toContain('Expected no "send-email"');
    expect((error as Error).message).toContain('a@example.com');
  });

  it('read every waiting job, past one page of jobs.list (1,000)', async () => {
    // The match is the oldest job: a read of the newest page alone would not see it.
    await t.warden.enqueue(sendEmail, { to: 'first@example.com', template: 'welcome' });
    await t.warden.enqueueMany(Array.from({ length: 1000 }, (_, i) => ({ job: sendEmail, payload: { to: `bulk${i}@example.com`, template: 'news' } })));
    expect(await expectEnqueued(t.warden, sendEmail, { to: 'first@example.com' })).toHaveLength(1);
    await expectEnqueued(t.warden, sendEmail, undefined, { count: 1001 });
    const error = await expectNotEnqueued(t.warden, sendEmail, { to: 'first@example.com' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(EnqueueAssertionError);
  });

  it('count: 0 asserts that no matching job waits', async () => {
    expect(await expectEnqueued(t.warden, sendEmail, { to: 'nobody@example.com' }, { count: 0 })).toEqual([]);
    await t.warden.enqueue(sendEmail, { to: 'a@example.com', template: 'welcome' });
    await expect(expectEnqueued(t.warden, sendEmail, undefined, { count: 0 })).rejects.toBeInstanceOf(EnqueueAssertionError);
  });

  it('only waiting jobs count by default; other states on request', async () => {
    await t.warden.enqueue(sendEmail, { to: 'a@example.com', template: 'welcome' });
    await t.warden.drain();
    await expectNotEnqueued(t.warden, sendEmail);
    await expect(expectEnqueued(t.warden, sendEmail)).rejects.toBeInstanceOf(EnqueueAssertionError);
    expect(await expectEnqueued(t.warden, sendEmail, { to: 'a@example.com' }, { states: ['completed'] })).toHaveLength(1);
  });

  it('drain runs every due job, returns the attempts, and leaves jobs that are not due', async () => {
    expect(await t.warden.drain()).toEqual({ attempts: 0 });
    for (let i = 0; i < 25; i++) await t.warden.enqueue(other, { i });
    await t.warden.enqueue(other, { later: true }, { delay: '1m' });
    expect(await t.warden.drain({ concurrency: 4 })).toEqual({ attempts: 25 });
    expect((await t.warden.stats()).totals).toMatchObject({ completed: 25, queued: 1 });
    await expectEnqueued(t.warden, other, { later: true }, { count: 1 });
    await clock.advance(60_000);
    expect(await t.warden.drain()).toEqual({ attempts: 1 });
    await expectNotEnqueued(t.warden, other);
  });

  it('drain counts retried attempts that became due while draining', async () => {
    let calls = 0;
    const flaky = defineJob({
      name: 'flaky',
      retry: { maxAttempts: 3, backoff: { base: 0, jitter: 'none' } },
      handler: () => {
        calls++;
        if (calls < 3) throw new Error('again');
      },
    });
    const f = await createTestWarden({ jobs: [flaky], clock });
    try {
      const { id } = await f.warden.enqueue(flaky, {});
      expect(await f.warden.drain()).toEqual({ attempts: 3 });
      expect(await f.warden.jobs.get(id)).toMatchObject({ state: 'completed', attempt: 3 });
    } finally {
      await f.cleanup();
    }
  });
});

describe('FakeClock', () => {
  it('fires timers in time order, each at its own time, and ends at the target', async () => {
    const clock = new FakeClock(1_000);
    const fired: [string, number][] = [];
    clock.setTimer(300, () => fired.push(['c', clock.now()]));
    clock.setTimer(100, () => fired.push(['a', clock.now()]));
    clock.setTimer(200, () => fired.push(['b1', clock.now()]));
    clock.setTimer(200, () => fired.push(['b2', clock.now()]));
    clock.setTimer(1_000, () => fired.push(['late', clock.now()]));
    expect(clock.pendingTimers).toBe(5);

    await clock.advance(250);
    expect(fired).toEqual([
      ['a', 1_100],
      ['b1', 1_200],
      ['b2', 1_200],
    ]);
    expect(clock.now()).toBe(1_250);
    expect(clock.sqlNow()).toEqual(new Date(1_250));
    expect(clock.pendingTimers).toBe(2);

    await clock.advance(50);
    expect(fired.map(([name]) => name)).toEqual(['a', 'b1', 'b2', 'c']);
    expect(fired[3]).toEqual(['c', 1_300]);
    expect(clock.pendingTimers).toBe(1);
  });

  it('fires timers registered by a firing timer within the same advance', async () => {
    const clock = new FakeClock(0);
    const fired: number[] = [];
    const tick = (): void => {
      fired.push(clock.now());
      clock.setTimer(100, tick);
    };
    clock.setTimer(100, tick);
    await clock.advance(350);
    expect(fired).toEqual([100, 200, 300]);
  });

  it('lets code woken by a timer make progress before the next one fires', async () => {
    const clock = new FakeClock(0);
    const order: string[] = [];
    void clock.sleep(100).then(async () => {
      order.push('slept 100');
      await Promise.resolve();
      order.push('continued');
    });
    clock.setTimer(200, () => order.push('timer 200'));
    await clock.advance(200);
    expect(order).toEqual(['slept 100', 'continued', 'timer 200']);
  });

  it('sleep resolves true when the time elapses and false when aborted; cancel removes a timer', async () => {
    const clock = new FakeClock(0);
    const full = clock.sleep(1_000);
    const controller = new AbortController();
    const aborted = clock.sleep(1_000, controller.signal);
    controller.abort();
    expect(await aborted).toBe(false);
    const already = new AbortController();
    already.abort();
    expect(await clock.sleep(10, already.signal)).toBe(false);

    let cancelledFired = false;
    const cancel = clock.setTimer(500, () => (cancelledFired = true));
    cancel();
    await clock.advance(1_000);
    expect(await full).toBe(true);
    expect(cancelledFired).toBe(false);
    expect(clock.pendingTimers).toBe(0);
  });

  it('set() moves time (also backwards) and fires what is due', async () => {
    const clock = new FakeClock(10_000);
    const fired: number[] = [];
    clock.setTimer(500, () => fired.push(clock.now()));
    await clock.set(9_000);
    expect(clock.now()).toBe(9_000);
    expect(fired).toEqual([]);
    await clock.set(10_500);
    expect(fired).toEqual([10_500]);
  });
});
