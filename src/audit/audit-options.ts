/**
 * The `audit` option of `createWarden` and its resolution. Recording is opt-in (`audit: true`), because every
 * recorded transition is a write; reading, verifying and exporting a trail (`warden.audit.*`, `warden audit …`)
 * work on any instance.
 * @module
 */
import { hostname } from 'node:os';
import { InvalidOptionError } from '../errors.js';
import { AUDIT_LEVELS, type AuditLevel } from '../job/define-job.js';
import { type Duration, parseDuration } from '../validation/duration.js';
import { integerInRange } from '../validation/integer-in-range.js';
import { checkKnownKeys } from '../validation/known-keys.js';
import { validateName } from '../validation/names.js';

/** The chain a Warden records to and reads from unless told otherwise. */
export const DEFAULT_AUDIT_CHAIN = 'default';

/** Options of the audit trail: `createWarden({ audit: { … } })`. `audit: true` is `{}`. */
export interface AuditOptions {
  /** Record to the trail. @default true (when an object is given) */
  enabled?: boolean;
  /**
   * The chain to append to (and to read by default). Chains are independent hash chains in the same tables, e.g.
   * one per application sharing a database. Lowercase letters, digits, `.`, `_`, `-`. @default "default"
   */
  chain?: string;
  /**
   * Who changes made by this process itself are attributed to (claims, completions, failures, rescues, schedule
   * ticks). Operator actions carry their own `actor`. @default `system:<hostname>/<pid>`
   */
  actor?: string;
  /**
   * One level for every job, overriding each definition's `audit`; e.g. `"none"` in a process that should record
   * operator actions only. @default each job's own `audit` level
   */
  level?: AuditLevel;
  /** The level of jobs this process has no definition for (rescued, or operated on by id). @default "all" */
  unknownJobLevel?: AuditLevel;
  /**
   * Most entries written by one append transaction. A batch only grows this large when entries wait (an append
   * in flight, a burst): then fewer, larger transactions catch up faster. @default 2000
   */
  maxBatch?: number;
  /**
   * Entries waiting to be written (database unreachable) beyond which new ones are dropped, each drop reported as
   * an `error` event, so an outage cannot exhaust memory. @default 100000
   */
  maxPending?: number;
  /**
   * How long an operator action waits for its entry to be written before it fails with `AuditWriteError` (the
   * entry stays queued), and how long `close()` keeps retrying unwritten entries. @default "10s"
   */
  flushTimeout?: Duration;
}

/** Every key of {@link AuditOptions}, checked against the interface so an option added there is known here. */
const AUDIT_OPTION_KEYS = Object.keys({
  enabled: true, chain: true, actor: true, level: true, unknownJobLevel: true, maxBatch: true, maxPending: true, flushTimeout: true,
} satisfies Record<keyof AuditOptions, true>);

/** {@link AuditOptions} with every default applied. */
export interface ResolvedAuditOptions {
  enabled: boolean;
  chain: string;
  actor: string;
  level: AuditLevel | null;
  unknownJobLevel: AuditLevel;
  maxBatch: number;
  maxPending: number;
  flushTimeoutMs: number;
}

/**
 * Default {@link AuditOptions.maxBatch}. 2,000 rather than 500: with a backlog (every job of a drain audited),
 * each append costs a few round trips and a commit whatever its size. W6 of `npm run bench` (medians of 4
 * repetitions, interleaved): PostgreSQL 21,000 → 23,600 jobs/s (+12 %), SQLite 30,500 → 32,400 (+6 %); 5,000
 * gained nothing more. A batch of 2,000 holds the chain's head lock about 10 ms.
 */
export const DEFAULT_AUDIT_MAX_BATCH = 2_000;

/** The default actor of this process's own changes. */
export function defaultSystemActor(): string {
  return `system:${hostname()}/${process.pid}`;
}

/**
 * Resolves `createWarden`'s `audit` option: `undefined`/`false` off, `true` on with defaults, an object on unless
 * `enabled: false`.
 * @throws InvalidOptionError, InvalidNameError, InvalidDurationError for bad values.
 */
export function resolveAuditOptions(value: boolean | AuditOptions | undefined): ResolvedAuditOptions {
  if (value !== undefined && typeof value !== 'boolean' && (typeof value !== 'object' || value === null || Array.isArray(value))) {
    throw new InvalidOptionError('audit', value, 'a boolean or an object of audit options');
  }
  const options: AuditOptions = typeof value === 'object' ? value : {};
  checkKnownKeys('audit', options, AUDIT_OPTION_KEYS);
  const enabled = typeof value === 'boolean' ? value : value === undefined ? false : (options.enabled ?? true);
  if (typeof enabled !== 'boolean') throw new InvalidOptionError('audit.enabled', enabled, 'a boolean');
  const chain = validateName('audit.chain', options.chain ?? DEFAULT_AUDIT_CHAIN);
  const actor = options.actor ?? defaultSystemActor();
  if (typeof actor !== 'string' || actor.length === 0 || actor.length > 200) throw new InvalidOptionError('audit.actor', actor, 'a string of 1-200 characters');
  const level = options.level ?? null;
  if (level !== null && !AUDIT_LEVELS.includes(level)) throw new InvalidOptionError('audit.level', level, `one of ${AUDIT_LEVELS.join(', ')}`);
  const unknownJobLevel = options.unknownJobLevel ?? 'all';
  if (!AUDIT_LEVELS.includes(unknownJobLevel)) throw new InvalidOptionError('audit.unknownJobLevel', unknownJobLevel, `one of ${AUDIT_LEVELS.join(', ')}`);
  const maxBatch = options.maxBatch ?? DEFAULT_AUDIT_MAX_BATCH;
  integerInRange('audit.maxBatch', maxBatch, 5_000);
  const maxPending = options.maxPending ?? 100_000;
  if (!Number.isInteger(maxPending) || maxPending < 1) throw new InvalidOptionError('audit.maxPending', maxPending, 'a positive integer');
  const flushTimeoutMs = parseDuration('audit.flushTimeout', options.flushTimeout ?? '10s', { allowZero: false });
  return { enabled, chain, actor, level, unknownJobLevel, maxBatch, maxPending, flushTimeoutMs };
}
