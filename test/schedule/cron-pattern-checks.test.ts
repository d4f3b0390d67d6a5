/**
 * `defineSchedule` accepts the cron patterns the docs describe (5 fields, or 6 with seconds first; nicknames such as
 * `@daily`) and refuses, with `InvalidOptionError`, a pattern with more fields (croner reads a 7th as the year, so a
 * past year never fires) and a pattern that never fires (30 February): such a schedule would be stored with no next
 * run and never tick.
 * @module
 */
import { describe, expect, it } from 'vitest';
import { InvalidOptionError } from '../../src/errors.js';
import { defineJob } from '../../src/job/define-job.js';
import { defineSchedule } from '../../src/schedule/define-schedule.js';

const job = defineJob({ name: 'j', handler: () => undefined });
const define = (cron: string) => defineSchedule({ name: 's', cron, job });

describe('defineSchedule cron patterns', () => {
  it.each(['0 0 30 2 *', '0 0 31 4 *', '0 0 0 30 2 *'])('refuses %s, which matches no date', (cron) => {
    expect(() => define(cron)).toThrow(InvalidOptionError);
    expect(() => define(cron)).toThrow(/^Expected cron of schedule "s" to be a cron pattern that fires/);
  });

  it.each(['0 0 0 1 1 * 2020', '0 0 0 1 1 * 2099', '* * * * * * * *'])('refuses %s: more than 6 fields', (cron) => {
    expect(() => define(cron)).toThrow(InvalidOptionError);
    expect(() => define(cron)).toThrow(/to be a cron pattern of 5 fields, or 6 with seconds first/);
  });

  it.each(['0 * * * *', '*/5 * * * * *', '0 0 29 2 *', '0 0 L 2 *', '@daily', '  0 12 * * 1-5  '])('accepts %s', (cron) => {
    const schedule = define(cron);
    expect(schedule.nextTick(new Date())).toBeInstanceOf(Date);
  });
});
