/**
 * The job and schedule definitions a Warden is created with, checked and indexed by name.
 * @module
 */
import { InvalidOptionError } from '../errors.js';
import type { JobDefinition } from '../job/define-job.js';
import type { ScheduleDefinition } from '../schedule/define-schedule.js';

/** The definitions of one Warden, by name. */
export interface DefinitionRegistry {
  /** Every runnable job: those given, and each schedule's job. */
  jobs: Map<string, JobDefinition<any, any>>;
  schedules: Map<string, ScheduleDefinition>;
}

/**
 * Indexes `jobs` and `schedules` by name. A schedule's job is registered too (it must be runnable where the
 * schedule fires), unless the same definition object already is.
 * @throws InvalidOptionError for `jobs` or `schedules` that is not an array, an item not made with
 *   `defineJob()`/`defineSchedule()`, a name given twice, or a schedule whose job shares its name with a different
 *   registered definition.
 */
export function registerDefinitions(jobs: readonly JobDefinition<any, any>[], schedules: readonly ScheduleDefinition[]): DefinitionRegistry {
  // Not iterated unchecked: an object would be a bare "is not iterable" TypeError, and a string its characters.
  if (!Array.isArray(jobs)) throw new InvalidOptionError('jobs', jobs, 'an array of jobs made with defineJob()');
  if (!Array.isArray(schedules)) throw new InvalidOptionError('schedules', schedules, 'an array of schedules made with defineSchedule()');
  const registry: DefinitionRegistry = { jobs: new Map(), schedules: new Map() };
  for (const def of jobs) {
    // The resolved fields too, not only name and handler: a hand-made object would pass them and fail much later
    // (the worker, the doctor) on a missing retry policy or unique option.
    if (typeof def?.name !== 'string' || typeof def.handler !== 'function' || typeof def.retry !== 'object' || def.retry === null || typeof def.unique !== 'object' || def.unique === null) {
      throw new InvalidOptionError('jobs[]', def, 'a job made with defineJob()');
    }
    if (registry.jobs.has(def.name)) throw new InvalidOptionError('jobs[]', def.name, 'unique job names; this name is registered twice');
    registry.jobs.set(def.name, def);
  }
  for (const schedule of schedules) {
    if (typeof schedule?.name !== 'string' || typeof schedule.nextTick !== 'function') throw new InvalidOptionError('schedules[]', schedule, 'a schedule made with defineSchedule()');
    if (registry.schedules.has(schedule.name)) throw new InvalidOptionError('schedules[]', schedule.name, 'unique schedule names; this name is registered twice');
    registry.schedules.set(schedule.name, schedule);
    const registered = registry.jobs.get(schedule.job.name);
    if (registered && registered !== schedule.job) throw new InvalidOptionError(`job of schedule "${schedule.name}"`, schedule.job.name, 'the same definition object that is registered in jobs under this name');
    registry.jobs.set(schedule.job.name, schedule.job);
  }
  return registry;
}
