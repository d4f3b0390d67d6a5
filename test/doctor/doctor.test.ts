/**
 * `warden doctor` through the API: a deliberately bad application (test/doctor/fixtures/bad-app.ts) with live state
 * prepared through the API — a dead letter, missed ticks (a scheduler "down" for 3 h on a fake clock), a run past
 * 10 minutes without a checkpoint, and a fake clock far from the database's — is flagged on every checklist item;
 * a fresh unmigrated database is flagged as pending migrations; a good application has no finding at all.
 * @module
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createWarden, type Warden } from '../../src/client/warden.js';
import { FakeClock } from '../../src/clock/fake-clock.js';
import { runDoctor } from '../../src/doctor/run-doctor.js';
import { handlerUsesSteps } from '../../src/doctor/definition-checks.js';
import { HOUR, MINUTE, silent, T0 } from '../schedule/helpers.js';
import { createTestDatabase, DRIVER_KINDS, type TestDatabase } from '../support/test-databases.js';
import * as bad from './fixtures/bad-app.js';
import * as good from './fixtures/good-app.js';

const open: { warden?: Warden; tdb?: TestDatabase }[] = [];
afterEach(async () => {
  for (const { warden, tdb } of open.splice(0)) {
    await warden?.close();
    await tdb?.cleanup();
  }
});

/** `[id, subject]` pairs, sorted, for readable diffs. */
function pairs(findings: { id: string; subject: string }[]): string[] {
  return findings.map((f) => `${f.id} ${f.subject}`).sort();
}

describe.each(DRIVER_KINDS)('warden doctor (%s)', (kind) => {
  it('flags each checklist item in a deliberately bad fixture app', async () => {
    const tdb = await createTestDatabase(kind);
    // Year 2040: far from the database's clock, which is the skew finding.
    const clock = new FakeClock(T0);
    const warden = createWarden({ database: tdb.url, schema: tdb.schema, logger: silent, clock, jobs: [bad.chargeCard, bad.flaky], schedules: [bad.hourlyFlaky] });
    open.push({ warden, tdb });

    // Schedulers down for 3 hours: the ticks in between are missed (misfire policy skip).
    await warden.runSchedulerOnce();
    await clock.set(T0 + 3 * HOUR + 30 * MINUTE);
    await warden.runSchedulerOnce();
    // One dead letter in queue "fragile".
    await warden.enqueue(bad.flaky, {});
    await warden.drain();
    // A charge-card run claimed by a worker that has been at it for 11 minutes without a checkpoint.
    await warden.enqueue(bad.chargeCard, { amount: 5 });
    const [claimed] = await tdb.driver.jobClaim({ queues: ['default'], limit: 1, workerId: 'stuck-worker', leaseMs: HOUR, now: clock.sqlNow() });
    expect(claimed?.name).toBe('charge-card');
    await clock.advance(11 * MINUTE);

    const result = await warden.doctor();
    expect(result.ok).toBe(false);
    expect(pairs(result.findings)).toEqual([
      'alerts.no-sink alerts',
      'audit.off charge-card',
      'audit.off flaky',
      'clock.skew clock',
      'job.long-run-without-checkpoint charge-card',
      'job.no-timeout charge-card',
      'job.retry-unbounded charge-card',
      'job.side-effects-unguarded charge-card',
      'queue.dead-letters fragile',
      'schedule.missed hourly-flaky',
      'schedule.no-expect hourly-flaky',
      'schedule.overlap-implicit hourly-flaky',
    ]);
    const byId = Object.fromEntries(result.findings.map((f) => [f.id, f]));
    expect(Object.fromEntries(result.findings.map((f) => [f.id, f.severity]))).toEqual({
      'alerts.no-sink': 'error', 'audit.off': 'info', 'clock.skew': 'error', 'job.long-run-without-checkpoint': 'warning', 'job.no-timeout': 'warning',
      'job.retry-unbounded': 'warning', 'job.side-effects-unguarded': 'error', 'queue.dead-letters': 'warning', 'schedule.missed': 'error',
      'schedule.no-expect': 'error', 'schedule.overlap-implicit': 'warning',
    });
    // Worst first; every message in the house style, every finding with a fix.
    expect(result.findings.map((f) => f.severity)).toEqual([...result.findings.map((f) => f.severity)].sort((a, b) => ['error', 'warning', 'info'].indexOf(a) - ['error', 'warning', 'info'].indexOf(b)));
    for (const f of result.findings) {
      expect(f.message).toMatch(/^Expected .+, got .+/);
      expect(f.hint.length).toBeGreaterThan(10);
    }
    expect(byId['queue.dead-letters']!.message).toContain('got 1');
    expect(byId['schedule.missed']!.message).toMatch(/got 3 missed/);
    expect(byId['job.retry-unbounded']!.message).toContain('got 100');
    expect(byId['job.long-run-without-checkpoint']!.message).toMatch(/longer than 10m to save checkpoints, got job \d+ running for 11m without one/);

    // Thresholds are options: a looser one clears the matching finding.
    const loose = await warden.doctor({ maxAttempts: 100, longRun: '1h' });
    expect(loose.findings.map((f) => f.id)).not.toContain('job.retry-unbounded');
    expect(loose.findings.map((f) => f.id)).not.toContain('job.long-run-without-checkpoint');
    expect(loose.findings.map((f) => f.id)).toContain('clock.skew');
  });

  it('reports pending migrations on a fresh database, and skips the live checks that need the schema', async () => {
    const tdb = await createTestDatabase(kind, { migrate: false });
    const warden = createWarden({ database: tdb.url, schema: tdb.schema, logger: silent, audit: true, jobs: [good.sendReceipt], schedules: [good.nightly], alerts: good.alerts });
    open.push({ warden, tdb });
    const result = await runDoctor(warden);
    expect(result.ok).toBe(false);
    expect(result.findings).toEqual([expect.objectContaining({ id: 'migrations.pending', severity: 'error', subject: 'migrations', message: expect.stringMatching(/^Expected no pending migrations, got \d+: 0001_/) })]);
  });

  it('passes a good fixture app', async () => {
    const tdb = await createTestDatabase(kind);
    const warden = createWarden({ database: tdb.url, schema: tdb.schema, logger: silent, audit: true, jobs: [good.sendReceipt], schedules: [good.nightly], alerts: good.alerts });
    open.push({ warden, tdb });
    await warden.enqueue(good.sendReceipt, { to: 'a@example.com' });
    expect((await warden.drain()).attempts).toBe(1);
    expect((await warden.jobs.list({ state: 'completed' })).length).toBe(1);
    expect(await warden.doctor()).toEqual({ findings: [], ok: true });
  });
});

describe('the side-effects heuristic', () => {
  it('sees ctx.step and ctx.transaction in a handler source, and nothing else', () => {
    expect(handlerUsesSteps(async (_p: unknown, ctx: { step: (n: string, f: () => number) => Promise<number> }) => ctx.step('x', () => 1))).toBe(true);
    expect(handlerUsesSteps(async (_p: unknown, { transaction }: { transaction: (f: () => void) => Promise<void> }) => { await transaction(() => {}); })).toBe(false);
    expect(handlerUsesSteps(async (_p: unknown, ctx: { transaction: (f: () => void) => Promise<void> }) => ctx.transaction(() => {}))).toBe(true);
    expect(handlerUsesSteps(() => 'stepping')).toBe(false);
  });
});
