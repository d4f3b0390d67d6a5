/**
 * Conformance (PostgreSQL): scenario 4, claim exclusivity under contention. 16 claimers, each a driver instance of
 * its own (own pool, own connections), poll one table of 5,000 due jobs with batch sizes drawn from 1–50 at every
 * claim, and complete what they claimed at once (handlers that always succeed). No (job, lease token) may be claimed
 * twice, every job must be claimed exactly once and run at attempt 1.
 *
 * PostgreSQL only: its claim is the one where concurrent transactions race (`FOR UPDATE SKIP LOCKED`); SQLite's
 * claims take the file's write lock one at a time, and its multi-process claim test is in `job-claim.ts`.
 * @module
 */
import { createHash, randomInt } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Driver } from '../../src/driver/driver.js';
import { createTestDatabase, makeInsert, type DriverKind, type TestDatabase } from '../support/test-databases.js';
import { finishOf, rawQuery, tableRef } from './helpers.js';

const CLAIMERS = 16;
const JOBS = 5_000;
const MAX_BATCH = 50;
/** Empty claims in a row after which a claimer gives up although jobs are still unaccounted for (a hang guard). */
const MAX_EMPTY_CLAIMS = 200;

/** One claim's result, as the claimer saw it. */
interface Claim {
  claimer: number;
  limit: number;
  jobs: { id: string; leaseToken: number; attempt: number; leaseWorker: string | null }[];
}

/** The batch size of a claimer's `round`-th claim: 1–{@link MAX_BATCH}, reproducible from the seed. */
function batchSize(seed: number, claimer: number, round: number): number {
  return 1 + (createHash('sha256').update(`${seed}:${claimer}:${round}`).digest().readUInt32BE(0) % MAX_BATCH);
}

/**
 * Claims with random batch sizes until every job is accounted for (claimed by anyone) and a claim comes back
 * empty, completing each batch it claimed; records every claim.
 */
async function claimLoop(driver: Driver, claimer: number, seed: number, claims: Claim[], claimed: { count: number }): Promise<void> {
  let empty = 0;
  for (let round = 0; ; round++) {
    const limit = batchSize(seed, claimer, round);
    const got = await driver.jobClaim({ queues: ['default'], limit, workerId: `claimer-${claimer}`, leaseMs: 60_000, now: null });
    claims.push({ claimer, limit, jobs: got.map((j) => ({ id: j.id, leaseToken: j.leaseToken, attempt: j.attempt, leaseWorker: j.leaseWorker })) });
    if (got.length === 0) {
      // Nothing due now: the rest are claimed, or locked by other claimers' transactions (skipped, not waited for).
      if (claimed.count >= JOBS || ++empty >= MAX_EMPTY_CLAIMS) return;
      continue;
    }
    empty = 0;
    claimed.count += got.length;
    const result = await driver.jobFinishMany({ items: got.map((j) => finishOf(j)), now: null });
    expect(result.stale).toEqual([]);
  }
}

/** Declares the claim-contention conformance test (PostgreSQL only). */
export function exerciseJobClaimContention(kind: DriverKind): void {
  if (kind !== 'postgres') return;
  describe('jobClaim under contention', () => {
    let tdb: TestDatabase;
    beforeEach(async () => {
      tdb = await createTestDatabase(kind);
    });
    afterEach(async () => {
      await tdb.cleanup();
    });

    it(`lets ${CLAIMERS} claimers with batch sizes 1–${MAX_BATCH} take ${JOBS} jobs, each exactly once at attempt 1`, async () => {
      for (let from = 0; from < JOBS; from += 1_000) {
        await tdb.driver.jobInsertMany({ jobs: Array.from({ length: Math.min(1_000, JOBS - from) }, (_, i) => makeInsert({ name: `job-${from + i}`, priority: (from + i) % 3 })), now: null });
      }
      const drivers = Array.from({ length: CLAIMERS }, () => tdb.newDriver());
      await Promise.all(drivers.map((d) => d.dbNow())); // connected before the race starts
      const seed = randomInt(2 ** 31);
      const claims: Claim[] = [];
      const claimed = { count: 0 };
      await Promise.all(drivers.map((driver, n) => claimLoop(driver, n, seed, claims, claimed)));

      const taken = claims.flatMap((c) => c.jobs.map((j) => ({ ...j, claimer: c.claimer })));
      const nonEmpty = claims.filter((c) => c.jobs.length > 0);
      const context = `seed ${seed}: ${claims.length} claims (${nonEmpty.length} non-empty), batch sizes ${Math.min(...nonEmpty.map((c) => c.limit))}–${Math.max(...nonEmpty.map((c) => c.limit))}`;
      // No (job, lease token) claimed twice; no job claimed twice at all (histogram of claims per job: all 1).
      const pairs = new Set(taken.map((j) => `${j.id}/${j.leaseToken}`));
      expect(pairs.size, context).toBe(taken.length);
      const perJob = new Map<string, number>();
      for (const j of taken) perJob.set(j.id, (perJob.get(j.id) ?? 0) + 1);
      const histogram: Record<number, number> = {};
      for (const n of perJob.values()) histogram[n] = (histogram[n] ?? 0) + 1;
      expect(histogram, context).toEqual({ 1: JOBS });
      // Every claim returned at most its limit, each job at attempt 1 and lease token 1, leased to its claimer.
      expect(claims.filter((c) => c.jobs.length > c.limit), context).toEqual([]);
      expect(taken.filter((j) => j.attempt !== 1 || j.leaseToken !== 1 || j.leaseWorker !== `claimer-${j.claimer}`), context).toEqual([]);
      // The race was real: every claimer took part, with batch sizes across the range.
      expect(new Set(taken.map((j) => j.claimer)).size, context).toBe(CLAIMERS);
      expect(new Set(nonEmpty.map((c) => c.limit)).size, context).toBeGreaterThan(10);

      // The database agrees: every job completed at attempt 1 by the claimer that took it, no attempt row else.
      const rows = await rawQuery(tdb, `SELECT id, state, attempt, lease_token, completed_by FROM ${tableRef(tdb, 'jobs')}`);
      expect(rows, context).toHaveLength(JOBS);
      const claimerOf = new Map(taken.map((j) => [j.id, `claimer-${j.claimer}`]));
      expect(rows.filter((r) => r.state !== 'completed' || Number(r.attempt) !== 1 || Number(r.lease_token) !== 1 || r.completed_by !== claimerOf.get(String(r.id))), context).toEqual([]);
      expect(await rawQuery(tdb, `SELECT job_id FROM ${tableRef(tdb, 'job_attempts')}`), context).toEqual([]);
      console.info(`[claim contention] ${context}`);
    });
  });
}
