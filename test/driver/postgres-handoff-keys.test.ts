/**
 * A worker's hand-off lock key and private channel (`HandoffKeys`): stable for a driver instance, different for
 * another worker and, for the channel, for another instance (its key is the instance's own), and a name
 * PostgreSQL takes as is (lower-case, under 64 bytes).
 * @module
 */
import { describe, expect, it } from 'vitest';
import { HandoffKeys, handoffLockKey } from '../../src/driver/postgres/postgres-handoff.js';

describe('HandoffKeys', () => {
  it("gives a worker the same lock key and channel for the instance's life, and the lock key any instance derives", () => {
    const keys = new HandoffKeys('warden');
    const first = keys.of('w1');
    expect(first.channel).toMatch(/^warden_h_[0-9a-f]{32}$/);
    expect(first.lockKey).toBe(handoffLockKey('warden', 'w1'));
    for (let i = 0; i < 1_500; i++) keys.of(`other-${i}`);
    // The cache was cleared on the way: derived again, the same.
    expect(keys.of('w1')).toEqual(first);
  });

  it('gives another worker, or the same worker under another instance, another channel', () => {
    const a = new HandoffKeys('warden');
    const b = new HandoffKeys('warden');
    expect(a.of('w2').channel).not.toBe(a.of('w1').channel);
    expect(b.of('w1').channel).not.toBe(a.of('w1').channel);
    expect(b.of('w1').lockKey).toBe(a.of('w1').lockKey);
  });
});
