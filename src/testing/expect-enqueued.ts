import { isDeepStrictEqual } from 'node:util';
import type { Warden } from '../client/warden.js';
import { WardenError } from '../errors.js';
import type { JobDefinition } from '../job/define-job.js';
import type { JobRow, JobState } from '../job/job-record.js';

/** A partial payload (every given key must deep-equal) or a predicate over the payload. */
export type EnqueueMatch = Record<string, unknown> | ((payload: any) => boolean);

/** Thrown by {@link expectEnqueued} / {@link expectNotEnqueued} when the expectation does not hold. */
export class EnqueueAssertionError extends WardenError {
  constructor(message: string) {
    super('ENQUEUE_ASSERTION', message);
  }
}

function matches(payload: unknown, match: EnqueueMatch | undefined): boolean {
  if (match === undefined) return true;
  if (typeof match === 'function') return match(payload);
  if (typeof payload !== 'object' || payload === null) return false;
  return Object.entries(match).every(([k, v]) => isDeepStrictEqual((payload as Record<string, unknown>)[k], v));
}

/** Jobs read per `jobs.list` page: its maximum. */
const PAGE = 1000;

/** Every job of this kind in `states`, page after page: an assertion that read only the newest page would miss older jobs. */
async function find(warden: Warden, job: JobDefinition<any, any> | string, match: EnqueueMatch | undefined, states: JobState[]): Promise<{ found: JobRow[]; seen: JobRow[] }> {
  const name = typeof job === 'string' ? job : job.name;
  const seen: JobRow[] = [];
  for (const state of states) {
    let beforeId: string | undefined;
    for (;;) {
      const page = await warden.jobs.list({ name, state, limit: PAGE, beforeId });
      seen.push(...page);
      if (page.length < PAGE) break;
      beforeId = page[page.length - 1]!.id;
    }
  }
  return { found: seen.filter((row) => matches(row.payload, match)), seen };
}

/**
 * Asserts that a job of this kind, whose payload matches, is waiting to run (queued or retrying by default).
 * Returns the matching jobs.
 * @throws EnqueueAssertionError listing what was enqueued instead.
 */
export async function expectEnqueued(warden: Warden, job: JobDefinition<any, any> | string, match?: EnqueueMatch, options: { states?: JobState[]; count?: number } = {}): Promise<JobRow[]> {
  const states = options.states ?? ['queued', 'retrying'];
  const { found, seen } = await find(warden, job, match, states);
  const name = typeof job === 'string' ? job : job.name;
  if (options.count !== undefined ? found.length !== options.count : found.length === 0) {
    const shown = seen.slice(0, 5).map((r) => JSON.stringify(r.payload)).join(', ');
    throw new EnqueueAssertionError(`Expected ${options.count ?? 'at least 1'} "${name}" job(s) in ${states.join('/')} matching ${typeof match === 'function' ? 'the predicate' : JSON.stringify(match ?? {})}, got ${found.length} (payloads seen: ${shown || 'none'})`);
  }
  return found;
}

/**
 * Asserts that no waiting job of this kind matches.
 * @throws EnqueueAssertionError
 */
export async function expectNotEnqueued(warden: Warden, job: JobDefinition<any, any> | string, match?: EnqueueMatch, options: { states?: JobState[] } = {}): Promise<void> {
  const states = options.states ?? ['queued', 'retrying'];
  const { found } = await find(warden, job, match, states);
  if (found.length > 0) {
    const name = typeof job === 'string' ? job : job.name;
    throw new EnqueueAssertionError(`Expected no "${name}" job in ${states.join('/')} matching, got ${found.length} (first: ${JSON.stringify(found[0]!.payload)})`);
  }
}
