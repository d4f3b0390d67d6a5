/**
 * The `ids` of `Driver.jobGetMany`, checked the same way by both drivers.
 * @module
 */
import { InvalidOptionError } from '../errors.js';

/**
 * Most ids one `jobGetMany` call reads: a listing's page (`JOB_LIST_MAX_LIMIT`). One statement reads them all (an
 * array or JSON parameter, whatever the count), so the bound is on the rows one call returns and holds in memory,
 * not on the SQL. A longer list is refused, not cut short or split here: silently missing rows would read as jobs
 * that do not exist, and a caller that splits knows it makes several reads.
 */
export const JOB_GET_MANY_MAX_IDS = 1_000;

/**
 * `ids` as an array of at most {@link JOB_GET_MANY_MAX_IDS} elements. The elements are each driver's to check, as its
 * `jobGet` checks one id: one that is not a job id names no job.
 * @throws InvalidOptionError for anything else.
 */
export function checkJobGetManyIds(ids: unknown): readonly unknown[] {
  if (!Array.isArray(ids) || ids.length > JOB_GET_MANY_MAX_IDS) {
    throw new InvalidOptionError('ids', ids, `an array of at most ${JOB_GET_MANY_MAX_IDS} job ids`);
  }
  return ids;
}
