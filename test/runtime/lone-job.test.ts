import { describe, expect, it } from 'vitest';
import type { JobRow } from '../../src/job/job-record.js';
import { LoneJob } from '../../src/runtime/lone-job.js';

/** Only the fields LoneJob reads matter; the rest of a row is irrelevant to it. */
function row(id: string, lostCount: number, attempt = 1, maxAttempts = 5): JobRow {
  return { id, lostCount, attempt, maxAttempts } as JobRow;
}

describe('LoneJob', () => {
  it('holds a job one loss from the dead letters, or lost on its last attempt, and nothing else', () => {
    const lone = new LoneJob({ isolateLost: true, maxLost: 3 });
    expect(lone.runsAlone(row('a', 0))).toBe(false);
    expect(lone.runsAlone(row('b', 1))).toBe(false);
    expect(lone.runsAlone(row('c', 2))).toBe(true);
    expect(lone.runsAlone(row('d', 1, 5, 5))).toBe(true);
    expect(lone.runsAlone(row('e', 0, 5, 5))).toBe(false);
    expect(new LoneJob({ isolateLost: false, maxLost: 3 }).runsAlone(row('c', 2))).toBe(false);
  });

  it('holds the first such job of a claim and hands back the others; later claims hold none while one is held', () => {
    const lone = new LoneJob({ isolateLost: true, maxLost: 3 });
    const [a, b, c, d] = [row('a', 0), row('b', 2), row('c', 0), row('d', 2)];
    expect(lone.sort([a, b, c, d], 0)).toEqual({ kept: [a, c], back: [d] });
    expect(lone.held?.row).toBe(b);
    expect(lone.waiting).toBe(b);
    const e = row('e', 2);
    expect(lone.sort([e], 0)).toEqual({ kept: [], back: [e] });
    expect(lone.held?.row).toBe(b);
  });

  it('is ready only once every other lease is released, and lets claims go on when its own is', () => {
    const lone = new LoneJob({ isolateLost: true, maxLost: 3 });
    const [a, b] = [row('a', 0), row('b', 2)];
    lone.leaseTaken();
    lone.sort([a, b], 0);
    expect(lone.ready).toBe(false);
    expect(lone.leaseReleased(a)).toBe('other');
    expect(lone.ready).toBe(true);
    const held = lone.held!;
    expect(lone.start(held)).toBe(b);
    lone.leaseTaken();
    expect(lone.ready).toBe(false);
    expect(lone.waiting).toBeNull();
    expect(lone.takeWaiting()).toBeNull();
    expect(lone.leaseReleased(b)).toBe('held');
    expect(lone.held).toBeNull();
    const c = row('c', 0);
    lone.leaseTaken();
    expect(lone.leaseReleased(c)).toBe('none');
  });

  it('gives back a held job that has not started, once', () => {
    const lone = new LoneJob({ isolateLost: true, maxLost: 2 });
    const b = row('b', 1);
    lone.sort([b], 0);
    expect(lone.takeWaiting()).toBe(b);
    expect(lone.held).toBeNull();
    expect(lone.takeWaiting()).toBeNull();
  });
});
