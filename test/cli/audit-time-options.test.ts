/**
 * `warden audit export --since/--until` and `audit prune --before`: a date or time that does not exist is refused
 * (not rolled forward by `new Date()`), and a time without an offset is UTC like a date alone (docs/audit.md).
 * @module
 */
import { afterEach, describe, expect, it } from 'vitest';
import { parseTimeOption } from '../../src/cli/commands/audit.js';
import { InvalidOptionError } from '../../src/errors.js';
import { cli, expectOneLineError, migratedDatabase } from './cli-helpers.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

describe('time options refuse dates and times that do not exist', () => {
  it('`audit prune --before 2024-02-31` is refused, nothing pruned (it was read as 2 March)', async () => {
    const db = await migratedDatabase('sqlite');
    cleanups.push(() => db.cleanup());
    expectOneLineError(await cli(['audit', 'prune', ...db.args, '--before', '2024-02-31']), 1, /--before.*2024-02-31/);
  });

  it('`audit export --since 2023-02-29` is refused', async () => {
    const db = await migratedDatabase('sqlite');
    cleanups.push(() => db.cleanup());
    expectOneLineError(await cli(['audit', 'export', ...db.args, '--since', '2023-02-29']), 1, /--since/);
  });

  it('parseTimeOption refuses impossible fields and keeps real ones', () => {
    for (const bad of ['2024-02-30', '2023-02-29', '2024-13-01', '2024-04-31', '2024-05-01T25:00', '2024-05-01T12:60', '2024-05-01T12:00:61Z', '2024-05-01T12:00+24:00', '2024-5-1', 'yesterday']) {
      expect(() => parseTimeOption('--until', bad), bad).toThrow(InvalidOptionError);
    }
    expect(parseTimeOption('--until', '2024-02-29')?.toISOString()).toBe('2024-02-29T00:00:00.000Z');
    expect(parseTimeOption('--until', '2024-05-01T12:00:03.12Z')?.toISOString()).toBe('2024-05-01T12:00:03.120Z');
    expect(parseTimeOption('--until', '2024-05-01T14:00+02:00')?.toISOString()).toBe('2024-05-01T12:00:00.000Z');
    expect(parseTimeOption('--until', '2024-05-01 07:00-0500')?.toISOString()).toBe('2024-05-01T12:00:00.000Z');
    expect(parseTimeOption('--until', undefined)).toBeUndefined();
  });
});

describe('a time without an offset is UTC, as a date alone is', () => {
  it('whatever the host time zone', () => {
    const saved = process.env.TZ;
    // Node re-reads TZ when it is assigned, so Date's local time follows it from here on.
    process.env.TZ = 'America/New_York';
    cleanups.push(() => {
      if (saved === undefined) delete process.env.TZ;
      else process.env.TZ = saved;
    });
    expect(new Date(2024, 4, 1).getTimezoneOffset()).toBe(240);
    expect(parseTimeOption('--since', '2024-05-01T12:00')?.toISOString()).toBe('2024-05-01T12:00:00.000Z');
    expect(parseTimeOption('--since', '2024-05-01')?.toISOString()).toBe('2024-05-01T00:00:00.000Z');
  });
});
