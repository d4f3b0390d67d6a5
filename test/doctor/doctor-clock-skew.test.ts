/**
 * The doctor's clock-skew threshold defaults to the instance's `scheduler.clockSkewWarning` (docs/doctor.md), through
 * `warden.doctor()` and `runDoctor(warden)` alike, also when `clockSkew` is passed as `undefined`; and a hand-made job
 * object that registration used to accept (the doctor then crashed on its missing retry policy) is refused up front.
 * @module
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createWarden, type Warden } from '../../src/client/warden.js';
import { FakeClock } from '../../src/clock/fake-clock.js';
import { runDoctor } from '../../src/doctor/run-doctor.js';
import { InvalidOptionError } from '../../src/errors.js';
import { silent } from '../runtime/helpers.js';
import { createTestDatabase, type TestDatabase } from '../support/test-databases.js';
import * as good from './fixtures/good-app.js';

const MINUTE = 60_000;
const open: { warden: Warden; tdb: TestDatabase }[] = [];
afterEach(async () => {
  for (const { warden, tdb } of open.splice(0)) {
    await warden.close();
    await tdb.cleanup();
  }
});

async function skewedWarden(): Promise<Warden> {
  const tdb = await createTestDatabase('sqlite');
  // The process clock 10 minutes ahead of the database; the instance tolerates an hour.
  const clock = new FakeClock(Date.now() + 10 * MINUTE);
  const warden = createWarden({ database: tdb.url, logger: silent, clock, audit: true, jobs: [good.sendReceipt], schedules: [good.nightly], alerts: good.alerts, scheduler: { clockSkewWarning: '1h' } });
  open.push({ warden, tdb });
  return warden;
}

describe("doctor's clock-skew threshold", () => {
  it("is the instance's clockSkewWarning for warden.doctor() and runDoctor(warden) alike", async () => {
    const warden = await skewedWarden();
    expect((await warden.doctor()).findings.map((f) => f.id)).not.toContain('clock.skew');
    expect((await runDoctor(warden)).findings.map((f) => f.id)).not.toContain('clock.skew');
    // A threshold given explicitly still wins.
    expect((await runDoctor(warden, { clockSkew: '1m' })).findings.map((f) => f.id)).toContain('clock.skew');
  });

  it('stays the instance threshold when clockSkew is passed as undefined', async () => {
    const warden = await skewedWarden();
    expect((await warden.doctor({ clockSkew: undefined })).findings.map((f) => f.id)).not.toContain('clock.skew');
  });
});

describe('job definitions not made with defineJob()', () => {
  it('are refused at registration, not found broken later', () => {
    const odd = { name: 'odd-job', handler: () => undefined };
    expect(() => createWarden({ database: 'sqlite::memory:', logger: silent, jobs: [odd as never] })).toThrow(InvalidOptionError);
  });
});
