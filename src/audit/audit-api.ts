/**
 * `warden.audit`: reading, verifying, exporting and pruning the audit trail. Available on every Warden instance,
 * whether or not it records (`createWarden({ audit })`), so a separate tool or CI job can verify a trail that
 * the workers write.
 * @module
 */
import type { ActorOptions } from '../client/job-operations.js';
import { DEFAULT_AUDIT_PAGE, type AuditEntry, type AuditEntryInput, type AuditHead, type AuditPruned } from '../driver/audit-params.js';
import type { Driver } from '../driver/driver.js';
import { InvalidOptionError } from '../errors.js';
import { integerInRange } from '../validation/integer-in-range.js';
import { validateName } from '../validation/names.js';
import { type AuditExportFormat, exportAuditEntries, readAuditEntries } from './audit-export.js';
import type { AuditTrail } from './audit-trail.js';
import { type AuditHeadRef, parseAuditHeadRef, type AuditVerifyResult, verifyAuditChain } from './audit-verify.js';

/** Options of {@link AuditApi.verify}. */
export interface AuditVerifyCallOptions {
  /** @default the instance's chain ("default" unless `audit.chain` says otherwise) */
  chain?: string;
  /**
   * A head exported earlier (`"<seq>:<hash>"` from {@link AuditApi.head} / `warden audit head`, or `{ seq, hash }`):
   * the chain must still contain it. This is what detects a truncated tail whose head row was rewritten too.
   * @default none
   */
  head?: string | AuditHeadRef;
  /** Entries read per query. @default 5000 ({@link DEFAULT_AUDIT_PAGE}) */
  pageSize?: number;
}

/** Options of {@link AuditApi.entries} and {@link AuditApi.export}. */
export interface AuditReadCallOptions {
  /** @default the instance's chain */
  chain?: string;
  /** Only entries at or after this time. @default the start */
  since?: Date;
  /** Only entries before this time. @default no end */
  until?: Date;
  /** Only entries after this seq. @default 0 */
  afterSeq?: number;
  /** Entries read per query. @default 5000 ({@link DEFAULT_AUDIT_PAGE}) */
  pageSize?: number;
}

/** The audit trail's read side and maintenance; see docs/audit.md. */
export class AuditApi {
  readonly #driver: Driver;
  readonly #chain: string;
  readonly #trail: AuditTrail | null;

  constructor(deps: { driver: Driver; chain: string; trail: AuditTrail | null }) {
    this.#driver = deps.driver;
    this.#chain = deps.chain;
    this.#trail = deps.trail;
  }

  /** Whether this instance records to the trail. */
  get recording(): boolean {
    return this.#trail !== null;
  }

  /** The chain this instance records to and reads by default. */
  get chain(): string {
    return this.#chain;
  }

  /**
   * The newest entry of a chain as `{ seq, hash, at, … }`, and `ref` as `"<seq>:<hash>"`: store it somewhere the
   * database's administrators cannot write, and pass it to {@link AuditApi.verify} later. Null for an empty chain.
   */
  async head(options: { chain?: string } = {}): Promise<(AuditHead & { ref: string }) | null> {
    const head = await this.#driver.auditHead({ chain: this.#chainOf(options.chain) });
    return head ? { ...head, ref: `${head.seq}:${head.hash}` } : null;
  }

  /**
   * Walks the chain and reports the first broken entry (edited, missing, reordered, truncated tail). Reads in
   * pages; memory stays flat however long the chain is.
   * @throws InvalidOptionError for a malformed `head`.
   */
  verify(options: AuditVerifyCallOptions = {}): Promise<AuditVerifyResult> {
    const head = options.head === undefined ? null : typeof options.head === 'string' ? parseAuditHeadRef(options.head) : checkHeadRef(options.head);
    return verifyAuditChain(this.#driver, { chain: this.#chainOf(options.chain), head, pageSize: pageSizeOf(options.pageSize) });
  }

  /** The entries of a chain in seq order, read a page at a time. */
  entries(options: AuditReadCallOptions = {}): AsyncIterable<AuditEntry> {
    return readAuditEntries(this.#driver, { ...this.#readOptions(options) });
  }

  /**
   * The chain as text: JSON Lines (one canonical JSON entry per line; the form to re-verify from) or CSV (a header,
   * then one row per entry). Streamed page by page.
   */
  export(options: AuditReadCallOptions & { format?: AuditExportFormat } = {}): AsyncIterable<string> {
    return exportAuditEntries(this.#driver, { ...this.#readOptions(options), format: options.format ?? 'jsonl' });
  }

  /**
   * Deletes the entries older than `before` (the trail keeps everything until you do) and appends an `audit.pruned`
   * entry saying who pruned what, in one transaction: a prune is never committed without its entry. The seq and hash
   * of the last entry removed are kept in the chain's head row, so verify still checks the rest from there; export
   * first if the entries must be archived. A prune that failed may be run again as it was: it deletes, and records,
   * whatever is still older than `before` (nothing, when the failed one did commit).
   * @returns how many entries were deleted.
   */
  async prune(options: { before: Date; chain?: string } & ActorOptions): Promise<number> {
    if (!(options?.before instanceof Date) || Number.isNaN(options.before.getTime())) throw new InvalidOptionError('before', options?.before, 'a valid Date');
    const chain = this.#chainOf(options.chain);
    const record = ({ deleted, prunedSeq, prunedHash }: AuditPruned): AuditEntryInput => ({
      actor: options.actor ?? 'api', action: 'audit.pruned', subjectKind: 'chain', subjectId: chain, jobName: null, queue: null, before: null, after: null,
      reason: options.reason ?? null, data: { operator: true, before: options.before, deleted, prunedSeq, prunedHash },
    });
    return this.#driver.auditPrune({ chain, before: options.before, record, now: null });
  }

  /** Resolves once every entry this instance queued so far is written (a no-op when it does not record). */
  flush(): Promise<void> {
    return this.#trail?.barrier() ?? Promise.resolve();
  }

  #chainOf(chain: string | undefined): string {
    return chain === undefined ? this.#chain : validateName('audit chain', chain);
  }

  #readOptions(options: AuditReadCallOptions) {
    for (const field of ['since', 'until'] as const) {
      const value = options[field];
      if (value !== undefined && (!(value instanceof Date) || Number.isNaN(value.getTime()))) throw new InvalidOptionError(field, value, 'a valid Date');
    }
    if (options.afterSeq !== undefined && (!Number.isSafeInteger(options.afterSeq) || options.afterSeq < 0)) throw new InvalidOptionError('afterSeq', options.afterSeq, 'a whole number >= 0');
    return { chain: this.#chainOf(options.chain), since: options.since, until: options.until, afterSeq: options.afterSeq, pageSize: pageSizeOf(options.pageSize) };
  }
}

function pageSizeOf(value: number | undefined): number {
  return integerInRange('pageSize', value ?? DEFAULT_AUDIT_PAGE, 10_000);
}

function checkHeadRef(ref: AuditHeadRef): AuditHeadRef {
  if (typeof ref !== 'object' || ref === null || !Number.isSafeInteger(ref.seq) || ref.seq < 0 || typeof ref.hash !== 'string' || !/^[0-9a-f]{64}$/i.test(ref.hash)) {
    throw new InvalidOptionError('head', ref, '{ seq, hash } or "<seq>:<sha256 hex>"');
  }
  return { seq: ref.seq, hash: ref.hash.toLowerCase() };
}
