/**
 * The errors the drivers themselves store (as `last_error` and on attempt rows), one text for both databases;
 * shared by the job operations and the schedule operations that have the same effects (overlap `replace` cancels
 * like `jobCancel`).
 * @module
 */
import type { ErrorInfo } from '../job/job-record.js';

/** Stored as `last_error` and on the `lost` attempt row when a lease expires. */
export const LEASE_EXPIRED_ERROR: ErrorInfo = {
  name: 'LeaseExpiredError',
  message: 'Expected a heartbeat before the lease expired, got none: the worker died, stalled or lost the database',
};

/** Stored on the attempt row of a running job an operator (or a `replace` schedule) cancelled. */
export const CANCELLED_ERROR: ErrorInfo = { name: 'CancelledError', message: 'Cancelled by an operator' };
