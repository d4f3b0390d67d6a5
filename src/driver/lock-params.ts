/**
 * Parameter and row types of the driver's lease-lock operations (see `Driver.lock*`).
 * @module
 */

export interface LockAcquireParams {
  name: string;
  /** Who holds it, for operators (e.g. a worker id). */
  holder: string;
  ttlMs: number;
  now: Date | null;
  /**
   * This acquire call's own id, stored with the grant: an acquire with the same id while that grant still holds is
   * granted again (token + 1), so a call retried after an error whose grant committed (the reply lost) takes it
   * up. Unique per call, never shared between holders. @default null (matches nothing)
   */
  grantId?: string | null;
}

export interface LockRenewParams {
  name: string;
  token: number;
  ttlMs: number;
  now: Date | null;
}

/** A granted (or renewed) lease. */
export interface LockGrant {
  /** The fencing token: strictly increasing per lock name, across all processes, forever. */
  token: number;
  expiresAt: Date;
}

export interface LockCheckParams {
  name: string;
  token: number;
  now: Date | null;
  /** The application's transaction (as for enqueue); the check then holds the lock row until it ends. */
  tx?: unknown;
}

export interface LockCheckResult {
  /** `token` is the newest grant, still held and unexpired. */
  held: boolean;
  /** The newest token granted for this name (null if never granted). */
  currentToken: number | null;
}

/** A lock as stored. */
export interface LockRow {
  name: string;
  token: number;
  /** Null when released. */
  holder: string | null;
  acquiredAt: Date | null;
  expiresAt: Date | null;
}
