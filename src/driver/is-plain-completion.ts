/**
 * Which attempt endings a driver may write with its shorter completion statement.
 * @module
 */
import type { JobFinish } from './driver.js';

/**
 * Whether an ending completes its job and nothing more: outcome and state `completed`, no error kept, no attempt
 * given back. Such an attempt has no attempt row (the job row keeps it, migration 0011), so a batch of only these
 * needs neither the row's old values nor per-item outcome, state, delay and error: both drivers end it with a
 * shorter statement that gives the same result as their general one. Nearly every batch of a drain is one.
 */
export function isPlainCompletion(item: JobFinish): boolean {
  return item.outcome === 'completed' && item.state === 'completed' && item.error === null && item.extendAttempts !== true;
}
