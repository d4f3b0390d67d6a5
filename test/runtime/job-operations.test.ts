/**
 * `warden.jobs` and `warden.queues` taken apart (`const { cancel } = warden.jobs`): each operation works on its
 * own, announces its actor and reason, and returns only once the audit trail holds its entry.
 * @module
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Warden } from '../../src/client/warden.js';
import type { WardenEventMap } from '../../src/events/event-map.js';
import { defineJob } from '../../src/job/define-job.js';
import { createTestDatabase, DRIVER_KINDS, type TestDatabase } from '../support/test-databases.js';
import { makeWarden, T0, TestClock } from './helpers.js';

describe.each(DRIVER_KINDS)('job and queue operations, destructured (%s)', (kind) => {
  let tdb: TestDatabase;
  let warden: Warden;
  const task = defineJob({ name: 'task', queue: 'work', handler: () => {} });

  beforeEach(async () => {
    tdb = await createTestDatabase(kind);
    warden = makeWarden(tdb, { jobs: [task], clock: new TestClock(T0), audit: true });
  });
  afterEach(async () => {
    await warden.close();
    await tdb.cleanup();
  });

  it('cancels, retries and discards a job, and pauses and resumes its queue, each called on its own', async () => {
    const { get, list, cancel, retry, discard, attempts } = warden.jobs;
    const { pause, resume, activity } = warden.queues;
    const actions: WardenEventMap['job:operator-action'][] = [];
    warden.on('job:operator-action', (e) => actions.push(e));
    const paused: string[] = [];
    warden.on('queue:paused', (e) => paused.push(`${e.queue} by ${e.actor}: ${e.reason}`));

    const { id } = await warden.enqueue(task, {});
    await pause('work', { actor: 'ops', reason: 'INC-1' });
    expect(paused).toEqual(['work by ops: INC-1']);
    expect((await activity()).find((q) => q.queue === 'work')).toMatchObject({ paused: true });
    expect((await cancel(id, { actor: 'alice', reason: 'wrong customer' })).state).toBe('cancelled');
    await expect(retry(id)).rejects.toThrow(/cancelled/);
    expect((await discard(id, { actor: 'alice' })).id).toBe(id);
    expect(await get(id)).toBeNull();
    expect(await list({ queue: 'work' })).toEqual([]);
    expect(await attempts(id)).toEqual([]);
    await resume('work');
    expect(actions.map((a) => [a.action, a.actor, a.reason, a.before, a.after])).toEqual([
      ['cancel', 'alice', 'wrong customer', 'queued', 'cancelled'],
      ['discard', 'alice', null, 'cancelled', null],
    ]);
    // Each returned only once its entry was written: read now, without a flush, the trail has them all.
    const trail: string[] = [];
    for await (const entry of warden.audit.entries()) trail.push(`${entry.action} ${entry.subjectId}${entry.actor === 'system' ? '' : ` by ${entry.actor}`}`);
    expect(trail.filter((e) => !e.startsWith('job.created'))).toEqual([
      'queue.paused work by ops', `job.cancelled ${id} by alice`, `job.discarded ${id} by alice`, 'queue.resumed work by api',
    ]);
  });

  it('refuses an unknown state or a bad queue name before any query, saying what it expected', async () => {
    const { list } = warden.jobs;
    await expect(list({ state: 'finished' as never })).rejects.toThrow(/Expected state to be one of queued, .*got "finished"/);
    await expect(warden.queues.pause('bad queue!')).rejects.toThrow(/queue/);
  });
});
