/**
 * The audit trail when several appends in a row are sent and their replies lost (docs/audit.md, "A lost
 * acknowledgement does not write a batch twice"): every attempt at the entries at the head of the queue stays in
 * doubt, and may still land (one that was waiting on the server when its connection dropped can commit after a later
 * attempt was lost). Each retry names all of them, and the trail drops as many entries as the one that landed holds.
 *
 * Both drivers, through a driver whose first appends are lost: each is sealed as the real driver would seal it,
 * nothing is written, and it fails with `AuditAppendUnconfirmedError`. Before the next append goes through, the test
 * lands one of them (the real driver writes it, with the same seal: checked), or another writer's entry, or nothing.
 * @module
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { GENESIS_HASH, sealBatch } from '../../src/audit/audit-hash.js';
import { createWarden, type Warden } from '../../src/client/warden.js';
import type { AuditAppendParams, AuditBatchRef } from '../../src/driver/audit-params.js';
import { AuditAppendUnconfirmedError } from '../../src/errors.js';
import { defineJob } from '../../src/job/define-job.js';
import { auditInput, expectIntactChain, readChain } from '../conformance/audit.js';
import { silent, T0, TestClock } from '../runtime/helpers.js';
import { overrideDriver } from '../support/override-driver.js';
import { createTestDatabase, DRIVER_KINDS, type TestDatabase } from '../support/test-databases.js';
import { settleTrail } from './settle-trail.js';

/** What lands before the append after the lost ones: attempt n (from 1), another writer's entry, or nothing. */
type Landing = { attempt: number } | 'other' | 'none';

describe.each(DRIVER_KINDS)('audit trail with several appends in doubt (%s)', (kind) => {
  let tdb: TestDatabase;
  let warden: Warden | null = null;
  beforeEach(async () => {
    tdb = await createTestDatabase(kind);
  });
  afterEach(async () => {
    await warden?.close();
    warden = null;
    await tdb.cleanup();
  });

  /** Why each lost append failed: an error the driver calls transient (a dropped connection), or one it does not. */
  const lostBecause = (transient: boolean) => Object.assign(new Error('Connection terminated unexpectedly'), { code: transient ? (kind === 'sqlite' ? 'SQLITE_BUSY' : '08006') : 'XX000' });

  it.each([
    ['the first of two (3 entries) lands after the second was lost', 2, { attempt: 1 }, ['1', '2', '3']],
    ['the second of two (its first entry alone) lands', 2, { attempt: 2 }, ['1', '2', '3']],
    ['the first of three lost in a row lands last', 3, { attempt: 1 }, ['1', '2', '3']],
    ['the second of three lands', 3, { attempt: 2 }, ['1', '2', '3']],
    ['another writer takes their seq', 2, 'other', ['other', '1', '2', '3']],
    ['none of them lands', 3, 'none', ['1', '2', '3']],
  ] as [string, number, Landing, string[]][])('writes each entry once when %s', async (_, lost, landing, expected) => {
    const { calls, attempts, landed, errors } = await run(lost, landing, lostBecause(true));
    const chain = await readChain(tdb.driver, 'default');
    expect(chain.map((e) => e.subjectId)).toEqual(expected);
    expectIntactChain(chain);
    // The first attempt held the three entries, the later ones the first entry alone, all sealed at seq 1.
    expect(attempts.slice(0, lost).map((a) => [a.params.entries.length, a.ref.firstSeq])).toEqual([[3, 1], ...Array.from({ length: lost - 1 }, () => [1, 1])]);
    expect(errors.map((e) => e instanceof AuditAppendUnconfirmedError)).toEqual(Array.from({ length: lost }, () => true));
    // The attempt that landed was sealed as it was when lost; the append after them named every one.
    if (typeof landing === 'object') expect(landed()).toEqual(attempts[landing.attempt - 1]!.ref);
    expect(calls[lost]!.retryOf?.map(refOnly)).toEqual(attempts.slice(0, lost).map((a) => a.ref));
  });

  it('counts the rest of an attempt that lands after its first entry was given up on', async () => {
    // Refused for good (not transient) three times, the first entry is given up on; the attempts holding it alone
    // are forgotten, the first one (three entries) is still named, and it is the one that landed.
    const { calls, attempts, errors } = await run(3, { attempt: 1 }, lostBecause(false));
    const chain = await readChain(tdb.driver, 'default');
    expect(chain.map((e) => e.subjectId)).toEqual(['1', '2', '3']);
    expectIntactChain(chain);
    expect(errors.map((e) => (e instanceof AuditAppendUnconfirmedError ? 'unconfirmed' : (e as Error).message))).toEqual([
      'unconfirmed', 'unconfirmed', 'unconfirmed', expect.stringMatching(/1 entry given up on/),
    ]);
    expect(calls.slice(3).map((c) => [c.entries.length, c.retryOf?.map(refOnly)])).toEqual([[1, [attempts[0]!.ref]]]);
  });

  /**
   * A Warden on a driver whose first `lost` appends are lost (failing with `cause`), three jobs enqueued, and the
   * trail flushed once `landing` landed before the append after them.
   */
  async function run(lost: number, landing: Landing, cause: Error) {
    const clock = new TestClock(T0);
    const job = defineJob({ name: 'noop', handler: () => {} });
    const calls: AuditAppendParams[] = [];
    const attempts: { params: AuditAppendParams; ref: AuditBatchRef }[] = [];
    let landedYet = false;
    let landed: AuditBatchRef | null = null;
    const driver = overrideDriver(tdb.driver, {
      auditAppend: (real) => async (params) => {
        calls.push(params);
        if (attempts.length < lost) {
          // Sealed onto the head as the driver seals it (time: `now`, never before the head's), then lost.
          const head = (await tdb.driver.auditHead({ chain: params.chain })) ?? { seq: 0, hash: GENESIS_HASH, at: null };
          const at = new Date(Math.max(params.now!.getTime(), head.at?.getTime() ?? 0));
          const { entries } = sealBatch(params.chain, head, at, params.entries);
          const ref = { firstSeq: entries[0]!.seq, lastHash: entries.at(-1)!.hash };
          attempts.push({ params, ref });
          throw new AuditAppendUnconfirmedError(ref.firstSeq, ref.lastHash, { cause });
        }
        if (!landedYet) {
          landedYet = true;
          if (landing === 'other') await real({ chain: params.chain, entries: [auditInput({ subjectId: 'other' })], now: params.now });
          if (typeof landing === 'object') {
            const late = attempts[landing.attempt - 1]!;
            const stored = await real({ chain: late.params.chain, entries: late.params.entries, now: late.params.now });
            landed = { firstSeq: stored[0]!.seq, lastHash: stored.at(-1)!.hash };
          }
        }
        return real(params);
      },
    });
    warden = createWarden({ database: driver, logger: silent, clock, jobs: [job], audit: true });
    const errors: unknown[] = [];
    warden.on('error', (e) => errors.push(e.error));
    await warden.enqueueMany([1, 2, 3].map((i) => ({ job, payload: { i } })));
    await settleTrail(warden, clock);
    return { calls, attempts, errors, landed: () => landed };
  }
});

/** A batch reference without the trail's own fields. */
function refOnly({ firstSeq, lastHash }: AuditBatchRef): AuditBatchRef {
  return { firstSeq, lastHash };
}
