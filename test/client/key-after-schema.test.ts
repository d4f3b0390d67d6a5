/**
 * A job definition's `unique.key(payload)` runs only on a payload its schema accepted (`buildJobInsert` validates
 * first): the function is typed on the schema's input and written for valid payloads. It ran first, so an invalid
 * payload made it throw, and the caller got `InvalidOptionError` ("the key function threw") instead of the
 * `PayloadValidationError` listing the payload's issues; nothing is written either way.
 * @module
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { Warden } from '../../src/client/warden.js';
import { PayloadValidationError } from '../../src/errors.js';
import { defineJob } from '../../src/job/define-job.js';
import { countRows, expectRejects } from '../conformance/helpers.js';
import { makeWarden } from '../runtime/helpers.js';
import { createTestDatabase, DRIVER_KINDS, type TestDatabase } from '../support/test-databases.js';

describe.each(DRIVER_KINDS)('derived keys and the schema (%s)', (kind) => {
  let tdb: TestDatabase;
  let warden: Warden;
  const keyed: unknown[] = [];
  const sync = defineJob({
    name: 'sync-account',
    schema: z.object({ account: z.object({ id: z.string() }) }),
    unique: {
      key: (p) => {
        keyed.push(p);
        return `sync:${p.account.id}`;
      },
    },
    handler: () => undefined,
  });

  beforeEach(async () => {
    keyed.length = 0;
    tdb = await createTestDatabase(kind);
    warden = makeWarden(tdb, { jobs: [sync], retention: false });
  });

  afterEach(async () => {
    await warden.close();
    await tdb.cleanup();
  });

  it('reports an invalid payload as PayloadValidationError without calling the key function', async () => {
    const error = await expectRejects(warden.enqueue(sync, {} as never), PayloadValidationError);
    expect(error.issues.map((i) => i.path)).toEqual([['account']]);
    const many = await expectRejects(warden.enqueueMany([{ job: sync, payload: { account: { id: '1' } } }, { job: sync, payload: { account: {} } }]), PayloadValidationError);
    expect(many.message).toMatch(/^items\[1\]: /);
    // Only the valid first item reached the key function.
    expect(keyed).toEqual([{ account: { id: '1' } }]);
    expect(await countRows(tdb, 'jobs')).toBe(0);
  });

  it('derives the key from a valid payload, as given', async () => {
    const payload = { account: { id: '42' } };
    const first = await warden.enqueue(sync, payload);
    const again = await warden.enqueue(sync, { account: { id: '42' } });
    expect([first.job.key, again.duplicate, again.id]).toEqual(['sync:42', true, first.id]);
    // A copy of the payload as stored (taken at the call), equal to what was given.
    expect(keyed[0]).toEqual(payload);
  });
});
