/**
 * How `job:enqueued` names the job a deduplicated tick or trigger was matched to.
 * @module
 */
import type { Driver } from '../driver/driver.js';
import type { JobRef } from '../events/event-map.js';
import type { TypedEmitter } from '../events/typed-emitter.js';

/** A job as a `job:enqueued` event names it, with the due time the event reports. */
export interface EnqueuedRef {
  job: JobRef;
  runAt: Date;
}

/**
 * The holder of a key a tick or trigger was deduplicated on, as an enqueue's duplicate names it: its own name, queue,
 * schedule and due time. A unique key is shared by every job, so the holder may sit in another queue or be of
 * another type, and the tick's own values would label the deduplication metric with a queue the job is not in.
 * Read once per duplicate, which is rare. When the read fails (reported as an `error` event: the tick or trigger
 * itself committed) or the holder is gone already, `fallback`.
 */
export async function holderRef(driver: Driver, events: TypedEmitter, id: string, fallback: EnqueuedRef): Promise<EnqueuedRef> {
  try {
    const row = await driver.jobGet({ id });
    if (row) return { job: { id, name: row.name, queue: row.queue, scheduleName: row.scheduleName }, runAt: row.runAt };
  } catch (error) {
    events.emit('error', { error, context: `reading job ${id}, which a schedule's job was deduplicated on` });
  }
  return fallback;
}
