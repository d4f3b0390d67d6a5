/**
 * The other built-in rules, on both drivers, with a fake clock and the log sink only (each asserted through the
 * `alert:opened` / `alert:resolved` events and the alerts table): consecutive failures, failure rate, run too long
 * (a schedule's `expect.maxRuntime` and the global threshold), queue lag (paused queues excepted), leases that keep
 * expiring, and an operator's manual resolve. A completion or failure that arrives while a consecutive-failures
 * alert's open or resolve is still being written is acted on once that write ends, never dropped.
 * @module
 */
import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../src/clock/fake-clock.js';
import type { Warden } from '../../src/client/warden.js';
import type { AlertRulesOptions } from '../../src/alerts/alert-options.js';
import { defineJob } from '../../src/job/define-job.js';
import { defineSchedule } from '../../src/schedule/define-schedule.js';
import { MINUTE, type MakeWardenOptions } from '../schedule/helpers.js';
import { alertTestBed, onlyRules } from '../support/alert-rules.js';
import { DRIVER_KINDS } from '../support/test-databases.js';

const SECOND = 1_000;

/** Fails when its payload says so; one attempt. */
const flaky = defineJob<{ fail: boolean }>({ name: 'flaky', retry: { maxAttempts: 1 }, handler: ({ fail }) => { if (fail) throw new Error('upstream 503'); } });

describe.each(DRIVER_KINDS)('alert rules (%s)', (kind) => {
  const bed = alertTestBed(kind);
  let warden: Warden;

  /** A Warden with every rule off but `rules` (each test turns on only the one it exercises), and what it notifies. */
  function open(rules: AlertRulesOptions, extra: MakeWardenOptions = {}): { opened: string[]; resolved: string[] } {
    warden = bed.warden({ jobs: [flaky], alerts: { rules: onlyRules(rules) }, ...extra });
    const opened: string[] = [];
    const resolved: string[] = [];
    warden.on('alert:opened', (e) => opened.push(e.alert.key));
    warden.on('alert:resolved', (e) => resolved.push(e.alert.key));
    return { opened, resolved };
  }

  async function run(...fails: boolean[]): Promise<void> {
    for (const fail of fails) {
      await warden.enqueue(flaky, { fail });
      await warden.drain();
    }
    await warden.alerts.settled();
  }

  it('consecutive failures: opens once at the count, resolves at the next success', async () => {
    const { opened, resolved } = open({ consecutiveFailures: { count: 3 } });
    await run(true, true, false, true, true);
    expect(opened).toEqual([]);
    await run(true, true, true);
    expect(opened).toEqual(['consecutive-failures:flaky']);
    expect((await warden.alerts.list())[0]).toMatchObject({ rule: 'consecutive-failures', severity: 'warning', details: { job: 'flaky', consecutiveFailures: 3, threshold: 3 } });
    await run(false);
    expect([opened, resolved]).toEqual([['consecutive-failures:flaky'], ['consecutive-failures:flaky']]);
  });

  /**
   * Attempt endings of `flaky` as the worker reports them, emitted in one turn: each listener call starts its alert
   * write before any write ends (as when several worker slots finish at once).
   */
  let attemptIds = 0;
  function attempts(...fails: boolean[]): void {
    for (const fail of fails) {
      const job = { id: String(++attemptIds), name: 'flaky', queue: 'default' };
      if (fail) warden.events.emit('job:failed', { job, attempt: 1, outcome: 'failed', error: { name: 'Error', message: 'upstream 503' }, nextState: 'dead', durationMs: 1 });
      else warden.events.emit('job:completed', { job, attempt: 1, durationMs: 1 });
    }
  }

  it('consecutive failures: a success that arrives while the open is being written resolves the alert once it is written', async () => {
    const { opened, resolved } = open({ consecutiveFailures: { count: 3 } });
    attempts(true, true, true, false);
    await warden.alerts.settled();
    expect([opened, resolved]).toEqual([['consecutive-failures:flaky'], ['consecutive-failures:flaky']]);
    expect((await warden.alerts.list()).map((a) => [a.state, a.episode, a.details.consecutiveFailures])).toEqual([['resolved', 1, 0]]);
  });

  it('consecutive failures: the count reached again while the resolve is being written opens a new episode once it is written', async () => {
    const { opened, resolved } = open({ consecutiveFailures: { count: 2 } });
    attempts(true, true);
    await warden.alerts.settled();
    attempts(false, true, true);
    await warden.alerts.settled();
    expect([opened, resolved]).toEqual([['consecutive-failures:flaky', 'consecutive-failures:flaky'], ['consecutive-failures:flaky']]);
    expect((await warden.alerts.list()).map((a) => [a.state, a.episode])).toEqual([['open', 2]]);
    attempts(false);
    await warden.alerts.settled();
    expect((await warden.alerts.list()).map((a) => [a.state, a.episode])).toEqual([['resolved', 2]]);
    // While the third open is in flight, a success and then the count reached again: the newest request wins.
    attempts(true, true, false, true, true);
    await warden.alerts.settled();
    expect((await warden.alerts.list()).map((a) => [a.state, a.episode])).toEqual([['open', 3]]);
    expect(resolved).toHaveLength(2);
  });

  it('failure rate: opens when the window\'s rate reaches the threshold with enough attempts, resolves when the window clears', async () => {
    const { opened, resolved } = open({ failureRate: { threshold: 0.5, minAttempts: 4, window: '10m' } });
    await run(true, true, false);
    expect(opened).toEqual([]);
    await run(false);
    expect(opened).toEqual([]);
    await run(true);
    expect(opened).toEqual(['failure-rate:flaky']);
    expect((await warden.alerts.list())[0]!.details).toMatchObject({ attempts: 5, failed: 3, rate: 0.6 });
    await warden.alerts.check();
    expect(resolved).toEqual([]);
    await bed.clock.advance(11 * MINUTE);
    await warden.alerts.check();
    await warden.alerts.settled();
    expect(resolved).toEqual(['failure-rate:flaky']);
  });

  it('run too long: a schedule\'s expect.maxRuntime and the global threshold open an alert per attempt; it resolves when the attempt ends', async () => {
    const slow = defineSchedule({ name: 'nightly', every: '1h', job: flaky, payload: { fail: false }, expect: { within: '2h', maxRuntime: '10m' } });
    const { opened, resolved } = open({ runTooLong: { threshold: '30m' } }, { schedules: [slow] });
    await warden.runSchedulerOnce();
    await bed.clock.advance(60 * MINUTE);
    await warden.runSchedulerOnce();
    const adHoc = await warden.enqueue(flaky, { fail: false });
    // Claimed straight through the driver: running, with no handler to end them.
    const claimed = await warden.driver.jobClaim({ queues: ['default'], limit: 10, workerId: 'w-stuck', leaseMs: 24 * 60 * MINUTE, now: bed.clock.sqlNow() });
    expect(claimed).toHaveLength(2);
    const scheduled = claimed.find((j) => j.scheduleName === 'nightly')!;
    await bed.clock.advance(10 * MINUTE - SECOND);
    await warden.alerts.check();
    expect(opened).toEqual([]);
    await bed.clock.advance(SECOND);
    await warden.alerts.check();
    expect(opened).toEqual([`run-too-long:${scheduled.id}:1`]);
    await bed.clock.advance(20 * MINUTE);
    await warden.alerts.check();
    await warden.alerts.check();
    expect(opened).toEqual([`run-too-long:${scheduled.id}:1`, `run-too-long:${adHoc.id}:1`]);
    expect((await warden.alerts.list({ rule: 'run-too-long' })).map((a) => a.details.limitMs as number).sort((x, y) => x - y)).toEqual([10 * MINUTE, 30 * MINUTE]);
    await warden.driver.jobFinishMany({ items: [{ id: scheduled.id, leaseToken: scheduled.leaseToken, outcome: 'completed', state: 'completed', retryDelayMs: 0, error: null }], now: bed.clock.sqlNow() });
    await warden.alerts.check();
    expect(resolved).toEqual([`run-too-long:${scheduled.id}:1`]);
  });

  it('queue lag: opens over the threshold, not for a paused queue, and resolves once the queue catches up', async () => {
    // Lag is measured by the database's own clock (queueList has no fake time): jobs due 5 minutes ago lag by 5m.
    const clock = new FakeClock(Date.now());
    const { opened, resolved } = open({ queueLag: { threshold: '1m' } }, { clock });
    const dueAt = new Date(clock.now() - 5 * MINUTE);
    await warden.enqueue(flaky, { fail: false }, { runAt: dueAt });
    await warden.enqueue(flaky, { fail: false }, { queue: 'held', runAt: dueAt });
    await warden.queues.pause('held');
    await warden.alerts.check();
    await warden.alerts.check();
    expect(opened).toEqual(['queue-lag:default']);
    const [alert] = await warden.alerts.list();
    expect(alert).toMatchObject({ details: { queue: 'default', thresholdMs: MINUTE, waiting: 1 } });
    expect(alert!.details.lagMs).toBeGreaterThanOrEqual(5 * MINUTE - 5 * SECOND);
    // A job still waiting, due now: the queue stays listed, its lag back under the threshold.
    await warden.enqueue(flaky, { fail: false }, { delay: '1h' });
    await warden.drain();
    await warden.alerts.check();
    expect(resolved).toEqual(['queue-lag:default']);
    expect((await warden.alerts.list())[0]).toMatchObject({ state: 'resolved', details: { lagMs: 0, resolution: 'lag back under the threshold' } });
    // A queue whose every job has ended is no longer listed by the check's read: its alert resolves as emptied.
    await warden.enqueue(flaky, { fail: false }, { queue: 'burst', runAt: dueAt });
    await warden.alerts.check();
    expect(opened).toEqual(['queue-lag:default', 'queue-lag:burst']);
    const [burst] = await warden.driver.jobClaim({ queues: ['burst'], limit: 1, workerId: 'w', leaseMs: MINUTE, now: null });
    await warden.driver.jobFinishMany({ items: [{ id: burst!.id, leaseToken: burst!.leaseToken, outcome: 'completed', state: 'completed', retryDelayMs: 0, error: null }], now: null });
    expect((await warden.queues.list()).find((q) => q.queue === 'burst')?.counts.completed).toBe(1);
    await warden.alerts.check();
    expect(resolved).toEqual(['queue-lag:default', 'queue-lag:burst']);
    expect((await warden.alerts.list({ rule: 'queue-lag' })).find((a) => a.key === 'queue-lag:burst')).toMatchObject({ state: 'resolved', details: { lagMs: 0, resolution: 'the queue is empty' } });
  });

  it('leases that keep expiring: opens at the count within the window, resolves once the window has none', async () => {
    const { opened, resolved } = open({ leaseExpiry: { count: 2, window: '15m' } });
    for (let i = 0; i < 2; i++) {
      await warden.enqueue(flaky, { fail: false });
      await warden.driver.jobClaim({ queues: ['default'], limit: 1, workerId: 'w-dies', leaseMs: 30 * SECOND, now: bed.clock.sqlNow() });
      await bed.clock.advance(MINUTE);
      await warden.rescue();
      await warden.alerts.settled();
      expect(opened).toEqual(i === 0 ? [] : ['lease-expiry:flaky']);
    }
    await warden.alerts.check();
    expect(resolved).toEqual([]);
    await bed.clock.advance(16 * MINUTE);
    await warden.alerts.check();
    await warden.alerts.settled();
    expect(resolved).toEqual(['lease-expiry:flaky']);
  });

  it('an operator can resolve an open alert by hand, recording who and why', async () => {
    const { opened, resolved } = open({ consecutiveFailures: { count: 1 } });
    await run(true);
    expect(opened).toEqual(['consecutive-failures:flaky']);
    const row = await warden.alerts.resolve('consecutive-failures:flaky', { actor: 'cli:alice', reason: 'upstream fixed' });
    expect(row).toMatchObject({ state: 'resolved', details: { resolution: 'resolved by an operator', actor: 'cli:alice', reason: 'upstream fixed' } });
    expect(resolved).toEqual(['consecutive-failures:flaky']);
    expect(await warden.alerts.resolve('consecutive-failures:flaky')).toBeNull();
  });
});
