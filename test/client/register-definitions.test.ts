/**
 * `registerDefinitions`: the checks `createWarden` makes on its `jobs` and `schedules`, and the registry it builds.
 * @module
 */
import { describe, expect, it } from 'vitest';
import { registerDefinitions } from '../../src/client/register-definitions.js';
import { InvalidOptionError } from '../../src/errors.js';
import { defineJob } from '../../src/job/define-job.js';
import { defineSchedule } from '../../src/schedule/define-schedule.js';

const email = defineJob({ name: 'email', handler: () => {} });
const report = defineJob({ name: 'report', handler: () => {} });

function refusal(fn: () => unknown): InvalidOptionError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidOptionError);
    return error as InvalidOptionError;
  }
  throw new Error('Expected an InvalidOptionError, got none');
}

describe('registerDefinitions', () => {
  it('indexes jobs and schedules by name, and registers each schedule job', () => {
    const nightly = defineSchedule({ name: 'nightly', cron: '0 3 * * *', job: report });
    const { jobs, schedules } = registerDefinitions([email], [nightly]);
    expect([...jobs.keys()]).toEqual(['email', 'report']);
    expect(jobs.get('report')).toBe(report);
    expect([...schedules.keys()]).toEqual(['nightly']);
    // The same definition both given and scheduled is one entry.
    expect([...registerDefinitions([report], [nightly]).jobs.keys()]).toEqual(['report']);
  });

  it('refuses an item that is not a job definition, naming it', () => {
    const error = refusal(() => registerDefinitions([{ name: 'email' } as never], []));
    expect(error.message).toMatch(/^Expected jobs\[\] to be a job made with defineJob\(\), got /);
  });

  it('refuses a job name given twice', () => {
    const error = refusal(() => registerDefinitions([email, defineJob({ name: 'email', handler: () => {} })], []));
    expect(error.message).toMatch(/^Expected jobs\[\] to be unique job names; this name is registered twice, got "email"/);
  });

  it('refuses a schedule that is not a schedule definition, and a schedule name given twice', () => {
    expect(refusal(() => registerDefinitions([], [{ name: 'x' } as never])).message).toMatch(/^Expected schedules\[\] to be a schedule made with defineSchedule\(\)/);
    const nightly = defineSchedule({ name: 'nightly', cron: '0 3 * * *', job: report });
    expect(refusal(() => registerDefinitions([], [nightly, nightly])).message).toMatch(/unique schedule names; this name is registered twice, got "nightly"/);
  });

  it('refuses a schedule whose job is a different definition under a registered name', () => {
    const other = defineJob({ name: 'report', handler: () => {} });
    const nightly = defineSchedule({ name: 'nightly', cron: '0 3 * * *', job: other });
    expect(refusal(() => registerDefinitions([report], [nightly])).message).toMatch(/^Expected job of schedule "nightly" to be the same definition object that is registered in jobs under this name, got "report"/);
  });
});
