/**
 * The event-driven rules and which alerts an instance may open or resolve, on both drivers: an instance still seeing
 * the condition opens a new episode when another instance, or an operator, resolved the alert meanwhile (what it
 * adopted earlier is no proof the alert is still open); a resolve whose write failed is tried again at the next
 * success; and findings while the alert is open cost one database write at a time and notify nothing again.
 * Attempt endings are emitted as the worker reports them, and each step waits on `alerts.settled()`.
 * @module
 */
import { describe, expect, it } from 'vitest';
import { createWarden, type Warden } from '../../src/client/warden.js';
import type { AlertOpenParams } from '../../src/driver/alert-params.js';
import { defineJob } from '../../src/job/define-job.js';
import { silent } from '../schedule/helpers.js';
import { alertTestBed, onlyRules } from '../support/alert-rules.js';
import { overrideDriver, type DriverOverrides } from '../support/override-driver.js';
import { DRIVER_KINDS } from '../support/test-databases.js';

/** Every rule off but consecutive failures, at 2 in a row. */
const RULES = onlyRules({ consecutiveFailures: { count: 2 } });
const KEY = 'consecutive-failures:flaky';
const flaky = defineJob<{ fail: boolean }>({ name: 'flaky', retry: { maxAttempts: 1 }, handler: () => undefined });

describe.each(DRIVER_KINDS)('event-rule alerts across instances and operators (%s)', (kind) => {
  const bed = alertTestBed(kind);

  /** An instance with connections of its own. */
  function instance(): Warden {
    return bed.warden({ jobs: [flaky], alerts: { rules: RULES } });
  }

  /** An instance on a driver of its own with `overrides`. */
  function instanceOn(overrides: DriverOverrides): Warden {
    const driver = overrideDriver(bed.tdb.newDriver(), overrides);
    return bed.closeAfter(createWarden({ database: driver, logger: silent, jobs: [flaky], clock: bed.clock, alerts: { rules: RULES } }), (w) => w.close());
  }

  /** Attempt endings of `flaky` in one turn, as the worker reports them: `true` failed, `false` completed. */
  let ids = 0;
  function attempts(warden: Warden, ...fails: boolean[]): void {
    for (const fail of fails) {
      const job = { id: String(++ids), name: 'flaky', queue: 'default' };
      if (fail) warden.events.emit('job:failed', { job, attempt: 1, outcome: 'failed', error: { name: 'Error', message: 'upstream 503' }, nextState: 'dead', durationMs: 1 });
      else warden.events.emit('job:completed', { job, attempt: 1, durationMs: 1 });
    }
  }

  async function episodes(warden: Warden): Promise<[string, number][]> {
    return (await warden.alerts.list()).map((a) => [a.state, a.episode]);
  }

  it('an instance still failing opens a new episode after another instance resolved the alert', async () => {
    const a = instance();
    const b = instance();
    const openedByA: number[] = [];
    a.on('alert:opened', (e) => openedByA.push(e.alert.episode));

    attempts(a, true, true); // A: 2 in a row, opens episode 1
    await a.alerts.settled();
    attempts(b, true, true); // B sees it hold too: finds it open, adopts it
    await b.alerts.settled();
    attempts(b, false); // B's own streak ended: resolves it, as documented
    await b.alerts.settled();
    expect(await episodes(a)).toEqual([['resolved', 1]]);

    // A is still failing, 3 to 5 in a row, with no alert open: it had adopted episode 1, which is over.
    attempts(a, true, true, true);
    await a.alerts.settled();
    expect(await episodes(a)).toEqual([['open', 2]]);
    expect(openedByA).toEqual([1, 2]);
  });

  it('the same instance, still failing after an operator resolved the alert by hand, opens a new episode', async () => {
    const w = instance();
    attempts(w, true, true);
    await w.alerts.settled();
    await w.alerts.resolve(KEY, { actor: 'ops', reason: 'looking into it' });
    expect(await episodes(w)).toEqual([['resolved', 1]]);

    attempts(w, true, true, true); // 3 to 5 in a row, no alert open
    await w.alerts.settled();
    expect(await episodes(w)).toEqual([['open', 2]]);
  });

  it('a resolve that failed once is not lost: the next success resolves the alert', async () => {
    let failNextResolve = false;
    const w = instanceOn({
      alertResolve: (real) => async (params) => {
        if (failNextResolve) {
          failNextResolve = false;
          throw Object.assign(new Error('Connection terminated unexpectedly'), { code: 'ECONNRESET' });
        }
        return real(params);
      },
    });
    const errors: { error: unknown; context: string }[] = [];
    w.on('error', (e) => errors.push(e));

    attempts(w, true, true);
    await w.alerts.settled();
    expect(await episodes(w)).toEqual([['open', 1]]);

    failNextResolve = true;
    attempts(w, false); // its resolve write fails, reported as an error event
    await w.alerts.settled();
    expect(errors.map((e) => [e.context, (e.error as Error).message])).toEqual([[`resolving alert ${KEY}`, 'Connection terminated unexpectedly']]);
    expect(await episodes(w)).toEqual([['open', 1]]);

    attempts(w, false); // the job keeps succeeding
    await w.alerts.settled();
    expect(await episodes(w)).toEqual([['resolved', 1]]);
  });

  it('while the alert is open, findings ask the database one write at a time and notify nothing again', async () => {
    const opens: AlertOpenParams[] = [];
    const w = instanceOn({
      alertOpen: (real) => (params) => {
        opens.push(params);
        return real(params);
      },
    });
    const opened: number[] = [];
    w.on('alert:opened', (e) => opened.push(e.alert.episode));

    // Ten failures in one turn: the second starts the write, the other eight come while it is in flight.
    attempts(w, ...Array<boolean>(10).fill(true));
    await w.alerts.settled();
    expect([opens.length, opened]).toEqual([1, [1]]);

    attempts(w, true); // the alert is open: the write finds it so, and nothing is notified
    await w.alerts.settled();
    expect([opens.length, opened]).toEqual([2, [1]]);
    expect(await episodes(w)).toEqual([['open', 1]]);
  });
});
