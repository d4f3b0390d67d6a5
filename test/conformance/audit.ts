/**
 * Conformance: the audit trail — `auditAppend` (sealing onto the head, one time per batch, never earlier than the
 * head; a retry naming the attempts in doubt answered with the one in the chain), `auditList` (seq order, paging,
 * time bounds), `auditHead`, `auditPrune` (with the entry recording it, in the same transaction), and appends from
 * several driver instances at once forming one unbroken chain.
 * @module
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { entryHash, GENESIS_HASH, sealBatch } from '../../src/audit/audit-hash.js';
import { verifyAuditChain } from '../../src/audit/audit-verify.js';
import type { AuditEntry, AuditEntryInput, AuditPruned } from '../../src/driver/audit-params.js';
import type { Driver } from '../../src/driver/driver.js';
import { InvalidOptionError } from '../../src/errors.js';
import { createTestDatabase, type DriverKind, type TestDatabase } from '../support/test-databases.js';
import { at, expectRejects } from './helpers.js';

/** An entry input with test defaults. */
export function auditInput(overrides: Partial<AuditEntryInput> = {}): AuditEntryInput {
  return {
    actor: 'api',
    action: 'job.completed',
    subjectKind: 'job',
    subjectId: '1',
    jobName: 'send-email',
    queue: 'default',
    before: 'running',
    after: 'completed',
    reason: null,
    data: null,
    ...overrides,
  };
}

/** Reads a whole chain through the driver, in pages. */
export async function readChain(driver: Driver, chain: string, pageSize = 100): Promise<AuditEntry[]> {
  const out: AuditEntry[] = [];
  for (;;) {
    const page = await driver.auditList({ chain, afterSeq: out.at(-1)?.seq ?? 0, limit: pageSize });
    out.push(...page);
    if (page.length < pageSize) return out;
  }
}

/** Expects `entries` to be seq 1..n, each linked to the one before and hashed over its stored fields. */
export function expectIntactChain(entries: AuditEntry[]): void {
  let prev = GENESIS_HASH;
  entries.forEach((e, i) => {
    expect(e.seq, 'seq without gaps').toBe(i + 1);
    expect(e.prevHash, `prevHash of seq ${e.seq}`).toBe(prev);
    expect(entryHash(e.prevHash, e), `hash of seq ${e.seq}`).toBe(e.hash);
    prev = e.hash;
  });
}

/** Declares the audit-trail conformance tests for one driver kind. */
export function exerciseAudit(kind: DriverKind): void {
  describe('audit trail', () => {
    let tdb: TestDatabase;
    beforeEach(async () => {
      tdb = await createTestDatabase(kind);
    });
    afterEach(async () => {
      await tdb.cleanup();
    });

    it('has no head for a chain never appended to, and appending nothing writes nothing', async () => {
      expect(await tdb.driver.auditHead({ chain: 'default' })).toBeNull();
      expect(await tdb.driver.auditAppend({ chain: 'default', entries: [], now: at(0) })).toEqual([]);
      expect(await tdb.driver.auditHead({ chain: 'default' })).toBeNull();
      expect(await tdb.driver.auditList({ chain: 'default', limit: 10 })).toEqual([]);
    });

    it('seals a batch onto the head: consecutive seqs, one time, each hash over the previous one', async () => {
      const first = await tdb.driver.auditAppend({ chain: 'default', entries: [auditInput(), auditInput({ subjectId: '2', data: { attempt: 1 } })], now: at(1_000) });
      expect(first.map((e) => [e.seq, e.at])).toEqual([[1, at(1_000)], [2, at(1_000)]]);
      expect(first[0]!.prevHash).toBe(GENESIS_HASH);
      expect(first[1]!.prevHash).toBe(first[0]!.hash);
      expect(first[0]!.hash).toMatch(/^[0-9a-f]{64}$/);
      const second = await tdb.driver.auditAppend({ chain: 'default', entries: [auditInput({ subjectId: '3' })], now: at(2_000) });
      expect(second.map((e) => [e.seq, e.prevHash])).toEqual([[3, first[1]!.hash]]);
      expect(await tdb.driver.auditHead({ chain: 'default' })).toEqual({ chain: 'default', seq: 3, hash: second[0]!.hash, at: at(2_000), prunedSeq: 0, prunedHash: GENESIS_HASH });
      const stored = await readChain(tdb.driver, 'default');
      expect(stored).toEqual([...first, ...second]);
      expectIntactChain(stored);
    });

    it('stores every field as hashed: nulls, nested data, unicode; NUL and lone surrogates made storable first', async () => {
      const data = { error: { name: 'Error', message: 'dé\u0000jà \ud800 vu ✓' }, list: [1, 'two', null, true, { z: 1, a: [] }], big: 2 ** 40, ratio: 0.5 };
      const [entry] = await tdb.driver.auditAppend({ chain: 'default', entries: [auditInput({ reason: 'ticket \u0000 42', jobName: null, queue: null, before: null, after: null, data })], now: at(0) });
      expect(entry!.reason).toBe('ticket \uFFFD 42');
      expect(entry!.data).toEqual({ error: { name: 'Error', message: 'dé\uFFFDjà \uFFFD vu ✓' }, list: [1, 'two', null, true, { z: 1, a: [] }], big: 2 ** 40, ratio: '0.5' });
      const [stored] = await tdb.driver.auditList({ chain: 'default', limit: 1 });
      expect(stored).toEqual(entry);
      expect(entryHash(stored!.prevHash, stored!)).toBe(stored!.hash);
    });

    it('uses the database clock when now is null, and never moves time backwards along a chain', async () => {
      const before = await tdb.driver.dbNow();
      const [real] = await tdb.driver.auditAppend({ chain: 'default', entries: [auditInput()], now: null });
      expect(real!.at.getTime()).toBeGreaterThanOrEqual(before.getTime() - 1);
      // A caller whose clock is behind the chain's last entry still gets the head's time, not its own.
      const [behind] = await tdb.driver.auditAppend({ chain: 'default', entries: [auditInput()], now: new Date(real!.at.getTime() - 60_000) });
      expect(behind!.at).toEqual(real!.at);
      expectIntactChain(await readChain(tdb.driver, 'default'));
    });

    it('keeps chains apart', async () => {
      await tdb.driver.auditAppend({ chain: 'default', entries: [auditInput(), auditInput()], now: at(0) });
      const [other] = await tdb.driver.auditAppend({ chain: 'payments', entries: [auditInput()], now: at(0) });
      expect([other!.seq, other!.prevHash, other!.chain]).toEqual([1, GENESIS_HASH, 'payments']);
      expect((await tdb.driver.auditHead({ chain: 'default' }))?.seq).toBe(2);
      expect((await readChain(tdb.driver, 'payments')).map((e) => e.chain)).toEqual(['payments']);
    });

    it('writes a retry only when the unconfirmed batch it names is not in the chain', async () => {
      await tdb.driver.auditAppend({ chain: 'default', entries: [auditInput({ subjectId: 'a' })], now: at(0) });
      const earlier = await tdb.driver.auditAppend({ chain: 'default', entries: [auditInput({ subjectId: 'b' }), auditInput({ subjectId: 'c' })], now: at(1_000) });
      await tdb.driver.auditAppend({ chain: 'default', entries: [auditInput({ subjectId: 'd' })], now: at(2_000) });
      const ref = { firstSeq: earlier[0]!.seq, lastHash: earlier.at(-1)!.hash };
      // The batch is there (another append followed it): nothing written, the batch returned as stored.
      expect(await tdb.driver.auditAppend({ chain: 'default', entries: [auditInput({ subjectId: 'b' })], now: at(3_000), retryOf: [ref] })).toEqual(earlier);
      expect((await readChain(tdb.driver, 'default')).map((e) => e.subjectId)).toEqual(['a', 'b', 'c', 'd']);
      // Another batch holds those seqs (same start, another last hash), or none yet: the retry is written.
      const other = await tdb.driver.auditAppend({ chain: 'default', entries: [auditInput({ subjectId: 'e' })], now: at(3_000), retryOf: [{ ...ref, lastHash: GENESIS_HASH }] });
      const later = await tdb.driver.auditAppend({ chain: 'default', entries: [auditInput({ subjectId: 'f' })], now: at(3_000), retryOf: [{ firstSeq: 6, lastHash: ref.lastHash }] });
      expect([other.map((e) => e.seq), later.map((e) => e.seq)]).toEqual([[5], [6]]);
      // A block starting elsewhere in the chain does not count, whatever it holds.
      const inside = await tdb.driver.auditAppend({ chain: 'default', entries: [auditInput({ subjectId: 'g' })], now: at(3_000), retryOf: [{ firstSeq: ref.firstSeq + 1, lastHash: ref.lastHash }] });
      expect(inside.map((e) => e.seq)).toEqual([7]);
      // No batch named is no retry.
      expect((await tdb.driver.auditAppend({ chain: 'default', entries: [auditInput({ subjectId: 'h' })], now: at(3_000), retryOf: [] })).map((e) => e.seq)).toEqual([8]);
      const chain = await readChain(tdb.driver, 'default');
      expect(chain.map((e) => e.subjectId)).toEqual(['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h']);
      expectIntactChain(chain);
    });

    it('answers a retry naming several attempts at one seq with the one in the chain, and writes only when none is', async () => {
      // Two attempts at the entries after seq 1, both sealed onto it: b, c, d (the first, whose reply was lost while
      // it waited) and b alone (its retry, lost too). At most one can land; here the first does, after the retry.
      const [a] = await tdb.driver.auditAppend({ chain: 'default', entries: [auditInput({ subjectId: 'a' })], now: at(0) });
      const onto = { seq: a!.seq, hash: a!.hash };
      const firstTry = sealBatch('default', onto, at(1_000), ['b', 'c', 'd'].map((id) => auditInput({ subjectId: id }))).entries;
      const secondTry = sealBatch('default', onto, at(2_000), [auditInput({ subjectId: 'b' })]).entries;
      const refOf = (batch: AuditEntry[]) => ({ firstSeq: batch[0]!.seq, lastHash: batch.at(-1)!.hash });
      const landed = await tdb.driver.auditAppend({ chain: 'default', entries: ['b', 'c', 'd'].map((id) => auditInput({ subjectId: id })), now: at(1_000) });
      expect(landed).toEqual(firstTry);
      // Named with the other attempt, in either order: nothing written, the attempt in the chain returned as stored.
      for (const retryOf of [[refOf(secondTry), refOf(firstTry)], [refOf(firstTry), refOf(secondTry)]]) {
        expect(await tdb.driver.auditAppend({ chain: 'default', entries: [auditInput({ subjectId: 'b' })], now: at(3_000), retryOf })).toEqual(landed);
      }
      expect((await readChain(tdb.driver, 'default')).map((e) => e.subjectId)).toEqual(['a', 'b', 'c', 'd']);
      // Named without it (another append took those seqs): written after the head.
      const after = await tdb.driver.auditAppend({ chain: 'default', entries: [auditInput({ subjectId: 'e' })], now: at(3_000), retryOf: [refOf(secondTry), { firstSeq: 2, lastHash: GENESIS_HASH }] });
      expect(after.map((e) => [e.seq, e.subjectId])).toEqual([[5, 'e']]);

      // On a chain where neither has landed yet, the retry is written at their seq: neither can land after it.
      const [x] = await tdb.driver.auditAppend({ chain: 'other', entries: [auditInput({ subjectId: 'x' })], now: at(0) });
      const attempts = [at(1_000), at(2_000)].map((t) => refOf(sealBatch('other', { seq: x!.seq, hash: x!.hash }, t, [auditInput({ subjectId: 'y' })]).entries));
      const fresh = await tdb.driver.auditAppend({ chain: 'other', entries: [auditInput({ subjectId: 'y' })], now: at(3_000), retryOf: attempts });
      expect(fresh.map((e) => [e.seq, e.at])).toEqual([[2, at(3_000)]]);
      expect(attempts.map((r) => r.lastHash)).not.toContain(fresh[0]!.hash);

      // Attempts sealed at different seqs are not attempts at the same entries: refused, nothing written.
      await expectRejects(tdb.driver.auditAppend({ chain: 'default', entries: [auditInput()], now: at(4_000), retryOf: [refOf(firstTry), { ...refOf(firstTry), firstSeq: 3 }] }), InvalidOptionError);
      const chain = await readChain(tdb.driver, 'default');
      expect(chain.map((e) => e.subjectId)).toEqual(['a', 'b', 'c', 'd', 'e']);
      expectIntactChain(chain);
      expectIntactChain(await readChain(tdb.driver, 'other'));
    });

    it('lists in seq order from afterSeq, within [since, until), at most limit', async () => {
      for (let i = 0; i < 5; i++) await tdb.driver.auditAppend({ chain: 'default', entries: [auditInput({ subjectId: String(i) }), auditInput({ subjectId: String(i) })], now: at(i * 1_000) });
      const seqs = (entries: AuditEntry[]) => entries.map((e) => e.seq);
      expect(seqs(await tdb.driver.auditList({ chain: 'default', afterSeq: 3, limit: 4 }))).toEqual([4, 5, 6, 7]);
      expect(seqs(await tdb.driver.auditList({ chain: 'default', since: at(1_000), until: at(3_000), limit: 100 }))).toEqual([3, 4, 5, 6]);
      expect(seqs(await tdb.driver.auditList({ chain: 'default', since: at(1_000), afterSeq: 4, limit: 100 }))).toEqual([5, 6, 7, 8, 9, 10]);
      await expectRejects(tdb.driver.auditList({ chain: 'default', limit: 0 }), InvalidOptionError);
      await expectRejects(tdb.driver.auditList({ chain: 'default', limit: 10_001 }), InvalidOptionError);
    });

    it('bounds time ranges exactly through the time index, across blocks of many sizes and tied times', async () => {
      // 61 batches (one stored block each) of 1–20 entries (631 in all), a batch sharing one time;
      // some batches at the time before theirs (ties across batches), and another chain in between.
      const times: number[] = [];
      for (let b = 0, t = 0; b < 61; b++) {
        t += b % 5 === 3 ? 0 : 1_000;
        const size = 1 + ((b * 7) % 20);
        await tdb.driver.auditAppend({ chain: 'default', entries: Array.from({ length: size }, () => auditInput()), now: at(t) });
        await tdb.driver.auditAppend({ chain: 'other', entries: [auditInput()], now: at(t) });
        times.push(...Array.from({ length: size }, () => t));
      }
      const all = await readChain(tdb.driver, 'default');
      expect(all.map((e) => e.at.getTime() - at(0).getTime())).toEqual(times);
      const seqsIn = (since: number | null, until: number | null, afterSeq = 0) =>
        all.filter((e) => e.seq > afterSeq && (since === null || e.at >= at(since)) && (until === null || e.at < at(until))).map((e) => e.seq);
      // Times of indexed entries (seq 64, 128, …), their neighbours, and times outside the chain.
      const probes = [-1_000, 0, 500, 60_000, 70_000, ...[64, 128, 192, 320, 576].flatMap((seq) => [times[seq - 1]!, times[seq - 1]! - 1, times[seq - 1]! + 1])];
      for (const since of [null, ...probes]) {
        for (const until of [null, ...probes]) {
          for (const afterSeq of [0, 63, 64, 300]) {
            const listed = await tdb.driver.auditList({ chain: 'default', since: since === null ? undefined : at(since), until: until === null ? undefined : at(until), afterSeq, limit: 10_000 });
            expect(listed.map((e) => e.seq), `since ${since} until ${until} after ${afterSeq}`).toEqual(seqsIn(since, until, afterSeq));
          }
        }
      }
      // Pruning by time removes exactly the entries before it, whichever side of an indexed entry it falls on.
      for (const before of [500, times[63]! + 1, times[127]!, times[400]! - 1, 70_000]) {
        const prunedSeq = (await tdb.driver.auditHead({ chain: 'default' }))!.prunedSeq;
        const expected = all.filter((e) => e.at < at(before) && e.seq > prunedSeq).length;
        expect(await tdb.driver.auditPrune({ chain: 'default', before: at(before) }), `before ${before}`).toBe(expected);
        expect((await readChain(tdb.driver, 'default')).map((e) => e.seq)).toEqual(all.filter((e) => e.at >= at(before)).map((e) => e.seq));
      }
      expect((await readChain(tdb.driver, 'other')).length).toBe(61);
    });

    it('prunes a prefix older than a time, recording the last pruned seq and hash in the head', async () => {
      const a = await tdb.driver.auditAppend({ chain: 'default', entries: [auditInput(), auditInput()], now: at(0) });
      await tdb.driver.auditAppend({ chain: 'default', entries: [auditInput()], now: at(5_000) });
      expect(await tdb.driver.auditPrune({ chain: 'default', before: at(1_000) })).toBe(2);
      expect(await tdb.driver.auditPrune({ chain: 'default', before: at(1_000) })).toBe(0);
      expect(await tdb.driver.auditPrune({ chain: 'unknown', before: at(1_000) })).toBe(0);
      const head = await tdb.driver.auditHead({ chain: 'default' });
      expect(head).toMatchObject({ seq: 3, prunedSeq: 2, prunedHash: a[1]!.hash });
      const rest = await readChain(tdb.driver, 'default');
      expect(rest.map((e) => e.seq)).toEqual([3]);
      expect(rest[0]!.prevHash).toBe(head!.prunedHash);
      // Appends go on after a prune.
      const [next] = await tdb.driver.auditAppend({ chain: 'default', entries: [auditInput()], now: at(6_000) });
      expect([next!.seq, next!.prevHash]).toEqual([4, rest[0]!.hash]);
    });

    it('prune appends its record in the same transaction, sealed onto the head it leaves', async () => {
      const a = await tdb.driver.auditAppend({ chain: 'default', entries: [auditInput(), auditInput()], now: at(0) });
      const b = await tdb.driver.auditAppend({ chain: 'default', entries: [auditInput()], now: at(5_000) });
      const asked: AuditPruned[] = [];
      const record = (pruned: AuditPruned): AuditEntryInput => {
        asked.push(pruned);
        return auditInput({ action: 'audit.pruned', subjectKind: 'chain', subjectId: 'default', data: { ...pruned } });
      };
      // Nothing older: nothing deleted, nothing recorded.
      expect(await tdb.driver.auditPrune({ chain: 'default', before: at(0), record, now: at(6_000) })).toBe(0);
      expect(asked).toEqual([]);
      // Its time is never earlier than the head's, whatever `now` says.
      expect(await tdb.driver.auditPrune({ chain: 'default', before: at(1_000), record, now: at(4_000) })).toBe(2);
      expect(asked).toEqual([{ deleted: 2, prunedSeq: 2, prunedHash: a[1]!.hash }]);
      const rest = await readChain(tdb.driver, 'default');
      expect(rest.map((e) => [e.seq, e.action, e.at])).toEqual([[3, 'job.completed', at(5_000)], [4, 'audit.pruned', at(5_000)]]);
      expect(rest[1]).toMatchObject({ prevHash: b[0]!.hash, data: { deleted: 2, prunedSeq: 2, prunedHash: a[1]!.hash } });
      expect(entryHash(rest[1]!.prevHash, rest[1]!)).toBe(rest[1]!.hash);
      expect(await tdb.driver.auditHead({ chain: 'default' })).toMatchObject({ seq: 4, hash: rest[1]!.hash, prunedSeq: 2, prunedHash: a[1]!.hash });
      // Pruning everything: the record's previous hash is the pruned hash, where verify starts.
      expect(await tdb.driver.auditPrune({ chain: 'default', before: at(60_000), record, now: at(7_000) })).toBe(2);
      const [only] = await readChain(tdb.driver, 'default');
      expect(only).toMatchObject({ seq: 5, at: at(7_000), prevHash: rest[1]!.hash, data: { deleted: 2, prunedSeq: 4 } });
      expect(await verifyAuditChain(tdb.driver, { chain: 'default', head: null, pageSize: 100 })).toMatchObject({ ok: true });
    });

    it('prune leaves everything in place when its record cannot be appended', async () => {
      await tdb.driver.auditAppend({ chain: 'default', entries: [auditInput(), auditInput()], now: at(0) });
      const before = await readChain(tdb.driver, 'default');
      const record = (): AuditEntryInput => {
        throw new Error('no record');
      };
      await expect(tdb.driver.auditPrune({ chain: 'default', before: at(1_000), record })).rejects.toThrow('no record');
      expect(await readChain(tdb.driver, 'default')).toEqual(before);
      expect(await tdb.driver.auditHead({ chain: 'default' })).toMatchObject({ seq: 2, prunedSeq: 0, prunedHash: GENESIS_HASH });
    });

    it('forms one unbroken chain from concurrent appends of several driver instances', async () => {
      const drivers = [tdb.driver, tdb.newDriver(), tdb.newDriver()];
      const rounds = 8;
      await Promise.all(drivers.flatMap((driver, d) => Array.from({ length: rounds }, (_, r) =>
        driver.auditAppend({ chain: 'default', entries: [auditInput({ actor: `d${d}`, subjectId: `${r}` }), auditInput({ actor: `d${d}`, subjectId: `${r}` })], now: null }))));
      const chain = await readChain(tdb.driver, 'default');
      expect(chain).toHaveLength(drivers.length * rounds * 2);
      expectIntactChain(chain);
      // A batch is never split by another append.
      for (let i = 0; i < chain.length; i += 2) expect([chain[i]!.actor, chain[i]!.subjectId]).toEqual([chain[i + 1]!.actor, chain[i + 1]!.subjectId]);
      for (let i = 1; i < chain.length; i++) expect(chain[i]!.at.getTime()).toBeGreaterThanOrEqual(chain[i - 1]!.at.getTime());
      expect(await tdb.driver.auditHead({ chain: 'default' })).toMatchObject({ seq: chain.length, hash: chain.at(-1)!.hash });
    });
  });
}
